"""Old path of :mod:`masksearch.methods.large_plus_small` (method A), under its old names.

Kept so that code written before the rename (``from masksearch.methods.method_a import
MethodA``) keeps working; new code imports from :mod:`~masksearch.methods.large_plus_small`.
"""

from __future__ import annotations

from masksearch.methods.large_plus_small import (
    LargePlusSmallGA,
    large_plus_small_vs_magnitude,
)

__all__ = ["MethodA", "method_a_vs_magnitude"]

MethodA = LargePlusSmallGA
method_a_vs_magnitude = large_plus_small_vs_magnitude
