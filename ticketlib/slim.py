"""Structured pruning that really shrinks the network, and what it costs to run: FLOPs, parameters, latency.

`slim(model, channel_mask)` builds a physically narrower copy of a VGG-style network
(`models.VGG`: a `features` stack of Conv2d → BatchNorm2d → ReLU [→ MaxPool2d] and one `fc`
Linear after global average pooling): the kept filters of each conv, their BN scales, shifts and
running statistics, and the matching input slices of the next conv and of `fc` are copied. It
computes exactly what `mask_channels(model, channel_mask)` computes: the same network with the
pruned channels' γ and β at zero.
"""
from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Mapping

import torch
from torch import nn

from .masks import Mask


@torch.no_grad()
def mask_channels(model: nn.Module, channel_mask: Mask) -> nn.Module:
    """Zero γ and β of the pruned channels in place: every pruned channel then outputs exactly 0."""
    channel_mask.validate(model)
    modules = dict(model.named_modules())
    for name, keep in channel_mask.items():
        bn = modules[name.rpartition(".")[0]]
        keep = keep.to(bn.weight.device)
        bn.weight.mul_(keep)
        bn.bias.mul_(keep)
    return model


def _conv_bn_pairs(model: nn.Module) -> list[tuple[int, int]]:
    """Indices (conv, bn) in `model.features` of every Conv2d directly followed by a BatchNorm2d."""
    if not isinstance(getattr(model, "features", None), nn.Sequential) or not isinstance(
            getattr(model, "fc", None), nn.Linear):
        raise TypeError("slim expects a VGG-style model: a `features` nn.Sequential and an `fc` nn.Linear")
    layers = list(model.features)
    pairs = []
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Conv2d):
            if i + 1 >= len(layers) or not isinstance(layers[i + 1], nn.BatchNorm2d):
                raise TypeError(f"features.{i} is a Conv2d not followed by BatchNorm2d")
            if layer.groups != 1:
                raise TypeError(f"features.{i} is a grouped conv; slim handles groups=1 only")
            pairs.append((i, i + 1))
    return pairs


@torch.no_grad()
def slim(model: nn.Module, channel_mask: Mask) -> nn.Module:
    """A new, narrower VGG-style network keeping only the channels `channel_mask` keeps (the input model is untouched)."""
    channel_mask.validate(model)
    pairs = _conv_bn_pairs(model)
    expected = {f"features.{b}.weight" for _, b in pairs}
    if set(channel_mask) != expected:
        raise ValueError(f"channel mask must cover exactly the BN layers {sorted(expected)}")
    new = copy.deepcopy(model)
    device = next(model.parameters()).device
    previous = torch.arange(model.features[pairs[0][0]].in_channels, device=device)
    for c, b in pairs:
        conv, bn = model.features[c], model.features[b]
        kept = channel_mask[f"features.{b}.weight"].to(device).nonzero().squeeze(1)
        if kept.numel() == 0:
            raise ValueError(f"channel mask prunes every channel of features.{b}")
        small = nn.Conv2d(previous.numel(), kept.numel(), conv.kernel_size, conv.stride, conv.padding,
                          conv.dilation, bias=conv.bias is not None, padding_mode=conv.padding_mode)
        small.weight.copy_(conv.weight[kept][:, previous])
        if conv.bias is not None:
            small.bias.copy_(conv.bias[kept])
        small_bn = nn.BatchNorm2d(kept.numel(), eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                                  track_running_stats=bn.track_running_stats)
        for attr in ("weight", "bias", "running_mean", "running_var"):
            if getattr(bn, attr) is not None:
                getattr(small_bn, attr).copy_(getattr(bn, attr)[kept])
        if bn.num_batches_tracked is not None:
            small_bn.num_batches_tracked.copy_(bn.num_batches_tracked)
        new.features[c], new.features[b] = small.to(device), small_bn.to(device)
        previous = kept
    fc = nn.Linear(previous.numel(), model.fc.out_features, bias=model.fc.bias is not None)
    fc.weight.copy_(model.fc.weight[:, previous])
    if model.fc.bias is not None:
        fc.bias.copy_(model.fc.bias)
    new.fc = fc.to(device)
    new.train(model.training)
    return new


def width_plan(model: nn.Module) -> list[int]:
    """Output channels of each conv of a VGG-style model (to show what slimming kept)."""
    return [model.features[c].out_channels for c, _ in _conv_bn_pairs(model)]


# --- cost ------------------------------------------------------------------------------------

@torch.no_grad()
def flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Forward FLOPs for one example, counted analytically for Conv and Linear layers (2 per multiply-add).

    Conv: 2 · C_in/groups · k_h · k_w · C_out · H_out · W_out (+ C_out · H_out · W_out for a bias);
    Linear: 2 · in · out (+ out for a bias). Norms, activations and pooling are not counted.
    Output sizes come from one forward pass of a zero input through temporary hooks.
    """
    total = 0

    def count(module: nn.Module, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            positions = output.shape[1] * output.shape[2] * output.shape[3]
            macs = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1] * positions
        else:
            positions = output.shape[1]
            macs = module.in_features * positions
        total += 2 * macs + (positions if module.bias is not None else 0)

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        model(torch.zeros(1, *input_shape, device=param.device, dtype=param.dtype))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total


def training_flops(forward_flops: int, examples: int) -> int:
    """FLOPs to train on `examples` examples: forward + backward ≈ 3 × forward (the usual estimate)."""
    return 3 * forward_flops * examples


def num_params(model: nn.Module) -> int:
    """Number of parameters (weights, biases, BN scales and shifts)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def latencies(models: Mapping[str, nn.Module], x: torch.Tensor, repeats: int = 20,
              warmup: int = 3) -> dict[str, float]:
    """Median wall time in seconds of one eval-mode forward pass on the batch `x`, per model.

    The models take turns (one pass each per repeat), so a slow spell of the machine hits all alike.
    """
    modes = {name: m.training for name, m in models.items()}
    for m in models.values():
        m.eval()
    times: dict[str, list[float]] = {name: [] for name in models}
    for i in range(warmup + repeats):
        for name, m in models.items():
            start = time.perf_counter()
            m(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    for name, m in models.items():
        m.train(modes[name])
    return {name: statistics.median(t) for name, t in times.items()}


def latency(model: nn.Module, x: torch.Tensor, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time in seconds of one eval-mode forward pass of `model` on the batch `x`."""
    return latencies({"model": model}, x, repeats, warmup)["model"]
