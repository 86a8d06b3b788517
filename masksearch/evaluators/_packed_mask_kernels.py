"""Bit-packed masks of the incremental evaluator and the compiled passes over them.

A population's masks are packed as :func:`np.packbits` packs them (gene 0 in the top bit of the
first byte), each row zero-padded to whole uint64 words, so that the XOR of two packed masks
and its popcount give their Hamming distance a word at a time. This module packs and unpacks
them, finds the remembered mask nearest to each candidate, lists the genes two masks differ
in, finds the distinct rows of a population and plans each child's update from its parent
(its flipped genes, kept weights per neuron and estimated cost), for
:class:`~masksearch.evaluators.incremental.IncrementalEvaluator`.

:func:`_gene_on` (the bit order) is compiled into the kernels of
:mod:`masksearch.evaluators._incremental_update_kernels` as well. Numba's on-disk cache
(``cache=True``) notices edits to the file a kernel is defined in, not to the files of what it
calls: after changing :func:`_gene_on`, delete the Numba cache files (``*.nbi``, ``*.nbc``
under ``__pycache__``) so that those kernels are compiled again.
"""

from __future__ import annotations

import numba
import numpy as np

from masksearch._bits import bit_count


def _pack(masks: np.ndarray, n_words: int) -> np.ndarray:
    """Rows of bool masks as uint64 words (big-endian bit order within each byte)."""
    return _pack_rows(masks.view(np.uint8), n_words).view(np.uint64)


@numba.njit(parallel=True, cache=True)
def _pack_rows(masks, n_words):  # pragma: no cover - compiled
    """:func:`np.packbits` of each row of 0/1 bytes, zero-padded to ``n_words`` words, in one
    pass (no intermediate copy)."""
    n, n_total = masks.shape
    packed = np.zeros((n, n_words * 8), dtype=np.uint8)
    whole = n_total // 8
    # eight 0/1 bytes read as one little-endian word; the multiply moves byte k's bit to bit
    # 63 - k of the product (all partial products land on distinct bits: no carries)
    gather = np.uint64(0x8040201008040201)
    for r in numba.prange(n):
        row = masks[r]
        target = packed[r]
        for b in range(whole):
            word = np.uint64(0)
            for k in range(8):
                word |= np.uint64(row[8 * b + k]) << np.uint64(8 * k)
            target[b] = np.uint8((word * gather) >> np.uint64(56))
        if whole * 8 < n_total:
            byte = np.uint8(0)
            for k in range(n_total - whole * 8):
                byte |= np.uint8(row[8 * whole + k]) << np.uint8(7 - k)
            target[whole] = byte
    return packed


def _unpack(words: np.ndarray, n_total: int) -> np.ndarray:
    return np.unpackbits(words.view(np.uint8))[:n_total].astype(bool)


def _set_bits(words: np.ndarray) -> np.ndarray:
    """Flat indices of the set bits of packed words (sorted)."""
    as_bytes = words.view(np.uint8)
    nonzero = np.flatnonzero(as_bytes)
    bits = np.unpackbits(as_bytes[nonzero]).reshape(-1, 8)
    which, position = np.nonzero(bits)
    return (nonzero[which] * 8 + position).astype(np.int64)


@numba.njit(inline="always")
def _gene_on(words, gene):  # pragma: no cover - compiled
    """Bit ``gene`` of a mask packed by :func:`_pack` (bytes big-endian, words little-endian)."""
    byte = gene >> 3
    shift = 8 * (byte & 7) + 7 - (gene & 7)
    return (words[byte >> 3] >> np.uint64(shift)) & np.uint64(1) != 0


@numba.njit(cache=True)
def _nearest(bits, slots, child, sample, shortlist):  # pragma: no cover - compiled
    """(record, exact Hamming distance) of the remembered mask nearest to ``child``.

    A distance over ``sample`` words ranks every record in ``slots``; the best ``shortlist``
    get the exact distance.
    """
    rough = np.empty(len(slots), dtype=np.int64)
    for s in range(len(slots)):
        total = 0
        for w in sample:
            total += bit_count(bits[slots[s], w] ^ child[w])
        rough[s] = total
    return _shortlisted(bits, slots, child, rough, shortlist)


@numba.njit(cache=True)
def _shortlisted(bits, slots, child, rough, shortlist):  # pragma: no cover - compiled
    order = np.argsort(rough, kind="mergesort")
    best_slot = -1
    best = np.int64(2**62)
    for rank in range(min(shortlist, len(slots))):
        slot = slots[order[rank]]
        total = 0
        for w in range(child.shape[0]):
            total += bit_count(bits[slot, w] ^ child[w])
            if total >= best:
                break
        if total < best:
            best = total
            best_slot = slot
    return best_slot, best


@numba.njit(parallel=True, cache=True)
def _nearest_batch(
    rough_bits, bits, records, rough_children, children, shortlist
):  # pragma: no cover
    """:func:`_nearest` for every row of ``children``, in parallel; (records, distances)."""
    n = children.shape[0]
    nearest = np.empty(n, dtype=np.int64)
    distance = np.empty(n, dtype=np.int64)
    for c in numba.prange(n):
        rough = np.empty(len(records), dtype=np.int64)
        for r in range(len(records)):
            total = 0
            for w in range(rough_children.shape[1]):
                total += bit_count(rough_bits[records[r], w] ^ rough_children[c, w])
            rough[r] = total
        nearest[c], distance[c] = _shortlisted(bits, records, children[c], rough, shortlist)
    return nearest, distance


@numba.njit(cache=True)
def _flipped(parent, child):  # pragma: no cover - compiled
    """Flat indices (sorted, np.packbits bit order) of the genes where two packed masks differ."""
    count = 0
    for w in range(parent.shape[0]):
        count += bit_count(parent[w] ^ child[w])
    out = np.empty(count, dtype=np.int64)
    _write_flipped(parent, child, out)
    return out


@numba.njit(cache=True)
def _write_flipped(parent, child, out):  # pragma: no cover - compiled
    """:func:`_flipped` into ``out`` (sized to the Hamming distance)."""
    position = 0
    for w in range(parent.shape[0]):
        word = parent[w] ^ child[w]
        if word == 0:
            continue
        for k in range(8):  # bytes in memory order (little-endian words)
            byte = (word >> np.uint64(8 * k)) & np.uint64(0xFF)
            if byte == 0:
                continue
            for bit in range(8):
                if byte & (np.uint64(0x80) >> np.uint64(bit)):
                    out[position] = (w * 8 + k) * 8 + bit
                    position += 1


@numba.njit(cache=True)
def _distinct_rows(words):  # pragma: no cover - compiled
    """(first, inverse) of the rows of ``words``: the first row of each distinct one
    (ascending), and for every row the position in ``first`` of its copy.

    Rows are grouped by a hash, and rows of equal hash compared in full.
    """
    n, width = words.shape
    hashes = np.empty(n, dtype=np.uint64)
    for r in range(n):
        # four interleaved multiply-xor chains, for instruction-level parallelism
        lanes = np.full(4, np.uint64(0x9E3779B97F4A7C15))
        for low in range(0, width, 4):
            for k in range(min(4, width - low)):
                lanes[k] = (lanes[k] ^ words[r, low + k]) * np.uint64(0x100000001B3)
        hashes[r] = lanes[0] ^ (lanes[1] << np.uint64(1)) ^ (lanes[2] << np.uint64(2))
        hashes[r] ^= lanes[3] << np.uint64(3)
    order = np.argsort(hashes, kind="mergesort")  # stable: equal hashes in row order
    copy_of = np.arange(n)
    start = 0
    while start < n:
        end = start + 1
        while end < n and hashes[order[end]] == hashes[order[start]]:
            end += 1
        for a in range(start, end):
            first = order[a]
            if copy_of[first] != first:
                continue
            for b in range(a + 1, end):
                other = order[b]
                if copy_of[other] == other and np.array_equal(words[first], words[other]):
                    copy_of[other] = first
        start = end
    position = np.full(n, -1, dtype=np.int64)
    count = 0
    for r in range(n):
        if copy_of[r] == r:
            position[r] = count
            count += 1
    first_rows = np.empty(count, dtype=np.int64)
    inverse = np.empty(n, dtype=np.int64)
    for r in range(n):
        if copy_of[r] == r:
            first_rows[position[r]] = r
        inverse[r] = position[copy_of[r]]
    return first_rows, inverse


@numba.njit(cache=True)
def _plan_children(
    bits, parents, child_words, kept_records, row_start, n_inputs, gene_start, scatter_cost
):  # pragma: no cover - compiled
    """Per child of ``parents[c]``: flipped genes (CSR), kept weights per neuron, estimated
    multiply-adds per sample of the update, and whether a flip empties a whole layer."""
    n = len(parents)
    n_layers = len(gene_start)
    pointers = np.zeros(n + 1, dtype=np.int64)
    for c in range(n):
        count = 0
        for w in range(child_words.shape[1]):
            count += bit_count(bits[parents[c], w] ^ child_words[c, w])
        pointers[c + 1] = pointers[c] + count
    flips = np.empty(pointers[n], dtype=np.int64)
    kept = np.empty((n, kept_records.shape[1]), dtype=np.int32)
    cost = np.zeros(n)
    emptied = np.zeros(n, dtype=np.bool_)
    for c in range(n):
        mine = flips[pointers[c] : pointers[c + 1]]
        _write_flipped(bits[parents[c]], child_words[c], mine)
        kept[c] = kept_records[parents[c]]
        changed = 0
        for layer in range(n_layers):
            out = row_start[layer + 1] - row_start[layer]
            n_in = n_inputs[layer]
            low = high = 0
            if gene_start[layer] >= 0:
                low = np.searchsorted(mine, gene_start[layer])
                high = np.searchsorted(mine, gene_start[layer] + out * n_in)
            distinct = 0
            for f in range(low, high):
                neuron = (mine[f] - gene_start[layer]) // n_in
                if f == low or neuron != (mine[f - 1] - gene_start[layer]) // n_in:
                    distinct += 1
                kept[c, row_start[layer] + neuron] += 1 if _gene_on(child_words[c], mine[f]) else -1
            if high > low:
                alive = False
                for row in range(row_start[layer], row_start[layer + 1]):
                    alive = alive or kept[c, row] != 0
                emptied[c] = emptied[c] or not alive
            if layer + 1 == n_layers or 2 * changed >= n_in:
                cost[c] += out * n_in
                changed = out
                continue
            cost[c] += scatter_cost * (high - low + changed * out)
            if changed:
                changed = out
            elif high > low:
                changed = distinct
    return pointers, flips, kept, cost, emptied
