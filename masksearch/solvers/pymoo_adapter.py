"""pymoo algorithms behind the masksearch ``Solver`` protocol, driven through pymoo's ask/tell.

pymoo never evaluates anything: it sees a declarative ``Problem`` (gene count, bounds, objective
count) whose ``_evaluate`` only copies the values handed to ``tell``, so it never holds or
deep-copies a model. The encoding's operators are wired in as pymoo ``Sampling``, ``Crossover``,
``Mutation`` and ``Repair`` subclasses that run on pymoo's own seeded ``random_state``; the
crossover's and the mutation's ``do`` are pymoo's, draw for draw, with fewer copies of each
genome, and NSGA-II's binary tournament is pymoo's computed on arrays (tests hold all three
equal to pymoo's own).
Genomes are converted back to the encoding's dtype on every hand-over (pymoo#496: bool
variables turn into floats after one generation).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from math import comb

import numpy as np
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import DuplicateElimination, NoDuplicateElimination
from pymoo.core.evaluator import Evaluator
from pymoo.core.individual import Individual
from pymoo.core.mutation import Mutation
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling
from pymoo.core.termination import NoTermination
from pymoo.core.variable import get
from pymoo.util import default_random_state

from masksearch.keys import KEY_VERSION, row_keys
from masksearch.solvers.base import FAILED_OBJECTIVE, GenomeOperators, GenomeSolver, as_genomes

__all__ = ["PYMOO_ALGORITHMS", "PymooSolver", "reference_directions"]

PYMOO_ALGORITHMS = ("nsga2", "ga", "nsga3", "smsemoa", "moead")
_MULTI_OBJECTIVE_ONLY = ("nsga3", "smsemoa", "moead")


def _canonical(X: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype == dtype:
        return X  # pymoo's arrays and the operators' results are fresh: no copy needed
    return as_genomes(X, X.shape[-1], dtype, what="pymoo genomes")


def _genomes_of(pop: Population) -> np.ndarray:
    """``pop.get("X")``: the same array, without pymoo's attribute lookups per member."""
    if len(pop) == 0:
        return pop.get("X")
    return np.array([member.X for member in pop])


class _AskTellProblem(Problem):
    """The search space as pymoo sees it; objective values arrive through ``tell`` only."""

    def __init__(
        self, n_var: int, n_obj: int, n_ieq_constr: int, lower: np.ndarray, upper: np.ndarray
    ) -> None:
        super().__init__(
            n_var=n_var, n_obj=n_obj, n_ieq_constr=n_ieq_constr, xl=lower, xu=upper, vtype=int
        )
        self.told: dict[str, np.ndarray] | None = None

    def _evaluate(self, X: np.ndarray, out: dict, *args: object, **kwargs: object) -> None:
        out.update(self._told_for(len(X)))

    def _told_for(self, n: int) -> dict[str, np.ndarray]:
        if self.told is None or n != len(self.told["F"]):
            raise RuntimeError(
                "pymoo asked to evaluate genomes itself; masksearch evaluates them in the search "
                "loop and passes the values through PymooSolver.tell()"
            )
        return self.told

    def told_values(self, n: int, return_values_of: list[str]) -> dict[str, np.ndarray]:
        """What ``evaluate(X, return_values_of=..., return_as_dictionary=True)`` returns for
        ``n`` candidates, without ``X``: the told values, the missing ones filled as pymoo
        fills them, as float64."""
        out = self._format_dict(dict(self._told_for(n)), n, return_values_of)
        return {key: np.array(value, dtype=np.float64) for key, value in out.items()}


class _ToldEvaluator(Evaluator):
    """pymoo's ``Evaluator`` for values the search loop computed: ``_eval`` sets what pymoo's
    sets, without stacking the population's genomes into the array pymoo hands a problem
    (a copy of every genome a generation, which this problem never reads)."""

    def _eval(self, problem, pop, evaluate_values_of, **kwargs):
        out = problem.told_values(len(pop), list(evaluate_values_of))
        # what Population.set does, per member: a copy of its row (a view would keep the
        # batch alive, pymoo#455), set as an attribute where Individual has one
        columns = [(key, values, hasattr(Individual, key)) for key, values in out.items()]
        for index, individual in enumerate(pop):
            for key, values, attribute in columns:
                value = values[index]
                if isinstance(value, np.ndarray):
                    value = value.copy()
                if attribute:
                    setattr(individual, key, value)
                else:
                    individual.data[key] = value
            individual.evaluated.update(out)


class _OperatorSampling(Sampling):
    """The ``initial`` genomes first, then ``operators.sample`` for the rest."""

    def __init__(self, operators: GenomeOperators, initial: np.ndarray | None) -> None:
        super().__init__()
        self.operators = operators
        self.initial = initial

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        dtype = np.dtype(self.operators.dtype)
        seeds = self.initial if self.initial is not None else np.empty((0, problem.n_var), dtype)
        self.initial = None  # only the first population is seeded; drop the memory
        n_random = max(int(n_samples) - len(seeds), 0)
        if n_random == 0:
            return seeds
        sampled = _canonical(np.asarray(self.operators.sample(n_random, random_state)), dtype)
        return np.concatenate([seeds, sampled])


class _OperatorCrossover(Crossover):
    """Two parents, two children: ``crossover(a, b)`` and ``crossover(b, a)``."""

    def __init__(self, operators: GenomeOperators, prob: float) -> None:
        super().__init__(n_parents=2, n_offsprings=2, prob=prob)
        self.operators = operators

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        return np.stack(self._children(X[0], X[1], random_state))

    def _children(self, first, second, random_state) -> list[np.ndarray]:
        dtype = np.dtype(self.operators.dtype)
        first, second = _canonical(first, dtype), _canonical(second, dtype)
        return [
            _canonical(np.asarray(self.operators.crossover(first, second, random_state)), dtype),
            _canonical(np.asarray(self.operators.crossover(second, first, random_state)), dtype),
        ]

    @default_random_state
    def do(self, problem, pop, parents=None, *args, random_state=None, **kwargs):
        """pymoo's ``Crossover.do`` for two parents and two children, draw for draw, with one
        copy of each child where pymoo makes four (a stacked array, a masked assignment, a
        reshape and a copy per individual): the first children of every mating, then the
        second ones, a mating without crossover passing its parents on."""
        if parents is not None:
            # the parents' genomes straight from their indices: a Population per mating, as
            # pymoo builds, costs more than the crossover of a small genome
            parents = np.asarray(parents)
            first = np.stack([pop[index].X for index in parents[:, 0]])
            second = np.stack([pop[index].X for index in parents[:, 1]])
        else:
            first = np.stack([mating[0].X for mating in pop])
            second = np.stack([mating[1].X for mating in pop])
        n_matings = len(first)
        crossed = random_state.random(n_matings) < get(self.prob, size=n_matings)
        children = self._children(first, second, random_state) if crossed.any() else [first, second]
        offspring = [
            Individual(X=(child if crossed[k] else parent)[k].copy())
            for child, parent in zip(children, (first, second), strict=True)
            for k in range(n_matings)
        ]
        return Population(offspring)


class _OperatorMutation(Mutation):
    def __init__(self, operators: GenomeOperators, prob: float) -> None:
        super().__init__(prob=prob)
        self.operators = operators

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        dtype = np.dtype(self.operators.dtype)
        mutated = self.operators.mutate(_canonical(X, dtype), random_state)
        return _canonical(np.asarray(mutated), dtype)

    @default_random_state
    def do(self, problem, pop, inplace=True, *args, random_state=None, **kwargs):
        """pymoo's ``Mutation.do``, draw for draw, with one copy of each mutated child where
        pymoo makes two."""
        if not inplace:
            return super().do(problem, pop, inplace, *args, random_state=random_state, **kwargs)
        mutated = self._do(problem, _genomes_of(pop), *args, random_state=random_state, **kwargs)
        chosen = random_state.random(size=len(pop)) <= get(self.prob, size=len(pop))
        for index in np.flatnonzero(chosen):
            pop[index].set("X", mutated[index].copy())
        return pop


class _OperatorRepair(Repair):
    """Canonical dtype plus the encoding's invariants, before duplicate elimination."""

    def __init__(self, operators: GenomeOperators) -> None:
        super().__init__()
        self.operators = operators

    def _do(self, problem, X, **kwargs):
        dtype = np.dtype(self.operators.dtype)
        return _canonical(np.asarray(self.operators.repair(_canonical(X, dtype))), dtype)

    def do(self, problem, pop, **kwargs):
        if getattr(self.operators, "repair_only_checks", False):
            # packed genomes have no invariants, and these came from the operators' own
            # crossover and mutation of checked parents: checking them again would copy every
            # child once more (the search checks the shape and dtype of what it is asked)
            return pop
        # a repair may edit its input in place and return it: set the result either way
        pop.set("X", self._do(problem, _genomes_of(pop), **kwargs))
        return pop


_KEY = f"masksearch_genome_key_v{KEY_VERSION}"


class _HashDuplicateElimination(DuplicateElimination):
    """Exact duplicates by 128-bit keys of genome bytes: O(P) instead of pymoo's O(P^2 n)
    distances."""

    def __init__(self, dtype: np.dtype) -> None:
        super().__init__()
        self.dtype = np.dtype(dtype)

    def _keys(self, pop) -> list[bytes]:
        # pymoo compares each mating round's children with the whole population: a key is
        # kept with its individual, next to the genome it was computed from (pymoo replaces
        # an individual's X, never edits it in place)
        keys = [b""] * len(pop)
        missing: list[int] = []
        for index, individual in enumerate(pop):
            cached = individual.data.get(_KEY)
            if cached is not None and cached[0] is individual.X:
                keys[index] = cached[1]
            else:
                missing.append(index)
        if missing:
            genomes = np.stack(
                [np.asarray(pop[index].X).astype(self.dtype, copy=False) for index in missing]
            )
            for index, key in zip(missing, row_keys(genomes), strict=True):
                keys[index] = key
                pop[index].data[_KEY] = (pop[index].X, key)
        return keys

    def _do(self, pop, other, is_duplicate):
        seen = set() if other is None else set(self._keys(other))
        for index, key in enumerate(self._keys(pop)):
            if key in seen:
                is_duplicate[index] = True
            else:
                seen.add(key)
        return is_duplicate


def _binary_tournament(pop, P, algorithm, **kwargs) -> np.ndarray:
    """pymoo's NSGA-II ``binary_tournament`` (``pymoo.algorithms.moo.nsga2``) on arrays: the same
    winners and the same draws, without its per-tournament Python comparisons.

    A tournament with an infeasible side goes to the smaller violation; between feasible ones,
    to the dominating side (or the lower rank), else to the larger crowding distance. Each tie
    draws ``algorithm.random_state.choice([a, b])`` in tournament order, which is the same
    stream as one ``integers(0, 2, size=ties)`` (tests hold both to pymoo's function).
    """
    n_tournaments, n_parents = P.shape
    if n_parents != 2:
        raise ValueError("Only implemented for binary tournament!")
    tournament_type = algorithm.tournament_type
    if tournament_type not in ("comp_by_dom_and_crowding", "comp_by_rank_and_crowding"):
        raise ValueError("Unknown tournament type.")
    first, second = P[:, 0], P[:, 1]
    problem = getattr(algorithm, "problem", None)
    if problem is not None and not problem.has_constraints():
        # what every member's CV is without constraints, without computing it per member
        violation = np.zeros(len(pop))
    else:
        violation = np.array([individual.CV[0] for individual in pop], dtype=float)
    # "crowding" and "rank" live in each member's data (Individual.get looks there last)
    crowding = np.array([individual.data.get("crowding") for individual in pop], dtype=float)
    winners = np.full(n_tournaments, -1, dtype=np.int64)
    tied = np.zeros(n_tournaments, dtype=bool)

    def decide(rows: np.ndarray, a_wins: np.ndarray, b_wins: np.ndarray) -> np.ndarray:
        """Winners of ``rows`` where one side wins; the rows still open."""
        winners[rows & a_wins] = first[rows & a_wins]
        winners[rows & b_wins] = second[rows & b_wins]
        return rows & ~a_wins & ~b_wins

    infeasible = (violation[first] > 0.0) | (violation[second] > 0.0)
    va, vb = violation[first], violation[second]
    tied |= decide(infeasible, va < vb, vb < va)
    if tournament_type == "comp_by_dom_and_crowding":
        F = np.array([individual.F for individual in pop], dtype=float)
        a_somewhere_better = (F[first] < F[second]).any(axis=1)
        b_somewhere_better = (F[second] < F[first]).any(axis=1)
        # Dominator.get_relation: a side dominates when it is better somewhere, worse nowhere
        undecided = decide(
            ~infeasible,
            a_somewhere_better & ~b_somewhere_better,
            b_somewhere_better & ~a_somewhere_better,
        )
    else:
        rank = np.array([individual.data.get("rank") for individual in pop], dtype=float)
        undecided = decide(~infeasible, rank[first] < rank[second], rank[second] < rank[first])
    ca, cb = crowding[first], crowding[second]
    tied |= decide(undecided, ca > cb, cb > ca)
    ties = np.flatnonzero(tied)
    if len(ties):
        draws = algorithm.random_state.integers(0, 2, size=len(ties))
        winners[ties] = np.where(draws == 0, first[ties], second[ties])
    return winners[:, None]


# pymoo wraps these tournament comparators in a decorator that pickles under a local name,
# which breaks checkpointing; a by-name forwarder pickles fine and calls the same function.
_TOURNAMENT_COMPARATORS = {
    "ga": ("pymoo.algorithms.soo.nonconvex.ga", "comp_by_cv_and_fitness"),
    "nsga3": ("pymoo.algorithms.moo.nsga3", "comp_by_cv_then_random"),
    "smsemoa": ("pymoo.algorithms.moo.sms", "cv_and_dom_tournament"),
}


class _ForwardComparator:
    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def __call__(self, *args, **kwargs):
        comparator = getattr(importlib.import_module(self.module), self.name)
        return comparator(*args, **kwargs)


def _tournament_comparator(kind: str) -> Callable[..., np.ndarray] | None:
    """The mating tournament's comparator for pymoo algorithm ``kind``, None for pymoo's own:
    NSGA-II's on arrays, the others' through a picklable forwarder."""
    if kind == "nsga2":
        return _binary_tournament
    if kind in _TOURNAMENT_COMPARATORS:
        return _ForwardComparator(*_TOURNAMENT_COMPARATORS[kind])
    return None


def _algorithm_class(kind: str) -> type:
    if kind == "nsga2":
        from masksearch.solvers._pymoo_nsga2 import NSGA2

        return NSGA2
    if kind == "ga":
        from pymoo.algorithms.soo.nonconvex.ga import GA

        return GA
    if kind == "smsemoa":
        from pymoo.algorithms.moo.sms import SMSEMOA

        return SMSEMOA
    if kind == "nsga3":
        from pymoo.algorithms.moo.nsga3 import NSGA3

        return NSGA3
    from pymoo.algorithms.moo.moead import ParallelMOEAD

    return ParallelMOEAD


# set by the adapter itself: overriding them would bypass the encoding, the seed or ask/tell
_RESERVED_OPTIONS = frozenset(
    {"sampling", "crossover", "mutation", "repair", "seed", "termination", "evaluator", "problem"}
)


def _check_options(kind: str, options: dict) -> None:
    """pymoo constructors swallow unknown keywords; catch typos here instead."""
    accepted: set[str] = set()
    for klass in _algorithm_class(kind).__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for parameter in inspect.signature(init).parameters.values():
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                accepted.add(parameter.name)
    accepted -= _RESERVED_OPTIONS | {"self"}
    reserved = sorted(set(options) & _RESERVED_OPTIONS)
    if reserved:
        raise ValueError(
            f"options {reserved} are set by PymooSolver (from the encoding's operators and the "
            "search's seed); pass crossover_prob / mutation_prob or a different encoding instead"
        )
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for pymoo {kind!r}; accepted: {', '.join(sorted(accepted))}"
        )


def reference_directions(n_obj: int, max_points: int) -> np.ndarray:
    """Das-Dennis directions with the most partitions whose count stays <= ``max_points``."""
    from pymoo.util.ref_dirs import get_reference_directions

    partitions = 1
    while comb(partitions + 1 + n_obj - 1, n_obj - 1) <= max_points:
        partitions += 1
    return get_reference_directions("das-dennis", n_obj, n_partitions=partitions)


class PymooSolver(GenomeSolver):
    """A pymoo algorithm ("nsga2", "ga", "nsga3", "smsemoa", "moead") as a masksearch solver.

    Args:
        algorithm: which pymoo algorithm.
        pop_size: population size; for "moead" (and the reference directions of "nsga3") the
            Das-Dennis directions with at most ``pop_size`` points set the size.
        n_offsprings: children per generation (pymoo's default: ``pop_size``).
        crossover_prob: probability that a mating uses ``operators.crossover``.
        mutation_prob: probability that a child goes through ``operators.mutate``.
        eliminate_duplicates: drop exact duplicate genomes (hash-based) before asking.
        ref_dirs: explicit reference directions for "nsga3"/"moead".
        **options: forwarded to the pymoo algorithm's constructor (e.g. ``n_neighbors``).

    "ga" optimises the first objective only (the search's archive still records all of them).
    Constraints: the violation becomes one pymoo inequality constraint, except for "moead",
    which pymoo implements without constraint support: there infeasible candidates get every
    objective set to 1e30 (a death penalty). A +inf objective (failed evaluation) reaches pymoo
    as 1e30 too, because pymoo's normalisations turn inf into NaN. "moead" runs pymoo's ``ParallelMOEAD`` (a population per ask).
    """

    packs_genomes = True

    def __init__(
        self,
        algorithm: str = "nsga2",
        pop_size: int = 100,
        *,
        n_offsprings: int | None = None,
        crossover_prob: float = 0.9,
        mutation_prob: float = 1.0,
        eliminate_duplicates: bool = True,
        ref_dirs: np.ndarray | None = None,
        **options: object,
    ) -> None:
        if algorithm not in PYMOO_ALGORITHMS:
            raise ValueError(
                f"unknown pymoo algorithm {algorithm!r}; choose one of {', '.join(PYMOO_ALGORITHMS)}"
            )
        if (
            isinstance(pop_size, bool)
            or not isinstance(pop_size, (int, np.integer))
            or pop_size < 2
        ):
            raise ValueError(f"pop_size must be an integer >= 2, got {pop_size!r}")
        if n_offsprings is not None and (
            not isinstance(n_offsprings, (int, np.integer)) or n_offsprings < 1
        ):
            raise ValueError(
                f"n_offsprings must be a positive integer or None, got {n_offsprings!r}"
            )
        for name, value in (("crossover_prob", crossover_prob), ("mutation_prob", mutation_prob)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
        self.algorithm = algorithm
        self.pop_size = int(pop_size)
        self.n_offsprings = None if n_offsprings is None else int(n_offsprings)
        self.crossover_prob = float(crossover_prob)
        self.mutation_prob = float(mutation_prob)
        self.eliminate_duplicates = bool(eliminate_duplicates)
        self.ref_dirs = None if ref_dirs is None else np.asarray(ref_dirs, dtype=float)
        _check_options(algorithm, options)
        self.options = dict(options)

    def _setup(self, initial: np.ndarray | None) -> None:
        if self.algorithm in _MULTI_OBJECTIVE_ONLY and self.n_obj < 2:
            raise ValueError(
                f"pymoo {self.algorithm!r} needs at least 2 objectives, got n_obj={self.n_obj}; "
                "use 'ga' (or 'evopress') for a single objective"
            )
        dtype = self.dtype
        operators = self.operators
        kind = self.algorithm
        n_obj = 1 if kind == "ga" else self.n_obj
        # pymoo sees the constraint only once a violation arrives (see _tell)
        self._problem = _AskTellProblem(
            self.n_genes,
            n_obj,
            0,
            np.asarray(operators.lower, dtype=float),
            np.asarray(operators.upper, dtype=float),
        )
        duplicates = (
            _HashDuplicateElimination(dtype)
            if self.eliminate_duplicates
            else NoDuplicateElimination()
        )
        common = dict(
            sampling=_OperatorSampling(operators, initial),
            crossover=_OperatorCrossover(operators, self.crossover_prob),
            mutation=_OperatorMutation(operators, self.mutation_prob),
            repair=_OperatorRepair(operators),
            seed=int(self._rng.integers(2**31)),
        )
        common.update(self.options)
        ref_dirs = self.ref_dirs
        if ref_dirs is None and kind in ("nsga3", "moead"):
            ref_dirs = reference_directions(self.n_obj, self.pop_size)
        if ref_dirs is not None and ref_dirs.shape[1:] != (self.n_obj,):
            raise ValueError(
                f"ref_dirs must have shape (n_dirs, {self.n_obj}), got {ref_dirs.shape}"
            )
        algorithm_class = _algorithm_class(kind)
        if kind == "moead":
            if initial is not None and len(initial) > len(ref_dirs):
                raise ValueError(
                    f"moead runs {len(ref_dirs)} subproblems but got {len(initial)} initial "
                    "genomes; raise pop_size or pass fewer initial genomes"
                )
            common.setdefault("n_neighbors", min(20, len(ref_dirs)))
            if self.n_offsprings is not None:
                common["n_offsprings"] = self.n_offsprings
            algorithm = algorithm_class(ref_dirs, **common)
        else:
            common.update(pop_size=self.pop_size, eliminate_duplicates=duplicates)
            if self.n_offsprings is not None:
                common["n_offsprings"] = self.n_offsprings
            if kind == "nsga3":
                common["ref_dirs"] = ref_dirs
            comparator = _tournament_comparator(kind)
            if comparator is not None:
                from pymoo.operators.selection.tournament import TournamentSelection

                common.setdefault("selection", TournamentSelection(func_comp=comparator))
            algorithm = algorithm_class(**common)
        algorithm.evaluator = _ToldEvaluator()
        # the search loop owns the budget; some constructors (NSGA2) install their own
        # termination, which only setup() can override
        algorithm.setup(self._problem, termination=NoTermination(), verbose=False)
        self._algorithm = algorithm
        self._infills: Population | None = None

    def _ask(self) -> np.ndarray:
        infills = self._algorithm.ask()
        if infills is None or len(infills) == 0:
            infills = self._restart_infills()
        asked = _genomes_of(infills)
        X = _canonical(asked, self.dtype)
        if X is not asked:
            infills.set("X", X)  # pymoo keeps canonical genomes from here on, too
        self._infills = infills
        return X

    def _restart_infills(self) -> Population:
        # pymoo found no unseen child (a converged population) and flagged termination; keep
        # the run alive by mutating the current population instead of stopping the search.
        algorithm = self._algorithm
        algorithm.termination.force_termination = False
        current = _canonical(algorithm.pop.get("X"), self.dtype)
        mutated = self.operators.mutate(current, algorithm.random_state)
        return Population.new("X", _canonical(np.asarray(mutated), self.dtype))

    def _inject(self, genomes: np.ndarray, F: np.ndarray, violation: np.ndarray) -> None:
        if self.algorithm == "moead":
            # pymoo's MOEA/D pairs each child with the subproblem that bred it; a foreign
            # genome has none, so it is left to the search's archive
            return
        self._infills = Population.new("X", genomes)
        self._tell(genomes, F, violation)

    def _tell(self, genomes: np.ndarray, F: np.ndarray, violation: np.ndarray) -> None:
        # pymoo's normalisations turn +inf into NaN (inf - inf, inf * 0), so a failed
        # evaluation becomes a huge finite value instead.
        F = np.where(np.isinf(F), FAILED_OBJECTIVE, F)
        told = {"F": F[:, :1] if self.algorithm == "ga" else F}
        handles_constraints = self.algorithm != "moead"
        if handles_constraints and not self._problem.n_ieq_constr and np.any(violation > 0):
            # Until the first violation every candidate was feasible, and pymoo's survival and
            # tournaments choose among all-feasible candidates as if there were no constraint,
            # so the constraint is declared only now: an unconstrained search skips pymoo's
            # per-individual feasibility split (~20 µs a genome). Earlier candidates have no
            # G, which pymoo counts as feasible, as they were.
            self._problem.n_ieq_constr = 1
        if self._problem.n_ieq_constr:
            told["G"] = np.minimum(violation, FAILED_OBJECTIVE)[:, None]
        elif not handles_constraints:
            # MOEA/D as pymoo implements it has no constraint handling: death penalty
            told["F"] = np.where(violation[:, None] > 0, FAILED_OBJECTIVE, told["F"])
        self._problem.told = told
        try:
            self._algorithm.evaluator.eval(
                self._problem, self._infills, skip_already_evaluated=False
            )
        finally:
            self._problem.told = None
        self._algorithm.tell(infills=self._infills)
        self._infills = None
