from __future__ import annotations

import gzip
import os
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from masksearch import data

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


# --- helpers ----------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", dim) for dim in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(
    directory: Path, n_train: int = 24, n_test: int = 12, *, gz: bool = False, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write a small synthetic IDX dataset; returns the raw arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, size=n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for role, array in arrays.items():
        payload = idx_bytes(array, 2051 if role.endswith("images") else 2049)
        if gz:
            (directory / (IDX_NAMES[role] + ".gz")).write_bytes(gzip.compress(payload))
        else:
            (directory / IDX_NAMES[role]).write_bytes(payload)
    return arrays


def standardized(images: np.ndarray, train_images: np.ndarray) -> np.ndarray:
    """Independent reference: per-channel standardization with train stats, NCHW float64."""
    axes = (0, 2, 3)
    mean = train_images.astype(np.float64).mean(axis=axes, keepdims=True)
    std = train_images.astype(np.float64).std(axis=axes, keepdims=True)
    return (images.astype(np.float64) - mean) / std


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $MASKSEARCH_DATA and no system directories, so only root= is searched."""
    monkeypatch.delenv("MASKSEARCH_DATA", raising=False)
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion-mnist", (tmp_path / "no-system-dir",))
    monkeypatch.setitem(data.SYSTEM_DIRS, "mnist", ())
    monkeypatch.setitem(data.SYSTEM_DIRS, "cifar10", ())
    return tmp_path


# --- digits -----------------------------------------------------------------------------------


def test_digits_shapes_splits_and_standardization():
    from sklearn.datasets import load_digits

    dataset = data.load("digits")
    assert dataset.name == "digits" and dataset.source == "sklearn"
    assert dataset.num_classes == 10 and dataset.input_shape == (1, 8, 8)
    assert [len(s) for s in (dataset.train, dataset.val, dataset.test)] == [1197, 300, 300]
    for split in (dataset.train, dataset.val, dataset.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.shape[1:] == (1, 8, 8)

    train_x = dataset.train.x.double()
    assert abs(train_x.mean().item()) < 1e-5
    assert abs(train_x.std(unbiased=False).item() - 1.0) < 1e-5

    # Contract: fixed permutation with seed 0; compare every split to sklearn's raw images.
    bunch = load_digits()
    order = np.random.default_rng(0).permutation(len(bunch.target))
    raw = bunch.images[:, None]
    parts = np.split(order, [1197, 1497])
    for split, indices in zip((dataset.train, dataset.val, dataset.test), parts, strict=True):
        expected = standardized(raw[indices], raw[parts[0]])
        np.testing.assert_allclose(split.x.numpy(), expected, atol=1e-5)
        np.testing.assert_array_equal(split.y.numpy(), bunch.target[indices])
    # Splits are disjoint and cover the whole set.
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(bunch.target)))


def test_digits_arrays_equal_sklearn_load_digits_bit_for_bit():
    from sklearn.datasets import load_digits

    data._digits_arrays.cache_clear()
    images, labels = data._digits_arrays()
    bunch = load_digits()
    assert images.dtype == np.float64 and labels.dtype == np.int64
    np.testing.assert_array_equal(images, bunch.images[:, None])
    np.testing.assert_array_equal(labels, bunch.target)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"1,2,3\n4,5,6\n", "holds a (2, 3) table, expected (1797, 65)"),
        (b"1,2,x\n", "cannot be read as comma-separated numbers"),
    ],
)
def test_a_damaged_digits_file_is_named_in_the_error(
    tmp_path, monkeypatch, content, complaint
) -> None:
    damaged = tmp_path / "digits.csv.gz"
    damaged.write_bytes(gzip.compress(content))
    monkeypatch.setattr(data, "digits_file", lambda: damaged)
    data._digits_arrays.cache_clear()
    try:
        with pytest.raises(data.DatasetCorruptError, match=re.escape(complaint)) as raised:
            data.load("digits")
        assert raised.value.path == damaged
    finally:
        data._digits_arrays.cache_clear()  # later tests read the real file again


def test_digits_without_scikit_learn_says_how_to_install_it(monkeypatch) -> None:
    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "sklearn" else found(name)
    )
    with pytest.raises(data.DatasetNotFoundError, match="pip install scikit-learn"):
        data.locate("digits")
    assert not data.available("digits")


def test_loads_are_deterministic_and_independent():
    first = data.load("digits")
    second = data.load("digits")
    assert torch.equal(first.train.x, second.train.x)
    assert torch.equal(first.test.y, second.test.y)
    original = second.train.x.clone()
    first.train.x.add_(100.0)  # a caller mutating its copy must not affect later loads
    first.test.y.zero_()
    third = data.load("digits")
    assert torch.equal(third.train.x, original)
    assert torch.equal(third.test.y, second.test.y)


def test_name_aliases_and_unknown_name():
    assert data.load("DIGITS").name == "digits"
    with pytest.raises(ValueError, match="fashion-mnist"):
        data.load("imagenet")
    with pytest.raises(TypeError):
        data.load(3)  # type: ignore[arg-type]
    assert data.available("digits")
    assert data.locate("digits").name == "digits.csv.gz"


# --- Split ------------------------------------------------------------------------------------


def test_split_subset_to_and_validation():
    split = data.Split(torch.arange(20.0).reshape(10, 2), torch.arange(10))
    assert len(split) == 10
    head = split.subset(4)
    assert torch.equal(head.y, torch.arange(4)) and head.x.shape == (4, 2)
    assert torch.equal(split.to("cpu").x, split.x)
    for bad in (0, 11, -1):
        with pytest.raises(ValueError, match="1..10"):
            split.subset(bad)
    with pytest.raises(TypeError):
        split.subset(2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        data.Split(torch.zeros(3, 2), torch.zeros(4))
    with pytest.raises(TypeError):
        data.Split(np.zeros((3, 2)), torch.zeros(3))  # type: ignore[arg-type]


# --- Fashion-MNIST from the Debian package --------------------------------------------------


@pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-labels-idx1-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed (/usr/share/datasets/fashion-mnist)",
)
def test_fashion_mnist_from_debian_package(monkeypatch):
    monkeypatch.delenv("MASKSEARCH_DATA", raising=False)
    dataset = data.load("fashion-mnist")
    assert dataset.source == str(DEBIAN_FASHION)
    assert [len(s) for s in (dataset.train, dataset.val, dataset.test)] == [55000, 5000, 10000]
    assert dataset.input_shape == (1, 28, 28)
    train_x = dataset.train.x.double()
    assert abs(train_x.mean().item()) < 1e-4
    assert abs(train_x.std(unbiased=False).item() - 1.0) < 1e-4

    # Independent parse of the label file with struct: train+val are the 60k labels in order.
    with gzip.open(DEBIAN_FASHION / "train-labels-idx1-ubyte.gz") as handle:
        magic, count = struct.unpack(">II", handle.read(8))
        labels = np.frombuffer(handle.read(), dtype=np.uint8)
    assert (magic, count) == (2049, 60000)
    loaded = torch.cat([dataset.train.y, dataset.val.y]).numpy()
    np.testing.assert_array_equal(loaded, labels)
    assert set(dataset.test.y.unique().tolist()) == set(range(10))

    # First test image equals its raw bytes standardized with stats of the first 55k images.
    with gzip.open(DEBIAN_FASHION / "train-images-idx3-ubyte.gz") as handle:
        handle.read(16)
        fit_pixels = np.frombuffer(handle.read(55000 * 784), dtype=np.uint8)
    counts = np.bincount(fit_pixels, minlength=256).astype(np.float64)
    levels = np.arange(256.0)
    mean = counts @ levels / counts.sum()
    std = np.sqrt(counts @ (levels - mean) ** 2 / counts.sum())
    with gzip.open(DEBIAN_FASHION / "t10k-images-idx3-ubyte.gz") as handle:
        handle.read(16)
        first = np.frombuffer(handle.read(784), dtype=np.uint8).astype(np.float64)
    np.testing.assert_allclose(
        dataset.test.x[0].double().flatten().numpy(), (first - mean) / std, atol=1e-5
    )


# --- IDX lookup with synthetic files -----------------------------------------------------------


@pytest.mark.parametrize(
    "layout, gz",
    [("FashionMNIST/raw", False), ("FashionMNIST/raw", True), ("fashion-mnist", True), ("", False)],
)
def test_idx_lookup_from_explicit_root(isolated, layout, gz):
    root = isolated / "root"
    directory = root / layout if layout else root
    arrays = write_idx_set(directory, gz=gz)
    assert data.locate("fashion-mnist", root) == directory
    assert data.available("fashion-mnist", root)
    dataset = data.load("fashion-mnist", root=root)
    assert dataset.source == str(directory)

    n_val = 24 // 12  # small files: last 1/12 of the training images
    n_fit = 24 - n_val
    assert [len(s) for s in (dataset.train, dataset.val, dataset.test)] == [n_fit, n_val, 12]
    raw_train = arrays["train_images"][:, None]
    np.testing.assert_allclose(
        dataset.val.x.numpy(), standardized(raw_train[n_fit:], raw_train[:n_fit]), atol=1e-5
    )
    np.testing.assert_allclose(
        dataset.test.x.numpy(),
        standardized(arrays["test_images"][:, None], raw_train[:n_fit]),
        atol=1e-5,
    )
    np.testing.assert_array_equal(dataset.train.y.numpy(), arrays["train_labels"][:n_fit])
    np.testing.assert_array_equal(dataset.test.y.numpy(), arrays["test_labels"])
    assert dataset.test.y.min() >= 0 and dataset.test.y.max() <= 9


def test_idx_lookup_from_environment(isolated, monkeypatch):
    env_root = isolated / "env"
    arrays = write_idx_set(env_root / "MNIST" / "raw", seed=3)
    monkeypatch.setenv("MASKSEARCH_DATA", str(env_root))
    dataset = data.load("mnist")
    assert dataset.source == str(env_root / "MNIST" / "raw")
    np.testing.assert_array_equal(dataset.test.y.numpy(), arrays["test_labels"])
    # An explicit root that lacks the files falls through to $MASKSEARCH_DATA.
    (isolated / "empty").mkdir()
    assert data.locate("mnist", isolated / "empty") == env_root / "MNIST" / "raw"
    # An explicit root that has the files wins over $MASKSEARCH_DATA.
    write_idx_set(isolated / "explicit", seed=4)
    assert data.load("mnist", root=isolated / "explicit").source == str(isolated / "explicit")


def test_system_dir_is_searched_last(isolated, monkeypatch):
    system_dir = isolated / "system"
    write_idx_set(system_dir, gz=True)
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion-mnist", (system_dir,))
    assert data.locate("fashion-mnist") == system_dir
    write_idx_set(isolated / "mine", seed=1)
    assert data.locate("fashion-mnist", isolated / "mine") == isolated / "mine"


def test_missing_dataset_names_every_place_and_how_to_get_it(isolated, monkeypatch):
    root = isolated / "root"
    root.mkdir()  # present but empty: a root that does not exist is refused outright
    env_root = isolated / "env"
    env_root.mkdir()
    (env_root / IDX_NAMES["train_images"]).write_bytes(b"")  # an incomplete directory
    monkeypatch.setenv("MASKSEARCH_DATA", str(env_root))
    system_dir = isolated / "no-system-dir"

    with pytest.raises(data.DatasetNotFoundError) as caught:
        data.load("fashion-mnist", root=root)
    message = str(caught.value)
    for place in (
        root,
        root / "FashionMNIST" / "raw",
        env_root,
        env_root / "FashionMNIST" / "raw",
        system_dir,
    ):
        assert str(place) in message
        assert place in caught.value.searched
    assert "apt-get install dataset-fashion-mnist" in message
    assert "download=True" in message
    assert "t10k-labels-idx1-ubyte" in message  # names what the incomplete directory lacks
    assert isinstance(caught.value, FileNotFoundError)
    assert not data.available("fashion-mnist", root)

    with pytest.raises(data.DatasetNotFoundError, match="MNIST\\('DIR', download=True\\)"):
        data.locate("mnist", root)
    with pytest.raises(data.DatasetNotFoundError, match="CIFAR10\\('DIR', download=True\\)"):
        data.locate("cifar10", root)


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_an_explicit_root_that_is_no_directory_is_refused(isolated, monkeypatch, kind):
    # the data is elsewhere: a bad root= must not quietly fall back to it
    write_idx_set(isolated / "env")
    monkeypatch.setenv("MASKSEARCH_DATA", str(isolated / "env"))
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion-mnist", (isolated / "env",))
    root = isolated / "nonexistent"
    if kind == "file":
        root.write_text("not a directory")
    problem = "does not exist" if kind == "missing" else "is not a directory"
    for call in (data.load, data.locate, data.available):
        with pytest.raises(data.DataRootError, match="--data-root DIR") as caught:
            call("fashion-mnist", root=root)
        assert str(caught.value).startswith(f"the data root {root} (given as root=) {problem};")
        assert caught.value.path == root
        assert isinstance(caught.value, FileNotFoundError)
        assert not isinstance(caught.value, data.DatasetNotFoundError)
    assert data.load("digits", root=root).name == "digits"  # digits never reads root=


def test_a_missing_environment_root_is_refused(isolated, monkeypatch):
    stale = isolated / "moved-away"
    monkeypatch.setenv("MASKSEARCH_DATA", str(stale))
    monkeypatch.setitem(data.SYSTEM_DIRS, "mnist", (isolated / "system",))
    write_idx_set(isolated / "system")
    with pytest.raises(data.DataRootError) as caught:
        data.locate("mnist")
    message = str(caught.value)
    assert message.startswith(f"$MASKSEARCH_DATA names {stale}, which does not exist;")
    assert "or unset it" in message
    # a root= that holds the data is used before the stale entry is ever looked at
    write_idx_set(isolated / "mine")
    assert data.locate("mnist", isolated / "mine") == isolated / "mine"


def test_missing_without_any_root_says_so(isolated):
    with pytest.raises(data.DatasetNotFoundError, match="MASKSEARCH_DATA is not set"):
        data.load("mnist")


# --- corrupt IDX files ----------------------------------------------------------------------------


def _bad_magic(directory: Path) -> str:
    path = directory / IDX_NAMES["train_images"]
    raw = bytearray(path.read_bytes())
    raw[2:4] = b"\x08\x01"  # 2049: a label header on an image file
    path.write_bytes(bytes(raw))
    return "magic"


def _truncated(directory: Path) -> str:
    path = directory / IDX_NAMES["train_images"]
    path.write_bytes(path.read_bytes()[:-100])
    return "truncated"


def _trailing_bytes(directory: Path) -> str:
    path = directory / IDX_NAMES["test_images"]
    path.write_bytes(path.read_bytes() + b"\x00" * 7)
    return "unexpected bytes"


def _bad_label(directory: Path) -> str:
    path = directory / IDX_NAMES["test_labels"]
    raw = bytearray(path.read_bytes())
    raw[-1] = 10
    path.write_bytes(bytes(raw))
    return "outside 0..9"


def _count_mismatch(directory: Path) -> str:
    labels = np.zeros(23, dtype=np.uint8)  # 24 images, 23 labels
    (directory / IDX_NAMES["train_labels"]).write_bytes(idx_bytes(labels, 2049))
    return "23 labels"


def _bad_gzip(directory: Path) -> str:
    path = directory / IDX_NAMES["test_labels"]
    path.unlink()
    (directory / (IDX_NAMES["test_labels"] + ".gz")).write_bytes(b"\x1f\x8bnot really gzip")
    return "gzip"


def _truncated_gzip(directory: Path) -> str:
    path = directory / IDX_NAMES["train_labels"]
    compressed = gzip.compress(path.read_bytes())
    path.unlink()
    (directory / (IDX_NAMES["train_labels"] + ".gz")).write_bytes(compressed[:-20])
    return "gzip"


@pytest.mark.parametrize(
    "damage",
    [
        _bad_magic,
        _truncated,
        _trailing_bytes,
        _bad_label,
        _count_mismatch,
        _bad_gzip,
        _truncated_gzip,
    ],
)
def test_corrupt_idx_file_is_reported(isolated, damage):
    directory = isolated / "root"
    write_idx_set(directory)
    problem = damage(directory)
    with pytest.raises(data.DatasetCorruptError) as caught:
        data.load("fashion-mnist", root=directory)
    message = str(caught.value)
    assert problem in message
    assert str(caught.value.path) in message
    assert caught.value.path.parent == directory
    assert caught.value.path.name in message


def test_rewritten_file_is_reparsed(isolated):
    directory = isolated / "root"
    write_idx_set(directory, seed=5)
    data.load("mnist", root=directory)  # fills the cache
    _truncated(directory)
    with pytest.raises(data.DatasetCorruptError, match="truncated"):
        data.load("mnist", root=directory)


# --- CIFAR-10 with synthetic batches -------------------------------------------------------------


def write_cifar(directory: Path, per_batch: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    images, labels = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch_x = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        batch_y = rng.integers(0, 10, size=per_batch).tolist()
        entry = {"batch_label": name, "data": batch_x, "labels": batch_y}
        (directory / name).write_bytes(pickle.dumps(entry, protocol=2))
        images.append(batch_x)
        labels.append(np.asarray(batch_y))
    return {
        "train_x": np.concatenate(images[:5]).reshape(-1, 3, 32, 32),
        "train_y": np.concatenate(labels[:5]),
        "test_x": images[5].reshape(-1, 3, 32, 32),
        "test_y": labels[5],
    }


@pytest.mark.parametrize("layout", ["cifar-10-batches-py", ""])
def test_cifar_from_torchvision_layout(isolated, layout):
    root = isolated / "root"
    directory = root / layout if layout else root
    arrays = write_cifar(directory)
    dataset = data.load("cifar10", root=root)
    assert dataset.source == str(directory)
    assert dataset.input_shape == (3, 32, 32)
    n_train = 60
    n_val = n_train // 12
    assert [len(s) for s in (dataset.train, dataset.val, dataset.test)] == [
        n_train - n_val,
        n_val,
        12,
    ]
    per_channel_mean = dataset.train.x.double().mean(dim=(0, 2, 3))
    per_channel_std = dataset.train.x.double().std(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(
        per_channel_mean, torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        per_channel_std, torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0
    )
    fit = arrays["train_x"][: n_train - n_val]
    np.testing.assert_allclose(
        dataset.val.x.numpy(), standardized(arrays["train_x"][n_train - n_val :], fit), atol=1e-5
    )
    np.testing.assert_allclose(
        dataset.test.x.numpy(), standardized(arrays["test_x"], fit), atol=1e-5
    )
    np.testing.assert_array_equal(dataset.test.y.numpy(), arrays["test_y"])
    assert dataset.train.y.dtype == torch.int64


def test_cifar_from_environment(isolated, monkeypatch):
    write_cifar(isolated / "env" / "cifar-10-batches-py")
    monkeypatch.setenv("MASKSEARCH_DATA", str(isolated / "env"))
    assert data.locate("cifar10") == isolated / "env" / "cifar-10-batches-py"


def test_cifar_corrupt_batches(isolated):
    directory = isolated / "root" / "cifar-10-batches-py"
    write_cifar(directory)
    bad_label = {"data": np.zeros((12, 3072), dtype=np.uint8), "labels": [10] * 12}
    (directory / "data_batch_3").write_bytes(pickle.dumps(bad_label, protocol=2))
    with pytest.raises(data.DatasetCorruptError, match="data_batch_3.*outside 0..9"):
        data.load("cifar10", root=isolated / "root")

    (directory / "data_batch_3").write_bytes(pickle.dumps({"data": os.system, "labels": []}))
    with pytest.raises(data.DatasetCorruptError, match="data_batch_3.*refusing"):
        data.load("cifar10", root=isolated / "root")

    truncated = pickle.dumps({"data": np.zeros((12, 3072), dtype=np.uint8), "labels": [0] * 12})
    (directory / "test_batch").write_bytes(truncated[: len(truncated) // 2])
    (directory / "data_batch_3").write_bytes(truncated)
    with pytest.raises(data.DatasetCorruptError, match="test_batch"):
        data.load("cifar10", root=isolated / "root")

    mismatch = {"data": np.zeros((12, 3072), dtype=np.uint8), "labels": [0] * 11}
    (directory / "test_batch").write_bytes(pickle.dumps(mismatch))
    with pytest.raises(data.DatasetCorruptError, match="12 images but 11 labels"):
        data.load("cifar10", root=isolated / "root")
