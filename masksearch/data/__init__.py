"""In-memory image classification datasets with fixed splits and train-set standardization.

``load(name, root=None)`` returns a :class:`Dataset` of float32 NCHW tensors, standardized per
channel with the mean/std of the *train* split, and int64 labels.

Where the data comes from:

* ``digits``: scikit-learn's embedded copy (``sklearn.datasets.load_digits``), always available.
* ``fashion-mnist`` / ``mnist``: IDX files (``train-images-idx3-ubyte`` ...; ``.gz`` or not),
  looked up in this order: under an explicit ``root``, under each entry of ``$MASKSEARCH_DATA``
  (``os.pathsep``-separated), then in :data:`SYSTEM_DIRS` (Debian's ``dataset-fashion-mnist``
  installs into ``/usr/share/datasets/fashion-mnist``). Under a root, torchvision's layout
  (``<root>/FashionMNIST/raw``, ``<root>/MNIST/raw``), a lower-case directory
  (``<root>/fashion-mnist``, ``<root>/mnist``) and the root itself are tried, in that order.
  A ``root`` or ``$MASKSEARCH_DATA`` entry that is not an existing directory raises
  :class:`DataRootError` when the lookup reaches it, instead of falling back to the other places.
* ``cifar10``: torchvision's ``cifar-10-batches-py`` (pickled ``data_batch_1..5``,
  ``test_batch``) under ``root`` / ``$MASKSEARCH_DATA``, or those files directly in the root.

Splits: train/val come from the training file, val being its *last* ``VAL_SIZE`` (5,000) images
(60k datasets: 55,000/5,000/10,000; CIFAR-10: 45,000/5,000/10,000). Files with fewer than
``2 * VAL_SIZE`` training images (small synthetic test files) use the last ``n // 12`` images
(at least one) as val. digits uses a fixed permutation (seed 0): 1,197/300/300.

Finding, reading and validating the files (IDX magic numbers, header sizes against the payload,
image/label counts, 28x28 images, labels in 0..9) is :mod:`masksearch.data.files`; this module
splits and standardizes their arrays. The image counts themselves are not required to be
60,000/10,000 so that small synthetic files work. Parsed files are cached in-process; every
``load`` returns freshly allocated tensors, so callers cannot corrupt each other's data.
"""

from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from masksearch.data.files import (
    DATASETS,
    ENV_VAR,
    NUM_CLASSES,
    SYSTEM_DIRS,
    Arrays,
    DataRootError,
    DatasetCorruptError,
    DatasetNotFoundError,
    available,
    canonical_name,
    digits_file,
    locate,
    read_cifar_arrays,
    read_idx_arrays,
)

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "SYSTEM_DIRS",
    "VAL_SIZE",
    "Dataset",
    "DataRootError",
    "DatasetCorruptError",
    "DatasetNotFoundError",
    "Split",
    "SplitLike",
    "available",
    "load",
    "locate",
    "split_tensors",
]

VAL_SIZE = 5000

_DIGITS_SPLIT = (1197, 300, 300)
_DIGITS_SEED = 0


# ---------------------------------------------------------------------------------------------
# Splits


@dataclass(frozen=True, eq=False)
class Split:
    """One split held in memory: ``x`` float32 NCHW images, ``y`` int64 labels."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or not isinstance(self.y, torch.Tensor):
            raise TypeError(
                f"Split needs torch tensors, got x={type(self.x).__name__}, "
                f"y={type(self.y).__name__}"
            )
        if self.y.ndim != 1 or self.x.ndim < 1 or self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"Split needs x of shape (N, ...) and y of shape (N,); "
                f"got x {tuple(self.x.shape)} and y {tuple(self.y.shape)}"
            )

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, n: int) -> Split:
        """The first ``n`` samples (deterministic; views of this split's tensors)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"subset size must be an int, got {type(n).__name__}")
        if not 1 <= n <= len(self):
            raise ValueError(f"subset size must be in 1..{len(self)} (the split's size), got {n}")
        return Split(self.x[:n], self.y[:n])

    def to(self, device: str | torch.device) -> Split:
        """This split with both tensors moved to ``device``."""
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True, eq=False)
class Dataset:
    """Fixed train/val/test splits of one dataset; ``source`` says where it was loaded from."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    source: str


class SplitLike(Protocol):
    """What training and evaluation need of a split: ``x`` images and ``y`` labels, as tensors
    (a :class:`Split`, or any object with those two attributes)."""

    x: torch.Tensor
    y: torch.Tensor


def split_tensors(split: SplitLike) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(x, y)`` tensors of a split, checked (y as int64), with readable errors."""
    x = getattr(split, "x", None)
    y = getattr(split, "y", None)
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(
            f"expected a split with tensors .x (images) and .y (labels), such as "
            f"masksearch.data.Split; got {type(split).__name__}"
        )
    if not x.is_floating_point():
        raise TypeError(f"split.x must hold floating-point images, got dtype {x.dtype}")
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.dtype.is_complex:
        raise TypeError(f"split.y must hold integer class labels, got dtype {y.dtype}")
    if y.dim() != 1 or len(x) != len(y):
        raise ValueError(
            f"split.x has {len(x)} samples but split.y has shape {tuple(y.shape)}; "
            "they need one label per image"
        )
    if len(x) == 0:
        raise ValueError("the split is empty; it needs at least one sample")
    return x, y.long()


# ---------------------------------------------------------------------------------------------
# Loading


def load(name: str, root: str | os.PathLike[str] | None = None) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`) into memory with fixed, standardized splits.

    ``root`` is ignored for ``digits`` (embedded in scikit-learn). Raises
    :class:`DataRootError` if ``root`` (or a ``$MASKSEARCH_DATA`` entry looked at) is not a
    directory, :class:`DatasetNotFoundError` if the files are nowhere to be found and
    :class:`DatasetCorruptError` if they are damaged.
    """
    key = canonical_name(name)
    if key == "digits":
        return _load_digits()
    directory = locate(key, root)
    read = read_cifar_arrays if key == "cifar10" else read_idx_arrays
    train, test, train_file = read(directory)
    return _split_and_standardize(key, train, test, source=str(directory), train_file=train_file)


def _val_size(n_train: int) -> int:
    if n_train >= 2 * VAL_SIZE:
        return VAL_SIZE
    # Small (synthetic) files: keep the real datasets' ~1/12 val fraction (5,000 of 60,000).
    return max(1, n_train // 12)


def _split_and_standardize(
    key: str,
    train: Arrays,
    test: Arrays,
    *,
    source: str,
    train_file: Path,
) -> Dataset:
    images, labels = train
    if images.shape[0] < 2:
        raise DatasetCorruptError(
            train_file, f"holds {images.shape[0]} training image(s); a train/val split needs 2"
        )
    n_fit = images.shape[0] - _val_size(images.shape[0])
    return _make_dataset(
        key,
        (images[:n_fit], labels[:n_fit]),
        (images[n_fit:], labels[n_fit:]),
        test,
        source=source,
    )


def _load_digits() -> Dataset:
    images, labels = _digits_arrays()
    order = np.random.default_rng(_DIGITS_SEED).permutation(images.shape[0])
    n_train, n_val, _ = _DIGITS_SPLIT
    parts = np.split(order, [n_train, n_train + n_val])
    train, val, test = ((images[idx], labels[idx]) for idx in parts)
    return _make_dataset("digits", train, val, test, source="sklearn")


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> Arrays:
    # the file sklearn.datasets.load_digits reads (one row per image: 64 pixels, then the
    # label), read as it reads it, without the seconds of importing scikit-learn
    path = digits_file()
    try:
        with gzip.open(path, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", ndmin=2)
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetCorruptError(
            path, f"cannot be read as comma-separated numbers ({exc})"
        ) from exc
    if table.shape != (sum(_DIGITS_SPLIT), 65):
        raise DatasetCorruptError(
            path, f"holds a {table.shape} table, expected ({sum(_DIGITS_SPLIT)}, 65)"
        )
    images = table[:, :64].reshape(-1, 1, 8, 8)  # (1797, 1, 8, 8), values 0..16
    labels = table[:, 64].astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) std of NCHW ``images``, in float64."""
    means, stds = [], []
    for channel in range(images.shape[1]):
        values = images[:, channel].reshape(-1)
        if values.dtype == np.uint8:
            # Exact and memory-light: a 256-bin histogram instead of a float copy of the data.
            counts = np.bincount(values, minlength=256).astype(np.float64)
            levels = np.arange(256, dtype=np.float64)
            mean = counts @ levels / counts.sum()
            variance = counts @ (levels - mean) ** 2 / counts.sum()
        else:
            as_float = values.astype(np.float64)
            mean, variance = as_float.mean(), as_float.var()
        means.append(mean)
        # A constant channel carries no information; std 1 leaves it at 0 instead of NaN.
        stds.append(np.sqrt(variance) if variance > 0 else 1.0)
    return np.asarray(means), np.asarray(stds)


def _standardize(images: np.ndarray, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    # astype always copies, so the result never aliases the cached read-only arrays.
    tensor = torch.from_numpy(images.astype(np.float32))
    return tensor.sub_(mean).div_(std)


def _make_dataset(
    key: str,
    train: Arrays,
    val: Arrays,
    test: Arrays,
    *,
    source: str,
) -> Dataset:
    mean, std = _channel_stats(train[0])
    channels = train[0].shape[1]
    mean_t = torch.as_tensor(mean, dtype=torch.float32).view(1, channels, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32).view(1, channels, 1, 1)
    splits = [
        Split(_standardize(images, mean_t, std_t), torch.from_numpy(labels.astype(np.int64)))
        for images, labels in (train, val, test)
    ]
    return Dataset(
        name=key,
        train=splits[0],
        val=splits[1],
        test=splits[2],
        num_classes=NUM_CLASSES,
        input_shape=tuple(splits[0].x.shape[1:]),
        source=source,
    )
