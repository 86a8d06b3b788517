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
    validation = ms.load("fashion-mnist").val
    held_out = ms.Split(validation.x[4000:], validation.y[4000:])         # choice on the rest
    candidates = np.concatenate([result.front.genomes, seeds.genomes])
    chosen = ms.choose_held_out(problem, candidates, held_out)          # {density: row}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from masksearch.front import best_within, density_slack

__all__ = ["choose_held_out"]

_OBJECTIVES = ("loss", "error")


def choose_held_out(
    problem: Any,
    genomes: np.ndarray,
    data: Any,
    densities: Sequence[float] | None = None,
    *,
    objective: str = "loss",
) -> dict[float, int]:
    """Row of ``genomes`` with the lowest ``objective`` on ``data`` at each target density.

    ``genomes`` are candidates of ``problem``'s encoding (e.g. a front's genomes stacked on a
    warm start's); ``data`` is a split (``x``, ``y``) the search's fitness did not use;
    ``densities`` default to the problem's targets. A candidate meets a target when it keeps
    at most ``round(target * n_weights)`` weights; the first row wins a tie. Only candidates
    that meet some target are scored.
    """
    from masksearch.evaluators import make_evaluator

    if objective not in _OBJECTIVES:
        raise ValueError(f"objective must be one of {_OBJECTIVES}, got {objective!r}")
    targets = tuple(problem.densities if densities is None else densities)
    if not targets:
        raise ValueError("choose_held_out needs at least one target density")
    if not (hasattr(data, "x") and hasattr(data, "y")):
        raise TypeError(
            f"data must be a split with x and y (e.g. ms.load(...).val), got {type(data).__name__}"
        )
    rows = problem.encoding.validate(np.asarray(genomes))
    masks = problem.encoding.decode(rows)
    density = masks.mean(axis=1)
    slack = density_slack(problem.layout.n_total)
    scored = np.flatnonzero(density <= max(targets) + slack)
    values = np.full(len(rows), np.inf)
    if len(scored):
        evaluator = make_evaluator(problem.model, data, problem.layout, device=problem.device)
        values[scored] = evaluator(masks[scored])[objective]
    chosen: dict[float, int] = {}
    for target in targets:
        position = best_within(density, values, target, slack)
        if position is None:
            raise ValueError(
                f"no candidate keeps at most {target:g} of the weights (the sparsest keeps "
                f"{density.min():.4f}); add one that sparse, e.g. the warm start's seeds"
            )
        chosen[float(target)] = position
    return chosen
