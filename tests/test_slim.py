"""Physical channel pruning of VGG-style networks, FLOPs, parameters, latency."""
import copy

import pytest
import torch
from torch import nn

from ticketlib import distance, models, slim
from ticketlib.masks import Mask


def _randomised_vgg(width: float = 0.125, seed: int = 0) -> nn.Module:
    """A VGG-11 with random BN scales, shifts and running statistics (so every channel matters)."""
    torch.manual_seed(seed)
    model = models.vgg11((1, 28, 28), 10, width=width)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(-1, 1)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        model.fc.bias.uniform_(-1, 1)
    return model


@pytest.mark.parametrize("ratio", [0.3, 0.7])
def test_slimmed_network_computes_what_the_channel_masked_one_does(ratio):
    model = _randomised_vgg()
    mask = distance.channel_mask(model, ratio)
    small = slim.slim(model, mask)
    masked = slim.mask_channels(copy.deepcopy(model), mask)
    x = torch.randn(6, 1, 28, 28)
    for mode in (False, True):  # eval (running stats) and train (batch stats)
        small.train(mode)
        masked.train(mode)
        assert torch.allclose(small(x), masked(x), atol=1e-5)
    model.eval()
    masked.eval()
    assert not torch.allclose(model(x), masked(x), atol=1e-3)  # the pruning did change the function


def test_slim_builds_a_physically_smaller_network_and_leaves_the_input_alone():
    model = _randomised_vgg()
    before = copy.deepcopy(model.state_dict())
    mask = distance.channel_mask(model, 0.5)
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
    mask = distance.channel_mask(model, 0.5)
    with pytest.raises(TypeError):
        slim.slim(models.lenet_300_100((1, 28, 28), 10), Mask({}))
    partial = Mask({k: v for k, v in list(mask.items())[:-1]})
    with pytest.raises(ValueError):
        slim.slim(model, partial)
    empty = Mask({k: torch.zeros_like(v) if i == 0 else v for i, (k, v) in enumerate(mask.items())})
    with pytest.raises(ValueError):
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
    small = slim.slim(model, distance.channel_mask(model, 0.5))
    assert slim.flops(small, (1, 28, 28)) < 0.6 * slim.flops(model, (1, 28, 28))
    assert all(not m._forward_hooks for m in small.modules())


def test_latencies_are_positive_and_restore_the_mode():
    model = _randomised_vgg().train()
    times = slim.latencies({"a": model, "b": nn.Identity()}, torch.randn(2, 1, 28, 28), repeats=3, warmup=1)
    assert set(times) == {"a", "b"} and all(t > 0 for t in times.values())
    assert model.training
    assert slim.latency(model, torch.randn(2, 1, 28, 28), repeats=2, warmup=0) > 0
