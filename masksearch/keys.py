"""Keys of genomes: what the archive and pymoo's duplicate elimination compare instead of whole
genomes (a LeNet-300-100 genome is 33 KB packed, a ResNet-18 one 1.4 MB)."""

from __future__ import annotations

import numba
import numpy as np

from masksearch._bits import word_at

__all__ = ["KEY_VERSION", "genome_key", "packed_key", "row_keys"]

#: bumped whenever the keys change, so that keys stored beside genomes (in checkpoints) by
#: another version are recomputed instead of compared with new ones
KEY_VERSION = 2  # 1 was blake2b


def genome_key(genome: np.ndarray) -> bytes:
    """The archive's key of a genome; a bool genome is hashed packed (:func:`np.packbits`), so
    its key is :func:`packed_key` of its packed row."""
    data = np.packbits(genome) if genome.dtype == np.bool_ else genome
    return packed_key(data)


def packed_key(row: np.ndarray) -> bytes:
    return row_keys(np.asarray(row).reshape(1, -1))[0]


def row_keys(rows: np.ndarray) -> list[bytes]:
    """A 128-bit key of each row's bytes (a non-cryptographic hash: genomes are not chosen to
    collide). blake2b took ~45 µs for a 33 KB LeNet-300-100 genome, a tenth of the loop's
    whole time per genome; four independent xxHash64 lanes take ~3 µs."""
    rows = np.ascontiguousarray(rows)
    if len(rows) == 0:
        return []
    as_bytes = rows.view(np.uint8).reshape(len(rows), -1)
    return [bytes(digest) for digest in _digests(as_bytes).view(np.uint8).reshape(-1, 16)]


_PRIME_1, _PRIME_2 = np.uint64(0x9E3779B185EBCA87), np.uint64(0xC2B2AE3D27D4EB4F)


@numba.njit(cache=True)
def _mix(value):  # pragma: no cover - compiled
    """MurmurHash3's 64-bit finaliser: every input bit reaches every output bit."""
    value ^= value >> np.uint64(33)
    value *= np.uint64(0xFF51AFD7ED558CCD)
    value ^= value >> np.uint64(33)
    value *= np.uint64(0xC4CEB9FE1A85EC53)
    value ^= value >> np.uint64(33)
    return value


@numba.njit(cache=True)
def _round(lane, word):  # pragma: no cover - compiled
    """xxHash64's accumulation round."""
    lane = lane + word * _PRIME_2
    lane = (lane << np.uint64(31)) | (lane >> np.uint64(33))
    return lane * _PRIME_1


@numba.njit(cache=True)
def _digests(rows):  # pragma: no cover - compiled
    """Two 64-bit digests per row of bytes: four lanes take 32 bytes a step (independent
    multiplies, so the loop is not bound by one chain's latency); the tail and the length are
    mixed in at the end."""
    n_rows, width = rows.shape
    out = np.empty((n_rows, 2), dtype=np.uint64)
    for row in range(n_rows):
        data = rows[row]
        lane_0 = np.uint64(0x243F6A8885A308D3)
        lane_1 = np.uint64(0x13198A2E03707344)
        lane_2 = np.uint64(0xA4093822299F31D0)
        lane_3 = np.uint64(0x082EFA98EC4E6C89)
        n_steps = width // 32
        for step in range(n_steps):
            start = 32 * step
            lane_0 = _round(lane_0, word_at(data, start))
            lane_1 = _round(lane_1, word_at(data, start + 8))
            lane_2 = _round(lane_2, word_at(data, start + 16))
            lane_3 = _round(lane_3, word_at(data, start + 24))
        length = np.uint64(width)
        tail = np.uint64(0)
        for position in range(32 * n_steps, width):
            tail = _round(tail, np.uint64(data[position]) + np.uint64(position))
        out[row, 0] = _mix(
            _mix(lane_0 ^ length)
            + _mix(lane_1) * np.uint64(3)
            + _mix(lane_2 ^ tail) * np.uint64(5)
            + _mix(lane_3) * np.uint64(7)
        )
        out[row, 1] = _mix(
            _mix(lane_3 + tail)
            + _mix(lane_2) * np.uint64(11)
            + _mix(lane_1 + length) * np.uint64(13)
            + _mix(lane_0) * np.uint64(17)
        )
    return out
