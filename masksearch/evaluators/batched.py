"""Exact population evaluation in few passes, and multi-fidelity screening.

:class:`BatchedEvaluator` stacks the masked weights of a chunk of candidates and runs them
through the model together with ``torch.func.vmap`` over ``functional_call`` (batched matmuls
for Linear layers, grouped convolutions for Conv layers). The chunk size is derived from a
memory budget, so memory stays bounded whatever the population size.

:class:`SuccessiveHalvingEvaluator` evaluates every candidate on a small subsample and promotes
only the best ones to larger samples (successive halving).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from masksearch.evaluators.base import (
    Evaluator,
    Metrics,
    _SplitLike,
    inner_state,
    label_log_likelihood,
    load_inner_state,
)
from masksearch.evaluators.plain import _check_batch_size
from masksearch.mask import Layout

__all__ = ["BatchedEvaluator", "SuccessiveHalvingEvaluator", "random_subset"]

_CPU_BUDGET = 512 * 2**20
_GPU_FREE_FRACTION = 0.5
# activations, their gradients-free temporaries (log-softmax, grouped-conv buffers) and the
# masked weights in flight: measured peak / naive estimate stays below this on lenet300/lenet5
_SAFETY = 3


class BatchedEvaluator(Evaluator):
    """Exact metrics of a population, ``chunk_size`` candidates per forward pass.

    ``memory_budget`` (bytes; default 512 MiB on CPU, half the free GPU memory on CUDA) bounds
    the stacked weights and activations of one pass; ``chunk_size`` overrides the derived
    number of candidates per pass and ``batch_size`` the samples per pass (default: the whole
    split while it fits the budget). Works for any model :func:`torch.func.vmap` can batch
    (Linear, Conv, pooling, eval-mode BatchNorm, residual blocks). ``label_smoothing`` > 0
    smooths the loss (see :mod:`masksearch.evaluators.base`).
    """

    def __init__(
        self,
        model: nn.Module,
        split: _SplitLike,
        layout: Layout,
        device: str | torch.device = "cpu",
        chunk_size: int | None = None,
        batch_size: int | None = None,
        memory_budget: int | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        self._take_snapshot(model, split, layout, device, label_smoothing)
        snap = self.snapshot
        self._flat_weights = torch.cat([snap.params[n].reshape(-1) for n in layout.names])
        self._fixed = {n: t for n, t in snap.params.items() if n not in set(layout.names)}
        self._activations = _activation_elements(snap.module, snap.x[:1])
        self.memory_budget = _memory_budget(memory_budget, self.device)
        self.batch_size, self.chunk_size = self._plan(batch_size, chunk_size)

    def _plan(self, batch_size: int | None, chunk_size: int | None) -> tuple[int, int]:
        """Samples and candidates per pass that keep one pass within the memory budget."""
        element = self._flat_weights.element_size()
        weights = (2 * self.layout.n_total + self.layout.n_total // 4) * element  # float + bool
        per_sample = _SAFETY * self._activations * element
        if batch_size is None:
            # the whole split if one candidate's pass fits in a quarter of the budget
            fits = max(1, (self.memory_budget // 4 - weights) // per_sample)
            batch = min(self.n_samples, fits)
        else:
            batch = _check_batch_size(batch_size, self.n_samples)
            batch = min(batch, self.n_samples)
        if chunk_size is None:
            chunk = max(1, self.memory_budget // (weights + batch * per_sample))
        else:
            chunk = _check_positive("chunk_size", chunk_size)
        return batch, int(chunk)

    def _one(self, weights: tuple[torch.Tensor, ...], inputs: torch.Tensor) -> torch.Tensor:
        params = dict(self._fixed)
        params.update(zip(self.layout.names, weights, strict=True))
        return functional_call(self.snapshot.module, params, (inputs,))

    def _evaluate(self, masks: np.ndarray) -> Metrics:
        snap = self.snapshot
        losses = np.empty(len(masks), dtype=np.float64)
        correct = np.empty(len(masks), dtype=np.int64)
        shapes = self.layout.shapes
        # built per call, not stored: a vmapped function does not pickle
        forward = vmap(self._one, in_dims=(0, None))
        with torch.no_grad():
            for first in range(0, len(masks), self.chunk_size):
                chunk = torch.from_numpy(masks[first : first + self.chunk_size]).to(self.device)
                stacked = self._flat_weights * chunk  # (C, n_total), one op for every layer
                weights = tuple(
                    part.view(len(chunk), *shape)
                    for part, shape in zip(
                        torch.split(stacked, self.layout.sizes, dim=1), shapes, strict=True
                    )
                )
                loss_sum = torch.zeros(len(chunk), dtype=torch.float64, device=self.device)
                hits = torch.zeros(len(chunk), dtype=torch.int64, device=self.device)
                for start in range(0, snap.n_samples, self.batch_size):
                    stop = start + self.batch_size
                    logits = forward(weights, snap.x[start:stop])  # (C, B, classes)
                    labels = snap.y[start:stop]
                    loss_sum += _cross_entropy_sums(logits, labels, self.label_smoothing)
                    hits += (logits.argmax(dim=-1) == labels).sum(dim=1)
                stop = first + len(chunk)
                losses[first:stop] = loss_sum.cpu().numpy() / snap.n_samples
                correct[first:stop] = hits.cpu().numpy()
        return {"loss": losses, "error": 1.0 - correct / snap.n_samples}


def _cross_entropy_sums(
    logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Sum over samples of the cross-entropy (smoothed by ``label_smoothing``), per candidate:
    logits (C, B, K) → (C,) float64."""
    log_probs = torch.log_softmax(logits, dim=-1)
    targets = labels.view(1, -1, 1).expand(len(logits), -1, 1)
    picked = label_log_likelihood(log_probs, targets, label_smoothing, dim=-1).squeeze(-1)
    return -picked.double().sum(dim=1)


def _activation_elements(module: nn.Module, one_sample: torch.Tensor) -> int:
    """Number of activation values one sample produces across all leaf modules."""
    total = [int(one_sample.numel())]

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor):
            total[0] += int(output.numel())

    handles = [m.register_forward_hook(count) for m in module.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            module(one_sample)
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def _memory_budget(memory_budget: int | None, device: torch.device) -> int:
    if memory_budget is not None:
        return _check_positive("memory_budget", memory_budget)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * _GPU_FREE_FRACTION)
    return _CPU_BUDGET


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def random_subset(split: _SplitLike, n: int, seed: int = 0) -> _SplitLike:
    """``n`` samples of ``split`` drawn without replacement with a private generator."""
    from masksearch.data import Split

    total = len(split.y)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= total:
        raise ValueError(f"a subsample needs 1..{total} samples (the split's size), got {n!r}")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]
    order = order.sort().values
    return Split(split.x[order], split.y[order])


class SuccessiveHalvingEvaluator(Evaluator):
    """Multi-fidelity evaluation: cheap rungs first, only promising candidates go further.

    ``rungs`` are evaluators of increasing fidelity (the same model on growing samples of the
    same split; the last one is the full split). Every candidate is evaluated on the first rung;
    the best ``keep`` fraction by ``rank_by`` (``"loss"`` or ``"error"``) is promoted to the next
    rung, and so on. Each candidate's metrics come from the highest rung it reached; the extra
    key ``"fidelity"`` (float64) is that rung's sample count divided by the last rung's, so
    ``fidelity == 1.0`` marks exact full-split metrics and anything lower marks subsample
    estimates that a search should not compare with exact ones.

    :meth:`state_dict` / :meth:`load_state_dict` save and restore the rungs' states (an
    incremental rung's cache, for a checkpoint).
    """

    def __init__(
        self, rungs: Sequence[Evaluator], keep: float = 1 / 3, rank_by: str = "loss"
    ) -> None:
        rungs = list(rungs)
        if len(rungs) < 2:
            raise ValueError("successive halving needs at least two rungs (low and full fidelity)")
        layouts = {r.layout for r in rungs}
        if len(layouts) != 1:
            raise ValueError("all rungs must evaluate the same layout")
        if not 0.0 < float(keep) <= 1.0:
            raise ValueError(f"keep must be a fraction in (0, 1], got {keep!r}")
        if rank_by not in ("loss", "error"):
            raise ValueError(f"rank_by must be 'loss' or 'error', got {rank_by!r}")
        sizes = [int(getattr(r, "n_samples", 0)) for r in rungs]
        if any(s < 1 for s in sizes) or sizes != sorted(sizes):
            raise ValueError(
                f"rungs must have growing sample counts (n_samples), got {sizes}; order them "
                "from the smallest subsample to the full split"
            )
        self.rungs = rungs
        self.layout = rungs[0].layout
        self.keep = float(keep)
        self.rank_by = rank_by
        self.n_samples = sizes[-1]
        self._fidelities = [s / sizes[-1] for s in sizes]

    def _evaluate(self, masks: np.ndarray) -> Metrics:
        n = len(masks)
        loss = np.empty(n, dtype=np.float64)
        error = np.empty(n, dtype=np.float64)
        fidelity = np.empty(n, dtype=np.float64)
        alive = np.arange(n)
        for level, rung in enumerate(self.rungs):
            result = rung(masks[alive])
            loss[alive], error[alive] = result["loss"], result["error"]
            fidelity[alive] = self._fidelities[level]
            if level + 1 < len(self.rungs):
                n_promoted = max(1, math.ceil(self.keep * len(alive)))
                # stable sort: ties keep population order, so the result is deterministic
                order = np.argsort(result[self.rank_by], kind="stable")[:n_promoted]
                alive = np.sort(alive[order])
        return {"loss": loss, "error": error, "fidelity": fidelity}

    def state_dict(self) -> dict[str, Any]:
        """The rungs' states (None for a rung that keeps none), for a checkpoint."""
        return {"format": 1, "rungs": [inner_state(rung) for rung in self.rungs]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (for the same rungs)."""
        if not isinstance(state, dict) or state.get("format") != 1:
            raise ValueError(
                "not a SuccessiveHalvingEvaluator state (expected the dict from state_dict())"
            )
        if len(state["rungs"]) != len(self.rungs):
            raise ValueError(
                f"the saved state has {len(state['rungs'])} rungs, this evaluator "
                f"{len(self.rungs)}; build it with the same fidelities"
            )
        for rung, rung_state in zip(self.rungs, state["rungs"], strict=True):
            load_inner_state(rung, rung_state)
