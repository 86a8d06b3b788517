"""Compiled bit helpers shared by the packed genome operators and the packed mask kernels."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def bit_count(word):  # pragma: no cover - compiled
    """Set bits of a uint64, as an int64 (the SWAR form, which LLVM turns into one popcnt)."""
    word = word - ((word >> np.uint64(1)) & np.uint64(0x5555555555555555))
    word = (word & np.uint64(0x3333333333333333)) + (
        (word >> np.uint64(2)) & np.uint64(0x3333333333333333)
    )
    word = (word + (word >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((word * np.uint64(0x0101010101010101)) >> np.uint64(56))
