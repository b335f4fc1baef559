"""The papers' networks as plain ``torch.nn`` modules, parameterised by input shape and classes.

Every model takes ``input_shape`` as (C, H, W) and ``num_classes``; none registers hooks, so
they deepcopy, run in any dtype (SynFlow uses float64) and work with ``torch.nn.utils.prune``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

Shape = tuple[int, int, int]


@contextmanager
def training_mode(model: nn.Module, training: bool) -> Iterator[nn.Module]:
    """Put every module in train or eval mode for a block, then restore each module's own flag."""
    flags = {module: module.training for module in model.modules()}
    model.train(training)
    try:
        yield model
    finally:
        for module, flag in flags.items():
            module.training = flag


def _init(model: nn.Module, weight_init: Callable[[Tensor], object]) -> nn.Module:
    """Initialise every Linear/Conv2d weight with `weight_init`, biases at zero, BN at (1, 0)."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            weight_init(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def _kaiming(weight: Tensor) -> None:
    """He-normal (fan-in, ReLU gain) initialisation, as open_lth uses for ResNets and VGGs."""
    nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")


def _scaled(channels: int, width: float) -> int:
    """Channel count under a width multiplier, never below one."""
    return max(1, round(channels * width))


def _classifier(net: nn.Module, x: Tensor) -> Tensor:
    """The fully connected head fc1-ReLU-fc2-ReLU-fc3 that LeNet and the Conv nets share."""
    x = torch.relu(net.fc1(x.flatten(1)))
    return net.fc3(torch.relu(net.fc2(x)))


class LeNet300100(nn.Module):
    """LeNet-300-100: a fully connected 300-100 ReLU network on flattened inputs."""

    def __init__(self, input_shape: Shape, num_classes: int) -> None:
        super().__init__()
        c, h, w = input_shape
        self.fc1 = nn.Linear(c * h * w, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Logits for a batch (N, C, H, W)."""
        return _classifier(self, x)


class ConvNet(nn.Module):
    """Frankle & Carbin's Conv-2/4/6: pairs of 3x3 convs each followed by a 2x2 max-pool, then FC 256-256."""

    def __init__(self, input_shape: Shape, num_classes: int, pairs: int) -> None:
        super().__init__()
        c, h, w = input_shape
        self.conv_names: list[str] = []
        for i, out in enumerate(ch for ch in (64, 128, 256)[:pairs] for _ in range(2)):
            name = f"conv{i + 1}"
            setattr(self, name, nn.Conv2d(c, out, kernel_size=3, padding=1))
            self.conv_names.append(name)
            c = out
        h, w = h >> pairs, w >> pairs
        if h < 1 or w < 1:
            raise ValueError(f"input {input_shape} too small for {pairs} pooling stages")
        self.fc1 = nn.Linear(c * h * w, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Logits for a batch (N, C, H, W)."""
        for i, name in enumerate(self.conv_names):
            x = torch.relu(getattr(self, name)(x))
            if i % 2 == 1:
                x = nn.functional.max_pool2d(x, 2)
        return _classifier(self, x)


class ResidualBlock(nn.Module):
    """A CIFAR ResNet basic block; the shortcut is a strided 1x1 conv + BN when the shape changes."""

    def __init__(self, f_in: int, f_out: int, downsample: bool) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.conv1 = nn.Conv2d(f_in, f_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(f_out)
        self.conv2 = nn.Conv2d(f_out, f_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(f_out)
        self.shortcut = nn.Sequential()
        if downsample or f_in != f_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(f_in, f_out, 1, stride=stride, bias=False), nn.BatchNorm2d(f_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet (He et al. 2016): a 3x3 stem, three stages of basic blocks, global average pool, FC."""

    def __init__(self, input_shape: Shape, num_classes: int, depth: int = 20, width: float = 1.0) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        per_stage = (depth - 2) // 6
        widths = [_scaled(16 * 2**s, width) for s in range(3)]
        self.conv = nn.Conv2d(input_shape[0], widths[0], 3, stride=1, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(widths[0])
        blocks, f_in = [], widths[0]
        for stage, f_out in enumerate(widths):
            for b in range(per_stage):
                blocks.append(ResidualBlock(f_in, f_out, downsample=stage > 0 and b == 0))
                f_in = f_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(f_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Logits for a batch (N, C, H, W)."""
        x = self.blocks(torch.relu(self.bn(self.conv(x))))
        return self.fc(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck (He et al. 2016, "Identity mappings"), as network slimming prunes it.

    bn1 → relu → conv1 (1x1) → bn2 → relu → conv2 (3x3, `stride`) → bn3 → relu → conv3 (1x1, to
    `expansion` × `planes`), plus the shortcut: identity, or a 1x1 conv of the block input when the shape
    changes. conv1's and conv2's outputs (gated by bn2's and bn3's γ) are the channels `slim` can remove.
    """

    expansion = 4

    def __init__(self, f_in: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        f_out = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(f_in)
        self.conv1 = nn.Conv2d(f_in, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, f_out, 1, bias=False)
        self.shortcut = nn.Sequential()
        if stride != 1 or f_in != f_out:
            self.shortcut = nn.Sequential(nn.Conv2d(f_in, f_out, 1, stride=stride, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        """conv3(relu(bn3(conv2(relu(bn2(conv1(relu(bn1(x))))))))) + shortcut(x)."""
        out = self.conv1(torch.relu(self.bn1(x)))
        out = self.conv2(torch.relu(self.bn2(out)))
        out = self.conv3(torch.relu(self.bn3(out)))
        return out + self.shortcut(x)


class PreResNet(nn.Module):
    """CIFAR pre-activation bottleneck ResNet (network slimming / early-bird tickets' PreResNet).

    A 3x3 stem, three `stages` of (depth − 2) / 9 bottlenecks with base widths 16, 32, 64 (outputs
    64, 128, 256) and stride 2 at the start of stages 2 and 3, then bn → relu → global average pool → `fc`.
    """

    def __init__(self, input_shape: Shape, num_classes: int, depth: int = 101, width: float = 1.0) -> None:
        super().__init__()
        if depth < 11 or (depth - 2) % 9:
            raise ValueError(f"PreResNet depth must be 9n+2 with n >= 1, got {depth}")
        per_stage = (depth - 2) // 9
        f_in = _scaled(16, width)
        self.conv = nn.Conv2d(input_shape[0], f_in, 3, stride=1, padding=1, bias=False)
        stages = []
        for s in range(3):
            planes = _scaled(16 * 2**s, width)
            blocks = []
            for b in range(per_stage):
                blocks.append(PreActBottleneck(f_in, planes, stride=2 if s > 0 and b == 0 else 1))
                f_in = planes * PreActBottleneck.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(f_in)
        self.fc = nn.Linear(f_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Logits for a batch (N, C, H, W)."""
        x = torch.relu(self.bn(self.stages(self.conv(x))))
        return self.fc(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


VGG_PLANS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
}


class VGG(nn.Module):
    """CIFAR VGG with BatchNorm (open_lth/SynFlow): conv-BN-ReLU stack, global average pool, one Linear.

    A max-pool is skipped when the feature map is already below 2x2, so 28x28 inputs work too.
    """

    def __init__(self, input_shape: Shape, num_classes: int, plan: list[int | str], width: float = 1.0) -> None:
        super().__init__()
        c, h, w = input_shape
        layers: list[nn.Module] = []
        for item in plan:
            if item == "M":
                if min(h, w) >= 2:
                    layers.append(nn.MaxPool2d(2))
                    h, w = h // 2, w // 2
                continue
            out = _scaled(int(item), width)
            layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Logits for a batch (N, C, H, W)."""
        x = self.features(x)
        return self.fc(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


def lenet_300_100(input_shape: Shape, num_classes: int) -> nn.Module:
    """LeNet-300-100 with Glorot-normal weights and zero biases (Frankle & Carbin 2019)."""
    return _init(LeNet300100(input_shape, num_classes), nn.init.xavier_normal_)


def conv2(input_shape: Shape, num_classes: int) -> nn.Module:
    """Conv-2 (64, 64, pool; FC 256, 256) with Glorot-normal weights (Frankle & Carbin 2019)."""
    return _init(ConvNet(input_shape, num_classes, pairs=1), nn.init.xavier_normal_)


def conv4(input_shape: Shape, num_classes: int) -> nn.Module:
    """Conv-4 (64, 64, pool, 128, 128, pool; FC 256, 256) with Glorot-normal weights."""
    return _init(ConvNet(input_shape, num_classes, pairs=2), nn.init.xavier_normal_)


def conv6(input_shape: Shape, num_classes: int) -> nn.Module:
    """Conv-6 (64, 64, pool, 128, 128, pool, 256, 256, pool; FC 256, 256) with Glorot-normal weights."""
    return _init(ConvNet(input_shape, num_classes, pairs=3), nn.init.xavier_normal_)


def resnet20(input_shape: Shape, num_classes: int, width: float = 1.0) -> nn.Module:
    """ResNet-20 (width 16 at `width` 1.0) with BN and 1x1-conv shortcuts, He-normal weights."""
    return _init(ResNet(input_shape, num_classes, depth=20, width=width), _kaiming)


def vgg11(input_shape: Shape, num_classes: int, width: float = 1.0) -> nn.Module:
    """VGG-11 with BatchNorm, channels scaled by `width`, He-normal weights."""
    return _init(VGG(input_shape, num_classes, VGG_PLANS["vgg11"], width), _kaiming)


def vgg16(input_shape: Shape, num_classes: int, width: float = 1.0) -> nn.Module:
    """VGG-16 with BatchNorm, channels scaled by `width`, He-normal weights."""
    return _init(VGG(input_shape, num_classes, VGG_PLANS["vgg16"], width), _kaiming)


def preresnet(input_shape: Shape, num_classes: int, depth: int = 101, width: float = 1.0) -> nn.Module:
    """Pre-activation bottleneck PreResNet-`depth` (depth = 9n+2), channels scaled by `width`, He-normal weights."""
    return _init(PreResNet(input_shape, num_classes, depth=depth, width=width), _kaiming)


def preresnet101(input_shape: Shape, num_classes: int, width: float = 1.0) -> nn.Module:
    """PreResNet-101 (11 bottlenecks per stage, outputs 64/128/256 at `width` 1.0), He-normal weights."""
    return preresnet(input_shape, num_classes, depth=101, width=width)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet_300_100": lenet_300_100,
    "conv2": conv2,
    "conv4": conv4,
    "conv6": conv6,
    "resnet20": resnet20,
    "vgg11": vgg11,
    "vgg16": vgg16,
    "preresnet": preresnet,
    "preresnet101": preresnet101,
}


def build(name: str, input_shape: Shape, num_classes: int, **kwargs: object) -> nn.Module:
    """Build the model called `name`, so parameter files can name a model by string."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    return MODELS[name](tuple(input_shape), num_classes, **kwargs)


def output_layer_name(model: nn.Module) -> str:
    """Parameter name of the last nn.Linear's weight, the layer pruned at a different rate."""
    names = [f"{m}.weight" if m else "weight" for m, mod in model.named_modules() if isinstance(mod, nn.Linear)]
    if not names:
        raise ValueError("model has no nn.Linear layer")
    return names[-1]

