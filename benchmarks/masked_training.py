"""Milliseconds per training step: dense vs ticketlib's masking vs torch.nn.utils.prune, side by side.

One step = forward + backward + Adam step on a fixed random batch. Each variant has its own copy of
the model and its own optimizer; after a warm-up, the variants are timed in interleaved blocks
(the order rotates every repeat) and the median block is reported, so background load hits every
variant alike. Masks are 80% sparse (layerwise, by magnitude).

Two Adam implementations are measured: `fused=True` (what `ticketlib.core.train.make_optimizer` uses) and
torch's default for-loop one. Keeping pruned entries' Adam state at exactly zero means the for-loop
path's `exp_avg_sq.sqrt()` runs on 80% zeros, and torch's CPU sqrt kernel is ~20x slower on 0.0 than
on positive numbers; the fused kernel does not pay that, so it shows the cost of the masking itself.

    python benchmarks/masked_training.py [--repeats 15] [--device cpu]

Target (issue 2): ticketlib <= 1.10x dense on both models, with the optimizer ticketlib trains with (fused).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ticketlib.infra import contention
from ticketlib.core import models
from ticketlib.core import pruning
from ticketlib.core import scores
from ticketlib.core.masks import Mask, keep_pruned_at_zero

CASES = [("lenet_300_100", (1, 28, 28), 20), ("conv2", (3, 32, 32), 3)]  # model, input, steps per timed block
OPTIMIZERS = {"adam": {}, "adam fused": {"fused": True}}
BATCH = 60
DENSITY = 0.2


def make_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> Callable:
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return step


def variants(name: str, shape: tuple, device: torch.device) -> dict[tuple[str, str], Callable]:
    torch.manual_seed(0)
    base = models.build(name, shape, 10).to(device)
    mask = pruning.prune_to_density(scores.magnitude(base, Mask.ones_like(base)), Mask.ones_like(base), DENSITY,
                                    scope="layerwise")
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, *shape, generator=gen).to(device)
    y = torch.randint(0, 10, (BATCH,), generator=gen).to(device)
    steps = {}
    for opt_name, options in OPTIMIZERS.items():
        dense = copy.deepcopy(base)
        steps[opt_name, "dense"] = make_step(dense, torch.optim.Adam(dense.parameters(), lr=1e-3, **options), x, y)

        masked = copy.deepcopy(base)
        opt = torch.optim.Adam(masked.parameters(), lr=1e-3, **options)
        keep_pruned_at_zero(mask, masked, opt)
        steps[opt_name, "ticketlib"] = make_step(masked, opt, x, y)

        hooked = copy.deepcopy(base)
        mask.to_prune_buffers(hooked)  # weight_orig + weight_mask, a forward pre-hook recomputes weight
        opt = torch.optim.Adam(hooked.parameters(), lr=1e-3, **options)
        steps[opt_name, "torch.nn.utils.prune"] = make_step(hooked, opt, x, y)
    return steps


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(steps: dict, repeats: int, block: int, warmup: int, device: torch.device) -> dict:
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    sync(device)
    names = list(steps)
    times: dict = {n: [] for n in names}
    for r in range(repeats):
        for n in names[r % len(names):] + names[:r % len(names)]:  # rotate who goes first
            fn = steps[n]
            start = time.perf_counter()
            for _ in range(block):
                fn()
            sync(device)
            times[n].append(1000 * (time.perf_counter() - start) / block)
    return {n: statistics.median(t) for n, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed blocks per variant (median reported)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per variant first")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"mask density {DENSITY:.0%} (layerwise), median of {args.repeats} interleaved blocks")
    print(f"\n{'model':<15}{'optimizer':<12}{'variant':<24}{'ms/step':>9}{'x dense':>9}")
    t0 = time.perf_counter()
    for name, shape, block in CASES:
        with contention.Monitor() as load:
            ms = measure(variants(name, shape, device), args.repeats, block, args.warmup, device)
        for (opt_name, variant), value in ms.items():
            ratio = value / ms[opt_name, "dense"]
            print(f"{name:<15}{opt_name:<12}{variant:<24}{value:>9.3f}{ratio:>8.2f}x")
        print(f"  {name}: {contention.describe(load.window)}")
    print(f"\n({time.perf_counter() - t0:.0f} s)  x dense: against dense with the same optimizer; "
          "target: ticketlib <= 1.10x dense")


if __name__ == "__main__":
    main()
