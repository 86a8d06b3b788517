"""What solvers share: ``GenomeSolver``, plain binary operators, genome and objective checks,
non-dominated sorting (the protocol itself is in :mod:`masksearch.solvers.protocol`).

A solver proposes genomes (``ask``) and learns their objective values (``tell``); the search
loop evaluates in between. ``GenomeSolver`` implements the bookkeeping every shipped solver
shares (argument checks, the pending population, dtype canonicalisation) so concrete solvers
only write ``_setup``, ``_ask`` and ``_tell``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numba
import numpy as np

from masksearch._bits import same_bytes
from masksearch.solvers.protocol import (
    GenomeOperators,
    Solver,
    check_solver,
    solver_done,
    solver_inject,
)

__all__ = [
    "FAILED_OBJECTIVE",
    "BinaryOperators",
    "GenomeOperators",
    "GenomeSolver",
    "Solver",
    "as_genomes",
    "check_objectives",
    "check_solver",
    "dominated_by",
    "lexicographic_order",
    "non_dominated",
    "random_bits",
    "solver_done",
    "solver_inject",
]


# What libraries that normalise objectives (pymoo, DEAP's crowding distance) receive in place
# of +inf: inf - inf and inf * 0 are NaN, which silently scrambles their rankings.
FAILED_OBJECTIVE = 1e30


class BinaryOperators:
    """Plain binary genomes, used when a solver is set up without ``operators``.

    sample: independent fair coin flips; mutate: bit-flip with rate ``1/n_genes`` and at least
    one flip per genome (an unchanged child would cost an evaluation and teach nothing);
    crossover: uniform; repair: identity.
    """

    def __init__(self, n_genes: int) -> None:
        if isinstance(n_genes, bool) or not isinstance(n_genes, (int, np.integer)) or n_genes < 1:
            raise ValueError(f"n_genes must be a positive integer, got {n_genes!r}")
        self.n_genes = int(n_genes)
        self.dtype = np.dtype(np.bool_)
        self.lower = np.zeros(self.n_genes, dtype=np.int64)
        self.upper = np.ones(self.n_genes, dtype=np.int64)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return random_bits(rng, (n, self.n_genes))

    def mutate(self, genomes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mutated = self.validate(genomes)
        # Binomial(n, 1/n) flips per genome, drawn as counts and positions (O(P), not O(P n));
        # a repeated position flips once, which only trims the rate by O(1/n).
        n_flips = np.maximum(rng.binomial(self.n_genes, 1.0 / self.n_genes, size=len(mutated)), 1)
        rows = np.repeat(np.arange(len(mutated)), n_flips)
        genes = rng.integers(self.n_genes, size=len(rows))
        mutated[rows, genes] = ~mutated[rows, genes]
        return mutated

    def crossover(
        self, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        first, second = self.validate(first), self.validate(second)
        if first.shape != second.shape:
            raise ValueError(
                f"crossover needs parent arrays of equal shape, got {first.shape} and {second.shape}"
            )
        return np.where(random_bits(rng, first.shape), first, second)

    def repair(self, genomes: np.ndarray) -> np.ndarray:
        return self.validate(genomes)

    def validate(self, genomes: np.ndarray) -> np.ndarray:
        return as_genomes(genomes, self.n_genes, self.dtype, lower=self.lower, upper=self.upper)


def random_bits(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Fair random booleans of ``shape``, eight per random byte (genomes can be millions long)."""
    n_rows, n_columns = shape
    packed = rng.integers(0, 256, size=(n_rows, (n_columns + 7) // 8), dtype=np.uint8)
    return np.unpackbits(packed, axis=1, count=n_columns).view(np.bool_)


def as_genomes(
    genomes: object,
    n_genes: int,
    dtype: np.dtype | type,
    *,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    what: str = "genomes",
) -> np.ndarray:
    """Return ``genomes`` as a fresh ``(P, n_genes)`` array of ``dtype`` or raise ValueError.

    Floats are accepted only when every value is exactly representable in ``dtype`` (pymoo
    hands bool variables back as 0.0/1.0 floats); a 1-D array is one genome.
    """
    dtype = np.dtype(dtype)
    array = np.array(genomes, copy=True)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != n_genes:
        raise ValueError(
            f"{what} must have shape (population, {n_genes}), got {np.shape(genomes)}; "
            "pass one genome per row"
        )
    if array.dtype != dtype:
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise ValueError(f"{what} must be numeric ({dtype.name}), got dtype {array.dtype}")
        converted = array.astype(dtype)
        if array.size and not np.array_equal(converted.astype(array.dtype), array):
            raise ValueError(
                f"{what} hold values that are not exact {dtype.name} values "
                f"(dtype {array.dtype}); pass {dtype.name} genomes"
            )
        array = converted
    if dtype != np.bool_ and array.size and (lower is not None or upper is not None):
        below = lower is not None and bool(np.any(array < lower))
        above = upper is not None and bool(np.any(array > upper))
        if below or above:
            raise ValueError(
                f"{what} have genes outside the per-gene bounds [lower, upper]; "
                "repair or clip them before passing them in"
            )
    return array


def check_objectives(
    F: object, violation: object, n_rows: int, n_obj: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validate what ``tell`` receives; return ``(F, violation)`` as float64 copies.

    F must be ``(n_rows, n_obj)`` (a 1-D F is accepted when ``n_obj == 1``), free of NaN and
    -inf (+inf marks a failed or hopeless candidate); violation must be ``(n_rows,)``, >= 0.
    """
    objectives = np.array(F, dtype=np.float64, copy=True)
    if objectives.ndim == 1 and n_obj == 1:
        objectives = objectives[:, None]
    if objectives.shape != (n_rows, n_obj):
        raise ValueError(
            f"F must have shape (population, n_obj) = ({n_rows}, {n_obj}), got {np.shape(F)}; "
            "pass one row of objective values per told genome"
        )
    if np.isnan(objectives).any():
        rows = np.flatnonzero(np.isnan(objectives).any(axis=1))
        raise ValueError(
            f"F contains NaN in rows {rows[:10].tolist()}; use +inf for failed evaluations"
        )
    if np.isneginf(objectives).any():
        raise ValueError("F contains -inf; objectives are minimised, so -inf is never valid")
    if violation is None:
        return objectives, np.zeros(n_rows)
    violations = np.array(violation, dtype=np.float64, copy=True)
    if violations.shape != (n_rows,):
        raise ValueError(
            f"violation must have shape ({n_rows},), got {np.shape(violation)}; "
            "pass one total constraint violation per genome"
        )
    if np.isnan(violations).any() or (violations < 0).any():
        raise ValueError("violation must be >= 0 (0 = feasible) and not NaN")
    return objectives, violations


class GenomeSolver(Solver, ABC):
    """Shared bookkeeping: checks arguments, canonicalises genomes, remembers the pending ask.

    ``ask`` is idempotent until ``tell``: asking twice returns the same population, so a loop
    resumed from a checkpoint taken between ask and tell re-evaluates the same genomes. ``tell``
    must receive the genomes of the pending ask, in order.
    Subclasses implement ``_setup``, ``_ask`` (may return any numeric array; it is
    canonicalised) and ``_tell`` (receives checked arrays).
    """

    n_genes: int
    n_obj: int
    operators: GenomeOperators
    #: True for a solver that touches genomes only through its operators (never reads a
    #: gene): :func:`masksearch.search` then hands it the packed genomes of a packable encoding
    #: (eight genes a byte, :mod:`masksearch.encodings.packed`), which it copies, compares and
    #: hashes eight times faster. A subclass whose ``_ask`` or ``_tell`` reads genes sets False.
    packs_genomes: bool = False

    def setup(
        self,
        n_genes: int,
        n_obj: int,
        rng: np.random.Generator,
        *,
        operators: GenomeOperators | None = None,
        initial: np.ndarray | None = None,
    ) -> None:
        if isinstance(n_genes, bool) or not isinstance(n_genes, (int, np.integer)) or n_genes < 1:
            raise ValueError(f"n_genes must be a positive integer, got {n_genes!r}")
        if isinstance(n_obj, bool) or not isinstance(n_obj, (int, np.integer)) or n_obj < 1:
            raise ValueError(f"n_obj must be a positive integer, got {n_obj!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
            )
        if operators is None:
            operators = BinaryOperators(int(n_genes))
        elif int(operators.n_genes) != int(n_genes):
            raise ValueError(
                f"operators describe {operators.n_genes} genes but setup got n_genes={n_genes}; "
                "pass n_genes=operators.n_genes"
            )
        self.n_genes = int(n_genes)
        self.n_obj = int(n_obj)
        self.operators = operators
        self._bounded = _bounds_bind(operators)
        self._rng = rng
        self._pending: np.ndarray | None = None
        seeds = None
        if initial is not None:
            seeds = self._canonical(initial, what="initial")
            seeds = self._canonical(operators.validate(seeds), what="initial")
        self._setup(seeds)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.operators.dtype)

    def ask(self) -> np.ndarray:
        self._require_setup()
        if self._pending is None:
            genomes = self._canonical(self._ask(), what=f"{type(self).__name__}._ask() output")
            if len(genomes) == 0:
                raise RuntimeError(f"{type(self).__name__} produced an empty population")
            self._pending = genomes
        return self._pending.copy()

    def tell(self, genomes: np.ndarray, F: np.ndarray, violation: np.ndarray | None = None) -> None:
        self._require_setup()
        if self._pending is None:
            raise RuntimeError("tell() called without a pending ask(); call ask() first")
        told = np.asarray(genomes)
        if told.shape != self._pending.shape:
            raise ValueError(
                f"tell() got genomes of shape {told.shape} but the last ask() returned "
                f"{self._pending.shape}; tell the asked genomes, one row each"
            )
        if not _same_genomes(told, self._pending):
            raise ValueError(
                "tell() got genomes that differ from the last ask(); tell exactly the asked "
                "genomes in the asked order"
            )
        objectives, violations = check_objectives(F, violation, len(told), self.n_obj)
        self._tell(self._pending, objectives, violations)
        self._pending = None

    @property
    def done(self) -> bool:
        """Always False: the shipped solvers propose until the search's budget runs out."""
        return False

    def inject(
        self, genomes: np.ndarray, F: np.ndarray, violation: np.ndarray | None = None
    ) -> None:
        """Merge genomes evaluated elsewhere (a local search, a user's hand-made masks) into the
        run as if they had been asked and told; call it between ``tell`` and the next ``ask``.

        Subclasses whose ``_tell`` needs the genomes of their own ask override ``_inject``.
        """
        self._require_setup()
        if self._pending is not None:
            raise RuntimeError(
                "inject() called while an ask() is pending; tell() the asked genomes first"
            )
        genomes = self._canonical(genomes, what="inject() genomes")
        objectives, violations = check_objectives(F, violation, len(genomes), self.n_obj)
        if len(genomes):
            self._inject(genomes, objectives, violations)

    def _inject(self, genomes: np.ndarray, F: np.ndarray, violation: np.ndarray) -> None:
        self._tell(genomes, F, violation)

    def _canonical(self, genomes: object, *, what: str) -> np.ndarray:
        # checkpoints written before _bounded existed lack it: they check the bounds
        bounded = getattr(self, "_bounded", True)
        return as_genomes(
            genomes,
            self.n_genes,
            self.dtype,
            lower=np.asarray(self.operators.lower) if bounded else None,
            upper=np.asarray(self.operators.upper) if bounded else None,
            what=what,
        )

    def _seeded_population(self, initial: np.ndarray | None, size: int) -> np.ndarray:
        """The ``initial`` genomes, topped up with ``operators.sample`` to ``size`` rows."""
        seeds = initial if initial is not None else np.empty((0, self.n_genes), self.dtype)
        n_random = max(size - len(seeds), 0)
        if n_random == 0:
            return seeds
        sampled = self._canonical(self.operators.sample(n_random, self._rng), what="sample()")
        return np.concatenate([seeds, sampled])

    def _require_setup(self) -> None:
        if not hasattr(self, "_pending"):
            raise RuntimeError(f"call {type(self).__name__}.setup(...) before ask()/tell()")

    @abstractmethod
    def _setup(self, initial: np.ndarray | None) -> None:
        """Build the run state; ``self._rng``, ``self.operators`` etc. are set."""

    @abstractmethod
    def _ask(self) -> np.ndarray:
        """Propose the next population (any numeric array; it is canonicalised)."""

    @abstractmethod
    def _tell(self, genomes: np.ndarray, F: np.ndarray, violation: np.ndarray) -> None:
        """Learn from checked ``F`` (P, n_obj) float64 and ``violation`` (P,) float64."""


def _same_genomes(told: np.ndarray, pending: np.ndarray) -> bool:
    """``np.array_equal`` of the told and the asked genomes, comparing bytes where the dtypes
    match and are integers (packed genomes among them: half the time)."""
    if (
        told.dtype == pending.dtype
        and told.dtype.kind in "ui"
        and told.flags.c_contiguous
        and pending.flags.c_contiguous
    ):
        return same_bytes(told, pending)
    return bool(np.array_equal(told, pending))


def _bounds_bind(operators: GenomeOperators) -> bool:
    """Whether the per-gene bounds exclude values of the genome dtype (packed bytes span
    0..255, bools 0..1: checking them would only cost a pass over every gene)."""
    dtype = np.dtype(operators.dtype)
    if dtype == np.bool_:
        return False
    if not np.issubdtype(dtype, np.integer):
        return True
    info = np.iinfo(dtype)
    lower, upper = np.asarray(operators.lower), np.asarray(operators.upper)
    return bool(lower.size and (lower.max() > info.min or upper.min() < info.max))


def lexicographic_order(F: np.ndarray, violation: np.ndarray) -> np.ndarray:
    """Row indices best first: feasible before infeasible (by violation), then by F[:, 0],
    ties by F[:, 1], and so on; stable, so earlier rows win exact ties."""
    keys = [F[:, column] for column in reversed(range(F.shape[1]))]
    return np.lexsort([*keys, violation])


def non_dominated(F: object, violation: object | None = None) -> np.ndarray:
    """Boolean mask of the rows of ``F`` (``(n, n_obj)``, minimised) that no other row dominates.

    With ``violation`` (``(n,)``, 0 = feasible) Deb's feasibility rules apply: any feasible row
    dominates every infeasible one, and when no row is feasible the least violating rows are
    the front. Without it every row is feasible. Row ``j`` dominates row ``i`` when it is no
    worse in every objective and better in one, so identical rows are all kept and a row with
    NaN neither dominates nor is dominated. ``masksearch.front`` and the solvers share this
    one function (it needs no torch, so solvers need not import it).
    """
    F = np.asarray(F, dtype=np.float64)
    if F.ndim != 2:
        raise ValueError(f"F must have shape (n, n_obj), got {F.shape}")
    mask = np.zeros(len(F), dtype=bool)
    if len(F) == 0:
        return mask
    if violation is None:
        mask[:] = ~_dominated(F)
        return mask
    violations = np.asarray(violation, dtype=np.float64)
    if violations.shape != (len(F),):
        raise ValueError(f"violation must have shape ({len(F)},), got {violations.shape}")
    feasible = violations <= 0
    if not feasible.any():
        return violations == violations.min()
    rows = np.flatnonzero(feasible)
    mask[rows] = ~_dominated(F[rows])
    return mask


def dominated_by(F: object, members: object) -> np.ndarray:
    """Boolean mask of the rows of ``F`` that some row of ``members`` dominates (both
    ``(n, n_obj)``, minimised, every row feasible), as :func:`non_dominated` defines it."""
    F = np.asarray(F, dtype=np.float64)
    members = np.asarray(members, dtype=np.float64)
    if F.ndim != 2 or members.ndim != 2 or F.shape[1] != members.shape[1]:
        raise ValueError(
            f"F and members must have shapes (n, n_obj) and (m, n_obj), got {F.shape} and "
            f"{members.shape}"
        )
    return _dominated_among(F, members)


def _dominated(F: np.ndarray) -> np.ndarray:
    """Which rows of ``F`` some other row dominates (all rows feasible)."""
    return _dominated_among(F, F)


@numba.njit(cache=True)
def _dominated_among(F, members):  # pragma: no cover - compiled
    """Which rows of ``F`` some row of ``members`` dominates: each row against the members
    until one dominates it (a comparison with NaN is false, so a NaN row neither dominates
    nor is dominated, and no row dominates itself)."""
    n_rows, n_obj = F.shape
    dominated = np.zeros(n_rows, dtype=np.bool_)
    for row in range(n_rows):
        for other in range(members.shape[0]):
            no_worse, better = True, False
            for objective in range(n_obj):
                theirs, mine = members[other, objective], F[row, objective]
                if not theirs <= mine:
                    no_worse = False
                    break
                better = better or theirs < mine
            if no_worse and better:
                dominated[row] = True
                break
    return dominated
