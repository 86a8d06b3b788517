"""The reference evaluator: one masked forward pass per candidate.

Every faster evaluator is tested against this one. It makes no assumption about the model: any
``nn.Module`` whose prunable weights the layout names works.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from masksearch.evaluators.base import (
    Evaluator,
    Metrics,
    ModelSnapshot,
    _SplitLike,
    metrics_from_logits,
)
from masksearch.mask import Layout

__all__ = ["PlainEvaluator"]


class PlainEvaluator(Evaluator):
    """Mean cross-entropy and error of each mask, one ``functional_call`` per candidate.

    The masked weights are ``weight * mask`` (exactly what :meth:`Mask.apply` produces), the
    model runs in eval mode, and ``batch_size`` samples go through at a time (``None``: 256
    for a model with convolutions on the CPU, the whole split otherwise; see
    :attr:`ModelSnapshot.default_batch_size`). ``label_smoothing`` > 0 smooths the loss (see
    :mod:`masksearch.evaluators.base`).
    """

    def __init__(
        self,
        model: nn.Module,
        split: _SplitLike,
        layout: Layout,
        device: str | torch.device = "cpu",
        batch_size: int | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        self._take_snapshot(model, split, layout, device, label_smoothing)
        self.batch_size = _check_batch_size(batch_size, self.snapshot.default_batch_size)

    def _evaluate(self, masks: np.ndarray) -> Metrics:
        snap = self.snapshot
        # the snapshot's tensors are detached: masking them builds no autograd graph
        return metrics_of(
            [
                score_params(snap, snap.masked_params(flat), self.batch_size, self.label_smoothing)
                for flat in masks
            ]
        )


def score_params(
    snap: ModelSnapshot,
    params: dict[str, torch.Tensor],
    batch_size: int,
    label_smoothing: float = 0.0,
) -> tuple[float, float]:
    """(mean cross-entropy, smoothed by ``label_smoothing``; error) of the snapshot's module
    with ``params`` on its split, ``batch_size`` samples at a time."""
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, snap.n_samples, batch_size):
            stop = start + batch_size
            logits = functional_call(snap.module, params, (snap.x[start:stop],))
            batch_loss, batch_correct = metrics_from_logits(
                logits, snap.y[start:stop], label_smoothing
            )
            loss_sum += batch_loss
            correct += batch_correct
    return loss_sum / snap.n_samples, 1.0 - correct / snap.n_samples


def metrics_of(scores: list[tuple[float, float]]) -> Metrics:
    """The metrics dict of (loss, error) pairs, one per candidate."""
    table = np.asarray(scores, dtype=np.float64).reshape(len(scores), 2)
    return {"loss": table[:, 0].copy(), "error": table[:, 1].copy()}


def _check_batch_size(batch_size: int | None, default: int) -> int:
    if batch_size is None:
        return default
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int or None, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(
            f"batch_size must be >= 1 (or None for the evaluator's default), got {batch_size}"
        )
    return int(batch_size)
