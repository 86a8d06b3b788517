"""Dataset files on disk: where they are looked for, and how they are read and checked.

Lookup (:func:`locate`): ``fashion-mnist`` / ``mnist`` IDX files and the ``cifar10`` batches are
looked for under an explicit ``root``, under each entry of ``$MASKSEARCH_DATA``
(``os.pathsep``-separated), then in :data:`SYSTEM_DIRS`. Under a root, torchvision's layout
(``<root>/FashionMNIST/raw``, ``<root>/MNIST/raw``, ``<root>/cifar-10-batches-py``), a lower-case
directory (``<root>/fashion-mnist``, ``<root>/mnist``) and the root itself are tried, in that
order. ``digits`` is scikit-learn's embedded file.

Reading (:func:`read_idx_arrays`, :func:`read_cifar_arrays`): files are validated (IDX magic
numbers, header sizes against the payload, image/label counts, 28x28 images, labels in 0..9;
CIFAR-10 pickles are unpickled with an allow-list) and cached in-process, keyed by resolved path,
modification time and size. The cached arrays are read-only; :mod:`masksearch.data` copies them
into fresh tensors.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import os
import pickle
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "NUM_CLASSES",
    "SYSTEM_DIRS",
    "Arrays",
    "DataRootError",
    "DatasetCorruptError",
    "DatasetNotFoundError",
    "available",
    "canonical_name",
    "digits_file",
    "locate",
    "read_cifar_arrays",
    "read_idx_arrays",
]

Arrays = tuple[np.ndarray, np.ndarray]  # (images NCHW, labels) of one part of a dataset

DATASETS: tuple[str, ...] = ("digits", "fashion-mnist", "mnist", "cifar10")
ENV_VAR = "MASKSEARCH_DATA"
# Machine-wide install locations tried after root= and $MASKSEARCH_DATA. A dict (not a constant
# tuple) so tests can monkeypatch an entry to simulate a machine without the package.
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
    "mnist": (),
    "cifar10": (),
}

NUM_CLASSES = 10

_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_IDX_IMAGE_SIZE = (28, 28)
_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_SUBDIRS = {
    "fashion-mnist": ("FashionMNIST/raw", "fashion-mnist"),
    "mnist": ("MNIST/raw", "mnist"),
}

_CIFAR_SUBDIR = "cifar-10-batches-py"
_CIFAR_TRAIN_FILES = tuple(f"data_batch_{index}" for index in range(1, 6))
_CIFAR_TEST_FILE = "test_batch"
_CIFAR_IMAGE_SHAPE = (3, 32, 32)

_DISPLAY_NAMES = {"fashion-mnist": "Fashion-MNIST", "mnist": "MNIST", "cifar10": "CIFAR-10"}
_TORCHVISION_CLASSES = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST", "cifar10": "CIFAR10"}
_SYSTEM_LABELS = {"fashion-mnist": "Debian package dataset-fashion-mnist"}


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is in none of the places looked; the message lists them and how to get it."""

    def __init__(self, message: str, searched: tuple[Path, ...] = ()) -> None:
        super().__init__(message)
        self.searched = searched


class DataRootError(FileNotFoundError):
    """An explicitly named data root (``root=``, ``$MASKSEARCH_DATA``) is not a directory.

    Deliberately not a :class:`DatasetNotFoundError`: :func:`available` answers False for a
    dataset that is missing, but a mistyped root is an error, never a quiet fallback.
    """

    def __init__(self, path: Path, origin: str) -> None:
        problem = "is not a directory" if path.exists() else "does not exist"
        if origin == f"${ENV_VAR}":
            fix = (
                f"point ${ENV_VAR} at the directory that holds the datasets "
                f"(entries separated by {os.pathsep!r}), or unset it"
            )
            where = f"${ENV_VAR} names {path}, which"
        else:
            fix = (
                "pass the directory that holds the datasets (--data-root DIR on the command "
                f"line), or leave it out to use ${ENV_VAR} and the system locations"
            )
            where = f"the data root {path} (given as root=)"
        super().__init__(f"{where} {problem}; {fix}")
        self.path = path
        self.origin = origin


class DatasetCorruptError(ValueError):
    """A dataset file exists but is damaged; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(
            f"{path}: {problem}. The file is damaged or not what its name says; "
            "re-download or reinstall the dataset."
        )
        self.path = Path(path)
        self.problem = problem


# ---------------------------------------------------------------------------------------------
# Lookup


def locate(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The directory ``load`` would read ``name`` from (for digits: scikit-learn's data file).

    Only checks that the expected files exist; it does not parse them.
    """
    key = canonical_name(name)
    if key == "digits":
        return digits_file()
    searched: list[Path] = []
    notes: list[str] = []
    for directory, origin, base in _candidate_dirs(key, root):
        if base is not None and not base.is_dir():
            # checked when reached, so a stale $MASKSEARCH_DATA entry does not spoil a root=
            # that holds the data
            raise DataRootError(base, origin)
        missing = _missing_files(key, directory)
        if not missing:
            return directory
        searched.append(directory)
        reason = "does not exist" if not directory.is_dir() else "missing " + ", ".join(missing)
        notes.append(f"  - {directory}  [{origin}]: {reason}")
    raise DatasetNotFoundError(_not_found_message(key, root, notes), tuple(searched))


def available(name: str, root: str | os.PathLike[str] | None = None) -> bool:
    """Whether :func:`locate` finds ``name`` (files present; not parsed, so not validated).

    A root that does not exist is not an answer but a mistake: it raises :class:`DataRootError`.
    """
    try:
        locate(name, root)
    except DatasetNotFoundError:
        return False
    return True


def canonical_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, got {type(name).__name__}")
    squashed = name.lower().replace("-", "").replace("_", "")
    for known in DATASETS:
        if squashed == known.replace("-", ""):
            return known
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def _user_roots(root: str | os.PathLike[str] | None) -> list[tuple[Path, str]]:
    roots: list[tuple[Path, str]] = []
    if root is not None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a path (str or os.PathLike), got {type(root).__name__}")
        roots.append((Path(root).expanduser(), "root="))
    for entry in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if entry.strip():
            roots.append((Path(entry.strip()).expanduser(), f"${ENV_VAR}"))
    return roots


def _candidate_dirs(
    key: str, root: str | os.PathLike[str] | None
) -> list[tuple[Path, str, Path | None]]:
    """(directory, origin, user root) in lookup order; the root is None for system places."""
    # Dataset-specific subdirectories come before the bare root, so a root holding several
    # datasets in torchvision's layout never serves one dataset's flat files as another's.
    subdirs = (_CIFAR_SUBDIR,) if key == "cifar10" else _IDX_SUBDIRS[key]
    candidates: list[tuple[Path, str, Path | None]] = []
    for base, origin in _user_roots(root):
        candidates.extend((base / subdir, origin, base) for subdir in subdirs)
        candidates.append((base, origin, base))
    label = _SYSTEM_LABELS.get(key, "system location")
    candidates.extend((Path(directory), label, None) for directory in SYSTEM_DIRS.get(key, ()))
    return candidates


def _idx_file(directory: Path, base_name: str) -> Path | None:
    # Uncompressed first: it is what torchvision extracts and it parses faster.
    for file_name in (base_name, base_name + ".gz"):
        path = directory / file_name
        if path.is_file():
            return path
    return None


def _missing_files(key: str, directory: Path) -> list[str]:
    if key == "cifar10":
        names = (*_CIFAR_TRAIN_FILES, _CIFAR_TEST_FILE)
        return [name for name in names if not (directory / name).is_file()]
    return [f"{base}[.gz]" for base in _IDX_FILES.values() if _idx_file(directory, base) is None]


def _not_found_message(key: str, root: str | os.PathLike[str] | None, notes: list[str]) -> str:
    display = _DISPLAY_NAMES[key]
    if notes:
        lines = [f"{display} not found. Looked in (in order):", *notes]
    else:
        lines = [f"{display} not found: there was nowhere to look."]
    if root is None and not os.environ.get(ENV_VAR, "").strip():
        lines.append(f"  (no root= given and ${ENV_VAR} is not set)")
    lines.append(f"How to get {display}:")
    if key == "fashion-mnist":
        lines.append(
            "  - on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist "
            "(installs into /usr/share/datasets/fashion-mnist, found automatically)"
        )
    lines.append(
        f'  - with internet access: python -c "import torchvision; '
        f"torchvision.datasets.{_TORCHVISION_CLASSES[key]}('DIR', download=True)\""
    )
    lines.append(
        f"then pass root='DIR' to masksearch.data.load() or set {ENV_VAR}=DIR "
        "(the directory you gave torchvision)."
    )
    return "\n".join(lines)


def digits_file() -> Path:
    """scikit-learn's copy of the digits, found without importing scikit-learn: the import
    takes seconds, a large part of a short command-line run's start."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise DatasetNotFoundError(
            "digits comes from scikit-learn, which is not installed: pip install scikit-learn"
        )
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise DatasetNotFoundError(
            f"digits: scikit-learn is installed but {path} is missing; reinstall it: "
            "pip install --force-reinstall scikit-learn"
        )
    return path


# ---------------------------------------------------------------------------------------------
# Reading a located dataset


def read_idx_arrays(directory: Path) -> tuple[Arrays, Arrays, Path]:
    """The train and test (images, labels) of the IDX files in ``directory``, and the train
    images file (named in errors about the train split). Images are (N, 1, 28, 28) uint8."""
    paths: dict[str, Path] = {}
    for role, base in _IDX_FILES.items():
        path = _idx_file(directory, base)
        if path is None:  # deleted between locate() and here
            raise DatasetNotFoundError(f"{directory / base}[.gz] disappeared")
        paths[role] = path
    arrays = {
        role: _read_file("idx-images" if role.endswith("images") else "idx-labels", path)
        for role, path in paths.items()
    }
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.shape[0] != labels.shape[0]:
            raise DatasetCorruptError(
                paths[f"{part}_labels"],
                f"holds {labels.shape[0]} labels but {paths[f'{part}_images']} "
                f"holds {images.shape[0]} images",
            )
    train_x = arrays["train_images"][:, None]  # (N, 28, 28) -> (N, 1, 28, 28), a view
    test_x = arrays["test_images"][:, None]
    return (train_x, arrays["train_labels"]), (test_x, arrays["test_labels"]), paths["train_images"]


def read_cifar_arrays(directory: Path) -> tuple[Arrays, Arrays, Path]:
    """The train and test (images, labels) of the CIFAR-10 batches in ``directory``, and the
    first train batch file. Images are (N, 3, 32, 32) uint8."""
    train_batches = [_read_cifar_batch(directory / name) for name in _CIFAR_TRAIN_FILES]
    test_x, test_y = _read_cifar_batch(directory / _CIFAR_TEST_FILE)
    train_x = np.concatenate([images for images, _ in train_batches])
    train_y = np.concatenate([labels for _, labels in train_batches])
    return (train_x, train_y), (test_x, test_y), directory / _CIFAR_TRAIN_FILES[0]


# ---------------------------------------------------------------------------------------------
# File parsing (cached per file version; cached arrays are read-only)


def _read_file(kind: str, path: Path) -> np.ndarray:
    stat = path.stat()
    return _read_file_cached(kind, str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _read_file_cached(kind: str, path_str: str, mtime_ns: int, size: int) -> np.ndarray:
    # mtime_ns and size are part of the key only so that a rewritten file is parsed again.
    path = Path(path_str)
    if kind == "idx-images":
        array = _parse_idx(path, _IDX_IMAGES_MAGIC, _IDX_IMAGE_SIZE)
    elif kind == "idx-labels":
        array = _check_labels(path, _parse_idx(path, _IDX_LABELS_MAGIC, ()))
    else:
        raise ValueError(f"unknown file kind {kind!r}")
    array.flags.writeable = False
    return array


@functools.lru_cache(maxsize=8)
def _read_cifar_batch_cached(
    path_str: str, mtime_ns: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _parse_cifar_batch(Path(path_str))
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    stat = path.stat()
    return _read_cifar_batch_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DatasetCorruptError(path, f"not a valid gzip file ({exc})") from exc


def _parse_idx(path: Path, expected_magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    raw = _read_bytes(path)
    what = "images" if expected_magic == _IDX_IMAGES_MAGIC else "labels"
    if len(raw) < 4:
        raise DatasetCorruptError(path, f"truncated: {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise DatasetCorruptError(
            path, f"bad IDX magic number {magic} (expected {expected_magic} for {what})"
        )
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DatasetCorruptError(
            path, f"truncated: {len(raw)} bytes, IDX header needs {header_size}"
        )
    dims = tuple(int(dim) for dim in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if dims[1:] != item_shape:
        raise DatasetCorruptError(
            path, f"{what} have shape {dims[1:]} per item, expected {item_shape}"
        )
    declared = int(np.prod(dims, dtype=np.int64))
    payload = len(raw) - header_size
    if payload < declared:
        raise DatasetCorruptError(
            path,
            f"truncated: header declares {dims[0]} {what} ({declared} data bytes) "
            f"but the file holds {payload} data bytes",
        )
    if payload > declared:
        raise DatasetCorruptError(
            path,
            f"{payload - declared} unexpected bytes after the {dims[0]} {what} the header declares",
        )
    if dims[0] == 0:
        raise DatasetCorruptError(path, f"contains no {what}")
    return np.frombuffer(raw, dtype=np.uint8, count=declared, offset=header_size).reshape(dims)


def _check_labels(path: Path, labels: np.ndarray) -> np.ndarray:
    largest = int(labels.max())
    if largest >= NUM_CLASSES or (labels.dtype.kind == "i" and int(labels.min()) < 0):
        bad = labels[(labels < 0) | (labels >= NUM_CLASSES)]
        raise DatasetCorruptError(path, f"label value {int(bad[0])} outside 0..{NUM_CLASSES - 1}")
    return labels


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR-10 batches contain (dicts, lists, numpy arrays).

    Pickle can run arbitrary code on load; refusing other globals keeps a tampered or unrelated
    file in the data directory from doing so.
    """

    _ALLOWED = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("_codecs", "encode"),  # protocol-2 pickles made by Python 3 encode bytes this way
        }
    )

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: CIFAR-10 batches hold only "
                "dicts, lists and numpy arrays"
            )
        if module.startswith("numpy.core.") and int(np.__version__.split(".")[0]) >= 2:
            # numpy 2 renamed numpy.core to numpy._core; the old name only warns and forwards.
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


_UNPICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    ImportError,
    OverflowError,
)


def _parse_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open("rb") as handle:
        try:
            # latin1 is what torchvision uses: the official batches were pickled by Python 2.
            entry = _CifarUnpickler(handle, encoding="latin1").load()
        except _UNPICKLE_ERRORS as exc:
            raise DatasetCorruptError(
                path, f"not a CIFAR-10 pickle ({type(exc).__name__}: {exc})"
            ) from exc
    if not isinstance(entry, dict):
        raise DatasetCorruptError(path, f"holds a {type(entry).__name__}, expected a dict")
    data = entry.get("data", entry.get(b"data"))
    labels = entry.get("labels", entry.get(b"labels"))
    if data is None or labels is None:
        raise DatasetCorruptError(path, "has no 'data' and 'labels' entries")
    data = np.asarray(data)
    pixels = int(np.prod(_CIFAR_IMAGE_SHAPE))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != pixels:
        raise DatasetCorruptError(
            path,
            f"'data' is {data.dtype} with shape {data.shape}, expected uint8 of shape (N, {pixels})",
        )
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DatasetCorruptError(path, f"'labels' is {labels.dtype} {labels.shape}, expected ints")
    if labels.shape[0] != data.shape[0]:
        raise DatasetCorruptError(path, f"has {data.shape[0]} images but {labels.shape[0]} labels")
    if data.shape[0] == 0:
        raise DatasetCorruptError(path, "contains no images")
    _check_labels(path, labels)
    return data.reshape(-1, *_CIFAR_IMAGE_SHAPE), labels.astype(np.int64)
