"""Pretrained reference models, trained on first use and cached on disk.

Each supported (model, dataset) pair has one fixed training :class:`Recipe`. The first call to
:func:`pretrained` trains the model on the dataset's train split and writes it to
``cache_dir()/<model>-<dataset>-<recipe hash>.pt``; later calls load that file (and, within one
process, reuse it from memory). A file that is unreadable, truncated, fails its checksum or was
made by another recipe is reported with a :class:`CacheWarning` and rebuilt. Files are written
atomically, so concurrent writers never leave a half-written file behind.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from masksearch import models, training
from masksearch.io import atomic_torch_save, refused_global

__all__ = [
    "RECIPES",
    "CacheWarning",
    "Recipe",
    "cache_dir",
    "cache_path",
    "dense_accuracy",
    "dense_sha256",
    "pretrained",
]

FORMAT = 1
ENV_VAR = "MASKSEARCH_CACHE"
_PAYLOAD_KEYS = frozenset(
    {"format", "model", "dataset", "recipe", "num_classes", "test_accuracy", "sha256", "state_dict"}
)


class CacheWarning(UserWarning):
    """A cached model file could not be used (and is being rebuilt) or written."""


@dataclass(frozen=True)
class Recipe:
    """How a zoo model is trained; the arguments of :func:`masksearch.training.train`."""

    epochs: int
    lr: float
    batch_size: int = 128
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    lr_schedule: str = "constant"

    def digest(self) -> str:
        """SHA-256 of the recipe's fields; it names the cache file."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


# Measured on Fashion-MNIST's test split, 2 CPU cores: LeNet-300-100 89.3% in ~12 s,
# LeNet-5 90.8% in ~95 s (seed 1: 90.5%); digits_mlp 98.7% on digits in ~0.2 s.
# LeNet-5 has no ReLU after its convolutions, and SGD diverges above lr ~0.03.
_LENET300 = Recipe(epochs=8, lr=0.05, batch_size=128, lr_schedule="cosine")
_LENET5 = Recipe(epochs=5, lr=0.02, batch_size=128, lr_schedule="cosine")

RECIPES: dict[tuple[str, str], Recipe] = {
    ("digits_mlp", "digits"): Recipe(epochs=10, lr=0.05, batch_size=64, lr_schedule="cosine"),
    ("lenet300", "fashion-mnist"): _LENET300,
    ("lenet5", "fashion-mnist"): _LENET5,
    ("lenet300", "mnist"): _LENET300,
    ("lenet5", "mnist"): _LENET5,
    ("resnet8", "fashion-mnist"): Recipe(
        epochs=4, lr=0.1, batch_size=128, weight_decay=5e-4, lr_schedule="cosine"
    ),
    # no data augmentation: expect roughly 85% rather than the paper's 91.7%
    ("resnet20", "cifar10"): Recipe(
        epochs=30, lr=0.1, batch_size=128, weight_decay=5e-4, lr_schedule="cosine"
    ),
}


@dataclass(frozen=True)
class _Entry:
    model: nn.Module  # CPU, eval mode; callers get deep copies
    test_accuracy: float
    sha256: str  # of the weights: tells results computed on different dense models apart


# (resolved path, mtime_ns, size) -> entry: a file rewritten by another process is re-read
_MEMO: dict[tuple[str, int, int], _Entry] = {}


def cache_dir() -> Path:
    """Where zoo models are cached: ``$MASKSEARCH_CACHE`` or ``~/.cache/masksearch``."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "masksearch"


def cache_path(model: str, dataset: str) -> Path:
    """The cache file of the (model, dataset) pair under its current recipe."""
    recipe = _recipe(model, dataset)
    return cache_dir() / f"{model}-{dataset}-{recipe.digest()[:12]}.pt"


def pretrained(
    model: str,
    dataset: str,
    *,
    root: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    progress: Callable[[dict[str, Any]], None] | None = None,
    retrain: bool = False,
) -> nn.Module:
    """A fresh copy of ``model`` trained on ``dataset`` with its recipe, on ``device``, in eval mode.

    Trains (passing ``progress`` per-epoch logs) and caches on first use or when ``retrain``;
    otherwise loads the cached weights. ``root`` is where to look for the data
    (see :func:`masksearch.data.load`).
    """
    entry = _obtain(model, dataset, root=root, device=device, progress=progress, retrain=retrain)
    return copy.deepcopy(entry.model).to(training.resolve_device(device))


def dense_accuracy(
    model: str,
    dataset: str,
    *,
    root: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
) -> float:
    """Test-split accuracy of the pretrained ``model`` (trains and caches it if needed)."""
    return _obtain(
        model, dataset, root=root, device=device, progress=None, retrain=False
    ).test_accuracy


def dense_sha256(
    model: str,
    dataset: str,
    *,
    root: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
) -> str:
    """The sha256 of the pretrained ``model``'s weights (trains and caches it if needed).

    Training is deterministic for one CPU, torch build and thread count, but floating-point
    sums differ between instruction sets (AVX2, AVX-512) and thread counts, so two machines
    can train different dense models from the same recipe. Results that are reused across
    runs record this digest so that they are only reused against the same weights.
    """
    return _obtain(model, dataset, root=root, device=device, progress=None, retrain=False).sha256


# -- internals -----------------------------------------------------------------------------


def _recipe(model: str, dataset: str) -> Recipe:
    try:
        return RECIPES[(model, dataset)]
    except KeyError:
        pairs = ", ".join(f"{m}/{d}" for m, d in RECIPES)
        raise ValueError(
            f"no pretrained recipe for model {model!r} on dataset {dataset!r}; "
            f"available pairs: {pairs}"
        ) from None


def _obtain(
    model: str,
    dataset: str,
    *,
    root: str | os.PathLike[str] | None,
    device: str | torch.device,
    progress: Callable[[dict[str, Any]], None] | None,
    retrain: bool,
) -> _Entry:
    recipe = _recipe(model, dataset)
    target = training.resolve_device(device)
    path = cache_path(model, dataset)
    key = None if retrain else _memo_key(path)
    if key is not None:
        if key in _MEMO:
            return _MEMO[key]
        try:
            entry = _read(path, model, dataset, recipe)
        except _UnusableCache as problem:
            warnings.warn(
                f"cached model {path} is unusable ({problem}); retraining it",
                CacheWarning,
                stacklevel=3,
            )
        else:
            _MEMO[key] = entry
            return entry
    entry, payload = _train(model, dataset, recipe, root=root, device=target, progress=progress)
    try:
        atomic_torch_save(dict(payload), path)
    except OSError as error:
        warnings.warn(
            f"could not write the cache file {path} ({error}); the model will be retrained "
            f"next time. Set ${ENV_VAR} to a writable folder.",
            CacheWarning,
            stacklevel=3,
        )
    else:
        key = _memo_key(path)
        if key is not None:
            _MEMO[key] = entry
    return entry


def _train(
    model: str,
    dataset: str,
    recipe: Recipe,
    *,
    root: str | os.PathLike[str] | None,
    device: torch.device,
    progress: Callable[[dict[str, Any]], None] | None,
) -> tuple[_Entry, dict[str, Any]]:
    from masksearch import data  # only needed when a model has to be trained

    loaded = data.load(dataset, root=root)
    network = models.build(model, loaded.num_classes, seed=recipe.seed)
    training.train(network, loaded.train, device=device, progress=progress, **asdict(recipe))
    accuracy = training.evaluate(network, loaded.test, device=device).accuracy
    network.to("cpu").eval()
    state = {name: tensor.detach().clone() for name, tensor in network.state_dict().items()}
    payload = {
        "format": FORMAT,
        "model": model,
        "dataset": dataset,
        "recipe": asdict(recipe),
        "num_classes": loaded.num_classes,
        "test_accuracy": accuracy,
        "sha256": _state_sha256(state),
        "state_dict": state,
    }
    return _Entry(network, accuracy, payload["sha256"]), payload


class _UnusableCache(Exception):
    """Why a cache file cannot be used (internal: turned into a CacheWarning)."""


def _read(path: Path, model: str, dataset: str, recipe: Recipe) -> _Entry:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = refused_global(error)
        if found:
            raise _UnusableCache(
                f"refers to code ({found}), which a zoo file never does; nothing in it was run"
            ) from None
        raise _UnusableCache("cannot be read: it is damaged or not a torch file") from None
    except Exception as error:  # truncated zip, ...: all mean "rebuild"
        # torch's own messages run to many lines of advice that does not apply here
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        raise _UnusableCache(f"cannot be read: {type(error).__name__}: {first_line}") from None
    if not isinstance(payload, Mapping):
        raise _UnusableCache(f"holds a {type(payload).__name__}, not a zoo payload")
    if payload.get("format") != FORMAT:
        raise _UnusableCache(f"format {payload.get('format')!r}, expected {FORMAT}")
    missing = sorted(_PAYLOAD_KEYS - set(payload))
    if missing:
        raise _UnusableCache(f"missing keys {missing}")
    if (payload["model"], payload["dataset"]) != (model, dataset):
        raise _UnusableCache(
            f"it holds {payload['model']}/{payload['dataset']}, expected {model}/{dataset}"
        )
    if payload["recipe"] != asdict(recipe):
        raise _UnusableCache(f"made by recipe {payload['recipe']}, expected {asdict(recipe)}")
    state = payload["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(t, torch.Tensor) for t in state.values()
    ):
        raise _UnusableCache("its state_dict is not a mapping of tensors")
    if _state_sha256(state) != payload["sha256"]:
        raise _UnusableCache("the weights do not match their sha256 checksum")
    try:
        # a seeded build leaves the global RNG alone; the weights are overwritten anyway
        network = models.build(model, int(payload["num_classes"]), seed=recipe.seed)
        network.load_state_dict(state)
    except (RuntimeError, ValueError, TypeError) as error:
        raise _UnusableCache(f"the weights do not fit {model}: {error}") from None
    return _Entry(network.eval(), float(payload["test_accuracy"]), str(payload["sha256"]))


def _state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    # A canonical digest of names, dtypes, shapes and raw bytes: independent of how torch
    # happens to lay out the zip archive.
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _memo_key(path: Path) -> tuple[str, int, int] | None:
    """Identity of the file's current version, or None when there is no file."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
