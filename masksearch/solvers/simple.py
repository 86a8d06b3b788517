"""Two small solvers written directly against the protocol: random search and EvoPress's (1+λ)-EA."""

from __future__ import annotations

import numpy as np

from masksearch.solvers.base import GenomeSolver, lexicographic_order, non_dominated

__all__ = ["EvoPressSolver", "RandomSearch"]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class RandomSearch(GenomeSolver):
    """Random sampling, optionally spiced with mutations of the best genomes seen so far.

    Each ask draws ``pop_size`` genomes; each one is, with probability ``mutation_share``, a
    mutation of a random member of the non-dominated archive of everything told so far (once
    that archive exists), and otherwise a fresh ``operators.sample``. ``mutation_share=0`` is
    pure random search. The archive keeps at most ``archive_size`` genomes, spread evenly over
    the archive sorted by the first objective (so both extremes stay).
    """

    packs_genomes = True

    def __init__(
        self, pop_size: int = 50, *, mutation_share: float = 0.5, archive_size: int = 100
    ) -> None:
        if not 0.0 <= float(mutation_share) <= 1.0:
            raise ValueError(f"mutation_share must lie in [0, 1], got {mutation_share!r}")
        self.pop_size = _positive_int("pop_size", pop_size)
        self.mutation_share = float(mutation_share)
        self.archive_size = _positive_int("archive_size", archive_size)

    def _setup(self, initial: np.ndarray | None) -> None:
        self._initial = initial
        self._started = False
        self.archive_genomes = np.empty((0, self.n_genes), self.dtype)
        self.archive_F = np.empty((0, self.n_obj))
        self.archive_violation = np.empty(0)

    def _ask(self) -> np.ndarray:
        if not self._started:
            self._started = True
            population = self._seeded_population(self._initial, self.pop_size)
            self._initial = None
            return population
        mutate = self._rng.random(self.pop_size) < self.mutation_share
        if len(self.archive_genomes) == 0:
            mutate[:] = False
        n_mutants = int(mutate.sum())
        parts = []
        if n_mutants:
            parents = self.archive_genomes[
                self._rng.integers(len(self.archive_genomes), size=n_mutants)
            ]
            parts.append(
                self._canonical(self.operators.mutate(parents, self._rng), what="mutate()")
            )
        if n_mutants < self.pop_size:
            sampled = self.operators.sample(self.pop_size - n_mutants, self._rng)
            parts.append(self._canonical(sampled, what="sample()"))
        return np.concatenate(parts)

    def _tell(self, genomes: np.ndarray, F: np.ndarray, violation: np.ndarray) -> None:
        all_genomes = np.concatenate([self.archive_genomes, genomes])
        all_F = np.concatenate([self.archive_F, F])
        all_violation = np.concatenate([self.archive_violation, violation])
        keep = np.flatnonzero(non_dominated(all_F, all_violation))
        keep = _unique_rows(all_genomes, keep)
        if len(keep) > self.archive_size:
            ordered = keep[lexicographic_order(all_F[keep], all_violation[keep])]
            spread = np.linspace(0, len(ordered) - 1, self.archive_size).round().astype(int)
            keep = np.sort(ordered[spread])
        self.archive_genomes = all_genomes[keep]
        self.archive_F = all_F[keep]
        self.archive_violation = all_violation[keep]


def _unique_rows(genomes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``rows`` without later repeats of an identical genome (first occurrence kept)."""
    seen: set[bytes] = set()
    unique = []
    for row in rows:
        key = genomes[row].tobytes()
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return np.asarray(unique, dtype=np.int64)


class EvoPressSolver(GenomeSolver):
    """The (1+λ) evolutionary algorithm of EvoPress (Sieberling et al., 2024).

    One parent; every ask returns ``lambda_`` mutations of it (``operators.mutate``, e.g. the
    level-switch mutation of the levels encoding, which keeps the total sparsity). The best
    child replaces the parent when it is at least as good: feasible first, then the first
    objective, ties broken by the next objectives; on a full tie the child wins, so the search
    can drift across plateaus. The first ask is the ``initial`` genomes topped up with samples
    to ``lambda_`` rows, and its best becomes the first parent.

    EvoPress is single-objective: the other objectives only break ties, so use it with an
    encoding that fixes density (pool, levels) or a density constraint. EvoPress's multi-step
    selection (re-ranking survivors on growing calibration sets) is not implemented: the
    evaluator returns one value per genome; it belongs to the evaluator, not the solver.
    """

    packs_genomes = True

    def __init__(self, lambda_: int = 8) -> None:
        self.lambda_ = _positive_int("lambda_", lambda_)

    def _setup(self, initial: np.ndarray | None) -> None:
        self._initial = initial
        self.parent: np.ndarray | None = None
        self.parent_F: np.ndarray | None = None
        self.parent_violation = np.inf

    def _ask(self) -> np.ndarray:
        if self.parent is None:
            population = self._seeded_population(self._initial, self.lambda_)
            self._initial = None
            return population
        parents = np.repeat(self.parent[None, :], self.lambda_, axis=0)
        return self.operators.mutate(parents, self._rng)

    def _tell(self, genomes: np.ndarray, F: np.ndarray, violation: np.ndarray) -> None:
        if self.parent is not None:
            # the parent goes last: lexicographic_order is stable, so a tying child wins
            genomes = np.concatenate([genomes, self.parent[None, :]])
            F = np.concatenate([F, self.parent_F[None, :]])
            violation = np.append(violation, self.parent_violation)
        best = lexicographic_order(F, violation)[0]
        self.parent = genomes[best].copy()
        self.parent_F = F[best].copy()
        self.parent_violation = float(violation[best])
