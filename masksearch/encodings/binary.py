"""The shared base of the binary encodings (``weights``, ``pool``, ``channels``): bool genes
(:class:`_BinaryEncoding`) and the sparsity-aware operators of genomes that are mostly zeros
(:class:`_SparseBinaryEncoding`, used by ``weights`` and ``channels``)."""

from __future__ import annotations

import math

import numpy as np

from masksearch.encodings.base import (
    Encoding,
    GenomeError,
    _check_count,
    _check_rng,
    _log_spaced,
    _log_uniform_int,
)


class _BinaryEncoding(Encoding):
    dtype = np.dtype(bool)

    # bounds are built on demand: stored, they would dominate what an encoding pickles
    @property
    def lower(self) -> np.ndarray:
        return np.zeros(self.n_genes, dtype=np.int64)

    @property
    def upper(self) -> np.ndarray:
        return np.ones(self.n_genes, dtype=np.int64)

    def _coerce(self, genomes: np.ndarray) -> np.ndarray:
        array = self._as_population(genomes)
        if array.dtype == bool:
            return array.copy()
        bad = (array != 0) & (array != 1)
        if bad.any():
            row, gene = np.argwhere(bad)[0]
            raise GenomeError(
                f"{self.name!r} genomes are binary (0/1) but gene {gene} of genome {row} is "
                f"{array[row, gene]!r}; threshold real-valued genomes yourself "
                "(e.g. genomes > 0.5) — masksearch does not round them silently"
            )
        return array != 0


class _SparseBinaryEncoding(_BinaryEncoding):
    """Operators for binary genomes that are mostly zeros.

    Uniform bit flips and one-point crossover turn a good sparse mask into noise (a flip rate
    of 1/n already adds as many random genes as it removes kept ones, and a cut point mixes
    unrelated layers), so a child here gets exactly one move:

    * swap: turn off k kept genes and on k dropped ones (density unchanged);
    * add: turn on a step of 5-10% of the kept count;
    * drop: turn off such a step (never the last kept gene).

    k is log-uniform in ``1..max_swap``. Each pick prefers, with probability 1/2, the genes
    at the kept/dropped frontier of the gene score (the largest dropped genes to add, the
    smallest kept ones to drop; uniformly among a window of ``max(2·count, 5% of kept)``),
    otherwise it is uniform. Crossover mixes whole blocks (rows of a weight = one neuron's
    fan-in, or layers) and then moves the child's kept count back into the parents' range,
    touching only genes where the parents differ.

    Subclasses set ``_order`` (genes by descending score), ``_block`` (block id per gene),
    ``_n_blocks`` and ``_max_swap``.
    """

    #: Probabilities of the swap, add and drop moves.
    move_probabilities: tuple[float, float, float] = (0.5, 0.25, 0.25)
    #: An add or drop step is this fraction of the kept count, drawn uniformly.
    step_range: tuple[float, float] = (0.05, 0.10)
    #: The biased pick chooses among this fraction of the kept count at the frontier.
    frontier: float = 0.05
    #: Packed genomes run these moves draw for draw (an encoding whose validate changes
    #: genomes, e.g. groups, must set False).
    packable: bool = True

    _order: np.ndarray
    _block: np.ndarray
    _n_blocks: int
    _max_swap: int
    #: The range of densities :meth:`sample` spreads a first population over (log-spaced).
    sample_densities: tuple[float, float]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Magnitude genomes at ``n`` log-spaced densities in ``sample_densities``, each with
        a small random swap, so the first population spans the error/density front."""
        n, rng = _check_count(n), _check_rng(rng)
        if n == 0:
            return np.zeros((0, self.n_genes), dtype=bool)
        return self._perturbed(self.magnitude(_log_spaced(n, *self.sample_densities)), rng)

    def mutate(self, genomes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_rng(rng)
        children = self.validate(genomes)
        for child in children:  # rows are views: moves edit `children` in place
            self._mutate_one(child, rng)
        return children

    def _mutate_one(self, child: np.ndarray, rng: np.random.Generator) -> None:
        n_kept = int(child.sum())
        drawn = self._draw_move(n_kept, child.size, rng)
        if drawn is None:
            return
        move, count = drawn
        if move == 0:
            self._swap(child, count, rng)
        elif move == 1:
            child[self._pick(~child, count, n_kept, largest=True, rng=rng)] = True
        else:
            child[self._pick(child, count, n_kept, largest=False, rng=rng)] = False

    def _draw_move(
        self, n_kept: int, n_genes: int, rng: np.random.Generator
    ) -> tuple[int, int] | None:
        """A child's move (0 swap, 1 add, 2 drop) and how many genes it moves, or None when no
        move is feasible. ``packed._mutate_rows`` makes the same draws, compiled: a change to
        the moves here must be made there too (the packed tests compare the two bit for bit)."""
        n_dropped = n_genes - n_kept
        feasible = (n_kept > 0 and n_dropped > 0, n_dropped > 0, n_kept > 1)
        weights = [
            float(p) if ok else 0.0 for p, ok in zip(self.move_probabilities, feasible, strict=True)
        ]
        move = _choice_of_three(weights, rng)
        if move is None:
            return None
        if move == 0:
            return move, min(_log_uniform_int(rng, self._max_swap), n_kept, n_dropped)
        if move == 1:
            return move, min(self._draw_step(n_kept, rng), n_dropped)
        return move, min(self._draw_step(n_kept, rng), n_kept - 1)

    def _frontier_window(self, count: int, n_candidates: int, n_kept: int) -> int:
        """How many genes at the kept/dropped frontier a biased pick of ``count`` chooses
        among."""
        return min(n_candidates, max(2 * count, math.ceil(self.frontier * n_kept)))

    def _swap(self, child: np.ndarray, count: int, rng: np.random.Generator) -> None:
        n_kept = int(child.sum())
        off = self._pick(child, count, n_kept, largest=False, rng=rng)
        on = self._pick(~child, count, n_kept, largest=True, rng=rng)
        child[off] = False
        child[on] = True

    def _draw_step(self, n_kept: int, rng: np.random.Generator) -> int:
        return max(1, round(rng.uniform(*self.step_range) * n_kept))

    def _pick(
        self,
        candidates: np.ndarray,
        count: int,
        n_kept: int,
        *,
        largest: bool,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """``count`` distinct genes among ``candidates`` (a bool vector)."""
        if rng.random() < 0.5:
            window = self._frontier_window(count, int(np.count_nonzero(candidates)), n_kept)
            pool = _ranked_end(self._order, candidates, window, first=largest)
        else:
            pool = np.flatnonzero(candidates)
        return rng.choice(pool, size=count, replace=False)

    def crossover(
        self, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        parents_a, parents_b = self._parents(first, second, rng)
        take_second = rng.random((parents_a.shape[0], self._n_blocks)) < 0.5
        children = np.where(take_second[:, self._block], parents_b, parents_a)
        differ = parents_a != parents_b
        kept_a, kept_b = parents_a.sum(axis=1), parents_b.sum(axis=1)
        low, high = np.minimum(kept_a, kept_b), np.maximum(kept_a, kept_b)
        for row, kept in enumerate(children.sum(axis=1)):
            # both parents share the genes outside `differ`, so fixing the count there keeps
            # everything they agree on
            if kept > high[row]:
                on = np.flatnonzero(children[row] & differ[row])
                children[row, rng.choice(on, size=kept - high[row], replace=False)] = False
            elif kept < low[row]:
                off = np.flatnonzero(~children[row] & differ[row])
                children[row, rng.choice(off, size=low[row] - kept, replace=False)] = True
        return children

    def _perturbed(self, genomes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``genomes`` with a small random swap each (for :meth:`sample`)."""
        for child in genomes:
            n_kept = int(child.sum())
            count = min(_log_uniform_int(rng, self._max_swap), n_kept, child.size - n_kept)
            self._swap(child, count, rng)
        return genomes


def _choice_of_three(weights: list[float], rng: np.random.Generator) -> int | None:
    """``rng.choice(3, p=weights / sum(weights))``, draw for draw and with the same result,
    without its ~25 µs of argument checks per call (a child's move is drawn with it); None
    when no weight is positive.

    ``Generator.choice`` with ``p`` normalises ``p``, takes its cumulative sum, divides it by
    its last entry and returns how many entries lie at or below one ``rng.random()``; the same
    float operations in the same order give the same bits.
    """
    total = weights[0] + weights[1] + weights[2]
    if total <= 0:
        return None
    first, second, third = (weight / total for weight in weights)
    cdf_first = first
    cdf_second = cdf_first + second
    cdf_last = cdf_second + third
    uniform = rng.random()
    return (
        (uniform >= cdf_first / cdf_last)
        + (uniform >= cdf_second / cdf_last)
        + (uniform >= cdf_last / cdf_last)
    )


def _ranked_end(
    order: np.ndarray, candidates: np.ndarray, window: int, *, first: bool
) -> np.ndarray:
    """The first (or last) ``window`` candidates in ``order``, in that order.

    Equal to ``order[candidates[order]][:window]`` (or ``[-window:]``) without a pass over
    every gene: the frontier a move picks from is usually a few percent of the genome, so the
    scan stops after growing chunks once it holds ``window`` candidates.
    """
    if window <= 0:
        return order[:0]
    found: list[np.ndarray] = []
    n_found, position, chunk = 0, 0, max(4 * window, 4096)
    size = order.size
    while n_found < window and position < size:
        if first:
            part = order[position : position + chunk]
        else:
            part = order[max(0, size - position - chunk) : size - position][::-1]
        hits = part[candidates[part]]
        found.append(hits)
        n_found += hits.size
        position += chunk
        chunk *= 2
    pool = np.concatenate(found)[:window]
    return pool if first else pool[::-1].copy()
