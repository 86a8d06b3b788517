"""Compiled bit helpers shared by the packed genome operators, the packed mask kernels, the
evaluators that take packed masks and the genome keys."""

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


@numba.njit(cache=True)
def word_at(row, start):  # pragma: no cover - compiled
    """Eight bytes of ``row`` from ``start`` as one little-endian uint64 (LLVM makes this one
    unaligned load); a word's bit count does not depend on the byte order."""
    word = np.uint64(0)
    for k in range(8):
        word |= np.uint64(row[start + k]) << np.uint64(8 * k)
    return word


def same_bytes(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two C-contiguous arrays hold the same bytes: half :func:`np.array_equal`'s time
    on a population of packed genomes, which it compares through a temporary bool array as
    large as the population."""
    if first.nbytes != second.nbytes:
        return False
    return bool(_same_bytes(first.reshape(-1).view(np.uint8), second.reshape(-1).view(np.uint8)))


@numba.njit(cache=True)
def _same_bytes(first, second):  # pragma: no cover - compiled
    size = first.size
    full = size - size % 8
    for start in range(0, full, 8):
        if word_at(first, start) != word_at(second, start):
            return False
    for index in range(full, size):  # noqa: SIM110 - a loop Numba compiles, not all(generator)
        if first[index] != second[index]:
            return False
    return True


def unpack_bits(packed: np.ndarray, n_bits: int) -> np.ndarray:
    """:func:`numpy.packbits` rows (uint8, ``(P, ceil(n_bits / 8))``) back as C-contiguous bool
    rows of ``n_bits``; one row may be given 1-D."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    if packed.ndim != 2:
        return np.unpackbits(packed, axis=-1, count=n_bits).view(np.bool_)
    # eight bools a byte in one 8-byte store, from a table: half np.unpackbits' time
    words = np.empty(packed.shape, dtype=np.uint64)
    _unpack_words(packed, _UNPACKED_BYTES, words)
    rows = words.view(np.uint8).reshape(len(packed), 8 * packed.shape[1])[:, :n_bits]
    return np.ascontiguousarray(rows).view(np.bool_)  # copies only to drop padding


# for each byte value: its eight bits as eight 0/1 bytes, top bit first, in one uint64
_UNPACKED_BYTES = (
    np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).view(np.uint64).ravel()
)


@numba.njit(cache=True)
def _unpack_words(packed, table, out):  # pragma: no cover - compiled
    for row in range(packed.shape[0]):
        for position in range(packed.shape[1]):
            out[row, position] = table[packed[row, position]]
