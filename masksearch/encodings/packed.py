"""Packed binary genomes: eight genes a byte, the form the shipped solvers evolve.

A LeNet-300-100 ``weights`` genome is 266,200 bools; a solver copies, compares and hashes
every row several times per generation, so with bool rows the loop around the evaluator moves
more bytes than the incremental evaluator touches for a child. Packed, a row is 33 KB.

:class:`PackedOperators` runs a sparse binary encoding's operators (``weights``, ``channels``)
on packed rows. It draws exactly the random numbers the encoding draws, in the same order, and
picks the same genes, so a search reaches the same genomes either way (the tests compare the
two bit for bit). The mutation is compiled whole, its draws included: Numba calls the same
bit generator as numpy, and :func:`_choice_indices` is numpy's sampling without replacement.
Users never see packed genomes: :func:`masksearch.search` packs what it hands a shipped solver
and unpacks what the solver asks before anything is evaluated or archived.

Bit order is :func:`numpy.packbits`'s: gene ``g`` is bit ``7 - g % 8`` of byte ``g // 8``, and
the padding bits of the last byte are zero.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros
from numba.np.random.generator_core import next_uint32
from numba.np.random.random_methods import (
    bounded_lemire_uint64,
    buffered_bounded_lemire_uint32,
)

from masksearch._bits import bit_count, unpack_bits, word_at
from masksearch.encodings.base import (
    GenomeError,
    _check_count,
    _check_rng,
    _log_spaced,
    validated_parents,
)

__all__ = ["UNPACKED_BYTES", "PackedOperators", "range_counts"]

#: Bool genomes built at once from packed ones, in bytes: bounds the transient bool copies of a
#: large model's population (64 ResNet-18 genomes are 715 MB as bools).
UNPACKED_BYTES = 1 << 27


class PackedOperators:
    """The operators of a sparse binary ``encoding`` on packed genomes (uint8 rows of
    ``ceil(n_genes / 8)`` bytes); a :class:`~masksearch.solvers.GenomeOperators`."""

    dtype = np.dtype(np.uint8)
    #: ``repair`` checks genomes and returns them as they are, never edited (the pymoo adapter
    #: then keeps pymoo's genomes instead of setting them again)
    repair_only_checks = True

    def __init__(self, encoding: Any) -> None:
        if not getattr(encoding, "packable", False):
            raise TypeError(
                f"{type(encoding).__name__} genomes cannot be packed; only sparse binary "
                "encodings without invariants (weights, channels) can"
            )
        self.encoding = encoding
        self.n_bits = int(encoding.n_genes)
        self.n_genes = (self.n_bits + 7) // 8

    # bounds and derived tables are rebuilt on demand rather than pickled with every checkpoint
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cached")}

    @property
    def lower(self) -> np.ndarray:
        return np.zeros(self.n_genes, dtype=np.int64)

    @property
    def upper(self) -> np.ndarray:
        return np.full(self.n_genes, 255, dtype=np.int64)

    @property
    def _tables(
        self,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(genes by descending score, each gene's place in that order, block per gene, the
        bytes whose bits lie in two blocks, and the runs of bytes inside one block as columns
        of (first byte, end byte, block)); the order, the ranks and the blocks are the
        encoding's own arrays where it has them (an 11 M-weight model's would be 130 MB
        again)."""
        tables = self.__dict__.get("_cached_tables")
        if tables is None:
            encoding = self.encoding
            order, block = encoding._order, encoding._block
            rank = getattr(encoding, "_rank", None)
            if rank is None:
                rank = np.empty_like(order)
                rank[order] = np.arange(order.size, dtype=order.dtype)
            starts = np.arange(0, self.n_bits, 8)
            ends = np.minimum(starts + 7, self.n_bits - 1)
            byte_block = np.where(block[starts] == block[ends], block[starts], -1)
            # a crossover copies each run of bytes inside one block whole
            boundaries = np.flatnonzero(np.diff(np.r_[-2, byte_block, -2]) != 0)
            run_starts, run_ends = boundaries[:-1], boundaries[1:]
            owned = byte_block[run_starts] >= 0
            segments = np.stack(
                [run_starts[owned], run_ends[owned], byte_block[run_starts[owned]]]
            ).astype(np.int64)
            straddling = np.flatnonzero(byte_block < 0)
            tables = self._cached_tables = (order, rank, block, straddling, segments)
        return tables

    # -- conversions -----------------------------------------------------------------------
    def pack(self, genomes: np.ndarray) -> np.ndarray:
        """Bool genomes of the encoding (validated by it) as packed rows."""
        return np.packbits(self.encoding.validate(genomes), axis=1)

    def unpack(self, packed: np.ndarray) -> np.ndarray:
        """Packed rows as the encoding's bool genomes (C-contiguous)."""
        return unpack_bits(packed, self.n_bits)

    def validate(self, genomes: np.ndarray) -> np.ndarray:
        return self.repair(genomes).copy()

    def repair(self, genomes: np.ndarray) -> np.ndarray:
        """``genomes`` checked (packed genomes have no invariants to restore), not copied."""
        array = np.asarray(genomes)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != self.n_genes or array.dtype != np.uint8:
            raise GenomeError(
                f"packed genomes are uint8 rows of {self.n_genes} bytes, got dtype "
                f"{array.dtype} and shape {array.shape}; pack bool genomes with pack()"
            )
        padding = 8 * self.n_genes - self.n_bits
        if padding and np.any(array[:, -1] & np.uint8((1 << padding) - 1)):
            raise GenomeError("packed genomes have padding bits set past the last gene")
        return array

    # -- operators (the encoding's, draw for draw) -------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The encoding's sample: its magnitude genomes, packed a chunk of rows at a time (64
        bool genomes of an 11 M-weight model are 715 MB), each given the encoding's small
        random swap on the packed row: the same draws, row after row."""
        n, rng = _check_count(n), _check_rng(rng)
        encoding = self.encoding
        densities = _log_spaced(n, *encoding.sample_densities) if n else np.empty(0)
        rows = max(1, UNPACKED_BYTES // self.n_bits)
        parts = [
            np.packbits(encoding.magnitude(chunk), axis=1)
            for chunk in (densities[start : start + rows] for start in range(0, n, rows))
        ]
        genomes = np.concatenate(parts) if parts else np.zeros((0, self.n_genes), dtype=np.uint8)
        _mutate_rows(genomes, rng, *self._move_tables(), True)
        return genomes

    def mutate(self, genomes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_rng(rng)
        children = self.validate(genomes)
        _mutate_rows(children, rng, *self._move_tables(), False)
        return children

    def _move_tables(self) -> tuple[Any, ...]:
        """What the compiled moves read: the gene tables and the encoding's move settings
        (``log(max_swap + 1)`` computed here, by the math library the bool moves use)."""
        encoding = self.encoding
        order, rank = self._tables[:2]
        swap, add, drop = (float(p) for p in encoding.move_probabilities)
        step_low, step_high = (float(bound) for bound in encoding.step_range)
        max_swap = int(encoding._max_swap)
        return (
            order,
            rank,
            self.n_bits,
            swap,
            add,
            drop,
            step_low,
            step_high,
            float(encoding.frontier),
            max_swap,
            math.log(max_swap + 1),
        )

    def crossover(
        self, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        # parents are only read: checked, not copied
        parents_a, parents_b = validated_parents(self.repair, first, second, rng)
        _, _, block, straddling, segments = self._tables
        take_second = rng.random((parents_a.shape[0], self.encoding._n_blocks)) < 0.5
        children, (kept_a, kept_b, kept_children) = _blend(
            parents_a, parents_b, take_second, block, straddling, segments, self.n_bits
        )
        low, high = np.minimum(kept_a, kept_b), np.maximum(kept_a, kept_b)
        for row, kept in enumerate(kept_children):
            if kept > high[row]:
                on = children[row] & (parents_a[row] ^ parents_b[row])
                ranks = rng.choice(_popcount(on), size=kept - high[row], replace=False)
                _assign(children[row], _nth_bits(on, ranks, True), False)
            elif kept < low[row]:
                off = ~children[row] & (parents_a[row] ^ parents_b[row])
                ranks = rng.choice(_popcount(off), size=low[row] - kept, replace=False)
                _assign(children[row], _nth_bits(off, ranks, True), True)
        return children


# for each byte value: how many bits are set, and their offsets from the top bit down
_BIT_COUNTS = np.array([bin(byte).count("1") for byte in range(256)], dtype=np.int64)
_BIT_OFFSETS = np.array(
    [
        [bit for bit in range(8) if byte >> (7 - bit) & 1] + [0] * (8 - bin(byte).count("1"))
        for byte in range(256)
    ],
    dtype=np.int64,
)


def range_counts(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Set bits of each packed row between consecutive gene ``offsets`` (kept weights per
    layer, when genomes are masks): ``(n_rows, len(offsets) - 1)``."""
    offsets = np.asarray(offsets, dtype=np.int64)
    return _range_counts(np.ascontiguousarray(rows, dtype=np.uint8), offsets)


@numba.njit(cache=True)
def _range_counts(rows, offsets):  # pragma: no cover - compiled
    counts = np.zeros((rows.shape[0], offsets.size - 1), dtype=np.int64)
    for r in range(rows.shape[0]):
        row = rows[r]
        for part in range(offsets.size - 1):
            start, end = offsets[part], offsets[part + 1]
            first_byte = min((start + 7) // 8, end // 8)  # the whole bytes: [first_byte, last)
            last_byte = max(end // 8, first_byte)
            total = 0
            for gene in range(start, min(end, 8 * first_byte)):  # a partial first byte
                total += (row[gene >> 3] >> (7 - (gene & 7))) & 1
            for gene in range(max(8 * last_byte, 8 * first_byte, start), end):  # partial last
                total += (row[gene >> 3] >> (7 - (gene & 7))) & 1
            counts[r, part] = total + _row_count(row[first_byte:last_byte])
    return counts


def _popcount(row: np.ndarray) -> int:
    return int(_row_count(row))


@numba.njit(cache=True)
def _row_count(row):  # pragma: no cover - compiled
    n_words = row.size // 8
    total = 0
    for w in range(n_words):
        total += bit_count(word_at(row, 8 * w))
    for b in range(8 * n_words, row.size):
        total += _BIT_COUNTS[row[b]]
    return total


@numba.njit(cache=True)
def _assign(row, genes, value):  # pragma: no cover - compiled
    """Set (``value``) or clear the bits of ``genes`` in the packed ``row``."""
    for gene in genes:
        bit = np.uint8(1 << (7 - gene % 8))
        if value:
            row[gene // 8] |= bit
        else:
            row[gene // 8] &= ~bit


# -- the encoding's moves, compiled ----------------------------------------------------------
# Each function below mirrors a method of ``_SparseBinaryEncoding`` (binary.py) draw for draw:
# the same calls on the same generator, in the same order, with the same float operations, so
# a packed search reaches the genomes a bool one does (the tests compare them bit for bit).
# One compiled call moves a whole population: handing numpy's Generator to Numba costs about
# 7 µs a call, more than a draw; compiled whole, a 160-gene search's loop costs a third less.


@numba.njit(cache=True)
def _mutate_rows(
    rows,
    rng,
    order,
    rank,
    n_bits,
    swap,
    add,
    drop,
    step_low,
    step_high,
    frontier,
    max_swap,
    log_swap_span,
    only_swaps,
):  # pragma: no cover - compiled
    """``_SparseBinaryEncoding._mutate_one`` on each packed row, in place; with
    ``only_swaps``, its ``_perturbed`` instead (the small swap of each sampled genome)."""
    for r in range(rows.shape[0]):
        child = rows[r]
        n_kept = _row_count(child)
        n_dropped = n_bits - n_kept
        if only_swaps:
            count = min(_log_uniform_int(rng, max_swap, log_swap_span), n_kept, n_dropped)
            _swap(child, count, n_kept, rng, order, rank, n_bits, frontier)
            continue
        # _draw_move: which move, by _choice_of_three's float operations, then its size
        weight_swap = swap if n_kept > 0 and n_dropped > 0 else 0.0
        weight_add = add if n_dropped > 0 else 0.0
        weight_drop = drop if n_kept > 1 else 0.0
        total = weight_swap + weight_add + weight_drop
        if total <= 0:
            continue
        cdf_first = weight_swap / total
        cdf_second = cdf_first + weight_add / total
        cdf_last = cdf_second + weight_drop / total
        uniform = rng.random()
        move = (
            (uniform >= cdf_first / cdf_last)
            + (uniform >= cdf_second / cdf_last)
            + (uniform >= cdf_last / cdf_last)
        )
        if move == 0:
            count = min(_log_uniform_int(rng, max_swap, log_swap_span), n_kept, n_dropped)
            _swap(child, count, n_kept, rng, order, rank, n_bits, frontier)
        elif move == 1:
            count = min(_draw_step(rng, step_low, step_high, n_kept), n_dropped)
            genes = _pick(child, False, count, n_kept, True, rng, order, rank, n_bits, frontier)
            _assign(child, genes, True)
        else:
            count = min(_draw_step(rng, step_low, step_high, n_kept), n_kept - 1)
            genes = _pick(child, True, count, n_kept, False, rng, order, rank, n_bits, frontier)
            _assign(child, genes, False)


@numba.njit(cache=True)
def _swap(child, count, n_kept, rng, order, rank, n_bits, frontier):  # pragma: no cover
    """``_swap``: ``count`` kept genes off and as many dropped genes on, both picked before
    either changes."""
    off = _pick(child, True, count, n_kept, False, rng, order, rank, n_bits, frontier)
    on = _pick(child, False, count, n_kept, True, rng, order, rank, n_bits, frontier)
    _assign(child, off, False)
    _assign(child, on, True)


@numba.njit(cache=True)
def _pick(
    child, state, count, n_kept, largest, rng, order, rank, n_bits, frontier
):  # pragma: no cover - compiled
    """``_pick``: ``count`` distinct genes whose bit is ``state``, half the time from the
    frontier window (``_frontier_window`` genes at the kept/dropped frontier), else from all."""
    n_candidates = n_kept if state else n_bits - n_kept
    if rng.random() < 0.5:
        window = min(n_candidates, max(2 * count, int(math.ceil(frontier * n_kept))))
        pool = _ranked_end(order, rank, child, state, n_candidates, window, largest)
        return pool[_choice_indices(rng, pool.size, count)]
    # rng.choice(pool, k) is pool[rng.choice(len(pool), k)]: draw ranks, find those genes
    return _nth_bits(child, _choice_indices(rng, n_candidates, count), state)


@numba.njit(cache=True)
def _log_uniform_int(rng, high, log_span):  # pragma: no cover - compiled
    """``encodings.base._log_uniform_int`` with ``log_span = math.log(high + 1)``."""
    if high <= 1:
        return 1
    value = int(math.exp(rng.uniform(0.0, log_span)))
    return min(max(value, 1), high)


@numba.njit(cache=True)
def _draw_step(rng, low, high, n_kept):  # pragma: no cover - compiled
    """``_draw_step``: Python's ``round`` is to the nearest, ties to even, as ``np.rint``."""
    return max(1, int(np.rint(rng.uniform(low, high) * n_kept)))


@numba.njit(cache=True)
def _choice_indices(rng, pop_size, size):  # pragma: no cover - compiled
    """``rng.choice(pop_size, size=size, replace=False)``, draw for draw: numpy's own two
    algorithms (``Generator.choice`` in numpy/random/_generator.pyx), a tail shuffle of the
    whole range for large samples of large populations and Floyd's with a hash set
    otherwise, each integer in ``[0, j]`` drawn as numpy's ``random_bounded_uint64`` draws it."""
    if size > pop_size:  # numpy's refusal; the moves never ask for more than there are
        raise ValueError("Cannot take a larger sample than population when replace is False")
    if pop_size > 10000 and size > pop_size // 50:
        everything = np.arange(pop_size, dtype=np.int64)
        _shuffle_tail(rng, everything, pop_size, max(pop_size - size, 1))
        return everything[pop_size - size :].copy()
    chosen = np.empty(size, dtype=np.int64)
    if size == 0:
        return chosen
    mask = _gen_mask(np.uint64(1.2 * size))  # the smallest power of 2 above 1.2 * size, - 1
    empty = np.uint64(0xFFFFFFFFFFFFFFFF)
    hash_set = np.full(np.int64(mask) + 1, empty, dtype=np.uint64)
    for j in range(pop_size - size, pop_size):
        value = _bounded(rng, j)
        slot = value & mask
        while hash_set[slot] != empty and hash_set[slot] != value:
            slot = (slot + np.uint64(1)) & mask
        if hash_set[slot] == empty:  # a value not drawn before
            hash_set[slot] = value
            chosen[j - pop_size + size] = np.int64(value)
        else:  # drawn before: take j instead
            slot = np.uint64(j) & mask
            while hash_set[slot] != empty:
                slot = (slot + np.uint64(1)) & mask
            hash_set[slot] = np.uint64(j)
            chosen[j - pop_size + size] = j
    _shuffle_tail(rng, chosen, size, 1)
    return chosen


@numba.njit(cache=True)
def _shuffle_tail(rng, data, n, first):  # pragma: no cover - compiled
    """numpy's ``_shuffle_int``: swap each of ``data[first:n]``, from the last, with a
    uniformly drawn earlier-or-same position."""
    for i in range(n - 1, first - 1, -1):
        j = np.int64(_bounded(rng, i))
        data[i], data[j] = data[j], data[i]


@numba.njit(cache=True, inline="always")
def _bounded(rng, high):  # pragma: no cover - compiled
    """``rng.integers(0, high, endpoint=True)`` as a ``uint64``, drawn as numpy's
    ``random_bounded_uint64`` draws it (Lemire's method, on 32-bit draws below 2**32).
    Numba's own ``integers`` allocates a one-element array a call, which costs more than the draw."""
    span = np.uint64(high)
    if span == 0:
        return span
    bit_generator = rng.bit_generator
    if span < np.uint64(0xFFFFFFFF):
        return np.uint64(buffered_bounded_lemire_uint32(bit_generator, span))
    if span == np.uint64(0xFFFFFFFF):
        return np.uint64(next_uint32(bit_generator))
    return np.uint64(bounded_lemire_uint64(bit_generator, span))


@numba.njit(cache=True)
def _gen_mask(value):  # pragma: no cover - compiled
    """numpy's ``_gen_mask``: every bit below the highest set bit of ``value`` set too."""
    mask = np.uint64(value)
    for shift in (1, 2, 4, 8, 16, 32):
        mask |= mask >> np.uint64(shift)
    return mask


@numba.njit(cache=True)
def _ranked_end(order, rank, row, state, n_candidates, window, first):  # pragma: no cover
    """The first (or last) ``window`` genes of ``order`` whose bit in ``row`` is ``state``, in
    ``order``'s order: ``_ranked_end`` of the bool encoding on a packed row.

    Kept genes are found through their ranks (a sparse genome's smallest kept genes lie near
    the end of a scan from the bottom of ``order``, past every dropped gene); dropped genes
    are found by scanning ``order``, which reaches them soon from either end.
    """
    if state:
        return _kept_end(row, order, rank, window, first)
    pool = np.empty(window, dtype=np.int64)
    found = 0
    size = order.size
    for step in range(size):
        if found == window:
            break
        gene = order[step] if first else order[size - 1 - step]
        if (np.int64(row[gene >> 3]) >> (7 - (gene & 7))) & 1 == 0:
            pool[found] = gene
            found += 1
    if first:
        return pool[:found]
    return pool[:found][::-1].copy()


@numba.njit(cache=True)
def _kept_end(row, order, rank, window, first):  # pragma: no cover - compiled
    """The ``window`` set genes of a packed ``row`` with the lowest (``first``) or highest
    ranks, by rank ascending.

    Every set gene marks its rank in a bitmap of the ranks (a set bit at a time, ``x & (x -
    1)`` and a count of trailing zeros); the window is then read off that bitmap from the
    chosen end, a 64-rank word at a time, already in rank order: one pass over the set genes
    and no sort (a rank histogram and a sort of the window took about twice as long).
    """
    n_ranks = order.size
    ranked = np.zeros((n_ranks + 63) // 64, dtype=np.uint64)
    n_words = row.size // 8
    for w in range(n_words):
        word = word_at(row, 8 * w)
        while word:
            # bit p of the little-endian word is bit p % 8 of byte p // 8: gene 7 - p % 8 there
            bit = trailing_zeros(word)
            _mark(ranked, rank[64 * w + (bit & ~7) + 7 - (bit & 7)])
            word &= word - np.uint64(1)
    for position in range(8 * n_words, row.size):
        byte = row[position]
        for k in range(_BIT_COUNTS[byte]):
            _mark(ranked, rank[8 * position + _BIT_OFFSETS[byte, k]])
    chosen = np.empty(window, dtype=np.int64)
    found = 0
    for step in range(ranked.size):
        if found == window:
            break
        w = step if first else ranked.size - 1 - step
        word = ranked[w]
        while word and found < window:
            bit = np.int64(trailing_zeros(word)) if first else 63 - np.int64(leading_zeros(word))
            chosen[found] = order[64 * w + bit]
            found += 1
            word &= ~(np.uint64(1) << np.uint64(bit))
    if first:
        return chosen[:found]
    return chosen[:found][::-1].copy()


@numba.njit(cache=True, inline="always")
def _mark(bitmap, position):  # pragma: no cover - compiled
    bitmap[position >> 6] |= np.uint64(1) << np.uint64(position & 63)


@numba.njit(cache=True)
def _nth_bits(row, ranks, state):  # pragma: no cover - compiled
    """The genes of the bits equal to ``state`` in ``row`` at positions ``ranks`` (0 = the
    lowest gene), in the order of ``ranks``: ``np.flatnonzero(unpacked == state)[ranks]``
    without unpacking. Ranks must be below the number of such genes, so the zero padding of
    the last byte is never reached."""
    genes = np.empty(ranks.size, dtype=np.int64)
    n_words = row.size // 8
    flip = np.uint64(0) if state else ~np.uint64(0)
    word = 0
    seen = 0  # bits equal to state in the words before ``word``
    for index in np.argsort(ranks):
        target = ranks[index]
        # whole words up to the one that holds the target (a word's count is one popcnt),
        # then its bytes, read from the word in a register
        while word < n_words:
            count = bit_count(word_at(row, 8 * word) ^ flip)
            if seen + count > target:
                break
            seen += count
            word += 1
        left = target - seen
        if word < n_words:
            bits = word_at(row, 8 * word) ^ flip
            position = 8 * word
            byte = np.int64(bits & np.uint64(0xFF))
            while left >= _BIT_COUNTS[byte]:
                left -= _BIT_COUNTS[byte]
                bits >>= np.uint64(8)  # the little-endian word's next byte
                byte = np.int64(bits & np.uint64(0xFF))
                position += 1
        else:  # the bytes after the last whole word
            position = 8 * n_words
            byte = np.int64(row[position]) if state else 255 - np.int64(row[position])
            while left >= _BIT_COUNTS[byte]:
                left -= _BIT_COUNTS[byte]
                position += 1
                byte = np.int64(row[position]) if state else 255 - np.int64(row[position])
        genes[index] = 8 * position + _BIT_OFFSETS[byte, left]
    return genes


@numba.njit(cache=True)
def _blend(
    first, second, take_second, block, straddling, segments, n_bits
):  # pragma: no cover - compiled
    """Children taking each block's bits from ``second`` where ``take_second[child, block]``,
    else from ``first`` (each run of bytes inside one block copied whole, the bytes that span
    two blocks bit by bit), with the set bits of ``first``, ``second`` and the children per
    row."""
    n_rows = first.shape[0]
    children = np.empty(first.shape, dtype=np.uint8)  # C order whatever the parents' order
    counts = np.zeros((3, n_rows), dtype=np.int64)
    for r in range(n_rows):
        child, first_row, second_row = children[r], first[r], second[r]
        for s in range(segments.shape[1]):
            # unsigned bounds on 1-D rows: no negative-index check, so LLVM copies in bulk
            # (5x faster than indexing the 2-D arrays)
            start, end = np.uint64(segments[0, s]), np.uint64(segments[1, s])
            source = second_row if take_second[r, segments[2, s]] else first_row
            for position in range(start, end):
                child[position] = source[position]
        for b in straddling:
            children[r, b] = _blend_byte(first, second, take_second, block, n_bits, r, b)
        counts[0, r] = _row_count(first[r])
        counts[1, r] = _row_count(second[r])
        counts[2, r] = _row_count(children[r])
    return children, counts


@numba.njit(cache=True)
def _blend_byte(first, second, take_second, block, n_bits, r, b):  # pragma: no cover - compiled
    """Byte ``b`` of child ``r`` of :func:`_blend`, a byte whose bits lie in two blocks."""
    byte = np.uint8(0)
    for bit in range(8):
        gene = 8 * b + bit
        if gene >= n_bits:
            break
        source = second[r, b] if take_second[r, block[gene]] else first[r, b]
        byte |= source & np.uint8(1 << (7 - bit))
    return byte
