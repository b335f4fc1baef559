"""Network slimming (Liu et al. 2017): channel masks from BatchNorm scales, their L1 penalty, and the surgery
that really shrinks the network, with what it trains: FLOPs and parameters (latency: `ticketlib.core.cost.latency_samples`).

`channel_mask(model, ratio)` keeps the channels with the largest |γ| under one global threshold; `bn_l1`
is the sparsity penalty that drives γ to zero during training.

`slim(model, channel_mask)` builds a physically narrower copy of the network; it computes exactly what
`mask_channels(model, channel_mask)` computes: the same network with the pruned channels' γ and β at
zero. `slimmable_bn_names(model)` names the BatchNorm γ a channel mask must cover. Two architectures:

- VGG-style (`models.VGG`: a `features` stack of Conv2d → BatchNorm2d → ReLU [→ MaxPool2d] and one
  `fc` Linear after global average pooling): every BN of `features`; the kept filters of each conv,
  their BN scales, shifts and running statistics, and the matching input slices of the next conv and
  of `fc` are copied.
- pre-activation bottleneck ResNet (`models.PreResNet`), as network slimming prunes ResNets in its
  simplest exact form: only the channels inside each bottleneck, conv1's outputs (gated by bn2) and
  conv2's outputs (gated by bn3). The residual stream (stem, block inputs and outputs, bn1, the final
  bn) keeps its width, so shortcuts need no change.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from ticketlib.core.masks import Mask
from ticketlib.core.models import PreActBottleneck, PreResNet, training_mode
from ticketlib.core.pruning import prune_to_density, round_count


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


def _is_vgg(model: nn.Module) -> bool:
    """Whether `model` looks VGG-style: a `features` nn.Sequential and an `fc` nn.Linear."""
    return isinstance(getattr(model, "features", None), nn.Sequential) and isinstance(
        getattr(model, "fc", None), nn.Linear)


def _conv_bn_pairs(model: nn.Module) -> list[tuple[int, int]]:
    """Indices (conv, bn) in `model.features` of every Conv2d directly followed by a BatchNorm2d."""
    if not _is_vgg(model):
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


def _bottlenecks(model: nn.Module) -> list[tuple[str, PreActBottleneck]]:
    """(module name, block) of every bottleneck of a PreResNet, in module order."""
    blocks = [(name, m) for name, m in model.named_modules() if isinstance(m, PreActBottleneck)]
    for name, block in blocks:
        if block.conv2.groups != 1:
            raise TypeError(f"{name}.conv2 is a grouped conv; slim handles groups=1 only")
    return blocks


def slimmable_bn_names(model: nn.Module) -> list[str]:
    """Parameter names of the BN γ whose channels `slim` can remove, in module order: a channel mask's keys.

    VGG-style: every BN of `features`. PreResNet: bn2.weight and bn3.weight of every bottleneck.
    """
    if isinstance(model, PreResNet):
        return [f"{name}.{bn}.weight" for name, _ in _bottlenecks(model) for bn in ("bn2", "bn3")]
    if not _is_vgg(model):
        raise TypeError("slim expects a VGG-style model: a `features` nn.Sequential and an `fc` nn.Linear, "
                        "or a pre-activation bottleneck ResNet (models.PreResNet)")
    return [f"features.{b}.weight" for _, b in _conv_bn_pairs(model)]


def _kept(channel_mask: Mask, name: str, device: torch.device) -> torch.Tensor:
    """Indices of the channels `channel_mask[name]` keeps; raises if it keeps none."""
    kept = channel_mask[name].to(device).nonzero().squeeze(1)
    if kept.numel() == 0:
        raise ValueError(f"channel mask prunes every channel of {name.rpartition('.')[0]}")
    return kept


def _sliced_conv(conv: nn.Conv2d, out_idx: torch.Tensor, in_idx: torch.Tensor) -> nn.Conv2d:
    """A copy of `conv` keeping output filters `out_idx` and input channels `in_idx` (groups=1)."""
    small = nn.Conv2d(in_idx.numel(), out_idx.numel(), conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, bias=conv.bias is not None, padding_mode=conv.padding_mode)
    small.weight.copy_(conv.weight[out_idx][:, in_idx])
    if conv.bias is not None:
        small.bias.copy_(conv.bias[out_idx])
    return small.to(device=conv.weight.device, dtype=conv.weight.dtype)


def _sliced_bn(bn: nn.BatchNorm2d, kept: torch.Tensor) -> nn.BatchNorm2d:
    """A copy of `bn` keeping channels `kept`: scales, shifts and running statistics."""
    small = nn.BatchNorm2d(kept.numel(), eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                           track_running_stats=bn.track_running_stats)
    for attr in ("weight", "bias", "running_mean", "running_var"):
        if getattr(bn, attr) is not None:
            getattr(small, attr).copy_(getattr(bn, attr)[kept])
    if bn.num_batches_tracked is not None:
        small.num_batches_tracked.copy_(bn.num_batches_tracked)
    reference = bn.weight if bn.weight is not None else bn.running_mean
    return small if reference is None else small.to(device=reference.device, dtype=reference.dtype)


def _all_channels(channels: int, device: torch.device) -> torch.Tensor:
    """Indices of every channel (a layer side that is not sliced)."""
    return torch.arange(channels, device=device)


@torch.no_grad()
def slim(model: nn.Module, channel_mask: Mask) -> nn.Module:
    """A new, narrower network keeping only the channels `channel_mask` keeps (the input model is untouched).

    The mask must cover exactly `slimmable_bn_names(model)`.
    """
    channel_mask.validate(model)
    expected = slimmable_bn_names(model)
    if set(channel_mask) != set(expected):
        where = ("bn2 and bn3 of every bottleneck; the residual stream is not pruned" if isinstance(model, PreResNet)
                 else "every BN of `features`")
        unexpected = sorted(set(channel_mask) - set(expected))
        missing = [n for n in expected if n not in channel_mask]
        raise ValueError(f"channel mask must cover exactly the slimmable BN layers ({where}): "
                         f"unexpected {unexpected}, missing {missing}")
    if isinstance(model, PreResNet):
        return _slim_preresnet(model, channel_mask)
    return _slim_vgg(model, channel_mask)


def _slim_vgg(model: nn.Module, channel_mask: Mask) -> nn.Module:
    """`slim` for a VGG-style network: each conv-BN pair and the next layer's inputs."""
    pairs = _conv_bn_pairs(model)
    new = copy.deepcopy(model)
    device = next(model.parameters()).device
    previous = _all_channels(model.features[pairs[0][0]].in_channels, device)
    for c, b in pairs:
        kept = _kept(channel_mask, f"features.{b}.weight", device)
        new.features[c] = _sliced_conv(model.features[c], kept, previous)
        new.features[b] = _sliced_bn(model.features[b], kept)
        previous = kept
    fc = nn.Linear(previous.numel(), model.fc.out_features, bias=model.fc.bias is not None)
    fc.weight.copy_(model.fc.weight[:, previous])
    if model.fc.bias is not None:
        fc.bias.copy_(model.fc.bias)
    new.fc = fc.to(device=model.fc.weight.device, dtype=model.fc.weight.dtype)
    new.train(model.training)
    return new


def _slim_preresnet(model: PreResNet, channel_mask: Mask) -> nn.Module:
    """`slim` for a PreResNet: inside each bottleneck, conv1/bn2/conv2 and conv2/bn3/conv3 are sliced."""
    new = copy.deepcopy(model)
    device = next(model.parameters()).device
    blocks = dict(_bottlenecks(new))
    for name, block in _bottlenecks(model):
        inner1 = _kept(channel_mask, f"{name}.bn2.weight", device)
        inner2 = _kept(channel_mask, f"{name}.bn3.weight", device)
        target = blocks[name]
        target.conv1 = _sliced_conv(block.conv1, inner1, _all_channels(block.conv1.in_channels, device))
        target.bn2 = _sliced_bn(block.bn2, inner1)
        target.conv2 = _sliced_conv(block.conv2, inner2, inner1)
        target.bn3 = _sliced_bn(block.bn3, inner2)
        target.conv3 = _sliced_conv(block.conv3, _all_channels(block.conv3.out_channels, device), inner2)
    new.train(model.training)
    return new


def width_plan(model: nn.Module) -> list[int]:
    """Channels of each slimmable layer (`slimmable_bn_names` order), to show what slimming kept.

    VGG-style: the output channels of each conv; PreResNet: conv1's and conv2's outputs of each bottleneck.
    """
    modules = dict(model.named_modules())
    return [modules[name.rpartition(".")[0]].num_features for name in slimmable_bn_names(model)]


# --- cost ------------------------------------------------------------------------------------

@torch.no_grad()
def flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Forward FLOPs for one example, counted analytically for Conv and Linear layers (2 per multiply-add).

    Kept by hand rather than `torch.utils.flop_counter.FlopCounterMode` (`ticketlib.core.cost.counted_flops`): it also counts
    the bias adds, which the counter leaves out, and 04's recorded training FLOPs are defined with them.

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
    param = next(model.parameters())
    try:
        with training_mode(model, False):
            model(torch.zeros(1, *input_shape, device=param.device, dtype=param.dtype))
    finally:
        for handle in handles:
            handle.remove()
    return total


def training_flops(forward_flops: int, examples: int) -> int:
    """FLOPs to train on `examples` examples: forward + backward ≈ 3 × forward (the usual estimate)."""
    return 3 * forward_flops * examples


def num_params(model: nn.Module) -> int:
    """Number of parameters (weights, biases, BN scales and shifts)."""
    return sum(p.numel() for p in model.parameters())


# --- channel masks from BatchNorm scales, and the penalty that drives them ------------------------
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


def pruning_threshold(state: Mapping[str, torch.Tensor], names: Sequence[str], ratio: float) -> float:
    """The |γ| at or below which `channel_mask` prunes at `ratio` (one global threshold over `names` of `state`;
    the same count rule, `pruning.round_count`), for showing the cut on a histogram of the scales."""
    gammas = torch.cat([state[n].detach().abs().flatten().cpu() for n in names]).sort().values
    return float(gammas[max(round_count(ratio * len(gammas)), 1) - 1])


def bn_l1(strength: float) -> Callable[[nn.Module], torch.Tensor]:
    """Network slimming's sparsity penalty `strength * Σ|γ|` over every BN layer, for `train(extra_loss=...)`."""
    def penalty(model: nn.Module) -> torch.Tensor:
        gammas = [m.weight for m in model.modules()
                  if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None]
        return strength * torch.stack([g.abs().sum() for g in gammas]).sum()

    return penalty
