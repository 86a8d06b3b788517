"""DEAP's (µ+λ) evolutionary algorithm as a masksearch solver.

Uses DEAP pieces without DEAP's globals: a local ``base.Toolbox`` (never ``deap.creator``), a
module-level minimising ``Fitness`` whose weights are set per instance (so individuals pickle),
and ``tools.selNSGA2``'s survival for multi-objective runs (:func:`nsga2_selection`: its choices,
in its order, computed on arrays). Everything random runs on the solver's
numpy generator, never on the global ``random`` module that DEAP's own operators use: the
variation step re-implements ``algorithms.varAnd`` on whole populations, and tournament
selection is re-implemented because ``tools.selTournament`` draws from the global ``random``.

Pseudocode of one generation (ask + tell)::

    offspring = vary(population, lambda_)            # ask: crossover / mutation, batched
    evaluate(offspring)                              # the search loop
    population = select(population + offspring, mu) # tell
"""

from __future__ import annotations

import numpy as np
from deap import base

from masksearch.solvers.base import FAILED_OBJECTIVE, GenomeSolver, lexicographic_order

__all__ = ["DEAP_KINDS", "DeapIndividual", "DeapSolver", "MinimisingFitness"]

DEAP_KINDS = ("nsga2", "ga")


class MinimisingFitness(base.Fitness):
    """A DEAP fitness minimising ``n_obj`` objectives; weights live on the instance, so no
    class has to be created per objective count (dynamic classes, as ``creator`` makes,
    do not pickle)."""

    def __init__(self, n_obj: int, values: tuple[float, ...] = ()) -> None:
        self.weights = (-1.0,) * int(n_obj)
        super().__init__(values)

    def __deepcopy__(self, memo: dict) -> MinimisingFitness:
        copy_ = MinimisingFitness(len(self.weights))
        copy_.wvalues = self.wvalues
        return copy_


class DeapIndividual:
    """One genome with its DEAP fitness and its total constraint violation."""

    __slots__ = ("fitness", "genome", "violation")

    def __init__(self, genome: np.ndarray, fitness: MinimisingFitness, violation: float) -> None:
        self.genome = genome
        self.fitness = fitness
        self.violation = float(violation)


def _select_nsga2(
    individuals: list[DeapIndividual], k: int, rng: np.random.Generator
) -> list[DeapIndividual]:
    """``tools.selNSGA2`` over the feasible individuals, then the least violating ones."""
    feasible = [individual for individual in individuals if individual.violation <= 0]
    if len(feasible) >= k:
        wvalues = np.array([individual.fitness.wvalues for individual in feasible], dtype=float)
        return [feasible[index] for index in nsga2_selection(wvalues, k)]
    infeasible = sorted(
        (individual for individual in individuals if individual.violation > 0),
        key=lambda individual: individual.violation,
    )
    return feasible + infeasible[: k - len(feasible)]


def nsga2_selection(wvalues: np.ndarray, k: int) -> list[int]:
    """The positions ``tools.selNSGA2`` chooses from individuals with these fitness
    ``wvalues`` (maximised), in its order: the same result, array operations instead of its
    O(N²) Python dominance calls (half the DEAP loop's time per genome on LeNet-300-100).

    Reproduced step by step (deap 1.4's ``sortNondominated`` and ``assignCrowdingDist``):
    equal fitnesses form one group, in order of first appearance; the first front is the
    undominated groups in that order; each later front lists the groups whose last dominator
    lies in the front before, in the order that front's groups release them; fronts are added
    until ``k`` individuals are sorted; crowding distances are summed objective by objective
    over stable sorts of the previous objective's order; every front but the last is taken
    whole, and the last by decreasing crowding distance (a stable sort) up to ``k``.
    """
    if k <= 0 or len(wvalues) == 0:
        return []
    group_of: dict[tuple[float, ...], int] = {}
    members: list[list[int]] = []
    for position, row in enumerate(map(tuple, wvalues.tolist())):
        group = group_of.setdefault(row, len(group_of))
        if group == len(members):
            members.append([])
        members[group].append(position)
    unique = np.array(list(group_of), dtype=float).reshape(len(group_of), -1)
    at_least = np.ones((len(unique), len(unique)), dtype=bool)
    better = np.zeros((len(unique), len(unique)), dtype=bool)
    for column in unique.T:  # one objective at a time: no 3-D arrays, no reductions
        at_least &= column[:, None] >= column[None, :]
        better |= column[:, None] > column[None, :]
    dominates = at_least & better  # [a, b]: group a dominates group b
    dominators = dominates.sum(axis=0)
    current = np.flatnonzero(dominators == 0)
    fronts = [[position for group in current for position in members[group]]]
    n_sorted, wanted = len(fronts[0]), min(len(wvalues), k)
    while n_sorted < wanted:
        released = dominates[current]  # rows: the current front's groups, in order
        dominators = dominators - released.sum(axis=0)
        freed = np.flatnonzero((dominators == 0) & released.any(axis=0))
        # a group joins the next front when its last dominator in this front releases it
        last = len(current) - 1 - np.argmax(released[::-1][:, freed], axis=0)
        current = freed[np.lexsort((freed, last))]
        fronts.append([position for group in current for position in members[group]])
        n_sorted += len(fronts[-1])
    chosen = [position for front in fronts[:-1] for position in front]
    last_front = np.asarray(fronts[-1])
    distance = _crowding_distance(-wvalues[last_front])  # DEAP's fitness.values
    by_distance = last_front[np.argsort(-distance, kind="stable")]
    return chosen + by_distance[: k - len(chosen)].tolist()


def _crowding_distance(values: np.ndarray) -> np.ndarray:
    """``assignCrowdingDist``'s distances of one front, float operation for float operation."""
    distance = np.zeros(len(values))
    order = np.arange(len(values))
    n_obj = values.shape[1]
    for objective in range(n_obj):
        order = order[np.argsort(values[order, objective], kind="stable")]
        distance[order[0]] = distance[order[-1]] = np.inf
        low, high = values[order[0], objective], values[order[-1], objective]
        if high == low:
            continue
        norm = n_obj * float(high - low)
        distance[order[1:-1]] += (
            values[order[2:], objective] - values[order[:-2], objective]
        ) / norm
    return distance


def _select_tournament(
    individuals: list[DeapIndividual],
    k: int,
    rng: np.random.Generator,
    *,
    tournsize: int,
    n_elite: int,
) -> list[DeapIndividual]:
    """The ``n_elite`` best, then tournaments of ``tournsize`` drawn with replacement (as
    ``tools.selTournament`` does, but on ``rng``); best = feasible first, then first objective,
    ties by the others."""
    F = np.array([individual.fitness.values for individual in individuals], dtype=float)
    violation = np.array([individual.violation for individual in individuals])
    rank = np.empty(len(individuals), dtype=np.int64)
    rank[lexicographic_order(F, violation)] = np.arange(len(individuals))
    n_elite = min(n_elite, k)
    chosen = list(np.argsort(rank)[:n_elite])
    entrants = rng.integers(len(individuals), size=(k - n_elite, tournsize))
    chosen.extend(entrants[np.arange(len(entrants)), rank[entrants].argmin(axis=1)])
    return [individuals[index] for index in chosen]


class DeapSolver(GenomeSolver):
    """DEAP (µ+λ) with NSGA-II survival ("nsga2") or elitist tournament survival ("ga").

    Args:
        kind: "nsga2" (``tools.selNSGA2``'s choices, Deb's feasibility rules first) or "ga" (first
            objective, ties by the others; ``n_elite`` best survive, tournaments fill the rest).
        mu: population size kept between generations.
        lambda_: children asked per generation (default ``mu``).
        cxpb: probability that a child comes from ``operators.crossover`` of two parents.
        mutpb: probability that a child then goes through ``operators.mutate``; a child that
            was neither crossed nor mutated is mutated anyway, since a copy would spend an
            evaluation on a known genome (DEAP's ``varAnd`` leaves copies).
        tournsize: tournament size for "ga".
        n_elite: how many of the best always survive in "ga".

    Parents for variation are drawn uniformly, as in DEAP's ``eaMuPlusLambda``; selection
    pressure comes from survival. The first ask is the ``initial`` genomes topped up with
    ``operators.sample`` to ``mu`` rows.
    """

    packs_genomes = True

    def __init__(
        self,
        kind: str = "nsga2",
        mu: int = 50,
        lambda_: int | None = None,
        *,
        cxpb: float = 0.7,
        mutpb: float = 0.3,
        tournsize: int = 3,
        n_elite: int = 1,
    ) -> None:
        if kind not in DEAP_KINDS:
            raise ValueError(f"unknown DEAP kind {kind!r}; choose one of {', '.join(DEAP_KINDS)}")
        for name, value, least in (
            ("mu", mu, 2),
            ("tournsize", tournsize, 1),
            ("n_elite", n_elite, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if lambda_ is not None and (
            isinstance(lambda_, bool) or not isinstance(lambda_, (int, np.integer)) or lambda_ < 1
        ):
            raise ValueError(f"lambda_ must be a positive integer or None, got {lambda_!r}")
        for name, value in (("cxpb", cxpb), ("mutpb", mutpb)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
        self.kind = kind
        self.mu = int(mu)
        self.lambda_ = self.mu if lambda_ is None else int(lambda_)
        self.cxpb = float(cxpb)
        self.mutpb = float(mutpb)
        self.tournsize = int(tournsize)
        self.n_elite = int(n_elite)

    def _setup(self, initial: np.ndarray | None) -> None:
        toolbox = base.Toolbox()
        toolbox.register("mate", self.operators.crossover)
        toolbox.register("mutate", self.operators.mutate)
        if self.kind == "nsga2":
            toolbox.register("select", _select_nsga2)
        else:
            toolbox.register(
                "select", _select_tournament, tournsize=self.tournsize, n_elite=self.n_elite
            )
        self.toolbox = toolbox
        self._initial = initial
        self.population: list[DeapIndividual] = []

    def _ask(self) -> np.ndarray:
        if not self.population:
            population = self._seeded_population(self._initial, self.mu)
            self._initial = None
            return population
        return self._vary()

    def _vary(self) -> np.ndarray:
        rng = self._rng
        parents = np.stack([individual.genome for individual in self.population])
        first = rng.integers(len(parents), size=self.lambda_)
        second = rng.integers(len(parents), size=self.lambda_)
        cross = rng.random(self.lambda_) < self.cxpb
        mutate = (rng.random(self.lambda_) < self.mutpb) | ~cross
        children = parents[first]
        if cross.any():
            mated = self.toolbox.mate(parents[first[cross]], parents[second[cross]], rng)
            children[cross] = self._canonical(mated, what="crossover()")
        if mutate.any():
            mutated = self.toolbox.mutate(children[mutate], rng)
            children[mutate] = self._canonical(mutated, what="mutate()")
        return children

    def _tell(self, genomes: np.ndarray, F: np.ndarray, violation: np.ndarray) -> None:
        F = np.where(np.isinf(F), FAILED_OBJECTIVE, F)  # inf would make crowding distances NaN
        told = [
            DeapIndividual(genome, MinimisingFitness(self.n_obj, tuple(values)), flaw)
            for genome, values, flaw in zip(genomes, F.tolist(), violation.tolist(), strict=True)
        ]
        candidates = self.population + told
        self.population = self.toolbox.select(candidates, min(self.mu, len(candidates)), self._rng)
