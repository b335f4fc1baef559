"""Shapes, dtypes, initialisation and naming of the model zoo."""

import copy

import pytest
import torch
from torch import nn

from ticketlib.core import models
from ticketlib.core.masks import prunable_names

SHAPES = [(1, 28, 28), (3, 32, 32)]
SMALL = {"vgg11": {"width": 0.125}, "vgg16": {"width": 0.125}}  # keep the big VGGs fast
DEEP = {"preresnet", "preresnet101"}  # built, not run, here: test_preresnet_structure runs the same class at depth 11


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", [n for n in models.MODELS if n not in DEEP])
def test_builds_and_forwards_in_float32_and_float64(name: str, shape: tuple) -> None:
    torch.manual_seed(0)
    model = models.build(name, shape, 10, **SMALL.get(name, {}))
    x = torch.randn(2, *shape)
    assert model(x).shape == (2, 10)
    model64 = copy.deepcopy(model).double()
    out = model64(x.double())
    assert out.dtype == torch.float64 and torch.isfinite(out).all()
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_lenet_names_and_size() -> None:
    model = models.lenet_300_100((1, 28, 28), 10)
    assert prunable_names(model) == ["fc1.weight", "fc2.weight", "fc3.weight"]
    assert models.output_layer_name(model) == "fc3.weight"
    assert sum(p.numel() for p in model.parameters()) == 266610


def test_lenet_init_is_glorot_normal_with_zero_biases() -> None:
    torch.manual_seed(0)
    model = models.lenet_300_100((1, 28, 28), 10)
    assert all((model.get_parameter(f"fc{i}.bias") == 0).all() for i in (1, 2, 3))
    expected = (2 / (784 + 300)) ** 0.5
    assert model.fc1.weight.std().item() == pytest.approx(expected, rel=0.02)


def test_conv_sizes_match_frankle_carbin() -> None:
    counts = {n: sum(p.numel() for p in models.build(n, (3, 32, 32), 10).parameters()) for n in ("conv2", "conv4")}
    assert round(counts["conv2"] / 1e6, 1) == 4.3 and round(counts["conv4"] / 1e6, 1) == 2.4
    conv6 = models.conv6((3, 32, 32), 10)
    assert prunable_names(conv6) == [f"conv{i}.weight" for i in range(1, 7)] + [
        f"fc{i}.weight" for i in range(1, 4)
    ]


def test_resnet20_structure() -> None:
    model = models.resnet20((3, 32, 32), 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 18 + 2  # stem, 9 blocks x 2, two 1x1 projection shortcuts
    assert models.output_layer_name(model) == "fc.weight"
    assert 0.27e6 < sum(p.numel() for p in model.parameters()) < 0.28e6
    names = prunable_names(model)
    assert "blocks.3.shortcut.0.weight" in names and not any("bn" in n or "bias" in n for n in names)


def test_vgg_width_and_prunable_names() -> None:
    full, narrow = models.vgg16((3, 32, 32), 10), models.vgg16((3, 32, 32), 10, width=0.25)
    assert 14.7e6 < sum(p.numel() for p in full.parameters()) < 14.8e6
    assert narrow.fc.in_features == 128
    names = prunable_names(full)
    assert len(names) == 14 and names[-1] == "fc.weight" == models.output_layer_name(full)
    assert [n for n, _ in full.named_parameters() if n in set(names)] == names


def test_preresnet_structure() -> None:
    model = models.preresnet((3, 32, 32), 10, depth=11)  # 9 * 1 + 2: one bottleneck per stage
    blocks = [m for m in model.modules() if isinstance(m, models.PreActBottleneck)]
    assert [len(stage) for stage in model.stages] == [1, 1, 1] and len(blocks) == 3
    assert [b.conv1.out_channels for b in blocks] == [16, 32, 64]
    assert [b.conv3.out_channels for b in blocks] == [64, 128, 256]
    assert [b.conv2.stride for b in blocks] == [(1, 1), (2, 2), (2, 2)]
    assert all(len(b.shortcut) == 1 for b in blocks)  # 16->64, then two strided 1x1 projections
    assert model.conv.out_channels == 16 and model.bn.num_features == 256 and model.fc.in_features == 256
    assert models.output_layer_name(model) == "fc.weight"
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 10)
    out = copy.deepcopy(model).double()(x.double())
    assert out.dtype == torch.float64 and torch.isfinite(out).all()
    assert models.preresnet((1, 28, 28), 10, depth=11)(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    # the stem and stage outputs: 32x32 -> 16x16 -> 8x8
    h = model.stages[0](model.conv(x))
    assert h.shape == (2, 64, 32, 32)
    assert model.stages[2](model.stages[1](h)).shape == (2, 256, 8, 8)
    # init: He-normal conv weights, BN at (1, 0)
    assert blocks[0].bn2.weight.eq(1).all() and blocks[0].bn2.bias.eq(0).all()
    with pytest.raises(ValueError, match="9n\\+2"):
        models.preresnet((3, 32, 32), 10, depth=21)


def test_preresnet101_has_eleven_bottlenecks_per_stage() -> None:
    model = models.build("preresnet101", (3, 32, 32), 100)  # built only, no forward pass
    assert [len(stage) for stage in model.stages] == [11, 11, 11]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 33 * 3 + 3  # stem + 99 bottleneck convs (+ fc = 101 layers) + 3 projections
    assert model.fc.in_features == 256 and model.fc.out_features == 100
    assert 1.0e6 < sum(p.numel() for p in model.parameters()) < 1.1e6
    narrow = models.preresnet101((3, 32, 32), 10, width=0.5)
    assert narrow.stages[2][0].conv1.out_channels == 32 and narrow.fc.in_features == 128


def test_build_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="lenet_300_100.*vgg16"):
        models.build("alexnet", (1, 28, 28), 10)


def test_training_mode_sets_a_block_and_restores_each_module() -> None:
    model = models.vgg11((1, 28, 28), 10, width=0.125)
    model.train()
    model.features[1].eval()  # a module whose own flag differs from its parent's
    before = [m.training for m in model.modules()]
    with models.training_mode(model, False) as inside:
        assert inside is model and not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == before
    with pytest.raises(RuntimeError), models.training_mode(model, True):
        raise RuntimeError("restored on errors too")
    assert [m.training for m in model.modules()] == before
