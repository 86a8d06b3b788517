"""The two interfaces every pruning method implements, and the registry that names them.

A :class:`OneShotMethod` turns a model (and, for data-driven criteria, some data) into a
:class:`~masksearch.mask.Mask` at a requested density without training. A :class:`TrainingMethod`
prunes while it trains, within a budget counted in epochs of the train split, and returns the
trained model with its final mask. Methods are dataclasses: their options are constructor
keywords, validated on construction, and :func:`make_method` builds one by its registered name.

Every method reports what it did through ``progress(dict)``: each call carries ``"method"``
(the registered name) and ``"event"`` (what happened), and the last one has ``"event": "done"``
with the final ``density``, ``layer_densities`` and, for training methods, ``epochs_used``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from masksearch.mask import Mask, MaskError, check_density, prunable_parameters
from masksearch.training import OPTIMIZERS

__all__ = [
    "METHODS",
    "MethodError",
    "MethodRegistry",
    "OneShotMethod",
    "Progress",
    "TrainingMethod",
    "check_epochs",
    "check_fraction",
    "check_int",
    "make_method",
    "register",
    "train_split",
]

Progress = Callable[[dict[str, Any]], None]

_Method = TypeVar("_Method", bound=type)


class MethodError(ValueError):
    """A pruning method was asked for something it cannot do (bad option, layer, budget)."""


class MethodRegistry(dict[str, type]):
    """Registered name -> method class, where a method's old names find it too.

    An old name (a class's ``old_names``, kept so that configurations and scripts written
    before a rename still work) answers ``in``, ``[]`` and ``get`` but is not a key: iterating,
    ``sorted(METHODS)`` and error messages list every method once, under its current name.
    """

    def __init__(self) -> None:
        super().__init__()
        self.aliases: dict[str, str] = {}

    def __missing__(self, name: str) -> type:
        if name in self.aliases:
            return self[self.aliases[name]]
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or name in self.aliases

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(self.aliases.get(name, name), default)


METHODS = MethodRegistry()


def register(cls: _Method) -> _Method:
    """Class decorator: add ``cls`` to :data:`METHODS` under ``cls.name`` (and its
    ``old_names``, if it has any)."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a class attribute `name` to be registered")
    old_names = tuple(getattr(cls, "old_names", ()))
    for key in (name, *old_names):
        if key in METHODS and METHODS[key] is not cls:
            raise ValueError(f"a method named {key!r} is already registered ({METHODS[key]})")
    METHODS[name] = cls
    METHODS.aliases.update(dict.fromkeys(old_names, name))
    return cls


def make_method(name: str, **options: Any) -> OneShotMethod | TrainingMethod:
    """Build the method registered as ``name`` (or an old name of it) with ``options`` (its
    dataclass fields)."""
    if name not in METHODS:
        raise ValueError(f"unknown pruning method {name!r}; choose one of {sorted(METHODS)}")
    cls = METHODS[name]
    known = [field.name for field in dataclasses.fields(cls) if field.init]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(
            f"pruning method {name!r} has no option {unknown[0]!r}; its options are {known}"
        )
    return cls(**options)


def train_split(data: Any) -> Any:
    """The split a method learns from: ``data.train`` for a Dataset, ``data`` for a Split."""
    if data is None:
        raise TypeError(
            "this method needs data: pass a masksearch.data.Dataset (its train split is used) "
            "or a Split with tensors .x and .y"
        )
    candidate = getattr(data, "train", data)
    x, y = getattr(candidate, "x", None), getattr(candidate, "y", None)
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(
            "data must be a masksearch.data.Dataset or a Split with tensors .x (images) and "
            f".y (labels); got {type(data).__name__}"
        )
    if not x.is_floating_point():
        raise TypeError(f"data .x must hold floating-point images, got dtype {x.dtype}")
    if y.dim() != 1 or len(x) != len(y) or len(y) == 0:
        raise ValueError(
            f"data .x has {len(x)} samples but .y has shape {tuple(y.shape)}; "
            "they need one integer label per image and at least one sample"
        )
    return candidate


def check_epochs(epochs: object) -> int:
    """Validate an epoch budget: an int >= 1."""
    if isinstance(epochs, bool) or not isinstance(epochs, int):
        raise TypeError(f"epochs must be an int (the total training budget), got {epochs!r}")
    if epochs < 1:
        raise MethodError(
            f"epochs must be >= 1 (the total training budget in epochs of the train split), "
            f"got {epochs}"
        )
    return epochs


def check_fraction(name: str, value: object, *, low_open: bool = False, high: float = 1.0) -> None:
    """Validate option ``name``: a number in [0, high], or (0, high] with ``low_open``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MethodError(f"{name} must be a number, got {value!r}")
    if (value <= 0 if low_open else value < 0) or value > high:
        interval = f"({0}, {high}]" if low_open else f"[0, {high}]"
        raise MethodError(f"{name} must be in {interval}, got {value!r}")


def check_int(name: str, value: object, minimum: int) -> None:
    """Validate option ``name``: an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise MethodError(f"{name} must be an int >= {minimum}, got {value!r}")


def prunable(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights every method prunes: those of :func:`masksearch.mask.prunable_parameters`."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return prunable_parameters(model)


def model_device(model: nn.Module) -> torch.device:
    reference = next(model.parameters(), None)
    return reference.device if reference is not None else torch.device("cpu")


@dataclass
class OneShotMethod(ABC):
    """Prune without training: ``prune(model, data, density) -> Mask``.

    ``scope`` (an option, or per call) picks the comparison group: ``"global"`` ranks all
    prunable weights together, ``"layer"`` keeps the same fraction of every tensor; ``None``
    means the method's native scope (the first of its ``scopes``). The model is not modified.
    """

    name: ClassVar[str]
    scopes: ClassVar[tuple[str, ...]] = ("global", "layer")
    needs_data: ClassVar[bool] = True

    scope: str | None = None

    def __post_init__(self) -> None:
        self._resolve_scope(self.scope)

    def prune(
        self,
        model: nn.Module,
        data: Any,
        density: float,
        *,
        scope: str | None = None,
        progress: Progress | None = None,
    ) -> Mask:
        """The mask that keeps a ``density`` fraction of ``model``'s prunable weights."""
        density = check_density(density)
        chosen = self._resolve_scope(scope if scope is not None else self.scope)
        params = prunable(model)
        split = train_split(data) if self.needs_data else None
        mask = self._prune(model, params, split, density, chosen, progress)
        emit(progress, self.name, "done", mask, scope=chosen)
        return mask

    @abstractmethod
    def _prune(
        self,
        model: nn.Module,
        params: dict[str, nn.Parameter],
        split: Any,
        density: float,
        scope: str,
        progress: Progress | None,
    ) -> Mask:
        """Compute the mask; arguments are already validated."""

    def prune_each(
        self,
        model: nn.Module,
        data: Any,
        densities: Sequence[float],
        *,
        scope: str | None = None,
        progress: Progress | None = None,
    ) -> list[Mask]:
        """One mask per density, in the order given (a warm start's seeds). Each is
        :meth:`prune`'s; a method that shares work across densities overrides this."""
        return [
            self.prune(model, data, density, scope=scope, progress=progress)
            for density in densities
        ]

    def epochs_for(self, n_densities: int) -> float:
        """Passes over the train split :meth:`prune_each` makes for ``n_densities`` masks
        (0 for a method that does not train)."""
        epochs = getattr(self, "epochs", 0) if getattr(self, "uses_epochs", False) else 0
        return float(epochs * n_densities)

    def _resolve_scope(self, scope: str | None) -> str:
        if scope is None:
            return self.scopes[0]
        if scope not in self.scopes:
            raise MaskError(
                f"method {self.name!r} supports scope {list(self.scopes)}, got {scope!r}"
            )
        return scope


@dataclass
class TrainingMethod(ABC):
    """Prune while training: ``run(model, data, target_density, epochs=...) -> (model, Mask)``.

    ``epochs`` is the whole training budget, counted in passes over the train split, so methods
    compare at equal cost; a method may split it into rounds of fractional epochs. The model is
    trained in place (on ``device``) and returned; its pruned weights are exactly 0.0. The
    optimiser options below are shared by every training method.
    """

    name: ClassVar[str]

    lr: float = 0.01
    batch_size: int = 128
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.lr, (int, float)) or isinstance(self.lr, bool) or self.lr <= 0:
            raise MethodError(f"lr must be a number > 0, got {self.lr!r}")
        if (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, int)
            or self.batch_size < 1
        ):
            raise MethodError(f"batch_size must be an int >= 1, got {self.batch_size!r}")
        if self.optimizer not in OPTIMIZERS:
            raise MethodError(
                f"unknown optimizer {self.optimizer!r}; choose one of {list(OPTIMIZERS)}"
            )
        for option in ("momentum", "weight_decay"):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise MethodError(f"{option} must be a number >= 0, got {value!r}")

    def run(
        self,
        model: nn.Module,
        data: Any,
        target_density: float,
        *,
        epochs: int,
        seed: int = 0,
        device: str | torch.device = "cpu",
        progress: Progress | None = None,
    ) -> tuple[nn.Module, Mask]:
        """Prune ``model`` to ``target_density`` within ``epochs``; return it and its mask."""
        density = check_density(target_density)
        epochs = check_epochs(epochs)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        prunable(model)
        split = train_split(data)
        return self._run(model, split, density, epochs, seed, device, progress)

    @abstractmethod
    def _run(
        self,
        model: nn.Module,
        split: Any,
        density: float,
        epochs: int,
        seed: int,
        device: str | torch.device,
        progress: Progress | None,
    ) -> tuple[nn.Module, Mask]:
        """Train and prune; arguments are already validated."""

    def settings(self) -> dict[str, Any]:
        """The optimiser options, as keywords of :func:`masksearch.training.train`."""
        return {
            "lr": self.lr,
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
        }


def emit(
    progress: Progress | None, method: str, event: str, mask: Mask | None = None, **fields: Any
) -> None:
    """Send one progress record (with the mask's densities when given) if anyone listens."""
    if progress is None:
        return
    record: dict[str, Any] = {"method": method, "event": event}
    if mask is not None:
        record["density"] = mask.density
        record["layer_densities"] = mask.layer_densities()
    record.update(fields)
    progress(record)
