"""What inference costs: FLOPs (`FlopCounterMode`), energy (RAPL counters or a labelled estimate), latency (`torch.utils.benchmark`) and the density where sparse kernels overtake dense ones."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils import benchmark
from torch.utils.flop_counter import FlopCounterMode

from ticketlib.core.sparse import SPARSE_MODULES, SparseLinear
from ticketlib.infra import contention
from ticketlib.core.models import training_mode

# Horowitz, ISSCC 2014, energy table for 45 nm at 0.9 V: 32-bit float multiply 3.7 pJ, 32-bit float add 0.9 pJ.
PJ_FP32_MULT, PJ_FP32_ADD = 3.7, 0.9
PJ_PER_FP32_MAC = PJ_FP32_MULT + PJ_FP32_ADD
ENERGY_SOURCE = ("estimate, not a measurement: FLOPs / 2 multiply-adds x 4.6 pJ, a 32-bit float multiply (3.7 pJ) "
                 "plus a 32-bit float add (0.9 pJ) at 45 nm, 0.9 V (M. Horowitz, 'Computing's energy problem (and what "
                 "we can do about it)', ISSCC 2014, energy table); arithmetic only: no memory access, no control "
                 "overhead, no idle power")



# --- cost -------------------------------------------------------------------------------------------
@torch.no_grad()
def counted_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one eval-mode forward pass on `x`, 2 per multiply-add, bias adds not counted.

    Dense ops as `FlopCounterMode` counts them. For each sparse module, whatever the counter booked
    during its call (it may count a sparse matmul as dense, by shape, or not at all) is replaced by
    2 × its stored values × the columns it multiplies: the multiply-adds its kernel performs.
    """
    booked, own = [], []

    def before(module: nn.Module, inputs: tuple) -> None:
        booked.append(-counter.get_total_flops())

    def after(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        booked[-1] += counter.get_total_flops()
        columns = (inputs[0].numel() // module.in_features if isinstance(module, SparseLinear)
                   else output.shape[0] * output[0, 0].numel())
        own.append(2 * module.stored() * columns)

    counter = FlopCounterMode(display=False)
    sparse = [m for m in model.modules() if isinstance(m, SPARSE_MODULES)]
    handles = [m.register_forward_pre_hook(before) for m in sparse] + [m.register_forward_hook(after) for m in sparse]
    try:
        with training_mode(model, False), counter:
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return int(counter.get_total_flops()) - sum(booked) + sum(own)


def estimated_joules(flops: float) -> float:
    """Arithmetic energy estimate of `flops` (2 per multiply-add) from Horowitz's 45 nm figures (`ENERGY_SOURCE`)."""
    return flops / 2 * PJ_PER_FP32_MAC * 1e-12


def rapl_counters(root: str | Path = "/sys/class/powercap") -> dict[str, Path]:
    """Readable RAPL package energy counters {domain name: energy_uj file}; empty where none is readable."""
    found = {}
    for zone in sorted(Path(root).glob("intel-rapl:*")):
        if zone.name.count(":") != 1:  # sub-zones (core, uncore, dram) are inside the package total
            continue
        counter = zone / "energy_uj"
        try:
            int(counter.read_text())
        except (OSError, ValueError):
            continue
        name = (zone / "name").read_text().strip() if (zone / "name").exists() else zone.name
        found[f"{zone.name} ({name})"] = counter
    return found


def _read_uj(counter: Path) -> int:
    return int(counter.read_text())


def measured_joules(fn: Callable[[], object], counters: Mapping[str, Path], min_seconds: float = 0.5) -> float:
    """Joules per call of `fn` from RAPL package counters: calls repeated for `min_seconds`, counter wrap-around
    handled. The package's whole energy: idle power and other processes included."""
    if not counters:
        raise ValueError("no readable RAPL counter: report an estimate instead")
    wraps = {}
    for name, counter in counters.items():
        limit = counter.with_name("max_energy_range_uj")
        wraps[name] = int(limit.read_text()) if limit.exists() else 2 ** 32
    before = {name: _read_uj(c) for name, c in counters.items()}
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < min_seconds:
        fn()
        calls += 1
    used = 0
    for name, counter in counters.items():
        delta = _read_uj(counter) - before[name]
        used += delta + wraps[name] if delta < 0 else delta
    return used * 1e-6 / calls


@torch.inference_mode()
def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x)


@dataclass
class Timing:
    """Interleaved latency samples of some forms (of the attempt kept) and the contention around every attempt."""

    samples: dict[str, list[float]]
    contention: contention.Attempts


def _attempt(timers: Mapping[str, benchmark.Timer], number: Mapping[str, int], repeats: int
             ) -> tuple[dict[str, list[float]], dict[str, contention.Window], contention.Window]:
    """One attempt: `repeats` samples per form, the forms in turns, each sample bracketed by contention marks;
    the samples, each form's windows pooled and the attempt's whole window."""
    samples: dict[str, list[float]] = {name: [] for name in timers}
    windows = {name: contention.Window() for name in timers}
    begun = contention.Mark.now()
    for _ in range(repeats):
        for name, timer in timers.items():
            start = contention.Mark.now()
            samples[name].append(timer.timeit(number[name]).mean)
            windows[name] = windows[name] + start.to(contention.Mark.now())
    return samples, windows, begun.to(contention.Mark.now())


def latency_timing(forms: Mapping[str, nn.Module], x: torch.Tensor, repeats: int, threads: int,
                   min_seconds: float = 0.01, warmup: int = 2, attempts: int = contention.ATTEMPTS) -> Timing:
    """Seconds per forward pass of each form on the batch `x`: `repeats` samples each, taken in turns,
    re-timed while the machine was busy (`contention`'s rule, at most `attempts` attempts).

    Each sample is a `torch.utils.benchmark.Timer` (on `threads` threads) timing enough passes to last
    `min_seconds` (at least one), calibrated once per form after `warmup` passes; the forms take turns
    sample by sample, so a slow spell of the machine hits all alike and the i-th samples form a pair.
    """
    modes = {name: model.training for name, model in forms.items()}
    for model in forms.values():
        model.eval()
    timers = {name: benchmark.Timer("forward(model, x)", globals={"forward": _forward, "model": m, "x": x},
                                    num_threads=threads) for name, m in forms.items()}
    number = {}
    for name, timer in timers.items():
        timer.timeit(warmup)
        once = timer.timeit(1).mean
        number[name] = max(1, math.ceil(min_seconds / max(once, 1e-9)))
    samples, attempted = contention.retimed(lambda: _attempt(timers, number, repeats), attempts)
    for name, model in forms.items():
        model.train(modes[name])
    return Timing(samples, attempted)


def latency_samples(forms: Mapping[str, nn.Module], x: torch.Tensor, repeats: int, threads: int,
                    min_seconds: float = 0.01, warmup: int = 2) -> dict[str, list[float]]:
    """The samples of `latency_timing` alone (its contention dropped)."""
    return latency_timing(forms, x, repeats, threads, min_seconds, warmup).samples


def quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """(25th percentile, median, 75th percentile) of the samples."""
    q1, median, q3 = np.percentile(np.asarray(samples, dtype=float), [25, 50, 75])
    return float(q1), float(median), float(q3)


@dataclass
class Crossover:
    """Where a form's latency ratio to dense crosses 1, scanning from the sparsest density measured."""

    density: float | None  # below this density the form is faster; None: it never is at the densities measured
    how: str  # "interpolated", "never", "all" (faster at every density measured)


def crossover_density(densities: Sequence[float], ratios: Sequence[float]) -> Crossover:
    """The density below which `ratios` (form / dense latency, e.g. medians) stay under 1.

    From the sparsest density up, the first density whose ratio is ≥ 1 ends the run; the crossing is
    interpolated linearly in (log density, log ratio) between it and the last density under 1.
    """
    if len(densities) != len(ratios) or not densities:
        raise ValueError("need one ratio per density, at least one")
    points = sorted(zip(densities, ratios))
    if points[0][1] >= 1:
        return Crossover(None, "never")
    for (d0, r0), (d1, r1) in zip(points, points[1:]):
        if r1 >= 1:
            t = -math.log(r0) / (math.log(r1) - math.log(r0)) if r1 != r0 else 0.0
            return Crossover(math.exp(math.log(d0) + t * (math.log(d1) - math.log(d0))), "interpolated")
    return Crossover(points[-1][0], "all")


