"""Genome keys: equal bytes give equal keys, and no key is shared by genomes that differ."""

from __future__ import annotations

import numpy as np

from masksearch.keys import genome_key, packed_key, row_keys


def test_equal_rows_have_equal_keys_and_every_one_bit_change_a_new_key() -> None:
    rng = np.random.default_rng(0)
    for n_bytes in (1, 31, 32, 33, 100):  # below, at and past one 32-byte step of the lanes
        row = rng.integers(0, 256, n_bytes, dtype=np.uint8)
        flipped = np.repeat(row[None, :], 8 * n_bytes, axis=0)
        positions = np.arange(8 * n_bytes)
        flipped[positions, positions // 8] ^= (1 << (positions % 8)).astype(np.uint8)
        keys = row_keys(np.concatenate([row[None, :], row[None, :], flipped]))
        assert keys[0] == keys[1] == packed_key(row)
        assert len(set(keys[1:])) == 1 + 8 * n_bytes
        assert all(len(key) == 16 for key in keys)


def test_no_rows_have_no_keys() -> None:
    assert row_keys(np.zeros((0, 33), dtype=np.uint8)) == []


def test_keys_see_length_and_swapped_words() -> None:
    zeros = [packed_key(np.zeros(n, dtype=np.uint8)) for n in range(0, 80)]
    assert len(set(zeros)) == len(zeros)
    words = np.arange(64, dtype=np.uint8)
    swapped = np.concatenate([words[8:16], words[:8], words[16:]])
    assert packed_key(words) != packed_key(swapped)


def test_a_bool_genome_is_keyed_by_its_packed_row() -> None:
    genome = np.random.default_rng(1).random(1_003) < 0.2
    assert genome_key(genome) == packed_key(np.packbits(genome))
    levels = np.array([0, 3, 1, 2], dtype=np.int16)  # other dtypes are keyed by their bytes
    assert genome_key(levels) == packed_key(levels.view(np.uint8))
    assert genome_key(levels) != genome_key(levels.astype(np.int32))


def test_many_random_sparse_genomes_get_distinct_keys() -> None:
    rng = np.random.default_rng(2)
    rows = np.packbits(rng.random((20_000, 512)) < 0.01, axis=1)
    distinct_rows = {row.tobytes() for row in rows}
    assert len(set(row_keys(rows))) == len(distinct_rows)
