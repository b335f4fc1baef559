"""Shared fixtures: a tiny, learnable synthetic dataset in ticketlib's Dataset format."""

import pytest
import torch

from ticketlib.core.data import Dataset, Split


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
