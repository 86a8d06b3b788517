"""The ``groups`` encoding: one bool gene per channel of every channel dependency group, so
that a removed gene is a real structural removal (see :mod:`masksearch.structured.groups`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from masksearch.encodings.base import (
    _check_densities,
    _descending,
    _flat_mask,
    _prefix_for,
)
from masksearch.encodings.binary import _SparseBinaryEncoding
from masksearch.mask import Layout, Mask, MaskError
from masksearch.structured.groups import GroupTable, channel_groups

__all__ = ["GroupsEncoding"]

_SAMPLE_GROUP_DENSITIES = (0.05, 0.8)
IMPORTANCES = ("l2", "l1")


class GroupsEncoding(_SparseBinaryEncoding):
    """One bool gene per channel of each dependency group Torch-Pruning finds in ``model``.

    A group couples every layer a channel removal touches: a conv's output channel, its
    batch norm, the inputs of every consumer, and across residual adds or depthwise convs the
    same channel of every layer writing into that tensor. Removing gene ``j`` zeroes all of
    them, so a decoded mask computes exactly what the physically smaller model computes
    (:func:`masksearch.structured.shrink` builds it). The layout holds every Linear/Conv
    weight and bias and every batch-norm/PReLU parameter, so a genome's density is the
    fraction of those parameters the smaller model keeps.

    ``input_shape`` is one input's shape without the batch dimension (a
    :class:`~masksearch.PruningProblem` fills it in from its data); ``ignored`` names layers
    whose outputs are never removed (default: the classifier, the last Linear/Conv run).
    Genes are scored by the ``importance`` norm (``"l2"`` or ``"l1"``) of everything the
    channel removes, over the mean of its group (Torch-Pruning's group-magnitude criterion,
    normalised so groups of different widths compare). Every group keeps at least one
    channel: :meth:`validate` turns a group's best channel back on when a genome empties it.

    With ``widths_only=True`` a genome chooses only how many channels each group keeps, and
    which ones is the importance's: :meth:`validate` keeps each group's top channels, as many
    as the genome has on there. The search is then over per-group widths (an architecture
    search, as AMC or MetaPruning do), a far smaller space than the channels' identities.
    """

    name = "groups"
    #: A swap moves at most this fraction of the channels (at least 1).
    max_swap_fraction: float = 0.02

    # validate turns an emptied group's best channel back on: not a pure bit operation
    packable = False
    sample_densities = _SAMPLE_GROUP_DENSITIES

    def __init__(
        self,
        model: nn.Module,
        layout: Layout | None = None,
        *,
        input_shape: Sequence[int],
        ignored: Sequence[str] | None = None,
        importance: str = "l2",
        widths_only: bool = False,
    ) -> None:
        if importance not in IMPORTANCES:
            raise ValueError(f"importance must be one of {IMPORTANCES}, got {importance!r}")
        self.table: GroupTable = channel_groups(model, input_shape, ignored)
        if layout is not None and layout != self.table.layout:
            raise MaskError(
                "the groups encoding prunes every Linear/Conv weight and bias and every "
                "batch-norm/PReLU parameter; build it without a layout (or with "
                "masksearch.structured.group_layout(model))"
            )
        self.layout = self.table.layout
        self.input_shape = tuple(int(s) for s in input_shape)
        self.ignored = None if ignored is None else tuple(ignored)
        self.importance = importance
        if not isinstance(widths_only, bool):
            raise TypeError(f"widths_only must be True or False, got {widths_only!r}")
        self.widths_only = widths_only
        self.n_genes = self.table.n_genes
        self._score = self._scores(model)
        self._order = _descending(self._score)
        self._block = self.table.gene_group()
        self._n_blocks = len(self.table.groups)
        self._max_swap = max(1, round(self.max_swap_fraction * self.n_genes))
        offsets = self.table.offsets
        self._best = np.array(
            [
                offsets[g] + int(np.argmax(self._score[offsets[g] : offsets[g + 1]]))
                for g in range(self._n_blocks)
            ],
            dtype=np.int64,
        )
        self._rank_in_group = self._ranks_in_groups()
        self._cover_cache: np.ndarray | None = None

    @property
    def options(self) -> dict[str, Any]:
        options = {
            "input_shape": list(self.input_shape),
            "ignored": None if self.ignored is None else list(self.ignored),
            "importance": self.importance,
        }
        if self.widths_only:  # absent when off: run directories from before it read the same
            options["widths_only"] = True
        return options

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cover_cache"] = None  # rebuilt on demand: it is the size of the layout
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "widths_only" not in state:  # pickled before the option existed
            self.widths_only = False
            self._rank_in_group = self._ranks_in_groups()

    def _ranks_in_groups(self) -> np.ndarray:
        """Each gene's place in its group by descending score (0: the group's best); stable,
        so ties go to the lower channel as in the rest of the encoding."""
        offsets = self.table.offsets
        ranks = np.empty(self.n_genes, dtype=np.int64)
        for g in range(len(offsets) - 1):
            order = np.argsort(-self._score[offsets[g] : offsets[g + 1]], kind="stable")
            ranks[offsets[g] + order] = np.arange(order.size)
        return ranks

    def _scores(self, model: nn.Module) -> np.ndarray:
        params = dict(model.named_parameters())
        flat = np.concatenate(
            [
                params[name].detach().to("cpu", torch.float64).reshape(-1).numpy()
                for name in self.layout.names
            ]
        )
        if not np.isfinite(flat).all():
            raise MaskError(
                "the model's parameters contain NaN or inf values; retrain or reload its weights"
            )
        values = np.abs(flat) if self.importance == "l1" else flat**2
        sums = np.add.reduceat(values[self.table.positions], self.table.pointers[:-1])
        sums[np.diff(self.table.pointers) == 0] = 0.0
        raw = sums if self.importance == "l1" else np.sqrt(sums)
        score = np.empty_like(raw)
        for g in range(len(self.table.groups)):
            part = slice(self.table.offsets[g], self.table.offsets[g + 1])
            score[part] = raw[part] / max(raw[part].mean(), np.finfo(float).tiny)
        return score

    # -- the map -------------------------------------------------------------------------
    def _cover(self) -> np.ndarray:
        """``(n_total, K)`` the genes that remove each position, -1 padded."""
        if self._cover_cache is None:
            genes = np.repeat(np.arange(self.n_genes), np.diff(self.table.pointers))
            positions = self.table.positions
            order = np.argsort(positions, kind="stable")
            positions, genes = positions[order], genes[order]
            counts = np.bincount(positions, minlength=self.layout.n_total)
            width = max(1, int(counts.max(initial=0)))
            cover = np.full((self.layout.n_total, width), -1, dtype=np.int32)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            slot = np.arange(positions.size) - starts[positions]
            cover[positions, slot] = genes
            self._cover_cache = cover
        return self._cover_cache

    def _check_invariants(self, genomes: np.ndarray) -> np.ndarray:
        if self.widths_only:
            kept = np.add.reduceat(genomes.astype(np.int64), self.table.offsets[:-1], axis=1)
            # at least one channel per group, and the group's top ones by importance
            return np.maximum(kept, 1)[:, self._block] > self._rank_in_group
        empty = np.logical_not(np.logical_or.reduceat(genomes, self.table.offsets[:-1], axis=1))
        if empty.any():
            rows, groups = np.nonzero(empty)
            genomes[rows, self._best[groups]] = True
        return genomes

    def decode_valid(self, genomes: np.ndarray) -> np.ndarray:
        cover = self._cover()
        padded = np.concatenate([genomes, np.ones((genomes.shape[0], 1), dtype=bool)], axis=1)
        # -1 (no gene removes this position) reads the appended always-kept column
        return padded[:, cover].all(axis=2)

    def kept_channels(self, genomes: np.ndarray) -> np.ndarray:
        """``(P, n_groups)`` channels each genome keeps in every group."""
        genomes = self.validate(genomes)
        return np.add.reduceat(genomes.astype(np.int64), self.table.offsets[:-1], axis=1)

    def widths_genome(self, widths: Sequence[int]) -> np.ndarray:
        """``(n_genes,)`` the genome of a hand-set architecture: group ``g`` keeps its
        ``widths[g]`` most important channels (the encoding's importance, ties to the lower
        channel), in the order of ``table.groups``."""
        sizes = np.diff(self.table.offsets)
        names = ", ".join(f"{group.root} ({group.channels})" for group in self.table.groups)
        try:
            counts = np.array([int(width) for width in widths], dtype=np.int64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"widths must be whole channel counts, got {widths!r}") from error
        if counts.shape != sizes.shape:
            raise ValueError(
                f"widths needs one channel count per group, {sizes.size} here in this order: "
                f"{names}; got {counts.size}"
            )
        bad = np.flatnonzero((counts < 1) | (counts > sizes))
        if bad.size:
            g = int(bad[0])
            raise ValueError(
                f"group {g} ({self.table.groups[g].root}) has {sizes[g]} channels and keeps at "
                f"least 1: width {counts[g]} is out of range (groups: {names})"
            )
        return self._rank_in_group < counts[self._block]

    def encode(self, mask: Mask) -> np.ndarray:
        """Keep a channel when any position it would remove is kept (exact for decoded
        genomes); for other masks, when at least half of them are."""
        flat = _flat_mask(self.layout, mask)
        kept = np.add.reduceat(
            flat[self.table.positions].astype(np.int64), self.table.pointers[:-1]
        )
        sizes = np.diff(self.table.pointers)
        kept[sizes == 0] = 0
        genome = self.validate(kept > 0)[0]
        if np.array_equal(self.decode_valid(genome[None])[0], flat):
            return genome
        return self.validate(2 * kept >= np.maximum(sizes, 1))[0]

    def _prefix_densities(self, removal: np.ndarray) -> np.ndarray:
        """The density after removing the first m genes of ``removal``, for every m."""
        alive = np.ones(self.layout.n_total, dtype=bool)
        removed = np.zeros(removal.size + 1, dtype=np.int64)
        for step, gene in enumerate(removal, start=1):
            positions = self.table.positions_of(int(gene))
            removed[step] = removed[step - 1] + int(alive[positions].sum())
            alive[positions] = False
        return 1.0 - removed / self.layout.n_total

    def magnitude(self, densities: Sequence[float], *, at_most: bool = False) -> np.ndarray:
        """Remove the lowest-scoring channels across all groups (never a group's best) until
        the density is nearest each target (with ``at_most``: the densest at or below it):
        global group-magnitude pruning."""
        targets = _check_densities(densities)
        protected = np.zeros(self.n_genes, dtype=bool)
        protected[self._best] = True
        removal = np.argsort(self._score, kind="stable")
        removal = removal[~protected[removal]]
        curve = self._prefix_densities(removal)
        genomes = np.ones((len(targets), self.n_genes), dtype=bool)
        for row, target in enumerate(targets):
            genomes[row, removal[: _prefix_for(curve, target, at_most)]] = False
        return genomes

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Group-magnitude genomes at ``n`` log-spaced densities in [0.05, 0.8], each with a
        small random channel swap."""
        return self._check_invariants(super().sample(n, rng))

    def mutate(self, genomes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self._check_invariants(super().mutate(genomes, rng))

    def crossover(
        self, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        return self._check_invariants(super().crossover(first, second, rng))
