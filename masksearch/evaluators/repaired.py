"""Scores after a cheap repair: a few SGD steps on the weights a mask keeps and/or batch-norm
statistics re-estimated for the pruned network, then the metrics.

A mask's accuracy on frozen weights is not the accuracy it reaches once fine-tuned: a mask whose
kept weights adapt well can start lower. This evaluator scores each candidate as fine-tuning
would begin to see it, so a front chosen on it is chosen for what fine-tuning makes of it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from masksearch.evaluators.base import Evaluator, Metrics, _SplitLike, split_tensors
from masksearch.evaluators.plain import _check_batch_size, metrics_of, score_params
from masksearch.mask import Layout

__all__ = ["RepairedEvaluator", "check_repair_steps"]


def check_repair_steps(steps: object, name: str = "repair_steps") -> int:
    """``steps`` as an int, or a ValueError naming the setting when it is not a count."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"{name} must be a whole number >= 0, got {steps!r}")
    return int(steps)


_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class RepairedEvaluator(Evaluator):
    """Loss and error of each mask after ``steps`` SGD steps on the weights it keeps.

    Every candidate starts from the same dense weights, trains on the same ``steps`` mini-batches
    of ``train`` (drawn once with ``seed``: common random numbers, so candidates differ only by
    their masks) with fine-tuning's recipe (SGD, ``lr``, ``momentum``; biases and other
    parameters train too; pruned weights stay exactly 0.0), and is then scored on ``split``.
    The model stays in eval mode throughout (batch-norm statistics and dropout as in scoring).
    ``label_smoothing`` > 0 smooths the loss the candidate is scored on, not the repair's
    steps (they stand for fine-tuning, which trains on the plain cross-entropy).
    ``steps=0`` scores the masked dense weights, as :class:`PlainEvaluator` does.

    ``recalibrate_bn`` > 0 re-estimates every batch norm's running mean and variance on that
    many training batches (a plain average, in train mode) before scoring: removing channels
    shifts the statistics the next batch norms were fitted to, and a structured candidate
    judged on stale statistics looks far worse than it is after fine-tuning (the adaptive
    batch norm of EagleEye, Li et al. 2020). With SGD steps as well, the statistics are
    re-estimated before the steps too, so the steps train the network as it will be
    normalised: taken on the dense network's statistics, ten steps left channel-pruned
    ResNet-8s close to chance, far worse than no step at all. Those batches follow the SGD ones in
    the same fixed order, and both re-estimations use them.
    """

    def __init__(
        self,
        model: nn.Module,
        split: _SplitLike,
        layout: Layout,
        train: _SplitLike,
        *,
        steps: int = 10,
        batch_size: int = 128,
        lr: float = 0.01,
        momentum: float = 0.9,
        seed: int = 0,
        device: str | torch.device = "cpu",
        eval_batch_size: int | None = None,
        recalibrate_bn: int = 0,
        label_smoothing: float = 0.0,
    ) -> None:
        steps = check_repair_steps(steps)
        recalibrate_bn = check_repair_steps(recalibrate_bn, "recalibrate_bn")
        if not lr > 0 or not 0 <= momentum < 1:
            raise ValueError(
                f"repair needs lr > 0 and 0 <= momentum < 1, got lr={lr}, momentum={momentum}"
            )
        self._take_snapshot(model, split, layout, device, label_smoothing)
        snap = self.snapshot
        if len(train) == 0:
            raise ValueError("the repair's training data is empty; pass the training split")
        x_train, y_train = split_tensors(train)
        batch_size = _check_batch_size(batch_size, len(y_train))
        generator = torch.Generator().manual_seed(int(seed))
        order = torch.randperm(len(y_train), generator=generator)
        # the same batches for every candidate, wrapping around a small training split
        n_batches = steps + recalibrate_bn
        picks = torch.arange(n_batches * batch_size) % len(y_train)
        chosen = order[picks].reshape(n_batches, batch_size) if n_batches else []
        dtype = snap.x.dtype
        batches = [
            (x_train[rows].to(snap.device, dtype), y_train[rows].to(snap.device)) for rows in chosen
        ]
        self._batches, self._bn_batches = batches[:steps], [x for x, _ in batches[steps:]]
        self._norms = [
            name for name, m in snap.module.named_modules() if isinstance(m, _BATCH_NORMS)
        ]
        if recalibrate_bn and not self._norms:
            raise ValueError(
                f"recalibrate_bn={recalibrate_bn} but {type(model).__name__} has no batch norm "
                "to recalibrate; leave it at 0"
            )
        self.steps = steps
        self.recalibrate_bn = recalibrate_bn
        self.batch_size = batch_size
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.seed = int(seed)
        self.eval_batch_size = _check_batch_size(eval_batch_size, snap.n_samples)
        self._trainable = [
            name
            for name, p in dict(snap.module.named_parameters()).items()
            if p.is_floating_point()
        ]

    def repaired_params(self, flat: np.ndarray) -> dict[str, torch.Tensor]:
        """All parameters and buffers of one mask's model after the repair steps."""
        snap = self.snapshot
        params = snap.masked_params(flat)
        if self._bn_batches and self._batches:
            # the steps train the network as it will be scored: normalised by statistics of the
            # pruned network, not the dense one's (stale statistics send a channel-pruned
            # ResNet's first steps far off, and recalibrating after them cannot undo that)
            params = self._recalibrated(params)
        keep = dict(zip(self.layout.names, snap.mask_tensors(flat), strict=True))
        weights = {name: params[name].clone().requires_grad_(True) for name in self._trainable}
        velocity = {name: torch.zeros_like(w) for name, w in weights.items()}
        for x, y in self._batches:
            logits = functional_call(snap.module, {**params, **weights}, (x,))
            loss = nn.functional.cross_entropy(logits, y)
            grads = torch.autograd.grad(loss, list(weights.values()))
            with torch.no_grad():
                for (name, weight), grad in zip(weights.items(), grads, strict=True):
                    if name in keep:
                        grad = grad * keep[name]  # a pruned weight gets no update, and no momentum
                    velocity[name].mul_(self.momentum).add_(grad)
                    weight.sub_(self.lr * velocity[name])
        repaired = {**params, **{name: w.detach() for name, w in weights.items()}}
        if self._bn_batches:
            repaired = self._recalibrated(repaired)
        return repaired

    def _recalibrated(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``params`` with fresh batch-norm statistics: the plain mean over the batches."""
        module = self.snapshot.module
        norms = dict(module.named_modules())
        fresh = dict(params)
        for name in self._norms:
            prefix = f"{name}." if name else ""
            if norms[name].running_mean is None:
                continue  # track_running_stats=False: it normalises by batch statistics anyway
            fresh[prefix + "running_mean"] = torch.zeros_like(params[prefix + "running_mean"])
            fresh[prefix + "running_var"] = torch.ones_like(params[prefix + "running_var"])
            fresh[prefix + "num_batches_tracked"] = torch.zeros_like(
                params[prefix + "num_batches_tracked"]
            )
        momenta = {name: norms[name].momentum for name in self._norms}
        try:
            module.train()
            for name in self._norms:
                norms[name].momentum = None  # cumulative average: every batch weighs the same
            with torch.no_grad():
                for x in self._bn_batches:
                    functional_call(module, fresh, (x,))  # updates the fresh buffers in place
        finally:
            module.eval()
            for name, momentum in momenta.items():
                norms[name].momentum = momentum
        return fresh

    def _evaluate(self, masks: np.ndarray) -> Metrics:
        return metrics_of(
            [
                score_params(
                    self.snapshot,
                    self.repaired_params(flat),
                    self.eval_batch_size,
                    self.label_smoothing,
                )
                for flat in masks
            ]
        )

    def __repr__(self) -> str:
        return (
            f"RepairedEvaluator(steps={self.steps}, recalibrate_bn={self.recalibrate_bn}, "
            f"batch_size={self.batch_size}, lr={self.lr}, momentum={self.momentum}, "
            f"n_samples={self.snapshot.n_samples})"
        )
