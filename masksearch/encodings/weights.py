"""The ``weights`` encoding: one bool gene per prunable weight (decode is the identity)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from masksearch.encodings.base import (
    _SAMPLE_DENSITIES,
    _check_densities,
    _descending,
    _flat_mask,
    _index_dtype,
    _keep_count,
    _rank,
    _read_magnitudes,
)
from masksearch.encodings.binary import _SparseBinaryEncoding
from masksearch.mask import Layout, Mask

__all__ = ["WeightsEncoding"]


class WeightsEncoding(_SparseBinaryEncoding):
    """One bool gene per prunable weight (``n_genes = layout.n_total``); decode is identity.

    Gene scores are |w|. Crossover blocks are the rows of each weight tensor (one output
    neuron's or filter's fan-in), so children inherit whole neurons' connectivity.
    """

    name = "weights"
    genomes_are_masks = True
    #: A swap moves at most this fraction of the genes (at least 1).
    max_swap_fraction: float = 0.0005
    sample_densities = _SAMPLE_DENSITIES

    def __init__(self, model: nn.Module, layout: Layout | None = None) -> None:
        self.layout, magnitudes = _read_magnitudes(model, layout)
        self.n_genes = self.layout.n_total
        self._order = _descending(np.concatenate(magnitudes))
        self._rank = _rank(self._order)
        blocks, first = [], 0
        for shape, size in zip(self.layout.shapes, self.layout.sizes, strict=True):
            rows = shape[0] if shape else 1
            block_ids = np.arange(first, first + rows, dtype=_index_dtype(self.n_genes))
            blocks.append(np.repeat(block_ids, size // rows))
            first += rows
        self._block = np.concatenate(blocks)
        self._n_blocks = first
        self._max_swap = max(1, round(self.max_swap_fraction * self.n_genes))

    def decode_valid(self, genomes: np.ndarray) -> np.ndarray:
        # the genomes are the masks, shared rather than copied (a population of LeNet-300-100
        # masks is 26 MB); evaluators only read masks (the Evaluator contract)
        return genomes

    def encode(self, mask: Mask) -> np.ndarray:
        return _flat_mask(self.layout, mask)

    def densities(self, genomes: np.ndarray) -> np.ndarray:
        return self.validate(genomes).mean(axis=1)

    def magnitude(self, densities: Sequence[float]) -> np.ndarray:
        """Global top-|w| at each density (ties to the lower index), as ``Mask.magnitude``."""
        counts = np.array(
            [_keep_count(d, self.n_genes) for d in _check_densities(densities)], dtype=np.int64
        )
        return self._rank[None, :] < counts[:, None]
