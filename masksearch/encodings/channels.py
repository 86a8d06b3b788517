"""The ``channels`` encoding: one bool gene per output channel (neuron or filter) of layers
that run in sequence; removing a channel zeroes its row and the next layer's inputs from it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from masksearch.encodings.base import (
    _check_densities,
    _descending,
    _flat_mask,
    _prefix_for,
    _read_magnitudes,
)
from masksearch.encodings.binary import _SparseBinaryEncoding
from masksearch.mask import Layout, Mask, MaskError

__all__ = ["ChannelsEncoding"]

# Channel pruning cannot reach the very low densities unstructured masks do.
_SAMPLE_CHANNEL_DENSITIES = (0.02, 0.8)


class ChannelsEncoding(_SparseBinaryEncoding):
    """One bool gene per output channel (neuron or filter) of every prunable layer but the
    last, whose outputs are the classes.

    **Assumption: the prunable layers run in sequence** — each tensor in layout order feeds
    the next one (a plain ``nn.Sequential`` such as LeNet). Removing channel j of a layer
    zeroes its output row (all its weights) and the next layer's inputs from j: column j of a
    Linear, input channel j of a Conv, and for a Conv followed by flatten and a Linear the
    block of ``in_features // channels`` columns of channel j (flatten is channel-major).
    Zeroing both sides matters: a bias or normalisation layer would otherwise still emit a
    constant from the removed channel. Shapes that do not chain (residual shortcuts, grouped
    convolutions, biases in the layout) raise :class:`MaskError`.

    Channel scores are the mean |w| of the channel's row over its layer's mean |w| (L1 filter
    norm, normalised so layers of different fan-in compare). Crossover mixes whole layers.
    """

    name = "channels"
    #: A swap moves at most this fraction of the channels (at least 1).
    max_swap_fraction: float = 0.02
    sample_densities = _SAMPLE_CHANNEL_DENSITIES

    def __init__(self, model: nn.Module, layout: Layout | None = None) -> None:
        self.layout, magnitudes = _read_magnitudes(model, layout)
        shapes, names = self.layout.shapes, self.layout.names
        if len(shapes) < 2:
            raise MaskError(
                "the channels encoding needs at least two prunable layers: the last layer's "
                "outputs are the classes and are never removed"
            )
        for name, shape in zip(names, shapes, strict=True):
            if len(shape) < 2:
                raise MaskError(
                    f"{name!r} has shape {shape}; the channels encoding works on Linear and "
                    "Conv weights only — build the layout without biases or norms"
                )
        #: Output channels of each layer, and inputs of each layer counted in channels of the
        #: previous layer (the first layer: its own input width).
        self.out_channels = tuple(shape[0] for shape in shapes)
        self.in_channels = (shapes[0][1], *self.out_channels[:-1])
        for index in range(len(shapes) - 1):
            self._check_chain(index)
        self._per_input = tuple(
            size // (out * inputs)
            for size, out, inputs in zip(
                self.layout.sizes, self.out_channels, self.in_channels, strict=True
            )
        )
        self.n_genes = sum(self.out_channels[:-1])
        self._gene_offsets = tuple(
            int(v) for v in np.concatenate([[0], np.cumsum(self.out_channels[:-1])])
        )
        scores = []
        for magnitude, out in zip(magnitudes[:-1], self.out_channels[:-1], strict=True):
            rows = magnitude.reshape(out, -1).mean(axis=1)
            scores.append(rows / max(rows.mean(), np.finfo(float).tiny))
        self._score = np.concatenate(scores)
        self._order = _descending(self._score)
        self._block = np.repeat(np.arange(len(shapes) - 1), self.out_channels[:-1])
        self._n_blocks = len(shapes) - 1
        self._max_swap = max(1, round(self.max_swap_fraction * self.n_genes))

    def _check_chain(self, index: int) -> None:
        names, shapes = self.layout.names, self.layout.shapes
        channels, following = shapes[index][0], shapes[index + 1]
        inputs = following[1]
        if len(following) > 2 or len(shapes[index]) == 2:
            fits = inputs == channels
            expected = f"{channels} inputs"
        else:  # conv → flatten → linear: whole blocks of columns per channel
            fits = inputs % channels == 0
            expected = f"a multiple of {channels} inputs (flattened channels)"
        if not fits:
            raise MaskError(
                f"the channels encoding assumes the prunable layers run in sequence (each "
                f"feeds the next in layout order), but {names[index]!r} has {channels} output "
                f"channels and the next layer {names[index + 1]!r} (shape {following}) takes "
                f"{inputs}, not {expected}. Models with branches (residual shortcuts) or "
                "grouped convolutions are not supported: use the 'weights' or 'levels' encoding"
            )

    def _layer_genes(self, genomes: np.ndarray, layer: int) -> np.ndarray:
        return genomes[:, self._gene_offsets[layer] : self._gene_offsets[layer + 1]]

    def decode_valid(self, genomes: np.ndarray) -> np.ndarray:
        n_pop = genomes.shape[0]
        flats = np.ones((n_pop, self.layout.n_total), dtype=bool)
        offsets = self.layout.offsets
        for layer in range(len(self.out_channels) - 1):
            alive = self._layer_genes(genomes, layer)
            own = slice(offsets[layer], offsets[layer + 1])
            rows = flats[:, own].reshape(n_pop, self.out_channels[layer], -1)
            flats[:, own] = (rows & alive[:, :, None]).reshape(n_pop, -1)
            nxt = slice(offsets[layer + 1], offsets[layer + 2])
            shape = (n_pop, self.out_channels[layer + 1], self.in_channels[layer + 1], -1)
            inputs = flats[:, nxt].reshape(shape)
            flats[:, nxt] = (inputs & alive[:, None, :, None]).reshape(n_pop, -1)
        return flats

    def densities(self, genomes: np.ndarray) -> np.ndarray:
        genomes = self.validate(genomes)
        n_layers = len(self.out_channels)
        alive = [self._layer_genes(genomes, i).sum(axis=1) for i in range(n_layers - 1)]
        alive.append(np.full(genomes.shape[0], self.out_channels[-1]))
        kept = alive[0] * self.in_channels[0] * self._per_input[0]
        for layer in range(1, n_layers):
            kept = kept + alive[layer] * alive[layer - 1] * self._per_input[layer]
        return kept / self.layout.n_total

    def encode(self, mask: Mask) -> np.ndarray:
        """Layer by layer, keep a channel when at least half of its row is kept, counting only
        inputs from channels kept upstream; when no input survives, keep it if any of the
        next layer's weights that read it is kept. Exact for decoded genomes."""
        flat = _flat_mask(self.layout, mask)
        offsets = self.layout.offsets
        genome = np.zeros(self.n_genes, dtype=bool)
        alive_inputs = np.ones(self.in_channels[0], dtype=bool)
        for layer in range(len(self.out_channels) - 1):
            own = flat[offsets[layer] : offsets[layer + 1]]
            rows = own.reshape(self.out_channels[layer], self.in_channels[layer], -1)
            if alive_inputs.any():
                keep = rows[:, alive_inputs, :].mean(axis=(1, 2)) >= 0.5
            else:
                nxt = flat[offsets[layer + 1] : offsets[layer + 2]]
                reads = nxt.reshape(self.out_channels[layer + 1], self.in_channels[layer + 1], -1)
                keep = reads.any(axis=(0, 2))
            genome[self._gene_offsets[layer] : self._gene_offsets[layer + 1]] = keep
            alive_inputs = keep
        return genome

    def magnitude(self, densities: Sequence[float], *, at_most: bool = False) -> np.ndarray:
        """Remove the lowest-scoring channels (never a layer's best) until the decoded density
        is nearest each target (with ``at_most``: the densest at or below it)."""
        targets = _check_densities(densities)
        protected = np.zeros(self.n_genes, dtype=bool)
        for layer in range(len(self.out_channels) - 1):
            start = self._gene_offsets[layer]
            end = self._gene_offsets[layer + 1]
            protected[start + int(np.argmax(self._score[start:end]))] = True
        removal = np.argsort(self._score, kind="stable")
        removal = removal[~protected[removal]]
        # the density after removing the first m channels of `removal`, for every m
        rank = np.full(self.n_genes, removal.size, dtype=np.int64)
        rank[removal] = np.arange(removal.size)
        prefixes = rank[None, :] >= np.arange(removal.size + 1)[:, None]
        curve = self.densities(prefixes)
        genomes = [prefixes[_prefix_for(curve, target, at_most)] for target in targets]
        return np.array(genomes, dtype=bool).reshape(-1, self.n_genes)
