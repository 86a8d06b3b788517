"""The ``pool`` encoding (method A): keep the largest weights, search which small ones from a
candidate pool complete a fixed budget."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from masksearch.encodings.base import (
    GenomeError,
    _check_count,
    _check_densities,
    _check_rng,
    _descending,
    _flat_mask,
    _keep_count,
    _log_spaced,
    _log_uniform_int,
    _read_magnitudes,
)
from masksearch.encodings.binary import _BinaryEncoding
from masksearch.mask import Layout, Mask, check_density

__all__ = ["PoolEncoding"]


class PoolEncoding(_BinaryEncoding):
    """Method A: always keep the largest weights, search which small ones to add.

    With N prunable weights, K = round(density·N) are kept: the top K_L = round(rho·K) by
    |w| always, plus exactly K_S = K − K_L chosen from a candidate pool, the next
    ``pool_factor``·K_S weights by magnitude (every remaining weight when ``pool_factor`` is
    None). A genome is a bool vector over the pool (gene 0 = the pool's largest weight) with
    exactly K_S ones. Operators keep that cardinality: uniform crossover then a repair among
    the genes where the parents differ, and swap mutation (1..``max_swaps`` kept/dropped pairs,
    log-uniform; default 1% of K_S).

    One encoding searches one budget; a sequence of densities raises ValueError — build one
    PoolEncoding per density.

    ``density`` is required. Through a problem, pass it as an encoding option:
    ``PruningProblem(model, data, encoding="pool", encoding_options={"density": 0.05})``
    (likewise ``masksearch.get_problem("lenet300_fashion", encoding="pool", encoding_options={"density":
    0.05})``); on the command line, ``masksearch run --encoding pool --encoding-option
    density=0.05`` (without it, ``masksearch run`` uses the first of ``--densities``).
    """

    name = "pool"

    def __init__(
        self,
        model: nn.Module,
        density: float,
        rho: float = 0.8,
        pool_factor: float | None = 4,
        layout: Layout | None = None,
        *,
        max_swaps: int | None = None,
    ) -> None:
        if isinstance(density, (Sequence, np.ndarray)) and not isinstance(density, str):
            raise ValueError(
                f"PoolEncoding searches a single budget, got densities {tuple(density)}; build "
                "one PoolEncoding per density (or use the 'weights' or 'levels' encoding for "
                "a front across densities)"
            )
        self.density = check_density(density)
        if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0.0 <= rho < 1.0:
            raise ValueError(
                f"rho (the share of the budget always kept by magnitude) must be in [0, 1), "
                f"got {rho!r}; rho = 1 would leave nothing to search"
            )
        if pool_factor is not None and (
            isinstance(pool_factor, bool)
            or not isinstance(pool_factor, (int, float))
            or not pool_factor >= 1
        ):
            raise ValueError(
                f"pool_factor must be a number >= 1 (the pool holds pool_factor × K_S weights) "
                f"or None for every remaining weight, got {pool_factor!r}"
            )
        self.rho, self.pool_factor = float(rho), pool_factor
        self.layout, magnitudes = _read_magnitudes(model, layout)
        scores = np.concatenate(magnitudes)
        order = _descending(scores)
        n_total = self.layout.n_total
        self.n_kept = _keep_count(self.density, n_total)
        self.n_always = round(self.rho * self.n_kept)
        self.n_select = self.n_kept - self.n_always
        if self.n_select < 1:
            raise ValueError(
                f"density {self.density} and rho {self.rho} leave no weight to search "
                f"(K={self.n_kept}, K_L={self.n_always}); lower rho or raise the density"
            )
        remaining = n_total - self.n_always
        if pool_factor is None:
            self.pool_size = remaining
        else:
            self.pool_size = min(remaining, round(pool_factor * self.n_select))
        self.n_genes = self.pool_size
        #: Flat indices of the always-kept weights (sorted) and of the pool (largest first).
        self.always_indices = np.sort(order[: self.n_always])
        self.pool_indices = order[self.n_always : self.n_always + self.pool_size].copy()
        free = self.pool_size - self.n_select
        if max_swaps is None:
            max_swaps = max(1, math.ceil(0.01 * self.n_select))
        elif isinstance(max_swaps, bool) or not isinstance(max_swaps, int) or max_swaps < 1:
            raise ValueError(f"max_swaps must be an integer >= 1, got {max_swaps!r}")
        self.max_swaps = min(max_swaps, self.n_select, free)
        self._base = np.zeros(n_total, dtype=bool)
        self._base[self.always_indices] = True

    def _check_invariants(self, genomes: np.ndarray) -> np.ndarray:
        counts = genomes.sum(axis=1)
        wrong = np.flatnonzero(counts != self.n_select)
        if wrong.size:
            raise GenomeError(
                f"pool genomes must have exactly K_S={self.n_select:,} ones; got "
                f"{int(counts[wrong[0]]):,} in genome {int(wrong[0])} — use encoding.repair()"
            )
        return genomes

    @property
    def options(self) -> dict[str, Any]:
        return {"density": self.density, "rho": self.rho, "pool_factor": self.pool_factor}

    def decode_valid(self, genomes: np.ndarray) -> np.ndarray:
        flats = np.repeat(self._base[None, :], genomes.shape[0], axis=0)
        flats[:, self.pool_indices] = genomes
        return flats

    def densities(self, genomes: np.ndarray) -> np.ndarray:
        return np.full(self.validate(genomes).shape[0], self.n_kept / self.layout.n_total)

    def encode(self, mask: Mask) -> np.ndarray:
        """The mask's choice within the pool, repaired to K_S genes by magnitude; weights
        outside the pool and the always-kept set are beyond this encoding and ignored."""
        return self.repair(_flat_mask(self.layout, mask)[self.pool_indices])[0]

    def magnitude(self, densities: Sequence[float]) -> np.ndarray:
        """The top-K_S of the pool (= the global magnitude mask at this encoding's density)
        for every requested density: it is the only budget this encoding expresses."""
        count = len(_check_densities(densities))
        top = np.arange(self.n_genes) < self.n_select
        return np.repeat(top[None, :], count, axis=0)

    def repair(self, genomes: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Exactly K_S ones per genome. Without ``rng``: drop the smallest-|w| extras and add
        the largest-|w| missing genes; with ``rng``: drop and add uniformly at random."""
        genomes = self._coerce(genomes)
        if rng is not None:
            _check_rng(rng)
        for row in genomes:
            self._fix_count(row, np.ones(row.size, dtype=bool), rng)
        return genomes

    def _fix_count(
        self, row: np.ndarray, allowed: np.ndarray, rng: np.random.Generator | None
    ) -> None:
        """Bring ``row`` to K_S ones, changing only genes where ``allowed``."""
        excess = int(row.sum()) - self.n_select
        if excess > 0:
            candidates = np.flatnonzero(row & allowed)
            # genes run from the largest |w| to the smallest: the last ones are the smallest
            chosen = (
                candidates[-excess:]
                if rng is None
                else rng.choice(candidates, excess, replace=False)
            )
            row[chosen] = False
        elif excess < 0:
            candidates = np.flatnonzero(~row & allowed)
            chosen = (
                candidates[:-excess]
                if rng is None
                else rng.choice(candidates, -excess, replace=False)
            )
            row[chosen] = True

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The magnitude genome with 1 to min(K_S, pool − K_S) random swaps (log-spaced over
        the population): from near-magnitude to a uniformly random subset."""
        n, rng = _check_count(n), _check_rng(rng)
        genomes = self.magnitude([self.density] * n)
        most = min(self.n_select, self.n_genes - self.n_select)
        if n == 0 or most == 0:
            return genomes
        counts = np.rint(_log_spaced(n, 1, most) if n > 1 else [1]).astype(int)
        for row, count in zip(genomes, counts, strict=True):
            self._swap(row, int(count), rng)
        return genomes

    def _swap(self, row: np.ndarray, count: int, rng: np.random.Generator) -> None:
        off = rng.choice(np.flatnonzero(row), size=count, replace=False)
        on = rng.choice(np.flatnonzero(~row), size=count, replace=False)
        row[off] = False
        row[on] = True

    def mutate(self, genomes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_rng(rng)
        children = self.validate(genomes)
        if self.max_swaps < 1:  # the pool is exactly K_S: nothing to choose
            return children
        for child in children:
            self._swap(child, _log_uniform_int(rng, self.max_swaps), rng)
        return children

    def crossover(
        self, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        parents_a, parents_b = self._parents(first, second, rng)
        children = np.where(rng.random(parents_a.shape) < 0.5, parents_b, parents_a)
        differ = parents_a != parents_b
        for row in range(children.shape[0]):
            self._fix_count(children[row], differ[row], rng)
        return children
