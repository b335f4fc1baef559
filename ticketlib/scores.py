"""Scorers: pure functions `score(model, ...) -> dict[name, tensor]`, higher = keep.

Kept separate from thresholding (`pruning`), as in Synaptic-Flow. Scores are
detached CPU float tensors, one per masked name.
"""
from __future__ import annotations

import torch
from torch import nn

from .masks import Mask


def _params(model: nn.Module, mask: Mask) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {name: params[name] for name in mask}


@torch.no_grad()
def magnitude(model: nn.Module, mask: Mask) -> dict[str, torch.Tensor]:
    """|θ|: large weights are kept (Frankle & Carbin 2019; Zhou et al.'s large_final)."""
    return {n: p.detach().abs().float().cpu() for n, p in _params(model, mask).items()}


def random(model: nn.Module, mask: Mask, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Uniform random scores: the random-pruning baseline."""
    return {n: torch.rand(t.shape, generator=generator) for n, t in mask.items()}
