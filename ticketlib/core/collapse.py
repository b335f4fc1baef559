"""Layer collapse: a pruned network that has lost a whole layer, or every path from input to output.

Tanaka et al. 2020 call the largest compression at which a pruning method leaves a network
intact its *critical compression* (`largest_intact_compression` bisects for it under any collapse test;
`pai.critical_compression` under a scorer); the largest any method can reach keeps one weight per layer
(`max_compression`), and SynFlow reaches it. Compressions are in log10 (3.0 = 1000x fewer weights).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from ticketlib.core.masks import Mask
from ticketlib.core.models import training_mode


def empty_layers(mask: Mask) -> list[str]:
    """The masked layers that keep no weight at all."""
    return [name for name, keep in mask.items() if not bool(keep.any())]


@torch.no_grad()
def path_flow(model: nn.Module, mask: Mask, input_shape: tuple[int, ...]) -> float:
    """How much of an all-ones input reaches the outputs through the kept weights: > 0 iff a path survives.

    The network is evaluated (float64, eval mode, never modified) with every kept weight set to
    1/fan_in, weights outside the mask dense at 1/fan_in, biases 0 and BatchNorm as the identity,
    so activations stay in [0, 1]: no overflow, and zero exactly when no path is left.
    """
    def connectivity(name: str, p: torch.Tensor) -> torch.Tensor:
        if p.dim() >= 2:
            keep = mask[name].to(p.device) if name in mask else torch.ones_like(p, dtype=torch.bool)
            return keep.double() * (p.shape[0] / p.numel())
        fill = 0.0 if name.endswith("bias") else 1.0
        return torch.full_like(p, fill, dtype=torch.float64)

    def neutral(name: str, b: torch.Tensor) -> torch.Tensor:
        if not b.is_floating_point():
            return b
        if name.endswith("running_mean"):
            return torch.zeros_like(b, dtype=torch.float64)
        return torch.ones_like(b, dtype=torch.float64) if name.endswith("running_var") else b.double()

    tensors = {n: connectivity(n, p) for n, p in model.named_parameters()}
    tensors.update({n: neutral(n, b) for n, b in model.named_buffers()})
    device = next(model.parameters()).device
    with training_mode(model, False):
        out = functional_call(model, tensors, (torch.ones((1, *input_shape), dtype=torch.float64, device=device),))
    return float(out.sum())


def collapsed(model: nn.Module, mask: Mask, input_shape: tuple[int, ...]) -> bool:
    """Layer collapse: some prunable layer is empty, or no input→output path is left."""
    return bool(empty_layers(mask)) or path_flow(model, mask, input_shape) <= 0.0


def max_compression(mask: Mask) -> float:
    """log10 of the compression that leaves exactly one weight per masked layer (no method can go further)."""
    return math.log10(mask.num_total() / len(mask))


def density_of(log_compression: float) -> float:
    """The density (fraction of weights kept) at a log10 compression."""
    return 10.0 ** -log_compression


def largest_intact_compression(collapses_at: Callable[[float], bool], hi: float, lo: float = 0.0,
                               tol: float = 0.05) -> tuple[float, dict[float, bool]]:
    """The largest log10 compression in [lo, hi] at which `collapses_at` is False, to within `tol`.

    Tries `hi` first (a method that reaches it, like SynFlow at `max_compression`, costs one
    call), then bisects, assuming a method that has collapsed stays collapsed at higher
    compression. Returns (critical compression, {compression tested: collapsed}); NaN if even
    `lo` collapses.
    """
    tested: dict[float, bool] = {}

    def check(c: float) -> bool:
        tested[c] = bool(collapses_at(c))
        return tested[c]

    if not check(hi):
        return hi, tested
    if check(lo):
        return float("nan"), tested
    good, bad = lo, hi
    while bad - good > tol:
        middle = round((good + bad) / 2, 6)
        if check(middle):
            bad = middle
        else:
            good = middle
    return good, tested
