"""PackedOperators: the sparse binary operators on packed genomes, draw for draw.

The invariant: for any genomes and seed, packing, running the packed operator and unpacking
gives exactly what the bool encoding's operator gives from the same generator state, and the
generators end in the same state (so every later draw of a search agrees too).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch import nn

from masksearch.encodings import (
    ChannelsEncoding,
    GenomeError,
    LevelsEncoding,
    WeightsEncoding,
    packed,
)
from masksearch.encodings.packed import PackedOperators


@pytest.fixture(params=["weights", "channels", "mlp-weights"])
def encoding(request, tiny_conv):
    if request.param == "mlp-weights":
        # rows of whole 8-byte words (the compiled kernels' fast paths), blocks of 300 genes
        # that start mid-byte, and a last word that is not whole
        torch.manual_seed(3)
        model = nn.Sequential(nn.Linear(300, 37), nn.ReLU(), nn.Linear(37, 10))
        return WeightsEncoding(model)
    model = tiny_conv(seed=3)
    return WeightsEncoding(model) if request.param == "weights" else ChannelsEncoding(model)


def _population(encoding, densities, seed):
    genomes = encoding.magnitude(densities)
    return encoding._perturbed(genomes, np.random.default_rng(seed))


def _same_generator_state(first: np.random.Generator, second: np.random.Generator) -> bool:
    def flat(state: object) -> list:  # MT19937 and Philox keep arrays in their state
        if isinstance(state, dict):
            return [(key, flat(value)) for key, value in sorted(state.items())]
        return np.asarray(state).tolist() if isinstance(state, np.ndarray) else [state]

    return flat(first.bit_generator.state) == flat(second.bit_generator.state)


def test_tiny_conv_weights_genomes_do_not_fill_whole_bytes(tiny_conv):
    # padding bits and blocks that straddle bytes are exercised below
    assert WeightsEncoding(tiny_conv()).n_genes % 8 != 0


def test_pack_unpack_round_trip_and_zero_padding(encoding):
    operators = PackedOperators(encoding)
    genomes = _population(encoding, [0.9, 0.3, 0.05], seed=0)
    packed = operators.pack(genomes)
    assert packed.dtype == np.uint8 and packed.shape == (3, (encoding.n_genes + 7) // 8)
    assert operators.n_genes == packed.shape[1]
    np.testing.assert_array_equal(operators.unpack(packed), genomes)
    np.testing.assert_array_equal(packed, np.packbits(genomes, axis=1))


@pytest.mark.parametrize("density", [1.0, 0.5, 0.1, 0.02, None])
def test_mutate_equals_the_bool_operator_draw_for_draw(encoding, density):
    operators = PackedOperators(encoding)
    if density is None:  # one kept gene: only add moves are feasible
        genomes = np.zeros((8, encoding.n_genes), dtype=bool)
        genomes[:, 5] = True
    else:
        genomes = _population(encoding, [density] * 8, seed=1)
    for seed in range(25):
        bool_rng, packed_rng = np.random.default_rng(seed), np.random.default_rng(seed)
        expected = encoding.mutate(genomes, bool_rng)
        got = operators.unpack(operators.mutate(operators.pack(genomes), packed_rng))
        np.testing.assert_array_equal(got, expected)
        assert _same_generator_state(bool_rng, packed_rng)


@pytest.mark.parametrize("bit_generator", [np.random.PCG64, np.random.MT19937, np.random.Philox])
def test_compiled_choice_draws_what_numpy_draws(bit_generator):
    # both of numpy's algorithms (Floyd's below, a tail shuffle above 10,000 candidates and
    # 1/50 of them), empty and whole samples; then a float, to catch a half-used 32-bit draw
    cases = [
        (1, 1),
        (2, 2),
        (7, 0),
        (100, 7),
        (133, 133),
        (10_000, 300),
        (10_001, 201),
        (20_000, 399),
        (20_000, 401),
        (266_200, 1),
        (266_200, 5_325),
        (266_200, 6_000),
        (2**32 - 1, 3),  # draws up to 2**32 - 2: the last below 32 bits
        (2**32 + 1, 3),  # draws of 2**32 - 1 and 2**32: next_uint32 whole, then 64-bit
        (2**40, 9),
    ]
    for seed in range(6):
        for pop_size, size in cases:
            expected_rng = np.random.Generator(bit_generator(seed))
            got_rng = np.random.Generator(bit_generator(seed))
            expected = expected_rng.choice(pop_size, size=size, replace=False)
            got = packed._choice_indices(got_rng, pop_size, size)
            np.testing.assert_array_equal(got, expected)
            assert got_rng.random() == expected_rng.random()
            assert _same_generator_state(got_rng, expected_rng)
    with pytest.raises(ValueError, match="larger sample than population"):
        packed._choice_indices(np.random.default_rng(0), 3, 4)


@pytest.mark.parametrize("densities", [(0.5, 0.05), (0.02, 0.3), (1.0, 0.01)])
def test_crossover_equals_the_bool_operator_draw_for_draw(encoding, densities):
    operators = PackedOperators(encoding)
    first = _population(encoding, [densities[0]] * 6, seed=2)
    second = encoding.mutate(
        _population(encoding, [densities[1]] * 6, seed=3), np.random.default_rng(4)
    )
    for seed in range(25):
        bool_rng, packed_rng = np.random.default_rng(seed), np.random.default_rng(seed)
        expected = encoding.crossover(first, second, bool_rng)
        packed = operators.crossover(operators.pack(first), operators.pack(second), packed_rng)
        np.testing.assert_array_equal(operators.unpack(packed), expected)
        assert _same_generator_state(bool_rng, packed_rng)


@pytest.mark.parametrize("rows_at_once", [None, 1, 2])
def test_sample_equals_the_bool_operator(encoding, rows_at_once, monkeypatch):
    if rows_at_once is not None:  # a large model's population is built a few rows at a time
        monkeypatch.setattr(packed, "UNPACKED_BYTES", rows_at_once * encoding.n_genes)
    operators = PackedOperators(encoding)
    for seed in range(8):  # the swaps are drawn on packed rows: their picks must be the same
        bool_rng, packed_rng = np.random.default_rng(seed), np.random.default_rng(seed)
        np.testing.assert_array_equal(
            operators.unpack(operators.sample(5, packed_rng)), encoding.sample(5, bool_rng)
        )
        assert _same_generator_state(bool_rng, packed_rng)
    assert operators.sample(0, packed_rng).shape == (0, operators.n_genes)


def test_operators_do_not_write_to_their_inputs(encoding):
    operators = PackedOperators(encoding)
    packed = operators.pack(_population(encoding, [0.2] * 4, seed=5))
    before = packed.copy()
    operators.mutate(packed, np.random.default_rng(0))
    operators.crossover(packed, packed[::-1], np.random.default_rng(0))
    np.testing.assert_array_equal(packed, before)


def test_bad_packed_genomes_are_refused(tiny_conv):
    encoding = WeightsEncoding(tiny_conv())
    operators = PackedOperators(encoding)
    packed = operators.pack(encoding.magnitude([0.5]))
    with pytest.raises(GenomeError, match="uint8 rows"):
        operators.validate(operators.unpack(packed))  # bool genomes are not packed ones
    with pytest.raises(GenomeError, match="uint8 rows"):
        operators.validate(packed[:, :-1])
    padded = packed.copy()
    padded[0, -1] |= 1  # the last gene is not a multiple of 8: bit 0 of the last byte is padding
    with pytest.raises(GenomeError, match="padding bits"):
        operators.validate(padded)


def test_only_packable_encodings_are_packed(tiny_conv):
    with pytest.raises(TypeError, match="cannot be packed"):
        PackedOperators(LevelsEncoding(tiny_conv()))


def test_pickled_operators_leave_their_tables_behind(encoding):
    operators = PackedOperators(encoding)
    operators.mutate(operators.pack(encoding.magnitude([0.3, 0.3])), np.random.default_rng(0))
    assert "_cached_tables" in operators.__dict__
    restored = pickle.loads(pickle.dumps(operators))
    assert "_cached_tables" not in restored.__dict__
    genomes = operators.pack(encoding.magnitude([0.3, 0.3]))
    np.testing.assert_array_equal(
        restored.mutate(genomes, np.random.default_rng(1)),
        operators.mutate(genomes, np.random.default_rng(1)),
    )


@pytest.mark.parametrize("n_bytes", [1, 7, 8, 9, 64, 1001])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.5, 0.99, 1.0])
def test_bit_kernels_match_numpy_on_unpacked_rows(n_bytes, density):
    # popcount and the n-th set/clear bit, word by word, against the same on bools
    rng = np.random.default_rng(n_bytes)
    bits = rng.random((3, 8 * n_bytes)) < density
    rows = np.packbits(bits, axis=1)
    np.testing.assert_array_equal([packed._row_count(row) for row in rows], bits.sum(axis=1))
    for row, row_bits in zip(rows, bits, strict=True):
        for state in (True, False):
            genes = np.flatnonzero(row_bits == state)
            if genes.size == 0:
                continue
            ranks = rng.choice(genes.size, size=min(genes.size, 12), replace=False)
            ranks[0] = genes.size - 1  # the last one, past every whole word
            np.testing.assert_array_equal(
                packed._nth_bits(row, ranks.astype(np.int64), state), genes[ranks]
            )


@pytest.mark.parametrize("n_bytes", [1, 7, 8, 9, 64, 1001])
@pytest.mark.parametrize("density", [0.01, 0.5, 1.0])
def test_kept_end_is_the_window_of_set_genes_at_either_end_of_the_order(n_bytes, density):
    # the rank-bitmap window against sorting the set genes' ranks, windows from one gene to
    # all of them, at both ends, rows whose length is not a whole number of words
    rng = np.random.default_rng(n_bytes)
    n_genes = 8 * n_bytes - int(rng.integers(0, 8))
    order = rng.permutation(n_genes).astype(np.int64)
    rank = np.empty(n_genes, dtype=np.int32)
    rank[order] = np.arange(n_genes)
    bits = rng.random(n_genes) < density
    if not bits.any():
        bits[int(rng.integers(n_genes))] = True
    row = np.packbits(bits)
    by_rank = order[np.sort(rank[np.flatnonzero(bits)])]
    for window in sorted({1, 2, by_rank.size // 3 + 1, by_rank.size}):
        for first, expected in ((True, by_rank[:window]), (False, by_rank[-window:])):
            np.testing.assert_array_equal(
                packed._kept_end(row, order, rank, window, first), expected
            )
    assert packed._kept_end(np.zeros_like(row), order, rank, 1, False).size == 0


def test_range_counts_equal_counting_the_bools_between_offsets():
    # ranges inside one byte, across byte and word boundaries, empty ones, the padding byte
    rng = np.random.default_rng(11)
    for _ in range(200):
        n_genes = int(rng.integers(1, 700))
        bits = rng.random((3, n_genes)) < rng.random()
        cuts = np.sort(rng.integers(0, n_genes + 1, size=int(rng.integers(0, 6))))
        offsets = np.concatenate([[0], cuts, [n_genes]])
        expected = [
            [row[a:b].sum() for a, b in zip(offsets[:-1], offsets[1:], strict=True)] for row in bits
        ]
        counts = packed.range_counts(np.packbits(bits, axis=1), offsets)
        np.testing.assert_array_equal(counts, expected)
