"""Fitness engine: score populations of flat weight masks on a data split.

``make_evaluator(model, split, layout, kind=...)`` builds the exact evaluators; the wrappers
(cache, surrogate screening, multi-fidelity, joblib/Dask) take an evaluator and are evaluators
themselves, so they compose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from masksearch.device import resolve_device
from masksearch.evaluators.base import Evaluator, check_masks
from masksearch.evaluators.batched import (
    BatchedEvaluator,
    SuccessiveHalvingEvaluator,
    random_subset,
)
from masksearch.evaluators.cache import CachedEvaluator
from masksearch.evaluators.distributed import DaskEvaluator, JoblibEvaluator
from masksearch.evaluators.incremental import IncrementalEvaluator, UnsupportedModelError
from masksearch.evaluators.plain import PlainEvaluator
from masksearch.evaluators.prefix import PrefixCacheEvaluator
from masksearch.evaluators.repaired import RepairedEvaluator
from masksearch.evaluators.surrogate import ScreenedEvaluator, SurrogateEvaluator
from masksearch.mask import Layout

__all__ = [
    "KINDS",
    "BatchedEvaluator",
    "CachedEvaluator",
    "DaskEvaluator",
    "Evaluator",
    "IncrementalEvaluator",
    "JoblibEvaluator",
    "PlainEvaluator",
    "PrefixCacheEvaluator",
    "RepairedEvaluator",
    "ScreenedEvaluator",
    "SuccessiveHalvingEvaluator",
    "SurrogateEvaluator",
    "UnsupportedModelError",
    "check_masks",
    "make_evaluator",
]

KINDS = ("auto", "plain", "batched", "incremental", "prefix")
_CLASSES = {
    "plain": PlainEvaluator,
    "batched": BatchedEvaluator,
    "incremental": IncrementalEvaluator,
    "prefix": PrefixCacheEvaluator,
}


def make_evaluator(
    model: nn.Module,
    split: Any,
    layout: Layout | None = None,
    *,
    kind: str = "auto",
    device: str | torch.device = "cpu",
    fidelities: Sequence[int] | None = None,
    promote: float = 1 / 3,
    seed: int = 0,
    **options: Any,
) -> Evaluator:
    """An exact evaluator of ``kind`` for ``model`` on ``split``.

    ``kind``: ``"plain"`` (the reference loop), ``"batched"`` (population chunks in one
    pass), ``"incremental"`` (children from cached parents; Linear stacks only), ``"prefix"``
    (resumes from cached activations of leading layers whose masks repeat; ``nn.Sequential``
    models) or ``"auto"``: incremental for a Linear stack on the CPU, prefix for another
    ``nn.Sequential`` on the CPU, batched on a GPU, plain otherwise (on the CPU, batching
    convolutions does not pay). ``layout`` defaults to ``Layout.of(model)``; ``device``
    may be ``"auto"`` (the GPU when there is one). ``options`` go to the evaluator's
    constructor.

    ``fidelities`` (sample counts, e.g. ``(256,)``) turns on successive halving: every candidate
    is first scored on that many samples of ``split`` (a random subset drawn with ``seed``) and
    the best ``promote`` fraction moves on to the next size and finally the whole split; see
    :class:`SuccessiveHalvingEvaluator` for the ``"fidelity"`` key that marks subsample metrics.
    """
    if layout is None:
        layout = Layout.of(model)
    if kind not in KINDS:
        raise ValueError(f"unknown evaluator kind {kind!r}; choose one of {list(KINDS)}")
    target = resolve_device(device)
    if kind == "auto":
        if target.type == "cpu" and IncrementalEvaluator.supports(model, layout):
            kind = "incremental"
        elif target.type == "cpu" and PrefixCacheEvaluator.supports(model, layout):
            kind = "prefix"
        elif target.type == "cpu":
            kind = "plain"
        else:
            kind = "batched"
    cls = _CLASSES[kind]
    if fidelities is None:
        return cls(model, split, layout, device=target, **options)
    sizes = [int(n) for n in fidelities]
    total = len(split.y)
    if not sizes or sizes != sorted(set(sizes)) or sizes[0] < 1 or sizes[-1] >= total:
        raise ValueError(
            f"fidelities must be increasing sample counts below the split's {total} samples, "
            f"got {list(fidelities)}"
        )
    rungs = [
        cls(model, random_subset(split, n, seed), layout, device=target, **options) for n in sizes
    ]
    rungs.append(cls(model, split, layout, device=target, **options))
    return SuccessiveHalvingEvaluator(rungs, keep=promote)
