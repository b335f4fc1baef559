"""Mask distance, the early-bird detector, and channel masks from BatchNorm scales (You et al. 2020).

A channel mask is an ordinary `Mask` over the BatchNorm weights (γ): one bool per channel,
keyed by the BN weight's parameter name. Its Hamming distance is therefore `Mask.hamming`, the
fraction of *all* channels whose state differs, pooled over layers of different widths as one
global mask (ARCHITECTURE.md, "Masks"), exactly as for unstructured masks over weights.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .masks import Mask
from .pruning import prune_to_density


def distance(a: Mask, b: Mask) -> float:
    """Normalised Hamming distance between two masks over the same layers (0 = equal, 1 = complements)."""
    return a.hamming(b)


def distance_matrix(masks: Sequence[Mask]) -> torch.Tensor:
    """The symmetric (n, n) matrix of pairwise `distance`s, float64, zero diagonal, from one product: the flattened
    masks x, y differ in |x| + |y| - 2 x·y entries (integers, exact in float64)."""
    layout = [[(n, t.shape) for n, t in m.items()] for m in masks]
    if any(found != layout[0] for found in layout):
        raise ValueError("masks cover different layers or shapes")
    rows = [torch.cat([t.flatten() for t in m.values()]) for m in masks]
    x = (torch.stack(rows) if rows else torch.zeros(0, 0)).double()
    kept = x.sum(1)
    return (kept[:, None] + kept[None, :] - 2 * (x @ x.T)) / max(x.shape[1], 1)


def consecutive_distances(masks: Sequence[Mask]) -> list[float]:
    """[d(m0, m1), d(m1, m2), ...]: how much each mask moved since the previous one."""
    return [distance(a, b) for a, b in zip(masks[:-1], masks[1:])]


class EarlyBird:
    """You et al.'s detector: keep the last `window` masks; fire when every one is within `epsilon` of the newest.

    Call `push(mask)` once per check (before each epoch); it returns True while the window
    condition holds: the queue is full and max_i d(m_i, m_newest) <= epsilon over the
    `window - 1` older masks. `fired_at` is the index (0-based count of pushes) of the first firing.
    """

    def __init__(self, epsilon: float = 0.1, window: int = 5):
        if window < 2:
            raise ValueError(f"window must be at least 2, got {window}")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.epsilon, self.window = epsilon, window
        self.masks: deque[Mask] = deque(maxlen=window)
        self.pushes = 0
        self.fired_at: int | None = None
        self.last_distances: list[float] = []

    def push(self, mask: Mask) -> bool:
        """Add the newest mask; True when the ticket is declared (the window condition holds now)."""
        self.masks.append(mask)
        self.pushes += 1
        self.last_distances = [distance(old, mask) for old in list(self.masks)[:-1]]
        fired = len(self.masks) == self.window and max(self.last_distances) <= self.epsilon
        if fired and self.fired_at is None:
            self.fired_at = self.pushes - 1
        return fired


# --- channel masks from BatchNorm scales (network slimming) -------------------------------------

def bn_weight_names(model: nn.Module) -> list[str]:
    """Parameter names of every BatchNorm γ, in module order: the keys of a channel mask."""
    return [f"{name}.weight" for name, module in model.named_modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.weight is not None]


def channel_mask(model: nn.Module, ratio: float, min_per_layer: int = 1,
                 names: Sequence[str] | None = None) -> Mask:
    """Keep the channels with the largest |γ| under one global threshold; prune `ratio` of all channels.

    The channels are those of the BN γ in `names` (default: every BN, `bn_weight_names`); early-bird
    passes `slim.slimmable_bn_names(model)`, the layers `slim` can narrow (for a VGG: every BN again).
    Exactly round(ratio * total) channels are pruned (ties: the lower index goes first, as in
    `pruning`). A layer left with fewer than `min_per_layer` channels gets its largest-|γ|
    ones back, so the slimmed network stays connected (this can keep a few more than asked).
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"pruning ratio must be in [0, 1), got {ratio}")
    params = dict(model.named_parameters())
    names = bn_weight_names(model) if names is None else list(names)
    if not names:
        raise ValueError("model has no BatchNorm layers to draw a channel mask from")
    scores = {n: params[n].detach().abs().cpu() for n in names}
    mask = prune_to_density(scores, Mask.ones_like(model, names), 1.0 - ratio, scope="global")
    fixed = {}
    for name, keep in mask.items():
        if int(keep.sum()) < min_per_layer:
            keep = keep.clone()
            keep[torch.argsort(scores[name], descending=True, stable=True)[:min_per_layer]] = True
        fixed[name] = keep
    return Mask(fixed)


def bn_l1(strength: float) -> Callable[[nn.Module], torch.Tensor]:
    """Network slimming's sparsity penalty `strength * Σ|γ|` over every BN layer, for `train(extra_loss=...)`."""
    def penalty(model: nn.Module) -> torch.Tensor:
        gammas = [m.weight for m in model.modules()
                  if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None]
        return strength * torch.stack([g.abs().sum() for g in gammas]).sum()

    return penalty
