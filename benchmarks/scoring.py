"""How fast are the pruning-at-init scorers on VGG-16 (32x32 input)? One run, side by side.

    python benchmarks/scoring.py [--iterations 100] [--per-class 10] [--naive 3]

Times, on the same machine in one process: one dense forward+backward pass of the scoring
batch (10 MNIST images per class, padded to 32x32); one-shot SNIP and GraSP on that batch;
SynFlow run for `--iterations` iterations by `pai.prune_iteratively` (scoring and exact
thresholding, to 10^-6 density), its scoring part alone, and a naive SynFlow that deep-copies
the model in float64 at every iteration (timed for `--naive` iterations and scaled up).
Prints seconds and the ratios to the dense pass.
"""
from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F

from ticketlib.infra import contention
from ticketlib.core import models
from ticketlib.studies.conservation import study as pai
from ticketlib.core import scores
from ticketlib.core.masks import Mask


def scoring_batch(per_class: int) -> scores.Batch:
    """A balanced MNIST batch padded to 32x32, or random images if MNIST is not installed."""
    try:
        from ticketlib.core import data

        mnist = data.pad_images(data.load("mnist", val_size=1000), 32)
        return scores.balanced_batch(mnist.train, per_class, seed=0)
    except FileNotFoundError:
        gen = torch.Generator().manual_seed(0)
        return torch.randn(10 * per_class, 1, 32, 32, generator=gen), torch.arange(10 * per_class) % 10


def seconds(fn, repeat: int = 1) -> float:
    """The best of `repeat` wall-clock timings of fn()."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def naive_synflow(model: torch.nn.Module, mask: Mask) -> dict:
    """The slow way: a float64 deepcopy with |θ| per call, signs never needing restoring."""
    clone = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for tensor in [*clone.parameters(), *clone.buffers()]:
            if tensor.is_floating_point():
                tensor.abs_()
        params = dict(clone.named_parameters())
        for name, keep in mask.items():
            params[name].mul_(keep.double())
    clone(torch.ones(1, 1, 32, 32, dtype=torch.float64)).sum().backward()
    return {n: (params[n] * params[n].grad).detach().abs() for n in mask}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--naive", type=int, default=3, help="naive SynFlow iterations timed (0 skips it)")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = models.vgg16((1, 32, 32), 10)
    dense = Mask.ones_like(model)
    batch = scoring_batch(args.per_class)
    print(f"VGG-16, {dense.num_total():,} prunable weights; scoring batch {tuple(batch[0].shape)}; "
          f"{torch.get_num_threads()} threads")

    def dense_pass() -> None:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(batch[0]), batch[1]).backward()
        model.zero_grad(set_to_none=True)

    dense_pass()  # warm-up
    load = contention.Monitor().__enter__()
    times = {"dense forward+backward (batch)": seconds(dense_pass, 3)}
    times["SNIP, one shot"] = seconds(lambda: scores.snip(model, dense, batch))
    times["GraSP, one shot"] = seconds(lambda: scores.grasp(model, dense, batch))
    synflow = scores.SynFlow(model, (1, 32, 32))
    scoring = []

    def timed_scorer(mask: Mask) -> dict:
        start = time.perf_counter()
        out = synflow(mask)
        scoring.append(time.perf_counter() - start)
        return out

    times[f"SynFlow, {args.iterations} iterations (score + threshold)"] = seconds(
        lambda: pai.prune_iteratively(timed_scorer, dense, 1e-6, args.iterations))
    times[f"  of which scoring ({len(scoring)} calls)"] = sum(scoring)
    if args.naive:
        per_call = seconds(lambda: [naive_synflow(model, dense) for _ in range(args.naive)]) / args.naive
        times[f"naive SynFlow scoring, {args.iterations} calls (from {args.naive})"] = per_call * args.iterations
    load.__exit__()
    base = times["dense forward+backward (batch)"]
    width = max(len(k) for k in times)
    print(f"{'what':<{width}}  {'seconds':>9}  {'x dense pass':>12}")
    for what, value in times.items():
        print(f"{what:<{width}}  {value:9.2f}  {value / base:12.1f}")
    if args.naive:
        naive = times[f"naive SynFlow scoring, {args.iterations} calls (from {args.naive})"]
        print(f"SynFlow scoring is {naive / sum(scoring):.1f}x faster than the naive deepcopy-per-iteration version")
    print(f"while timing: {contention.describe(load.window)}")


if __name__ == "__main__":
    main()
