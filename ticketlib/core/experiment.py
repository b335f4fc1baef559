"""What is trained on what: the `Experiment` every notebook's units share, built from a notebook's parameters.

An `Experiment` is a model, a dataset and a training recipe: everything a training run depends on
but its seed and its mask. Its `key()` is part of every cache key (the device is left out: it is
where a unit runs, not what it computes). `train_config(params)` and `from_params(params)` turn a
notebook's resolved parameters into these objects, so no notebook assembles them by hand.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from ticketlib.core import data as data_lib
from ticketlib.core import models
from ticketlib.infra.device import resolve_device
from ticketlib.core.train import TrainConfig

# Controls draw their randomness from seeds no ticket uses (primes far above any seed list).
REINIT_SEED_OFFSET = 7919
RANDOM_MASK_SEED_OFFSET = 104729
ACTION_SEED_OFFSET = 15485863  # 05: reshuffles and random signs
SHUFFLE_SEED_OFFSET = 32452843  # 02: layerwise mask shuffles


@dataclass
class Experiment:
    """A model, a dataset and a training recipe: everything a training run depends on but its seed and mask."""

    model: str
    dataset: str
    train: TrainConfig
    model_kwargs: dict = field(default_factory=dict)
    val_size: int = 5000
    train_size: int | None = None
    test_size: int | None = None
    data_seed: int = 0
    device: str = "auto"
    pad_to: int | None = None  # images padded to pad_to×pad_to (MNIST 28 -> 32 for a CIFAR VGG)

    def key(self) -> dict:
        """What identifies results (the device is left out: it is where, not what; padding only when set)."""
        key = asdict(self)
        key.pop("device")
        if key["pad_to"] is None:
            key.pop("pad_to")
        return key

    def load_data(self, root: str = "data", download: bool = False) -> data_lib.Dataset:
        data = data_lib.load(self.dataset, val_size=self.val_size, train_size=self.train_size,
                             test_size=self.test_size, seed=self.data_seed, root=root,
                             download=download, device=str(resolve_device(self.device)))
        return data_lib.pad_images(data, self.pad_to) if self.pad_to else data

    def build_model(self, data: data_lib.Dataset, seed: int) -> nn.Module:
        """The model initialised under `seed` (same seed, same weights)."""
        torch.manual_seed(seed)
        model = models.build(self.model, tuple(data.input_shape), data.num_classes, **self.model_kwargs)
        return model.to(resolve_device(self.device))


TRAIN_KEYS = tuple(f.name for f in fields(TrainConfig))


def train_config(params: Mapping, **overrides) -> TrainConfig:
    """The `TrainConfig` named by a notebook's parameters (keys it lacks keep their defaults);
    `overrides` replace single fields, e.g. `eval_every="1ep"`."""
    values = {k: params[k] for k in TRAIN_KEYS if k in params}
    values.update(overrides)
    if "milestones" in values:
        values["milestones"] = list(values["milestones"])
    return TrainConfig(**values)


def from_params(params: Mapping, train: TrainConfig | None = None, **extra) -> Experiment:
    """The `Experiment` named by a notebook's parameters; `train` defaults to `train_config(params)`."""
    values = {f.name: params[f.name] for f in fields(Experiment) if f.name in params and f.name != "train"}
    values.update(extra)
    if "model_kwargs" in values:
        values["model_kwargs"] = dict(values["model_kwargs"])
    return Experiment(train=train if train is not None else train_config(params), **values)
