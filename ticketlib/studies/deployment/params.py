"""06_deployment's parameters (a frozen Params, the schema of its notebook) and their cross-field checks: the params
files it reuses, and the batches and threads its claims judge."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ticketlib.infra.schema import StudyParams, param


def check_deployment_params(p: Mapping) -> list[str]:
    errors = []
    batches = list(p["batch_sizes"])
    if 1 not in batches or max(batches, default=1) <= 1:
        errors.append(f"'batch_sizes' {batches} must include 1 and a larger batch: the claims judge both")
    if p["claim_threads"] not in p["threads"]:
        errors.append(f"'claim_threads' {p['claim_threads']} must be one of 'threads' {p['threads']}")
    if not 0 < p["moderate_percent"] < 100:
        errors.append(f"'moderate_percent' {p['moderate_percent']} must lie strictly between 0 and 100")
    return errors


@dataclass(frozen=True)
class DeploymentParams(StudyParams):
    """06_deployment's parameters: the schema its notebook's parameters cell shows (and a test keeps equal)."""

    REUSES = {"imp_params": "01_imp", "earlybird_params": "04_early_tickets"}

    imp_params: str = param("params/cpu/01_imp.yaml",
                            'the 01_imp run whose IMP tickets are measured (every seed and round; its cached units are reused)')
    earlybird_params: str = param("params/cpu/04_early_tickets.yaml",
                                  'the 04_early_tickets run whose early-bird channel ticket (its first seed) is slimmed')
    slim_ratio: float = param(0.5, "the early-bird pruning ratio p the slim claim judges (one of that run's ratios)",
                              minimum=0, maximum=0.99)
    latency_percents: list[float] = param([100.0, 51.3, 21.1, 7.0],
                                          '% of weights remaining timed (the nearest IMP round each); the sparsest matching and the sparsest round are added',
                                          minimum=0, maximum=100)
    moderate_percent: float = param(21.1,
                                    'moderate sparsity, the % remaining where sparse kernels are claimed not to pay (timed too); the issue measured them 2-10x slower at 20% and denser',
                                    minimum=0, maximum=100)
    conv_percents: list[float] = param([21.1, 3.6],
                                       "% kept of the early-bird VGG's weights timed as im2col + CSR convolutions (magnitude masks: a kernel probe, not tickets); [] skips it",
                                       minimum=0, maximum=100)
    bsr_block: int = param(4,
                           'side of the square BSR blocks of the Linear layers (the largest divisor of both sides up to it); 0 skips BSR',
                           minimum=0)
    batch_sizes: list[int] = param([1, 256], 'images per timed forward pass; the claims judge 1 and the largest',
                                   minimum=1)
    threads: list[int] = param([1, 0], 'torch threads per timing; 0 stands for every core this run may use',
                               minimum=0)
    claim_threads: int = param(1, 'the thread setting whose timings the claims judge (one of threads)', minimum=0)
    latency_repeats: int = param(10,
                                 'interleaved samples per form and setting: the latency intervals are over these',
                                 minimum=2)
    min_sample_seconds: float = param(0.02, 'each sample times enough forward passes to last this long', minimum=0)
    progress: bool = param(False, 'tqdm progress bars (only units missing from the cache train)')

    def problems(self) -> list[str]:
        return check_deployment_params(self.as_dict())
