"""The models incremental evaluation supports, and their Linear layers as arrays.

:class:`~masksearch.evaluators.incremental.IncrementalEvaluator` handles an ``nn.Sequential``
of Flatten / Linear / ReLU plus eval-mode no-ops (Identity, Dropout) whose layout prunes only
the Linear layers' weights; :func:`linear_stack` checks a model and lists its Linear layers,
:class:`UnsupportedModelError` says why a model is not one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from masksearch.mask import Layout

_NO_OPS = (nn.Identity, nn.Dropout)


class UnsupportedModelError(ValueError):
    """The model is not a plain Linear stack the incremental evaluator can handle."""


@dataclass(frozen=True)
class _Layer:
    weight: np.ndarray  # (out, in) float32
    relu: bool  # a ReLU follows this layer
    genes: slice | None  # where this weight's mask sits in the flat mask (None: not pruned)
    rows: slice  # where this layer's neurons sit in the stacked pre-activations

    @property
    def shape(self) -> tuple[int, int]:
        return self.weight.shape  # type: ignore[return-value]


def linear_stack(model: nn.Module, layout: Layout) -> list[tuple[str, nn.Linear, bool]]:
    """``(name, linear, relu_follows)`` for each Linear layer of a supported model.

    Raises :class:`UnsupportedModelError` naming the first module or layout entry that an
    incremental evaluation cannot handle.
    """
    if not isinstance(model, nn.Sequential):
        raise UnsupportedModelError(
            f"incremental evaluation needs an nn.Sequential of Flatten/Linear/ReLU, got "
            f"{type(model).__name__}; use kind='batched' or 'plain'"
        )
    layers: list[tuple[str, nn.Linear, bool]] = []
    for name, module in model.named_children():
        if isinstance(module, nn.Linear):
            layers.append((name, module, False))
        elif isinstance(module, nn.ReLU):
            if not layers:
                raise UnsupportedModelError("a ReLU before the first Linear layer is not supported")
            last = layers[-1]
            layers[-1] = (last[0], last[1], True)
        elif isinstance(module, nn.Flatten):
            if layers and (module.start_dim != 1 or module.end_dim != -1):
                raise UnsupportedModelError(f"module {name!r}: only Flatten() is supported")
        elif not isinstance(module, _NO_OPS):
            raise UnsupportedModelError(
                f"module {name!r} ({type(module).__name__}) is not Flatten/Linear/ReLU; "
                "incremental evaluation supports plain MLPs only — use kind='batched'"
            )
    if not layers:
        raise UnsupportedModelError("the model has no Linear layer")
    weights = {f"{name}.weight" for name, _, _ in layers}
    for entry in layout.names:
        if entry not in weights:
            raise UnsupportedModelError(
                f"the layout prunes {entry!r}; incremental evaluation only prunes the Linear "
                "layers' weights (no biases) — use kind='batched'"
            )
    return layers
