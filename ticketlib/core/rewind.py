"""Rewinding: capture weights at a named point of training, restore them under a mask.

`Step("500it")`, `Step("2ep")` name points of training; `capture`/`restore` copy
full state dicts (buffers included: BN statistics are rewound too) bit-exactly.
Controls for the ticket: re-initialise the kept weights, shuffle them, or replace
them by a signed constant.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ticketlib.core.masks import Mask

_STEP = re.compile(r"^\s*(\d+)\s*(it|ep)\s*$")


@dataclass(frozen=True)
class Step:
    """A point in training: "0it", "500it" (iterations) or "2ep" (epochs).

    Example:
        >>> Step("2ep").iteration(iterations_per_epoch=100)
        200
    """

    text: str

    def __post_init__(self):
        if not _STEP.match(str(self.text)):
            raise ValueError(f"step {self.text!r} is not like '500it' or '2ep'")

    @property
    def count(self) -> int:
        return int(_STEP.match(self.text).group(1))

    @property
    def unit(self) -> str:
        return _STEP.match(self.text).group(2)

    def iteration(self, iterations_per_epoch: int) -> int:
        """The step as an iteration number."""
        return self.count * (iterations_per_epoch if self.unit == "ep" else 1)

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


def capture(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the full state dict (parameters and buffers) on the CPU: what units return
    and the cache stores, whatever device trained the model (`restore` copies it back).

    Args:
        model: any module.

    Returns:
        name -> tensor, copies that share no memory with the model.

    Example:
        >>> theta0 = capture(nn.Linear(2, 2)); sorted(theta0)
        ['bias', 'weight']
    """
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@torch.no_grad()
def restore(model: nn.Module, state: dict[str, torch.Tensor], mask: Mask | None = None) -> nn.Module:
    """Load `state` bit-exactly into `model` (every parameter and buffer), then zero what `mask` prunes.

    Args:
        model: the module to rewind, in place.
        state: a state from `capture` (θ0 or θ_k).
        mask: optional; its pruned weights are zeroed after loading.

    Returns:
        `model`.

    Example:
        >>> net = nn.Linear(2, 2); theta0 = capture(net)
        >>> restore(net, theta0).weight.equal(theta0["weight"])
        True
    """
    model.load_state_dict(state, strict=True)
    if mask is not None:
        mask.apply(model)
    return model


@torch.no_grad()
def reinitialize(model: nn.Module, build: Callable[[], nn.Module], seed: int,
                 mask: Mask | None = None) -> nn.Module:
    """Load fresh weights drawn by the model's own initialiser under another seed (the re-init control)."""
    torch.manual_seed(seed)
    return restore(model, build().state_dict(), mask)


@torch.no_grad()
def shuffle_kept_weights(model: nn.Module, mask: Mask, generator: torch.Generator) -> nn.Module:
    """Permute the kept weights among the kept positions of each layer (Zhou et al.'s reshuffle)."""
    params = dict(model.named_parameters())
    for name, keep in mask.items():
        flat = params[name].view(-1)
        idx = keep.flatten().nonzero().squeeze(1).to(flat.device)
        flat[idx] = flat[idx][torch.randperm(idx.numel(), generator=generator).to(flat.device)]
    return model


@torch.no_grad()
def signed_constant(model: nn.Module, mask: Mask, init_state: dict[str, torch.Tensor]) -> nn.Module:
    """Kept weights := sign(θ0) · std(layer's θ0) (Zhou et al.'s signed constant); pruned ones 0."""
    params = dict(model.named_parameters())
    for name, keep in mask.items():
        theta0 = init_state[name].to(params[name].device)
        params[name].copy_(torch.sign(theta0) * theta0.std() * keep.to(theta0.device, theta0.dtype))
    return model
