"""Physical channel pruning of VGG-style networks, FLOPs, parameters, latency."""
import copy

import pytest
import torch
from torch import nn

from ticketlib.studies.early_tickets import study as earlybird
from ticketlib.core import models
from ticketlib.core import slim
from ticketlib.core.masks import Mask


@torch.no_grad()
def _randomise_bn(model: nn.Module) -> nn.Module:
    """Random BN scales, shifts and running statistics and a random fc bias (so every channel matters)."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.uniform_(-1, 1)
            module.bias.uniform_(-0.5, 0.5)
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    model.fc.bias.uniform_(-1, 1)
    return model


def _randomised_vgg(width: float = 0.125, seed: int = 0) -> nn.Module:
    """A VGG-11 with random BN statistics."""
    torch.manual_seed(seed)
    return _randomise_bn(models.vgg11((1, 28, 28), 10, width=width))


def _assert_slim_equals_masked(model: nn.Module, mask: Mask, x: torch.Tensor) -> None:
    """slim(model) computes what the channel-masked model does, in eval and train mode; the mask matters."""
    small = slim.slim(model, mask)
    masked = slim.mask_channels(copy.deepcopy(model), mask)
    for mode in (False, True):  # eval (running stats) and train (batch stats)
        small.train(mode)
        masked.train(mode)
        assert torch.allclose(small(x), masked(x), atol=1e-5)
    model.eval()
    masked.eval()
    assert not torch.allclose(model(x), masked(x), atol=1e-3)  # the pruning did change the function


@pytest.mark.parametrize("ratio", [0.3, 0.7])
def test_slimmed_network_computes_what_the_channel_masked_one_does(ratio):
    model = _randomised_vgg()
    mask = slim.channel_mask(model, ratio)
    _assert_slim_equals_masked(model, mask, torch.randn(6, 1, 28, 28))


def test_slim_builds_a_physically_smaller_network_and_leaves_the_input_alone():
    model = _randomised_vgg()
    before = copy.deepcopy(model.state_dict())
    mask = slim.channel_mask(model, 0.5)
    small = slim.slim(model, mask)
    widths = [int(k.sum()) for k in mask.values()]
    assert slim.width_plan(small) == widths
    assert slim.width_plan(model) == [k.numel() for k in mask.values()]
    convs = [m for m in small.features if isinstance(m, nn.Conv2d)]
    assert [c.in_channels for c in convs] == [1] + widths[:-1]
    assert small.fc.in_features == widths[-1]
    assert slim.num_params(small) < slim.num_params(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # the kept filters are the original ones, with their input slices
    first, second = mask["features.1.weight"], mask["features.5.weight"]
    assert torch.equal(small.features[0].weight, model.features[0].weight[first])
    assert torch.equal(small.features[4].weight, model.features[4].weight[second][:, first])
    assert torch.equal(small.features[1].running_var, model.features[1].running_var[first])
    # it trains: a backward pass reaches every parameter
    small.train()
    small(torch.randn(4, 1, 28, 28)).sum().backward()
    assert all(p.grad is not None for p in small.parameters())


def test_slim_rejects_wrong_inputs():
    model = _randomised_vgg()
    mask = slim.channel_mask(model, 0.5)
    with pytest.raises(TypeError):
        slim.slim(models.lenet_300_100((1, 28, 28), 10), Mask({}))
    partial = Mask({k: v for k, v in list(mask.items())[:-1]})
    with pytest.raises(ValueError, match="missing \\['features"):
        slim.slim(model, partial)
    empty = Mask({k: torch.zeros_like(v) if i == 0 else v for i, (k, v) in enumerate(mask.items())})
    with pytest.raises(ValueError, match="every channel"):
        slim.slim(model, empty)


def test_flops_hand_counted_vgg():
    # conv 1->2 (3x3, pad 1) on 4x4: 2*1*9*2*16 = 576; pool to 2x2; conv 2->3 on 2x2: 2*2*9*3*4 = 432;
    # global pool; fc 3->10 with bias: 2*3*10 + 10 = 70
    model = models.VGG((1, 4, 4), 10, [2, "M", 3])
    assert slim.flops(model, (1, 4, 4)) == 576 + 432 + 70


def test_flops_hand_counted_strided_conv_and_linear():
    model = nn.Sequential(nn.Conv2d(3, 4, kernel_size=3, stride=2, bias=True), nn.Flatten(), nn.Linear(4 * 3 * 3, 5))
    # conv on 7x7 -> 3x3: 2*3*9*4*9 + 4*9 = 1944 + 36; linear 36->5: 2*36*5 + 5 = 365
    assert slim.flops(model, (3, 7, 7)) == 1944 + 36 + 365
    assert slim.training_flops(100, 7) == 2100


def test_slimming_cuts_flops_and_hooks_are_removed():
    model = _randomised_vgg()
    small = slim.slim(model, slim.channel_mask(model, 0.5))
    assert slim.flops(small, (1, 28, 28)) < 0.6 * slim.flops(model, (1, 28, 28))
    assert all(not m._forward_hooks for m in small.modules())


# --- PreResNet: only the channels inside each bottleneck are slimmed -------------------------------

def _randomised_preresnet(depth: int = 11, width: float = 0.5, seed: int = 0) -> nn.Module:
    """A small PreResNet with random BN scales, shifts and running statistics, in eval mode."""
    torch.manual_seed(seed)
    return _randomise_bn(models.preresnet((3, 16, 16), 10, depth=depth, width=width)).eval()


def _random_channel_mask(model: nn.Module, density: float = 0.5, seed: int = 1) -> Mask:
    """A random channel mask over `slimmable_bn_names`, keeping at least one channel per layer."""
    g = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    mask = {}
    for name in slim.slimmable_bn_names(model):
        keep = torch.rand(params[name].shape, generator=g) < density
        keep[torch.randint(keep.numel(), (1,), generator=g)] = True
        mask[name] = keep
    return Mask(mask)


def test_slimmable_bn_names_vgg_is_every_bn_and_preresnet_is_bn2_bn3():
    vgg = _randomised_vgg()
    assert slim.slimmable_bn_names(vgg) == slim.bn_weight_names(vgg)
    net = _randomised_preresnet(depth=20)  # two bottlenecks per stage
    names = slim.slimmable_bn_names(net)
    assert len(names) == 2 * 6 and names[:2] == ["stages.0.0.bn2.weight", "stages.0.0.bn3.weight"]
    assert all(n.endswith((".bn2.weight", ".bn3.weight")) for n in names)
    assert "bn.weight" not in names and not any(n.endswith("bn1.weight") for n in names)
    with pytest.raises(TypeError):
        slim.slimmable_bn_names(models.resnet20((3, 16, 16), 10))


@pytest.mark.parametrize("seed", [1, 2])
def test_slimmed_preresnet_computes_what_the_channel_masked_one_does(seed):
    model = _randomised_preresnet()
    mask = _random_channel_mask(model, seed=seed)
    assert not slim.slim(model, mask).training  # keeps the source's (eval) mode
    _assert_slim_equals_masked(model, mask, torch.randn(4, 3, 16, 16))


def test_slim_preresnet_narrows_only_the_bottleneck_insides():
    model = _randomised_preresnet()
    before = copy.deepcopy(model.state_dict())
    mask = _random_channel_mask(model)
    small = slim.slim(model, mask)
    kept = [int(k.sum()) for k in mask.values()]
    assert slim.width_plan(small) == kept and slim.width_plan(model) == [k.numel() for k in mask.values()]
    assert sum(kept) < sum(k.numel() for k in mask.values())
    big_blocks = [m for m in model.modules() if isinstance(m, models.PreActBottleneck)]
    small_blocks = [m for m in small.modules() if isinstance(m, models.PreActBottleneck)]
    for i, (big, narrow) in enumerate(zip(big_blocks, small_blocks)):
        k1, k2 = mask[f"stages.{i}.0.bn2.weight"], mask[f"stages.{i}.0.bn3.weight"]
        assert narrow.conv1.in_channels == big.conv1.in_channels and narrow.conv1.out_channels == int(k1.sum())
        assert narrow.bn2.num_features == int(k1.sum())
        assert (narrow.conv2.in_channels, narrow.conv2.out_channels) == (int(k1.sum()), int(k2.sum()))
        assert narrow.conv2.stride == big.conv2.stride and narrow.bn3.num_features == int(k2.sum())
        assert narrow.conv3.in_channels == int(k2.sum()) and narrow.conv3.out_channels == big.conv3.out_channels
        assert narrow.bn1.num_features == big.bn1.num_features  # the residual stream keeps its width
        assert torch.equal(narrow.conv2.weight, big.conv2.weight[k2][:, k1])
        assert torch.equal(narrow.conv3.weight, big.conv3.weight[:, k2])
        assert torch.equal(narrow.bn3.running_mean, big.bn3.running_mean[k2])
    assert small.fc.in_features == model.fc.in_features and small.bn.num_features == model.bn.num_features
    assert slim.num_params(small) < slim.num_params(model)
    assert slim.flops(small, (3, 16, 16)) < slim.flops(model, (3, 16, 16))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    small.train()
    small(torch.randn(4, 3, 16, 16)).sum().backward()
    assert all(p.grad is not None for p in small.parameters())
    # a slimmed PreResNet is slimmed again by a mask over its own channels
    again = slim.slim(small, slim.channel_mask(small, 0.3, names=slim.slimmable_bn_names(small)))
    assert slim.num_params(again) < slim.num_params(small)


def test_slim_preresnet_rejects_residual_stream_masks():
    model = _randomised_preresnet()
    mask = _random_channel_mask(model)
    stream = Mask({**mask, "stages.0.0.bn1.weight": torch.ones(model.conv.out_channels, dtype=torch.bool)})
    with pytest.raises(ValueError, match="unexpected.*bn1"):
        slim.slim(model, stream)
    with pytest.raises(ValueError, match="unexpected.*'bn.weight'"):
        slim.slim(model, Mask({**mask, "bn.weight": torch.ones(model.bn.num_features, dtype=torch.bool)}))
    with pytest.raises(ValueError):  # every BN, as `bn_weight_names` would give
        slim.slim(model, slim.channel_mask(model, 0.5))
    with pytest.raises(ValueError, match="missing"):
        slim.slim(model, Mask(dict(list(mask.items())[1:])))
    empty = Mask({k: torch.zeros_like(v) if i == 3 else v for i, (k, v) in enumerate(mask.items())})
    with pytest.raises(ValueError, match="every channel"):
        slim.slim(model, empty)


def test_ticket_mask_ranks_only_the_slimmable_layers():
    vgg = _randomised_vgg()
    for ratio in (0.3, 0.5, 0.7):  # VGG: bit for bit the all-BN mask
        assert earlybird.ticket_mask(vgg, ratio) == slim.channel_mask(vgg, ratio)
    model = _randomised_preresnet()
    with torch.no_grad():  # residual-stream γ tiny: they would be pruned first if they competed
        for name, module in model.named_modules():
            if isinstance(module, nn.BatchNorm2d) and not name.endswith(("bn2", "bn3")):
                module.weight.mul_(1e-3)
    mask = earlybird.ticket_mask(model, 0.5)
    assert list(mask) == slim.slimmable_bn_names(model)
    assert mask.num_kept() == mask.num_total() - round(0.5 * mask.num_total())
    slim.slim(model, mask)


def test_pruning_threshold_is_the_largest_pruned_scale() -> None:
    state = {"a.weight": torch.tensor([0.3, -0.01, 0.2]), "b.weight": torch.tensor([0.05, -0.4])}
    assert slim.pruning_threshold(state, ["a.weight", "b.weight"], 0.4) == pytest.approx(0.05)  # 2 of 5 pruned: 0.01, 0.05
    assert slim.pruning_threshold(state, ["a.weight"], 0.5) == pytest.approx(0.2)  # round half up: 2 of 3 pruned
