"""Pruning at initialisation: score, threshold, repeat — single-shot or iterative, for any scorer.

`prune_iteratively` is Synaptic-Flow's one loop for every method: at each of `iterations`
steps the scorer sees the current mask and `pruning.prune_to_density` keeps the next density
of an exponential (or linear) schedule that ends exactly on the target; pruned weights are
never revived, biases and BatchNorm are never pruned (only the mask's weights are). One
iteration is single-shot pruning; SynFlow's default is 100.

`train_pruned` trains one pruned-at-init network (a cached unit), optionally with the sanity
controls of Frankle et al. 2021: the mask shuffled within each layer, or the weights
re-initialised.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from ticketlib.core import collapse
from ticketlib.infra import execute
from ticketlib.core import pruning
from ticketlib.core import rewind
from ticketlib.core import scores
from ticketlib.infra.cache import Cache, unit_key
from ticketlib.infra.device import describe
from ticketlib.core.data import Dataset
from ticketlib.core.experiment import REINIT_SEED_OFFSET, SHUFFLE_SEED_OFFSET, Experiment
from ticketlib.studies.imp.study import Ticket
from ticketlib.core.masks import Mask
from ticketlib.core.train import train

METHODS = ("random", "magnitude", "snip", "grasp", "synflow")
SCHEDULES = ("exponential", "linear")
CONTROLS = ("shuffle", "reinit")
DEFAULT_ITERATIONS = {"synflow": 100}  # the others are single-shot unless asked

Scorer = Callable[[Mask], dict[str, Tensor]]


def make_scorer(method: str, model: nn.Module, batch: scores.Batch | None = None,
                input_shape: tuple[int, ...] | None = None, seed: int = 0, train_mode: bool = False,
                dtype: torch.dtype | None = None) -> Scorer:
    """A function mask -> scores for `method` on `model`, prepared once (SynFlow's |θ| copy is made here).

    SNIP and GraSP need `batch` (see `scores.balanced_batch`); SynFlow needs `input_shape`
    (taken from `batch` if omitted); random draws from a generator seeded with `seed`.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "random":
        generator = torch.Generator().manual_seed(seed)
        return lambda mask: scores.random(model, mask, generator)
    if method == "magnitude":
        return lambda mask: scores.magnitude(model, mask)
    if method == "synflow":
        if input_shape is None and batch is None:
            raise ValueError("synflow needs input_shape (or a batch to read it from)")
        return scores.SynFlow(model, tuple(input_shape or batch[0].shape[1:]), dtype)
    if batch is None:
        raise ValueError(f"{method} needs a batch of data (scores.balanced_batch)")
    if method == "snip":
        return lambda mask: scores.snip(model, mask, batch, train_mode=train_mode)
    return lambda mask: scores.grasp(model, mask, batch, train_mode=train_mode)


def fixed_scorer(fixed: dict[str, Tensor]) -> Scorer:
    """A scorer that returns `fixed` whatever the mask: single-shot pruning, scored once and thresholded often."""
    return lambda _mask: fixed


def schedule(density: float, iterations: int, kind: str = "exponential") -> list[float]:
    """The density after each iteration: density**(k/n) (exponential) or 1-(1-density)k/n (linear).

    The last entry is exactly `density`.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
    if iterations < 1 or not 0.0 <= density <= 1.0:
        raise ValueError(f"need iterations >= 1 and density in [0, 1], got {iterations}, {density}")
    if kind == "exponential":
        steps = [density ** (k / iterations) for k in range(1, iterations)]
    else:
        steps = [1.0 - (1.0 - density) * k / iterations for k in range(1, iterations)]
    return steps + [density]


def prune_iteratively(scorer: Scorer, mask: Mask, density: float, iterations: int = 1,
                      kind: str = "exponential", scope: str = "global",
                      stop: Callable[[Mask], bool] | None = None) -> Mask:
    """Score and prune `iterations` times along the schedule to exactly `density` of the original weights.

    `stop(mask)` ends the loop early when true (e.g. `collapse.empty_layers`: a collapsed layer
    never comes back, so a critical-compression search need not finish the schedule).
    """
    for target in schedule(density, iterations, kind):
        mask = pruning.prune_to_density(scorer(mask), mask, target, scope=scope)
        if stop is not None and stop(mask):
            break
    return mask


def prune_at_init(model: nn.Module, method: str, density: float, iterations: int | None = None,
                  scope: str = "global", kind: str = "exponential", batch: scores.Batch | None = None,
                  input_shape: tuple[int, ...] | None = None, seed: int = 0, mask: Mask | None = None,
                  stop: Callable[[Mask], bool] | None = None) -> Mask:
    """The mask `method` chooses for `model` at `density` (default iterations: 100 for SynFlow, else 1).

    The pruning-at-initialisation entry point: score, threshold and repeat over an (exponential) schedule.

    Args:
        model: the untrained model.
        method: "random", "magnitude", "snip", "grasp" or "synflow".
        density: the share of weights kept, in (0, 1].
        iterations: scoring rounds (SynFlow: 100).
        scope: "global" or "layerwise".
        kind: the schedule of intermediate densities ("exponential" or "linear").
        batch: (x, y) for the data-dependent scores (SNIP, GraSP).
        input_shape: one example's shape, for SynFlow's all-ones input.
        seed: the random scorer's seed.
        mask: start from this mask (default: dense over the prunable weights).
        stop: stop early when it returns True for an intermediate mask.

    Returns:
        The `Mask`.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> round(prune_at_init(net, "synflow", 0.1, input_shape=(16,)).density(), 2)
        0.1
    """
    mask = Mask.ones_like(model) if mask is None else mask
    iterations = DEFAULT_ITERATIONS.get(method, 1) if iterations is None else iterations
    scorer = make_scorer(method, model, batch=batch, input_shape=input_shape, seed=seed)
    return prune_iteratively(scorer, mask, density, iterations, kind, scope, stop)


def critical_compression(model: nn.Module, scorer: Scorer, input_shape: tuple[int, ...], iterations: int = 1,
                         scope: str = "global", tol: float = 0.05) -> tuple[float, dict[float, bool]]:
    """`collapse.largest_intact_compression` of a scorer on `model`, searched up to `collapse.max_compression`.

    Single-shot (`iterations` 1): the dense network is scored once and only re-thresholded.
    Iterative: one run of the schedule per compression tried, stopped as soon as a layer empties.
    """
    dense = Mask.ones_like(model)
    if iterations == 1:
        scorer = fixed_scorer(scorer(dense))  # one score, many thresholds

    def collapses_at(log_compression: float) -> bool:
        mask = prune_iteratively(scorer, dense, collapse.density_of(log_compression), iterations, scope=scope,
                                 stop=lambda m: bool(collapse.empty_layers(m)))
        return collapse.collapsed(model, mask, input_shape)

    return collapse.largest_intact_compression(collapses_at, hi=collapse.max_compression(dense), tol=tol)



def run_label(method: str, iterations: int) -> str:
    """How 02 names a pruning run: the method, with its iterations when iterative or SynFlow."""
    return method if iterations == 1 and method != "synflow" else f"{method} ({iterations} it.)"


def critical_compressions(model: nn.Module, runs: list[tuple[str, int]], scorers: dict[str, Scorer],
                          one_shot: dict[str, Scorer], input_shape: tuple[int, ...], tol: float = 0.05) -> list[dict]:
    """`critical_compression` of each (method, iterations) run on `model`, in order: single-shot runs threshold
    `one_shot[method]`, iterative ones rescore with `scorers[method]`. One row per run: label, critical log10
    compression, compressions tried, search seconds."""
    rows = []
    for method, iterations in runs:
        began = time.perf_counter()
        critical, tried = critical_compression(model, one_shot[method] if iterations == 1 else scorers[method],
                                               input_shape, iterations=iterations, tol=tol)
        rows.append({"label": run_label(method, iterations), "critical": critical, "tried": len(tried),
                     "seconds": time.perf_counter() - began})
    return rows


def masks_at_density(runs: list[tuple[str, int]], scorers: dict[str, Scorer], one_shot: dict[str, Scorer],
                     dense: Mask, density: float) -> dict[str, Mask]:
    """Each run's mask at `density` (keyed by method): single-shot from `one_shot`, iterative from `scorers`."""
    return {method: prune_iteratively(one_shot[method] if iterations == 1 else scorers[method], dense, density,
                                      iterations) for method, iterations in runs}

def check_imp_reaches_collapse(model: nn.Module, input_shape: tuple[int, ...], rounds: int, fraction: float,
                               tol: float = 0.05) -> tuple[float, float]:
    """(IMP's final log10 compression, one-shot magnitude's critical compression at init) for `model`.

    Raises ValueError when IMP's `rounds` at `fraction` stop short of where one-shot global magnitude
    pruning of the initialised network collapses: then "iteration avoids collapse" cannot be observed.
    Data-free and cheap; run it before training.
    """
    import math

    reach = rounds * math.log10(1 / (1 - fraction)) if fraction < 1 else math.inf
    one_shot, _ = critical_compression(model, make_scorer("magnitude", model), input_shape, tol=tol)
    if reach <= one_shot:
        needed = math.ceil(one_shot / math.log10(1 / (1 - fraction))) + 1
        raise ValueError(f"imp_rounds = {rounds} at imp_fraction {fraction} reach only 10^{reach:.2f}; one-shot "
                         f"magnitude pruning of this network at init collapses beyond 10^{one_shot:.2f}, so "
                         f"'iteration_avoids_collapse' cannot be judged: use imp_rounds >= {needed}")
    return reach, one_shot


# --- training pruned-at-init networks -------------------------------------------------------


@dataclass
class PAIConfig:
    """How a mask is chosen at initialisation, and which control (if any) is trained instead."""

    method: str
    log_compression: float
    iterations: int | None = None  # None: 100 for SynFlow, 1 (single-shot) otherwise
    scope: str = "global"
    schedule: str = "exponential"
    per_class: int = 10  # SNIP/GraSP: examples per class in the scoring batch
    control: str | None = None  # None, "shuffle" (within layers) or "reinit" (fresh weights)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.control is not None and self.control not in CONTROLS:
            raise ValueError(f"control must be one of {CONTROLS} or None, got {self.control!r}")
        if self.scope not in pruning.SCOPES or self.schedule not in SCHEDULES:
            raise ValueError(f"scope/schedule must be in {pruning.SCOPES}/{SCHEDULES}")


def study_configs(methods: list[str], compressions: list[float], control_methods: list[str], controls: list[str],
                  control_compression: float, synflow_iterations: int = 100, per_class: int = 10) -> list[PAIConfig]:
    """Tanaka et al.'s grid: every method at every compression, then the controls of `control_methods` at
    `control_compression` (with the plain run there, listed once even when it is also on the grid)."""
    def config(method: str, log_compression: float, control: str | None = None) -> PAIConfig:
        return PAIConfig(method, log_compression, iterations=synflow_iterations if method == "synflow" else 1,
                         per_class=per_class, control=control)

    grid = [config(method, c) for c in compressions for method in methods]
    grid += [config(method, control_compression, k) for method in control_methods for k in [None, *controls]]
    return list({repr(cfg): cfg for cfg in grid}.values())


def choose_mask(exp: Experiment, data: Dataset, cfg: PAIConfig, seed: int, cache: Cache | None = None) -> Mask:
    """The mask `cfg` chooses for the model initialised under `seed` (its control not applied); cached."""
    cache = cache or Cache(None)
    key = unit_key("pai_mask", experiment=exp, pai={**asdict(cfg), "control": None}, seed=seed)

    def compute() -> dict:
        model = exp.build_model(data, seed)
        batch = scores.balanced_batch(data.train, cfg.per_class, seed) if cfg.method in ("snip", "grasp") else None
        mask = prune_at_init(model, cfg.method, collapse.density_of(cfg.log_compression), cfg.iterations,
                             cfg.scope, cfg.schedule, batch=batch, input_shape=tuple(data.input_shape), seed=seed)
        return {"mask": dict(mask)}

    return Mask(cache.cached(key, compute, describe(exp.device))["mask"])


def train_pruned(exp: Experiment, data: Dataset, cfg: PAIConfig, seed: int, cache: Cache | None = None,
                 progress: bool = True) -> dict:
    """Prune at init with `cfg`, apply its control, train; one tidy row (accuracies in %), cached."""
    cache = cache or Cache(None)
    key = unit_key("pai_run", experiment=exp, pai=cfg, seed=seed)

    def compute() -> dict:
        mask = choose_mask(exp, data, cfg, seed, cache)
        model = exp.build_model(data, seed + (REINIT_SEED_OFFSET if cfg.control == "reinit" else 0))
        if cfg.control == "shuffle":
            mask = mask.shuffle_within_layers(torch.Generator().manual_seed(seed + SHUFFLE_SEED_OFFSET))
        broken = collapse.collapsed(model, mask, tuple(data.input_shape))
        result = train(model, data, exp.train, mask=mask, seed=seed, progress=progress)
        return {"mask": dict(mask), "result": result.summary(), "history": result.history, "collapsed": broken}

    payload = cache.cached(key, compute, describe(exp.device))
    mask, result = Mask(payload["mask"]), payload["result"]
    return {"method": cfg.method, "control": cfg.control or "none", "log_compression": cfg.log_compression,
            "percent_remaining": 100 * mask.density(), "seed": seed, "collapsed": payload["collapsed"],
            "empty_layers": len(collapse.empty_layers(mask)), "test_accuracy": 100 * result["test_accuracy"],
            "final_test_accuracy": 100 * result["final_test_accuracy"],
            "early_stop_iteration": result["early_stop_iteration"], "seconds": result["seconds"]}


def train_grid(exp: Experiment, data: Dataset | None, configs: list[PAIConfig], seeds: list[int],
               cache: Cache | None = None, progress: bool = True, workers: int = 1, data_root: str = "data",
               download: bool = False, executor: str | None = None) -> list[dict]:
    """`train_pruned` for every config and seed; one row each, in (config, seed) order.

    Each (config, seed) is a unit run through `execute.map_units` on the `executor` backend (`workers`
    > 1: that many single-threaded trainings at once, which small networks use best). Finished units
    go to the same cache either way, and a re-run trains only what is missing.
    """
    jobs = [{"cfg": cfg, "seed": seed} for cfg in configs for seed in seeds]
    return execute.map_units(train_pruned, exp, jobs, data=data, cache=cache, workers=workers, backend=executor,
                             progress=progress, data_root=data_root, download=download)


def iterative_versus_one_shot(model: nn.Module, ticket: Ticket, input_shape: tuple[int, ...]) -> list[dict]:
    """Per IMP round: is the ticket collapsed, and is one-shot global magnitude pruning of the *dense
    trained* network (round 0's final weights) to the same density collapsed? One row per round."""
    dense_trained = ticket.rounds[0].final_state
    if dense_trained is None:
        raise ValueError("the ticket carries no trained weights for round 0")
    rewind.restore(model, dense_trained)
    dense = Mask.ones_like(model, list(ticket.rounds[0].mask))
    magnitudes = scores.magnitude(model, dense)
    rows = []
    for round_ in ticket.rounds:
        one_shot = pruning.prune_to_density(magnitudes, dense, round_.density, scope="global")
        rows.append({"round": round_.round, "percent_remaining": 100 * round_.density,
                     "log_compression": -torch.log10(torch.tensor(round_.density)).item(),
                     "imp_empty_layers": len(collapse.empty_layers(round_.mask)),
                     "imp_collapsed": collapse.collapsed(model, round_.mask, input_shape),
                     "one_shot_empty_layers": len(collapse.empty_layers(one_shot)),
                     "one_shot_collapsed": collapse.collapsed(model, one_shot, input_shape)})
    return rows
