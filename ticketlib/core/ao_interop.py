"""Interop with `torch.ao.pruning`, the pruning path PyTorch maintains: a `Mask` as its parametrizations.

`torch.ao.pruning`'s sparsifiers attach a `FakeSparsity` parametrization (a float `mask` buffer, the
weight computed as `mask * original`) to each pruned tensor. `to_ao` attaches a ticket's mask that way
(so `WeightNormSparsifier`-style tooling and `squash_mask` see it), `from_ao` reads the masks back
under the plain parameter names, and `squash` bakes them into the weights and removes them.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.ao.pruning.sparsifier.utils import FakeSparsity
from torch.nn.utils import parametrize

from ticketlib.core.masks import Mask


def _module_and_tensor(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    module_name, _, tensor = name.rpartition(".")
    return (model.get_submodule(module_name) if module_name else model), tensor


def to_ao(mask: Mask, model: nn.Module) -> nn.Module:
    """Attach `mask` as `torch.ao.pruning` `FakeSparsity` parametrizations, in place.

    Args:
        mask: the ticket's mask (names as in `model.named_parameters()`).
        model: a model without parametrizations on the masked tensors.

    Returns:
        `model`, whose masked weights are now computed as `mask * original`.

    Example:
        >>> to_ao(mask, model); model.fc1.parametrizations.weight[0].mask.sum()  # doctest: +SKIP
    """
    mask.validate(model)
    for name, keep in mask.items():
        module, tensor = _module_and_tensor(model, name)
        weight = getattr(module, tensor)
        parametrize.register_parametrization(module, tensor, FakeSparsity(keep.to(weight.device, weight.dtype)))
    return model


def from_ao(model: nn.Module) -> Mask:
    """The mask every `FakeSparsity` parametrization of `model` carries (as `torch.ao.pruning` left it).

    Args:
        model: a model prepared by a `torch.ao.pruning` sparsifier or by `to_ao`.

    Returns:
        A `Mask` over the plain parameter names ("fc1.weight", not "fc1.parametrizations.weight.original").

    Example:
        >>> from_ao(model).density()  # doctest: +SKIP
    """
    tensors = {}
    for module_name, module in model.named_modules():
        if not parametrize.is_parametrized(module):
            continue
        for tensor, plist in module.parametrizations.items():
            for p in plist:
                if isinstance(p, FakeSparsity):
                    tensors[f"{module_name}.{tensor}" if module_name else tensor] = p.mask
    if not tensors:
        raise ValueError("the model carries no torch.ao.pruning FakeSparsity parametrizations")
    return Mask({n: t != 0 for n, t in tensors.items()})


@torch.no_grad()
def squash(model: nn.Module) -> nn.Module:
    """Bake every `FakeSparsity` into its weight and remove the parametrizations (like `squash_mask`).

    Args:
        model: a parametrized model.

    Returns:
        `model` with plain parameters, the pruned weights exactly zero.

    Example:
        >>> squash(model)  # doctest: +SKIP
    """
    for module in list(model.modules()):
        if parametrize.is_parametrized(module):
            for tensor in list(module.parametrizations):
                parametrize.remove_parametrizations(module, tensor, leave_parametrized=True)
    return model
