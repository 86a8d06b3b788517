"""Genome encodings: how the genomes a solver evolves map to weight masks.

An :class:`Encoding` is built once from a model: it reads the prunable weights' magnitudes and
keeps only numpy arrays (no model reference), so it pickles cheaply to worker processes. It
then serves two roles:

* the *map* between genomes and flat masks (``decode`` / ``encode`` / ``magnitude``), the
  currency every evaluator understands: a ``(P, layout.n_total)`` bool array in
  :class:`~masksearch.mask.Layout` order;
* the *operators* a solver may use (``sample`` / ``mutate`` / ``crossover`` / ``repair``),
  which know the genome's structure (sparsity, fixed cardinality, level ladders) where generic
  bit-flip operators would destroy good masks.

A population is a 2-D numpy array ``(P, n_genes)``: ``bool`` for the binary encodings
(``weights``, ``pool``, ``channels``), ``int64`` for ``levels``. Every method accepts a single
1-D genome as a population of one, and never modifies its input.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from masksearch.mask import Layout, Mask, MaskError, check_density

__all__ = [
    "DEFAULT_LADDER",
    "ENCODINGS",
    "ChannelsEncoding",
    "Encoding",
    "GenomeError",
    "LevelsEncoding",
    "PoolEncoding",
    "WeightsEncoding",
    "make_encoding",
]

#: Geometric density ladder of :class:`LevelsEncoding`: 28 levels from 1.0 down to 0.002,
#: each level keeping ~79% of the previous one.
DEFAULT_LADDER: tuple[float, ...] = tuple(float(v) for v in np.geomspace(1.0, 0.002, 28))

# Densities an initial population spans: from very sparse to half dense, log-spaced because
# the interesting part of an error/density front is at low density.
_SAMPLE_DENSITIES = (0.005, 0.5)
# Channel pruning cannot reach the very low densities unstructured masks do.
_SAMPLE_CHANNEL_DENSITIES = (0.02, 0.8)


class GenomeError(ValueError):
    """A genome does not fit its encoding (shape, dtype, values or an invariant)."""


# -- helpers ---------------------------------------------------------------------------------


def _keep_count(density: float, n: int) -> int:
    """Kept entries at ``density`` out of ``n``: Mask.from_scores' rule (nearest, at least 1)."""
    return max(1, round(float(density) * n))


def _index_dtype(n: int) -> type[np.signedinteger]:
    # int32 halves what an encoding pickles into every solver checkpoint
    return np.int32 if n < 2**31 else np.int64


def _descending(scores: np.ndarray) -> np.ndarray:
    """Indices from the largest to the smallest score; ties go to the lower index."""
    return np.argsort(-scores, kind="stable").astype(_index_dtype(scores.size))


def _rank(order: np.ndarray) -> np.ndarray:
    """The position of every index in ``order``."""
    rank = np.empty(order.size, dtype=_index_dtype(order.size))
    rank[order] = np.arange(order.size)
    return rank


def _log_spaced(n: int, low: float, high: float) -> np.ndarray:
    if n == 1:
        return np.array([math.sqrt(low * high)])
    return np.geomspace(low, high, n)


def _log_uniform_int(rng: np.random.Generator, high: int) -> int:
    """An integer in [1, high], log-uniform so that small values are the most frequent."""
    if high <= 1:
        return 1
    value = int(math.exp(rng.uniform(0.0, math.log(high + 1))))
    return min(max(value, 1), high)


def _check_count(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"the number of genomes to sample must be an integer >= 0, got {n!r}")
    return int(n)


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng


def _check_densities(densities: Sequence[float] | float) -> list[float]:
    values = np.atleast_1d(np.asarray(densities, dtype=object))
    if values.ndim != 1:
        raise ValueError(f"densities must be a flat sequence of numbers, got {densities!r}")
    return [check_density(value) for value in values]


def _read_magnitudes(model: nn.Module, layout: Layout | None) -> tuple[Layout, list[np.ndarray]]:
    """The layout and, per prunable tensor, its flat |w| as float64."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    if layout is None:
        layout = Layout.of(model)
    else:
        if not isinstance(layout, Layout):
            raise TypeError(f"layout must be a masksearch Layout, got {type(layout).__name__}")
        actual = Layout.of(model, layout.names)
        if actual.shapes != layout.shapes:
            raise MaskError(
                f"the layout's shapes {layout.shapes} do not match the model's {actual.shapes}; "
                "build it with Layout.of(model)"
            )
    params = dict(model.named_parameters())
    magnitudes = []
    for name in layout.names:
        values = params[name].detach().to("cpu", torch.float64).abs().reshape(-1).numpy().copy()
        if not np.isfinite(values).all():
            raise MaskError(
                f"parameter {name!r} contains NaN or inf values; magnitudes of a broken model "
                "mean nothing. Retrain or reload the model's weights."
            )
        magnitudes.append(values)
    return layout, magnitudes


def _flat_mask(layout: Layout, mask: Mask) -> np.ndarray:
    """``mask`` as a flat bool vector in ``layout`` order."""
    if not isinstance(mask, Mask):
        raise TypeError(f"expected a masksearch Mask, got {type(mask).__name__}")
    missing = [name for name in layout.names if name not in mask.tensors]
    if missing:
        raise MaskError(
            f"the mask has no tensor for {missing[0]!r}; it must cover the encoding's layout "
            f"{list(layout.names)}"
        )
    chunks = []
    for name, shape in zip(layout.names, layout.shapes, strict=True):
        tensor = mask.tensors[name]
        if tuple(tensor.shape) != shape:
            raise MaskError(
                f"the mask for {name!r} has shape {tuple(tensor.shape)} but the encoding's "
                f"layout says {shape}; build the mask from the same model"
            )
        chunks.append(tensor.reshape(-1).numpy().astype(bool))
    return np.concatenate(chunks)


# -- the interface ---------------------------------------------------------------------------


class Encoding(ABC):
    """Maps genomes to flat weight masks and provides the operators that fit those genomes."""

    name: str = ""
    layout: Layout
    n_genes: int
    dtype: np.dtype
    lower: np.ndarray  # per-gene inclusive bounds (int64)
    upper: np.ndarray

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n_genes:,} genes over {self.layout.n_total:,} weights)"

    # -- checking ------------------------------------------------------------------------
    def validate(self, genomes: np.ndarray) -> np.ndarray:
        """A canonical ``(P, n_genes)`` copy of ``genomes``, or :class:`GenomeError`."""
        return self._check_invariants(self._coerce(genomes))

    def _as_population(self, genomes: np.ndarray) -> np.ndarray:
        try:
            array = np.asarray(genomes)
        except ValueError as error:  # ragged nested lists
            raise GenomeError(f"genomes must be a rectangular array ({error})") from None
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2:
            raise GenomeError(
                "genomes must be one genome (1-D) or a population (2-D: individuals × genes); "
                f"got an array of shape {array.shape}"
            )
        if array.shape[1] != self.n_genes:
            raise GenomeError(
                f"genome has {array.shape[1]:,} genes but the {self.name!r} encoding of this "
                f"model has {self.n_genes:,}; build genomes with this encoding "
                "(sample / magnitude / encode) for the same model and layout"
            )
        if array.dtype.kind not in "biuf":
            raise GenomeError(f"genomes must hold numbers, got dtype {array.dtype}")
        if array.dtype.kind == "f" and np.isnan(array).any():
            row, gene = np.argwhere(np.isnan(array))[0]
            raise GenomeError(
                f"gene {gene} of genome {row} is NaN; a solver produced an invalid genome"
            )
        return array

    @abstractmethod
    def _coerce(self, genomes: np.ndarray) -> np.ndarray:
        """Shape and value checks, conversion to ``self.dtype`` (always a copy)."""

    def _check_invariants(self, genomes: np.ndarray) -> np.ndarray:
        return genomes

    # -- the map -------------------------------------------------------------------------
    @abstractmethod
    def decode(self, genomes: np.ndarray) -> np.ndarray:
        """``(P, layout.n_total)`` bool flat masks, one per genome."""

    @abstractmethod
    def encode(self, mask: Mask) -> np.ndarray:
        """The ``(n_genes,)`` genome of this encoding nearest to ``mask``."""

    @abstractmethod
    def magnitude(self, densities: Sequence[float]) -> np.ndarray:
        """``(len(densities), n_genes)``: the global magnitude mask at each density, or the
        nearest genome this encoding can express."""

    def densities(self, genomes: np.ndarray) -> np.ndarray:
        """``(P,)`` fraction of the prunable weights each genome keeps."""
        return self.decode(genomes).mean(axis=1)

    # -- operators -----------------------------------------------------------------------
    @abstractmethod
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` random genomes spread over densities (a first population)."""

    @abstractmethod
    def mutate(self, genomes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One structure-aware random move per genome; returns a new array."""

    @abstractmethod
    def crossover(
        self, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """One child per row pair of ``first`` and ``second``."""

    def repair(self, genomes: np.ndarray) -> np.ndarray:
        """Restore the encoding's invariants; identity (a validated copy) where there are none."""
        return self.validate(genomes)

    def _parents(
        self, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Validated parent pairs for :meth:`crossover` (same count on both sides)."""
        _check_rng(rng)
        parents_a, parents_b = self.validate(first), self.validate(second)
        if parents_a.shape != parents_b.shape:
            raise GenomeError(
                f"crossover needs as many first parents as second ones; got "
                f"{parents_a.shape[0]} and {parents_b.shape[0]}"
            )
        return parents_a, parents_b


# -- binary encodings ------------------------------------------------------------------------


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

    _order: np.ndarray
    _block: np.ndarray
    _n_blocks: int
    _max_swap: int

    def mutate(self, genomes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_rng(rng)
        children = self.validate(genomes)
        for child in children:  # rows are views: moves edit `children` in place
            self._mutate_one(child, rng)
        return children

    def _mutate_one(self, child: np.ndarray, rng: np.random.Generator) -> None:
        n_kept = int(child.sum())
        n_dropped = child.size - n_kept
        feasible = np.array([n_kept > 0 and n_dropped > 0, n_dropped > 0, n_kept > 1])
        weights = np.asarray(self.move_probabilities, dtype=float) * feasible
        if weights.sum() <= 0:
            return
        move = rng.choice(3, p=weights / weights.sum())
        if move == 0:
            self._swap(child, min(_log_uniform_int(rng, self._max_swap), n_kept, n_dropped), rng)
        elif move == 1:
            count = min(self._draw_step(n_kept, rng), n_dropped)
            child[self._pick(~child, count, n_kept, largest=True, rng=rng)] = True
        else:
            count = min(self._draw_step(n_kept, rng), n_kept - 1)
            child[self._pick(child, count, n_kept, largest=False, rng=rng)] = False

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
            ranked = self._order[candidates[self._order]]  # candidates, largest score first
            window = min(ranked.size, max(2 * count, math.ceil(self.frontier * n_kept)))
            pool = ranked[:window] if largest else ranked[ranked.size - window :]
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


class WeightsEncoding(_SparseBinaryEncoding):
    """One bool gene per prunable weight (``n_genes = layout.n_total``); decode is identity.

    Gene scores are |w|. Crossover blocks are the rows of each weight tensor (one output
    neuron's or filter's fan-in), so children inherit whole neurons' connectivity.
    """

    name = "weights"
    #: A swap moves at most this fraction of the genes (at least 1).
    max_swap_fraction: float = 0.0005

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

    def decode(self, genomes: np.ndarray) -> np.ndarray:
        return self.validate(genomes)

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

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Magnitude masks at ``n`` log-spaced densities in [0.005, 0.5], each with a small
        random swap, so the first population spans the error/density front."""
        n, rng = _check_count(n), _check_rng(rng)
        if n == 0:
            return np.zeros((0, self.n_genes), dtype=bool)
        return self._perturbed(self.magnitude(_log_spaced(n, *_SAMPLE_DENSITIES)), rng)


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
    (likewise ``problems.lenet300_fashion(encoding="pool", encoding_options={"density":
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

    def decode(self, genomes: np.ndarray) -> np.ndarray:
        genomes = self.validate(genomes)
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


# -- levels ----------------------------------------------------------------------------------


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

    def decode(self, genomes: np.ndarray) -> np.ndarray:
        kept = self.kept_counts(genomes)
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


# -- channels --------------------------------------------------------------------------------


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

    def decode(self, genomes: np.ndarray) -> np.ndarray:
        genomes = self.validate(genomes)
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

    def magnitude(self, densities: Sequence[float]) -> np.ndarray:
        """Remove the lowest-scoring channels (never a layer's best) until the decoded density
        is nearest each target."""
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
        genomes = [prefixes[int(np.abs(curve - target).argmin())] for target in targets]
        return np.array(genomes, dtype=bool).reshape(-1, self.n_genes)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Channel-magnitude genomes at ``n`` log-spaced densities in [0.02, 0.8], each with
        a small random channel swap."""
        n, rng = _check_count(n), _check_rng(rng)
        if n == 0:
            return np.zeros((0, self.n_genes), dtype=bool)
        return self._perturbed(self.magnitude(_log_spaced(n, *_SAMPLE_CHANNEL_DENSITIES)), rng)


# -- factory ---------------------------------------------------------------------------------

ENCODINGS: dict[str, type[Encoding]] = {
    "weights": WeightsEncoding,
    "pool": PoolEncoding,
    "levels": LevelsEncoding,
    "channels": ChannelsEncoding,
}


def make_encoding(
    name: str, model: nn.Module, *, layout: Layout | None = None, **options: object
) -> Encoding:
    """Build the encoding registered as ``name`` ("weights", "pool", "levels", "channels")."""
    if name not in ENCODINGS:
        raise ValueError(f"unknown encoding {name!r}; choose one of {sorted(ENCODINGS)}")
    cls = ENCODINGS[name]
    parameters = {
        key: p
        for key, p in inspect.signature(cls).parameters.items()
        if key not in ("model", "layout")
    }
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        raise TypeError(
            f"the {name!r} encoding has no option {unknown[0]!r}; its options are "
            f"{sorted(parameters) or 'none'}"
        )
    missing = [
        key
        for key, p in parameters.items()
        if p.default is inspect.Parameter.empty and key not in options
    ]
    if missing:
        # say exactly how to pass it from each place a user builds an encoding
        key = missing[0]
        value = "0.05" if key == "density" else "VALUE"
        meaning = (
            " (the fraction of prunable weights kept; the search explores masks of this one "
            "density)"
            if key == "density"
            else ""
        )
        cli_default = (
            " (masksearch run uses the first of --densities when it is not given)"
            if (name, key) == ("pool", "density")
            else ""
        )
        raise TypeError(
            f"the {name!r} encoding needs the option {key!r}{meaning}. In Python: "
            f"PruningProblem(model, data, encoding={name!r}, encoding_options={{{key!r}: "
            f"{value}}}) or make_encoding({name!r}, model, {key}={value}). On the command "
            f"line: --encoding {name} --encoding-option {key}={value}, or in a TOML config "
            f'encoding = "{name}" with {key} = {value} under [encoding_options]{cli_default}'
        )
    return cls(model, layout=layout, **options)
