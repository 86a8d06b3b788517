"""What every encoding shares: the :class:`Encoding` interface, :class:`GenomeError` and the
helpers the encodings build on (kept counts, magnitude orders, argument checks, reading a
model's magnitudes and a mask's flat vector).

Nothing here knows a particular genome layout; the encodings themselves live in
:mod:`~masksearch.encodings.weights`, :mod:`~masksearch.encodings.pool`,
:mod:`~masksearch.encodings.levels` and :mod:`~masksearch.encodings.channels`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from masksearch.mask import Layout, Mask, MaskError, check_density

__all__ = ["Encoding", "GenomeError"]

# Densities an initial population spans: from very sparse to half dense, log-spaced because
# the interesting part of an error/density front is at low density.
_SAMPLE_DENSITIES = (0.005, 0.5)


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


def validated_parents(
    validate: Callable[[np.ndarray], np.ndarray],
    first: np.ndarray,
    second: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``validate``d parent pairs for a crossover (same count on both sides)."""
    _check_rng(rng)
    parents_a, parents_b = validate(first), validate(second)
    if parents_a.shape != parents_b.shape:
        raise GenomeError(
            f"crossover needs as many first parents as second ones; got "
            f"{parents_a.shape[0]} and {parents_b.shape[0]}"
        )
    return parents_a, parents_b


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


def _prefix_for(curve: np.ndarray, target: float, at_most: bool) -> int:
    """How many removals of a magnitude order to make: ``curve[m]`` is the density after the
    first m (decreasing in m). The nearest to ``target``, or with ``at_most`` the densest at or
    below it (the sparsest reachable when none is)."""
    if not at_most:
        return int(np.abs(curve - target).argmin())
    within = np.flatnonzero(curve <= target + 1e-12)
    return int(within[0]) if within.size else len(curve) - 1


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
    #: Whether :class:`~masksearch.encodings.packed.PackedOperators` can run this encoding's
    #: operators on packed genomes (the shipped solvers then evolve those).
    packable: bool = False
    #: Whether genomes are the flat masks themselves (``decode_valid`` returns them as they
    #: are): the search then hands packed genomes to the evaluator as packed masks.
    genomes_are_masks: bool = False

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
    @property
    def options(self) -> dict[str, Any]:
        """The keyword options that build this encoding again (``make_encoding(name, model,
        **options)``); a run directory stores them."""
        return {}

    def decode(self, genomes: np.ndarray) -> np.ndarray:
        """``(P, layout.n_total)`` bool flat masks, one per genome."""
        return self.decode_valid(self.validate(genomes))

    def decode_valid(self, genomes: np.ndarray) -> np.ndarray:
        """:meth:`decode` of genomes :meth:`validate` returned (checked once per evaluation,
        not again here); the masks may share memory with ``genomes``, so a reader must not
        write to them."""
        if type(self).decode is not Encoding.decode:
            # an encoding written before decode_valid existed overrides decode itself
            return self.decode(genomes)
        raise TypeError(f"{type(self).__name__} must implement decode_valid(genomes)")

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
        return validated_parents(self.validate, first, second, rng)
