"""Old path of :mod:`masksearch.methods.small_frequency` (method B), under its old names.

Kept so that code written before the rename (``from masksearch.methods.method_b import
MethodB``) keeps working; new code imports from :mod:`~masksearch.methods.small_frequency`.
"""

from __future__ import annotations

from masksearch.methods.small_frequency import (
    STAGE_LADDER,
    SmallFrequencyGreedy,
    SmallWeightStatistic,
    importance,
    sample_steps,
    stage_sparsities,
    swap_step,
)

__all__ = [
    "STAGE_LADDER",
    "MethodB",
    "SmallWeightStatistic",
    "importance",
    "sample_steps",
    "stage_sparsities",
    "swap_step",
]

MethodB = SmallFrequencyGreedy
