"""The ``levels`` encoding (EvoPress): one integer gene per prunable tensor, an index into a
density ladder, with level-switch mutation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from masksearch.encodings.base import (
    _SAMPLE_DENSITIES,
    Encoding,
    GenomeError,
    _check_count,
    _check_densities,
    _check_rng,
    _descending,
    _flat_mask,
    _keep_count,
    _log_spaced,
    _rank,
    _read_magnitudes,
)
from masksearch.mask import Layout, Mask, check_density

__all__ = ["DEFAULT_LADDER", "LevelsEncoding"]

#: Geometric density ladder of :class:`LevelsEncoding`: 28 levels from 1.0 down to 0.002,
#: each level keeping ~79% of the previous one.
DEFAULT_LADDER: tuple[float, ...] = tuple(float(v) for v in np.geomspace(1.0, 0.002, 28))


class LevelsEncoding(Encoding):
    """EvoPress: one int64 gene per prunable tensor, an index into a density ladder.

    Gene value v keeps the layer's top-|w| ``max(1, round(ladder[v]·size))`` weights (the
    rule of ``Mask.from_scores(scope="layer")``). The ladder runs from dense (index 0) to
    sparse; the default is :data:`DEFAULT_LADDER`.

    Mutation is, with probability ``1 − step_probability``, a level switch (one layer one
    level denser or sparser, another layer as many levels the other way as brings the total
    kept count back; see :meth:`level_switch`), else a ±1 level step on one layer, which
    changes the density. Crossover is uniform per gene.

    With ``density`` set, level switches steer the total towards round(density·N) kept
    weights instead of the parent's total (so errors do not accumulate over generations),
    ``sample`` starts near that density, and ±1 steps are off unless ``step_probability`` is
    given.
    """

    name = "levels"
    dtype = np.dtype(np.int64)

    def __init__(
        self,
        model: nn.Module,
        ladder: Sequence[float] | None = None,
        layout: Layout | None = None,
        *,
        density: float | None = None,
        switch_tolerance: float = 0.02,
        step_probability: float | None = None,
    ) -> None:
        self.ladder = self._check_ladder(DEFAULT_LADDER if ladder is None else ladder)
        self.density = None if density is None else check_density(density)
        if not isinstance(switch_tolerance, (int, float)) or not 0 <= switch_tolerance < 1:
            raise ValueError(f"switch_tolerance must be in [0, 1), got {switch_tolerance!r}")
        if step_probability is None:
            step_probability = 0.0 if self.density is not None else 0.2
        if not isinstance(step_probability, (int, float)) or not 0 <= step_probability <= 1:
            raise ValueError(f"step_probability must be in [0, 1], got {step_probability!r}")
        self.switch_tolerance = float(switch_tolerance)
        self.step_probability = float(step_probability)
        self.layout, magnitudes = _read_magnitudes(model, layout)
        self.n_genes = len(self.layout.names)
        self.lower = np.zeros(self.n_genes, dtype=np.int64)
        self.upper = np.full(self.n_genes, self.ladder.size - 1, dtype=np.int64)
        #: ``level_counts[l, v]``: weights layer l keeps at level v.
        self.level_counts = np.array(
            [[_keep_count(d, size) for d in self.ladder] for size in self.layout.sizes],
            dtype=np.int64,
        )
        self._local_rank = np.concatenate([_rank(_descending(m)) for m in magnitudes])
        self._global_rank = _rank(_descending(np.concatenate(magnitudes)))

    @staticmethod
    def _check_ladder(ladder: Sequence[float]) -> np.ndarray:
        try:
            values = np.asarray(ladder, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"ladder must be a sequence of densities, got {ladder!r}") from None
        if values.ndim != 1 or values.size < 2:
            raise ValueError(
                f"ladder must be a flat sequence of at least 2 densities, got {ladder!r}"
            )
        if not (np.isfinite(values).all() and (values > 0).all() and (values <= 1).all()):
            raise ValueError(f"ladder densities must be in (0, 1], got {values.tolist()}")
        if not (np.diff(values) < 0).all():
            raise ValueError(
                "ladder must be strictly decreasing (dense → sparse, gene 0 = densest), e.g. "
                f"np.geomspace(1.0, 0.002, 28); got {values.tolist()}"
            )
        return values

    def _coerce(self, genomes: np.ndarray) -> np.ndarray:
        array = self._as_population(genomes)
        if array.dtype == bool:
            raise GenomeError(
                "'levels' genomes are integer level indices, got a bool array; "
                "was this genome made for a binary encoding?"
            )
        if array.dtype.kind == "f" and (array != np.round(array)).any():
            row, gene = np.argwhere(array != np.round(array))[0]
            raise GenomeError(
                f"level genes must be whole numbers; gene {gene} ({self.layout.names[gene]!r}) "
                f"of genome {row} is {array[row, gene]!r} — round real-valued genomes first"
            )
        outside = (array < 0) | (array > self.ladder.size - 1)
        if outside.any():
            row, gene = np.argwhere(outside)[0]
            raise GenomeError(
                f"level {array[row, gene]!r} of gene {gene} ({self.layout.names[gene]!r}) in "
                f"genome {row} is outside 0..{self.ladder.size - 1} (the ladder has "
                f"{self.ladder.size} levels)"
            )
        return array.astype(np.int64)

    def kept_counts(self, genomes: np.ndarray) -> np.ndarray:
        """``(P, n_layers)`` weights each genome keeps per layer."""
        genomes = self.validate(genomes)
        return self.level_counts[np.arange(self.n_genes)[None, :], genomes]

    def densities(self, genomes: np.ndarray) -> np.ndarray:
        return self.kept_counts(genomes).sum(axis=1) / self.layout.n_total

    @property
    def options(self) -> dict[str, Any]:
        return {
            "ladder": [float(level) for level in self.ladder],
            "density": self.density,
            "switch_tolerance": self.switch_tolerance,
            "step_probability": self.step_probability,
        }

    def decode_valid(self, genomes: np.ndarray) -> np.ndarray:
        kept = self.level_counts[np.arange(self.n_genes)[None, :], genomes]
        flats = np.empty((kept.shape[0], self.layout.n_total), dtype=bool)
        offsets = self.layout.offsets
        for layer in range(self.n_genes):
            span = slice(offsets[layer], offsets[layer + 1])
            flats[:, span] = self._local_rank[None, span] < kept[:, layer : layer + 1]
        return flats

    def encode(self, mask: Mask) -> np.ndarray:
        """Per layer, the level whose kept count is nearest the mask's (ties: denser)."""
        flat = _flat_mask(self.layout, mask)
        offsets = self.layout.offsets
        kept = np.array([flat[offsets[i] : offsets[i + 1]].sum() for i in range(self.n_genes)])
        return np.abs(self.level_counts - kept[:, None]).argmin(axis=1).astype(np.int64)

    def magnitude(self, densities: Sequence[float]) -> np.ndarray:
        """Levels imitating the global magnitude mask at each density.

        Each layer starts at the level nearest the count global magnitude keeps in it; then
        small level moves bring the total near round(density·N) (see ``_approach``).
        """
        offsets = np.asarray(self.layout.offsets)
        genomes = []
        for density in _check_densities(densities):
            target = _keep_count(density, self.layout.n_total)
            kept_global = np.add.reduceat(self._global_rank < target, offsets[:-1])
            start = np.abs(self.level_counts - kept_global[:, None]).argmin(axis=1)
            genomes.append(self._approach(start, target))
        return np.array(genomes, dtype=np.int64).reshape(-1, self.n_genes)

    def _approach(self, start: np.ndarray, target: int) -> np.ndarray:
        """Levels near ``start`` whose total is near ``target``: greedy ±1 moves of one or
        two layers within ``radius`` levels of the start, the radius widening from 1 until
        the total is within 2% of the target (or the nearest any radius reaches). Layers move
        as little as that allows, so the per-layer shape of global magnitude survives; with
        ladder steps ~20% apart a large layer alone rarely hits the target."""
        best, best_gap = start, None
        for radius in range(1, self.ladder.size):
            levels = self._greedy(start.copy(), target, radius)
            gap = abs(int(self.level_counts[np.arange(self.n_genes), levels].sum()) - target)
            if best_gap is None or gap < best_gap:
                best, best_gap = levels, gap
            if best_gap <= 0.02 * target:
                break
        return best

    def _greedy(self, levels: np.ndarray, target: int, radius: int) -> np.ndarray:
        n_layers, n_levels = self.level_counts.shape
        layers = np.concatenate([np.arange(n_layers)] * 2)
        low = np.maximum(levels - radius, 0)[layers]
        high = np.minimum(levels + radius, n_levels - 1)[layers]
        never = np.iinfo(np.int64).max
        while True:
            moved = np.concatenate([levels - 1, levels + 1])
            inside = (moved >= low) & (moved <= high)
            current = self.level_counts[layers, levels[layers]]
            delta = self.level_counts[layers, np.clip(moved, 0, n_levels - 1)] - current
            total = int(self.level_counts[np.arange(n_layers), levels].sum())
            singles = np.where(inside, np.abs(total + delta - target), never)
            # a pair must move two different layers
            usable = inside[:, None] & inside[None, :] & (layers[:, None] != layers[None, :])
            pairs = np.where(
                usable, np.abs(total + delta[:, None] + delta[None, :] - target), never
            )
            best_single, best_pair = int(singles.argmin()), int(pairs.argmin())
            if min(singles[best_single], pairs.flat[best_pair]) >= abs(total - target):
                return levels
            if singles[best_single] <= pairs.flat[best_pair]:
                levels[layers[best_single]] = moved[best_single]
            else:
                first, second = np.unravel_index(best_pair, pairs.shape)
                levels[layers[first]] = moved[first]
                levels[layers[second]] = moved[second]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Magnitude levels at ``n`` log-spaced densities in [0.005, 0.5] (all at ``density``
        when the encoding has one), each with 1-3 random level switches."""
        n, rng = _check_count(n), _check_rng(rng)
        if n == 0:
            return np.zeros((0, self.n_genes), dtype=np.int64)
        if self.density is None:
            genomes = self.magnitude(_log_spaced(n, *_SAMPLE_DENSITIES))
        else:
            genomes = self.magnitude([self.density] * n)
        for row in genomes:
            for _ in range(int(rng.integers(1, 4))):
                self._switch_one(row, rng)
        return genomes

    def mutate(self, genomes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_rng(rng)
        children = self.validate(genomes)
        for row in children:
            if rng.random() < self.step_probability:
                self._step_one(row, rng)
            else:
                self._switch_one(row, rng)
        return children

    def level_switch(self, genomes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One level switch per genome (a new array).

        A driver layer moves one level (denser or sparser) and a partner layer moves any
        number of levels the other way. Among all such pairs, one is drawn uniformly from
        those that leave the total kept count within ``switch_tolerance`` × (current total)
        of the target (the parent's total, or round(density·N) when the encoding has a
        density); when no pair is that close, the pair nearest the target is taken.
        """
        _check_rng(rng)
        children = self.validate(genomes)
        for row in children:
            self._switch_one(row, rng)
        return children

    def _switch_one(self, row: np.ndarray, rng: np.random.Generator) -> None:
        n_layers, n_levels = self.level_counts.shape
        layers = np.arange(n_layers)
        current = self.level_counts[layers, row]
        total = int(current.sum())
        target = total if self.density is None else _keep_count(self.density, self.layout.n_total)
        # drivers: every layer one level denser, then every layer one level sparser
        driver_layer = np.concatenate([layers, layers])
        driver_level = np.concatenate([row - 1, row + 1])
        inside = (driver_level >= 0) & (driver_level < n_levels)
        driver_delta = np.where(
            inside,
            self.level_counts[driver_layer, np.clip(driver_level, 0, n_levels - 1)]
            - current[driver_layer],
            0,
        )
        partner_delta = self.level_counts - current[:, None]  # (layer, level)
        valid = (driver_delta[:, None, None] * partner_delta[None, :, :] < 0) & (
            driver_layer[:, None, None] != layers[None, :, None]
        )
        if not valid.any():
            self._step_one(row, rng)
            return
        gap = np.abs(total + driver_delta[:, None, None] + partner_delta[None, :, :] - target)
        close = valid & (gap <= self.switch_tolerance * total)
        if close.any():
            choice = rng.choice(np.flatnonzero(close))
        else:
            gap = np.where(valid, gap, np.iinfo(np.int64).max)
            choice = rng.choice(np.flatnonzero(gap == gap.min()))
        driver, partner, level = np.unravel_index(choice, valid.shape)
        row[driver_layer[driver]] = driver_level[driver]
        row[partner] = level

    def _step_one(self, row: np.ndarray, rng: np.random.Generator) -> None:
        """Move one layer one level up or down (changes the density)."""
        n_levels = self.ladder.size
        moves = [
            (layer, level)
            for layer in range(self.n_genes)
            for level in (row[layer] - 1, row[layer] + 1)
            if 0 <= level < n_levels
            and self.level_counts[layer, level] != self.level_counts[layer, row[layer]]
        ]
        if moves:
            layer, level = moves[int(rng.integers(len(moves)))]
            row[layer] = level

    def crossover(
        self, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        parents_a, parents_b = self._parents(first, second, rng)
        return np.where(rng.random(parents_a.shape) < 0.5, parents_b, parents_a)
