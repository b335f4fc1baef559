"""Masks: which weights of a model are kept.

A `Mask` maps parameter names to bool tensors (True = kept). It validates itself
against a model, reports density per layer, zeroes pruned weights, keeps them at
exactly zero through training, saves to a documented file and converts to and
from `torch.nn.utils.prune` buffers so a ticket works with standard tooling.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from ticketlib.infra.cache import atomic_write

FILE_FORMAT = "ticketlib.mask/1"


def prunable_names(model: nn.Module) -> list[str]:
    """Weights of every Linear and Conv layer (not biases, not norms), in `named_parameters` order.

    What the LTH papers prune. A weight shared by two layers is listed once.
    """
    owners = {id(m.weight) for m in model.modules()
              if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and isinstance(m.weight, nn.Parameter)}
    return [name for name, p in model.named_parameters() if id(p) in owners]


class Mask(Mapping[str, torch.Tensor]):
    """A validated mapping parameter-name -> bool tensor (True = kept).

    Example:
        >>> mask = Mask.ones_like(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)))
        >>> list(mask), mask.density()
        (['0.weight', '2.weight'], 1.0)
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor]):
        self._tensors: dict[str, torch.Tensor] = {}
        for name, tensor in tensors.items():
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"mask entry {name!r} is {type(tensor).__name__}, expected a tensor")
            if tensor.dtype != torch.bool:
                if not torch.all((tensor == 0) | (tensor == 1)):
                    raise ValueError(f"mask entry {name!r} has values other than 0 and 1")
                tensor = tensor != 0
            self._tensors[name] = tensor.detach().to("cpu").clone()

    # --- construction -------------------------------------------------
    @classmethod
    def ones_like(cls, model: nn.Module, names: list[str] | None = None) -> "Mask":
        """The dense mask over `names` (default: every prunable weight)."""
        params = dict(model.named_parameters())
        names = prunable_names(model) if names is None else names
        missing = [n for n in names if n not in params]
        if missing:
            raise KeyError(f"model has no parameter(s) {missing}")
        return cls({n: torch.ones_like(params[n], dtype=torch.bool) for n in names})

    # --- mapping protocol -----------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        return self._tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mask) or list(self) != list(other):
            return False
        return all(torch.equal(self[n], other[n]) for n in self)

    def __repr__(self) -> str:
        return f"Mask({len(self)} layers, density={self.density():.4f})"

    # --- counts -------------------------------------------------------
    def num_kept(self) -> int:
        return int(sum(int(t.sum()) for t in self.values()))

    def num_total(self) -> int:
        return int(sum(t.numel() for t in self.values()))

    def density(self) -> float:
        """Fraction of weights kept, over all masked layers."""
        return self.num_kept() / max(self.num_total(), 1)

    def sparsity(self) -> float:
        return 1.0 - self.density()

    def layer_densities(self) -> dict[str, float]:
        return {n: int(t.sum()) / max(t.numel(), 1) for n, t in self.items()}

    def table(self):
        """Per-layer kept/total/density as a pandas DataFrame (one row per layer plus 'total')."""
        import pandas as pd

        rows = [
            {"layer": n, "shape": tuple(t.shape), "kept": int(t.sum()), "total": t.numel(),
             "density": int(t.sum()) / max(t.numel(), 1)}
            for n, t in self.items()
        ]
        rows.append({"layer": "total", "shape": (), "kept": self.num_kept(),
                     "total": self.num_total(), "density": self.density()})
        return pd.DataFrame(rows).set_index("layer")

    # --- validation and application --------------------------------------
    def validate(self, model: nn.Module) -> None:
        """Raise if a masked name is missing from the model or has another shape."""
        params = dict(model.named_parameters())
        for name, tensor in self.items():
            if name not in params:
                raise KeyError(f"mask names {name!r}, which the model does not have")
            if params[name].shape != tensor.shape:
                raise ValueError(f"mask {name!r} has shape {tuple(tensor.shape)}, "
                                 f"parameter has {tuple(params[name].shape)}")

    @torch.no_grad()
    def apply(self, model: nn.Module) -> nn.Module:
        """Zero the pruned weights of `model` in place."""
        self.validate(model)
        params = dict(model.named_parameters())
        for name, keep in self.items():
            params[name].mul_(keep.to(params[name].device, params[name].dtype))
        return model

    def hamming(self, other: "Mask") -> float:
        """Normalised Hamming distance: the fraction of all masked weights whose state differs."""
        if list(self) != list(other) or any(self[n].shape != other[n].shape for n in self):
            raise ValueError("masks cover different layers or shapes")
        differ = sum(int((self[n] != other[n]).sum()) for n in self)
        return differ / max(self.num_total(), 1)

    def shuffle_within_layers(self, generator: torch.Generator) -> "Mask":
        """The same per-layer counts at random positions (Frankle et al. 2021's sanity check)."""
        shuffled = {}
        for name, keep in self.items():
            perm = torch.randperm(keep.numel(), generator=generator)
            shuffled[name] = keep.flatten()[perm].reshape(keep.shape)
        return Mask(shuffled)

    def digest(self) -> str:
        """16 hex digits of SHA-256 over the names, shapes and bits: names a mask in cache keys."""
        digest = hashlib.sha256()
        for name, keep in self.items():
            digest.update(f"{name}:{tuple(keep.shape)};".encode())
            digest.update(keep.flatten().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    # --- persistence ------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write `{"format": "ticketlib.mask/1", "masks": {name: bool tensor}}` with torch.save, atomically."""
        atomic_write(path, lambda tmp: torch.save({"format": FILE_FORMAT, "masks": dict(self._tensors)}, tmp))

    @classmethod
    def load(cls, path: str | Path) -> "Mask":
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
            raise ValueError(f"{path} is not a ticketlib mask file ({FILE_FORMAT})")
        return cls(payload["masks"])

    # --- torch.nn.utils.prune interop ----------------------------------------
    def to_prune_buffers(self, model: nn.Module) -> nn.Module:
        """Attach the mask with `torch.nn.utils.prune.custom_from_mask` (weight_orig + weight_mask)."""
        from torch.nn.utils import prune

        self.validate(model)
        modules = dict(model.named_modules())
        for name, keep in self.items():
            module_name, _, param = name.rpartition(".")
            module = modules[module_name]
            prune.custom_from_mask(module, param, keep.to(getattr(module, param).device))
        return model

    @classmethod
    def from_prune_buffers(cls, model: nn.Module) -> "Mask":
        """Read every `<param>_mask` buffer that torch.nn.utils.prune left on the model."""
        tensors = {}
        for buffer_name, buffer in model.named_buffers():
            if buffer_name.endswith("_mask"):
                tensors[buffer_name[: -len("_mask")]] = buffer
        if not tensors:
            raise ValueError("the model carries no torch.nn.utils.prune masks")
        return cls(tensors)


def zero_update_keeps_zero(optimizer: torch.optim.Optimizer) -> bool:
    """True when `optimizer.step()` provably leaves a zero weight with zero gradient and zero state at zero.

    Checked by exact type, not isinstance: a subclass may override `step`. Adam and AdamW
    divide by sqrt(v) + eps, so eps must be positive (0 / 0 would be NaN).
    """
    if type(optimizer) is torch.optim.SGD:
        return True
    if type(optimizer) in (torch.optim.Adam, torch.optim.AdamW):
        return all(float(group["eps"]) > 0 for group in optimizer.param_groups)
    return False


class MaskedOptimizer:
    """Keeps pruned weights at exactly zero through training, without module hooks.

    Registered on the optimizer: before each step the pruned gradients are zeroed
    (so momentum, Adam moments and weight decay see zero there). The optimizer state is
    zeroed once at attach time, so a mask applied mid-training does not inherit stale
    momentum. For torch's SGD, Adam and AdamW (eps > 0) that is enough: a zero weight with a
    zero gradient and zero state gets an update of exactly zero. Any other optimizer (a
    subclass included: it may change `step`) also gets the pruned weights multiplied by the
    mask after each step. Costs one multiply per masked tensor per step, two for other
    optimizers (a forward pre-hook cost +82%).
    """

    def __init__(self, mask: Mask, model: nn.Module, optimizer: torch.optim.Optimizer):
        mask.validate(model)
        params = dict(model.named_parameters())
        self.params = [params[n] for n in mask]
        self.keeps = [mask[n].to(params[n].device, params[n].dtype) for n in mask]
        self.optimizer = optimizer
        self._zero_state()
        mask.apply(model)
        self.post_step = not zero_update_keeps_zero(optimizer)
        self._handles = [optimizer.register_step_pre_hook(self._pre_step)]
        if self.post_step:
            self._handles.append(optimizer.register_step_post_hook(self._post_step))

    @torch.no_grad()
    def _zero_state(self) -> None:
        for param, keep in zip(self.params, self.keeps):
            for value in self.optimizer.state.get(param, {}).values():
                if isinstance(value, torch.Tensor) and value.shape == keep.shape:
                    value.mul_(keep)

    @torch.no_grad()
    def _pre_step(self, *_args) -> None:
        grads = [p.grad for p in self.params if p.grad is not None]
        keeps = [k for p, k in zip(self.params, self.keeps) if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, keeps)

    @torch.no_grad()
    def _post_step(self, *_args) -> None:
        torch._foreach_mul_(self.params, self.keeps)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def keep_pruned_at_zero(mask: Mask, model: nn.Module, optimizer: torch.optim.Optimizer) -> MaskedOptimizer:
    """Keep the pruned weights at zero now and through every `optimizer.step()` (weights, gradients and state).

    Args:
        mask: which weights are kept.
        model: the model `optimizer` trains.
        optimizer: any torch optimizer over the model's parameters.

    Returns:
        A `MaskedOptimizer` handle; `.remove()` detaches it.

    Example:
        >>> net = nn.Linear(4, 2); opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        >>> handle = keep_pruned_at_zero(Mask({"weight": torch.eye(2, 4, dtype=torch.bool)}), net, opt)
        >>> int((net.weight != 0).sum()) <= 2
        True
    """
    return MaskedOptimizer(mask, model, optimizer)


def kept_values(trained: dict[str, torch.Tensor], mask: Mask) -> dict[str, torch.Tensor]:
    """The trained prunable weights where `mask` keeps them (pruned ones are exactly zero): what an IMP round stores."""
    return {n: trained[n][mask[n]].clone() for n in mask}


def full_weights(stored: dict[str, torch.Tensor], mask: Mask) -> dict[str, torch.Tensor]:
    """`kept_values` back to full tensors, zeros where pruned; a dense tensor (older payloads) as it is."""
    out = {}
    for n, keep in mask.items():
        if stored[n].shape == keep.shape:
            out[n] = stored[n]
        else:
            out[n] = torch.zeros(keep.shape, dtype=stored[n].dtype).masked_scatter_(keep, stored[n])
    return out
