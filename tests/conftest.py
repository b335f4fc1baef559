"""Shared fixtures: a tiny, learnable synthetic dataset in ticketlib's Dataset format."""

import importlib
import os
import types

import pytest
import torch

from ticketlib.core.data import Dataset, Split


REQUIRE = "TICKETLIB_REQUIRE_DATA"  # `make test` (and so CI) sets it: a missing data package fails the run


def require(module: str, reason: str = "") -> types.ModuleType:
    """The module a smoke test needs: skipped when absent, unless `TICKETLIB_REQUIRE_DATA=1`, where a missing one is an
    error naming it (a CI without the data packages must not pass by running no notebook)."""
    if os.environ.get(REQUIRE) == "1":
        try:
            return importlib.import_module(module)
        except ImportError as error:
            raise ImportError(f"{module} is missing and {REQUIRE}=1: {reason or 'make setup installs it'}") from error
    return pytest.importorskip(module, reason=reason or None)


def synthetic_dataset(n_train: int = 240, n_val: int = 60, n_test: int = 60, shape: tuple = (1, 4, 4),
                      classes: int = 4, seed: int = 0, noisy_train: bool = False) -> Dataset:
    """Labels are the argmax of a fixed random linear map (learnable); `noisy_train` shuffles the
    training labels so a network overfits and its validation loss rises again."""
    gen = torch.Generator().manual_seed(seed)
    teacher = torch.randn(torch.Size(shape).numel(), classes, generator=gen)

    def split(n: int) -> Split:
        x = torch.randn(n, *shape, generator=gen)
        return Split(x, (x.flatten(1) @ teacher).argmax(1))

    train, val, test = split(n_train), split(n_val), split(n_test)
    if noisy_train:
        train = Split(train.x, torch.randint(0, classes, (n_train,), generator=gen))
    return Dataset("synthetic", train, val, test, classes, shape)


@pytest.fixture
def tiny_data() -> Dataset:
    return synthetic_dataset()
