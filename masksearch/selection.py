"""Choosing the final masks on validation images the search never fitted.

A search lowers the loss on its fitness images, and near a good mask much of what it gains
there is fitting those images. On LeNet-300-100 started from ``supermask-path`` seeds, the
front's 5% and 2% picks score 0.5 and 0.3 points below the seeds on the test split, while the
1% pick gains (``benchmarks/results/warm_start_path_e4_val4000.md``). Scoring every candidate
(the front's members and the seeds) on held-out images and keeping the best at each target
density keeps the seeds where the search only fitted its images and the search's masks where
it found better ones:

.. code-block:: python

    problem = ms.get_problem("lenet300_fashion", val_samples=4000)  # fitness on 4,000 images
    candidates = np.concatenate([result.front.genomes, seeds.genomes])
    chosen = ms.choose_held_out(problem, candidates)  # {density: row}, on the other 1,000
                                                      # (problem.held_out_data; or pass data=)

The best of several candidates on a finite held-out set is partly the luckiest one. Given
``incumbents`` (e.g. the seeds' rows), a challenger replaces the best incumbent at a density only
when its held-out objective is lower by more than ``margin`` standard errors of the per-image
difference between the two (a paired comparison on the same images): the search's mask is
taken where the held-out images show it better beyond noise, and the seed is kept otherwise.

Seeds learned on another loss than the search's (supermask with ``label_smoothing`` while the
problem's loss is the plain cross-entropy) have a higher cross-entropy than their accuracy
deserves: against them the search's masks win on the held-out loss while scoring worse. Give the
problem the seeds' ``label_smoothing``, or compare on the 0/1 error (``objective="error"``,
``masksearch export --pick held-out-error``; :func:`held_out_pick_for` says which a run needs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from masksearch.evaluators.base import ModelSnapshot
from masksearch.front import best_within, density_slack

__all__ = ["HELD_OUT_PICKS", "choose_held_out", "held_out_pick_for"]

_OBJECTIVES = ("loss", "error")
#: ``masksearch export --pick`` values that choose on held-out images, and their objective
HELD_OUT_PICKS = {"held-out": "loss", "held-out-error": "error"}
_BATCH = 1024


def choose_held_out(
    problem: Any,
    genomes: np.ndarray,
    data: Any = None,
    densities: Sequence[float] | None = None,
    *,
    objective: str = "loss",
    incumbents: Sequence[int] | None = None,
    margin: float = 2.0,
    flat_masks: bool = False,
) -> dict[float, int]:
    """Row of ``genomes`` with the lowest ``objective`` on ``data`` at each target density.

    ``genomes`` are candidates of ``problem``'s encoding (e.g. a front's genomes stacked on a
    warm start's), or with ``flat_masks=True`` flat masks (one column per prunable weight, as
    run directories store them); ``data`` is a split (``x``, ``y``) the search's fitness did
    not use (default: ``problem.held_out_data``, which the catalogue's problems have when their
    fitness leaves validation images over); ``densities`` default to the problem's targets. A candidate meets a target when it keeps
    at most ``round(target * n_weights)`` weights; the first row wins a tie. Only candidates
    that meet some target are scored.

    With ``incumbents`` (row numbers), the best incumbent that meets a target is kept unless the
    best other candidate beats it by more than ``margin`` standard errors of their paired
    per-image difference (of the cross-entropy, or of the 0/1 error). The cross-entropy is the
    problem's: smoothed by its ``label_smoothing``.

    Masks are scored on the frozen weights, so a problem that scores them after repair steps
    or a batch-norm recalibration is refused.
    """
    from masksearch.evaluators import make_evaluator

    if data is None:
        data = getattr(problem, "held_out_data", None)
        if data is None:
            raise ValueError(
                "no held-out images to choose on: the problem judges masks on all of its "
                "validation images. Pass data=, or build the problem with val_samples below the "
                "validation split's size or fitness_split='train'"
            )
    if scored_after_repair(problem):
        raise ValueError(
            "choose_held_out scores masks on the frozen weights, but this problem scores them "
            "after repair steps or a batch-norm recalibration, which the held-out scores would "
            "leave out; choose on the problem's own objective instead"
        )
    if objective not in _OBJECTIVES:
        raise ValueError(f"objective must be one of {_OBJECTIVES}, got {objective!r}")
    smoothing = float(getattr(problem, "label_smoothing", 0.0))
    targets = tuple(problem.densities if densities is None else densities)
    if not targets:
        raise ValueError("choose_held_out needs at least one target density")
    if not (hasattr(data, "x") and hasattr(data, "y")):
        raise TypeError(
            f"data must be a split with x and y (e.g. ms.load(...).val), got {type(data).__name__}"
        )
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
        raise ValueError(f"margin must be a number of standard errors >= 0, got {margin!r}")
    masks = _candidate_masks(problem, genomes, flat_masks)
    is_incumbent = _incumbent_flags(incumbents, len(masks))
    density = masks.mean(axis=1)
    slack = density_slack(problem.layout.n_total)
    scored = np.flatnonzero(density <= max(targets) + slack)
    values = np.full(len(masks), np.inf)
    if len(scored):
        evaluator = make_evaluator(
            problem.model, data, problem.layout, device=problem.device, label_smoothing=smoothing
        )
        values[scored] = evaluator(masks[scored])[objective]
    chosen: dict[float, int] = {}
    snapshot: ModelSnapshot | None = None  # one copy of the model and data for every paired test
    for target in targets:
        position = best_within(density, values, target, slack)
        if position is None:
            raise ValueError(
                f"no candidate keeps at most {target:g} of the weights (the sparsest keeps "
                f"{density.min():.4f}); add one that sparse, e.g. the warm start's seeds"
            )
        if is_incumbent is not None and not is_incumbent[position]:
            # the best challenger must beat the best incumbent beyond the held-out noise
            kept = best_within(density, np.where(is_incumbent, values, np.inf), target, slack)
            if kept is not None and np.isfinite(values[kept]):
                if snapshot is None:
                    snapshot = ModelSnapshot(
                        problem.model, data, problem.layout, device=problem.device
                    )
                per_image = _per_image(snapshot, masks[[kept, position]], objective, smoothing)
                gain = per_image[0] - per_image[1]
                noise = gain.std(ddof=1) / np.sqrt(len(gain)) if len(gain) > 1 else 0.0
                if not gain.mean() > margin * noise:
                    position = kept
        chosen[float(target)] = position
    return chosen


def held_out_pick_for(config: dict[str, Any]) -> str:
    """The held-out pick a run's settings call for: ``held-out-error`` when its seeds learned
    with another label smoothing than the problem's loss has (their cross-entropy is not
    comparable with the search's masks'), else ``held-out`` (the loss, finer-grained than the
    0/1 error)."""
    seeds = float((config.get("init_options") or {}).get("label_smoothing") or 0.0)
    search = float(config.get("label_smoothing") or 0.0)
    return "held-out-error" if seeds != search else "held-out"


def scored_after_repair(problem: Any) -> bool:
    """Whether ``problem`` scores masks after repair steps or a batch-norm recalibration, which
    a choice on the frozen weights (:func:`choose_held_out`) would leave out."""
    return bool(getattr(problem, "repair_steps", 0) or getattr(problem, "recalibrate_bn", 0))


def _candidate_masks(problem: Any, genomes: np.ndarray, flat_masks: bool) -> np.ndarray:
    """Flat bool masks of the candidates: genomes of the problem's encoding, decoded, or rows
    that are flat masks already."""
    rows = np.asarray(genomes)
    if not flat_masks:
        return problem.encoding.decode(problem.encoding.validate(rows))
    n_total = problem.layout.n_total
    if rows.ndim != 2 or rows.shape[1] != n_total:
        raise ValueError(
            f"flat masks must have shape (candidates, {n_total}), one column per prunable "
            f"weight; got {rows.shape}"
        )
    if rows.dtype != bool and not np.isin(rows, (0, 1)).all():
        raise ValueError("flat masks must hold only 0/1 (or booleans)")
    return rows.astype(bool, copy=False)


def _incumbent_flags(incumbents: Sequence[int] | None, n_rows: int) -> np.ndarray | None:
    if incumbents is None:
        return None
    positions = np.asarray(list(incumbents))
    if positions.size and (
        positions.dtype.kind not in "iu" or positions.min() < 0 or positions.max() >= n_rows
    ):
        raise ValueError(
            f"incumbents must be row numbers of genomes (0 to {n_rows - 1}), got "
            f"{list(incumbents)!r}"
        )
    flags = np.zeros(n_rows, dtype=bool)
    flags[positions.astype(np.int64)] = True
    return flags


def _per_image(
    snapshot: ModelSnapshot, masks: np.ndarray, objective: str, label_smoothing: float
) -> np.ndarray:
    """Each mask's cross-entropy (smoothed by ``label_smoothing``; or 0/1 error) on every
    image of the snapshot's data: (masks, images)."""
    out = np.empty((len(masks), snapshot.n_samples))
    with torch.no_grad():
        for row, mask in enumerate(masks):
            params = snapshot.masked_params(mask)
            for start in range(0, snapshot.n_samples, _BATCH):
                inputs = snapshot.x[start : start + _BATCH]
                labels = snapshot.y[start : start + _BATCH]
                logits = functional_call(snapshot.module, params, (inputs,))
                if objective == "loss":
                    value = F.cross_entropy(
                        logits, labels, reduction="none", label_smoothing=label_smoothing
                    )
                else:
                    value = (logits.argmax(dim=-1) != labels).to(logits.dtype)
                out[row, start : start + len(labels)] = value.double().cpu().numpy()
    return out
