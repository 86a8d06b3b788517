"""The simplest training-time baseline: a one-shot criterion's mask, then fine-tuning it.

The mask is fixed at the start (by any registered one-shot method that does not train) and the
whole epoch budget fine-tunes the weights it keeps, with :func:`masksearch.training.finetune`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from masksearch import training
from masksearch.device import resolve_device
from masksearch.methods.base import (
    METHODS,
    MethodError,
    OneShotMethod,
    TrainingMethod,
    emit,
    make_method,
    register,
)

__all__ = ["OneShotFinetune"]


@register
@dataclass
class OneShotFinetune(TrainingMethod):
    """A one-shot criterion at the target density, then the whole budget fine-tunes that mask."""

    name: ClassVar[str] = "oneshot_finetune"

    criterion: str = "magnitude"
    scope: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        cls = METHODS.get(self.criterion)
        if cls is None or not issubclass(cls, OneShotMethod) or getattr(cls, "uses_epochs", False):
            choices = sorted(
                n
                for n, c in METHODS.items()
                if issubclass(c, OneShotMethod) and not getattr(c, "uses_epochs", False)
            )
            raise MethodError(
                f"criterion must be a one-shot method that does not train, one of {choices}; "
                f"got {self.criterion!r}"
            )
        cls(scope=self.scope)  # refuses a scope the criterion does not support

    def _run(self, model, split, density, epochs, seed, device, progress):
        criterion = make_method(self.criterion)
        model.to(resolve_device(device))
        mask = criterion.prune(model, split, density, scope=self.scope)
        emit(progress, self.name, "pruned", mask, criterion=self.criterion)

        def forward(entry: dict[str, Any]) -> None:
            emit(progress, self.name, "epoch", **entry, epochs_used=float(entry["epoch"]))

        training.finetune(
            model,
            mask,
            split,
            epochs=epochs,
            seed=seed,
            device=device,
            progress=forward,
            **self.settings(),
        )
        emit(progress, self.name, "done", mask, epochs_used=float(epochs))
        return model, mask
