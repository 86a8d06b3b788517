from __future__ import annotations

import numpy as np
import pytest

from masksearch._bits import same_bytes, unpack_bits


@pytest.mark.parametrize("n_bytes", [1, 7, 8, 9, 63, 64, 65, 1000])
def test_same_bytes_finds_any_one_byte_difference(n_bytes) -> None:
    rng = np.random.default_rng(n_bytes)
    rows = rng.integers(0, 256, (3, n_bytes), dtype=np.uint8)
    assert same_bytes(rows, rows.copy())
    for position in range(rows.size):
        changed = rows.copy().reshape(-1)
        changed[position] ^= np.uint8(1 << int(rng.integers(8)))
        assert not same_bytes(rows, changed.reshape(rows.shape))
        assert same_bytes(rows, changed.reshape(rows.shape)) == np.array_equal(
            rows, changed.reshape(rows.shape)
        )


def test_same_bytes_compares_sizes_and_other_dtypes() -> None:
    values = np.arange(10, dtype=np.int64)
    assert same_bytes(values, values.copy())
    assert not same_bytes(values, values[:9].copy())
    changed = values.copy()
    changed[9] = 1 << 40  # a difference in a high byte
    assert not same_bytes(values, changed)


@pytest.mark.parametrize("n_bits", [1, 8, 13, 64, 1001])
def test_unpack_bits_inverts_packbits(n_bits):
    rng = np.random.default_rng(n_bits)
    masks = rng.random((5, n_bits)) < 0.3
    packed = np.packbits(masks, axis=1)
    got = unpack_bits(packed, n_bits)
    assert got.dtype == np.bool_ and got.flags.c_contiguous
    np.testing.assert_array_equal(got, masks)
    np.testing.assert_array_equal(unpack_bits(packed[2], n_bits), masks[2])
    assert unpack_bits(packed[:0], n_bits).shape == (0, n_bits)
