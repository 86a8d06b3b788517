"""The conformance suite must pass a correct solver and fail deliberately broken ones."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from masksearch.solvers import GenomeSolver, check_solver, lexicographic_order
from masksearch.testing import (
    SolverConformance,
    ToyBinaryOperators,
    ToyLevelOperators,
    ToyProblem,
)


class ElitistMutation(GenomeSolver):
    """A minimal correct solver: mutate random survivors, keep the best by objective sum."""

    def __init__(self, pop_size: int = 6) -> None:
        self.pop_size = pop_size

    def _setup(self, initial):
        self._initial = initial
        self.population = None
        self.scores = None

    def _ask(self):
        if self.population is None:
            return self._seeded_population(self._initial, self.pop_size)
        parents = self.population[self._rng.integers(len(self.population), size=self.pop_size)]
        return self.operators.mutate(parents, self._rng)

    def _tell(self, genomes, F, violation):
        scores = np.column_stack([F.sum(axis=1), violation])
        if self.population is not None:
            genomes = np.concatenate([self.population, genomes])
            scores = np.concatenate([self.scores, scores])
        keep = lexicographic_order(scores[:, :1], scores[:, 1])[: self.pop_size]
        self.population, self.scores = genomes[keep], scores[keep]


class WrongShape(ElitistMutation):
    def ask(self):
        genomes = super().ask()
        return np.concatenate([genomes, genomes[:, :1]], axis=1)


class FloatGenomes(ElitistMutation):
    def ask(self):
        return super().ask().astype(np.float64)


class OutOfBounds(ElitistMutation):
    def ask(self):
        genomes = super().ask()
        if genomes.dtype != np.bool_:
            genomes[0] = self.operators.upper + 1
        return genomes


class IgnoresSeed(ElitistMutation):
    def _setup(self, initial):
        super()._setup(initial)
        self._rng = np.random.default_rng()  # fresh OS entropy: runs are not repeatable


class FixedSeed(ElitistMutation):
    def _setup(self, initial):
        super()._setup(initial)
        self._rng = np.random.default_rng(0)  # repeatable, but deaf to the caller's seed


class GlobalNumpyRandom(ElitistMutation):
    def _ask(self):
        np.random.random()  # touches the global state
        return super()._ask()


class DropsInitial(ElitistMutation):
    def _setup(self, initial):
        super()._setup(None)


class Unpicklable(ElitistMutation):
    def _setup(self, initial):
        super()._setup(initial)
        self.hook = lambda genomes: genomes


class ForgetsRngWhenPickled(ElitistMutation):
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_rng"] = np.random.default_rng(0)
        return state


class IgnoresTell(ElitistMutation):
    """Pure random sampling: valid output, but no learning."""

    def _ask(self):
        return self.operators.sample(self.pop_size, self._rng)


class NoOpTell(ElitistMutation):
    """tell() takes the genomes and does nothing with them: every ask is a fresh sample."""

    def _tell(self, genomes, F, violation):
        pass


class DriftsSparser(ElitistMutation):
    """Ignores tell() yet lowers the toy objectives: each ask lowers one gene of every genome
    of the previous ask, and fewer kept genes is what the toy problem's first objective wants."""

    def _ask(self):
        if self.population is None:
            return self._seeded_population(self._initial, self.pop_size)
        lowered = self.population.astype(np.int64)
        for row in lowered:
            raised = np.flatnonzero(row > self.operators.lower)
            if len(raised):
                row[self._rng.choice(raised)] -= 1
        return lowered.astype(self.population.dtype)

    def _tell(self, genomes, F, violation):
        self.population = genomes.copy()  # the objectives are never looked at


class MaximisesObjectives(ElitistMutation):
    """Learns from tell(), but in the wrong direction."""

    def _tell(self, genomes, F, violation):
        super()._tell(genomes, -F, violation)


class AcceptsAnything(ElitistMutation):
    def tell(self, genomes, F, violation=None):
        try:
            super().tell(genomes, F, violation)
        except ValueError:
            self._pending = None  # swallows malformed input silently


class NarrowSetup(ElitistMutation):
    def setup(self, n_genes, n_obj, rng):  # cannot take operators= / initial=
        super().setup(n_genes, n_obj, rng)


class DoneIsAMethod(ElitistMutation):
    def done(self):  # a method reads as truthy: a search would stop before its first ask
        return False


class DoneIsNotABool(ElitistMutation):
    done = "never"


class InjectIsNotCallable(ElitistMutation):
    inject = None


class PlainProtocol:
    """ElitistMutation behind the bare protocol: setup/ask/tell, no ``done``, no ``inject``."""

    def __init__(self) -> None:
        self._inner = ElitistMutation()

    def setup(self, n_genes, n_obj, rng, *, operators=None, initial=None):
        self._inner.setup(n_genes, n_obj, rng, operators=operators, initial=initial)

    def ask(self):
        return self._inner.ask()

    def tell(self, genomes, F, violation=None):
        self._inner.tell(genomes, F, violation)


def conformance_for(solver_class: type) -> SolverConformance:
    class Conformance(SolverConformance):
        def make_solver(self):
            return solver_class()

    return Conformance()


def conformance_checks() -> list[str]:
    return sorted(name for name in dir(SolverConformance) if name.startswith("test_"))


@pytest.mark.parametrize("check", conformance_checks())
def test_correct_solver_passes_every_check(check: str) -> None:
    getattr(conformance_for(ElitistMutation), check)()


@pytest.mark.parametrize("check", conformance_checks())
def test_optional_members_are_optional(check: str) -> None:
    # search() treats done and inject as optional, so the suite must pass a solver without them
    assert not hasattr(PlainProtocol(), "done") and not hasattr(PlainProtocol(), "inject")
    getattr(conformance_for(PlainProtocol), check)()


def test_suite_and_search_check_the_same_form() -> None:
    # test_is_a_solver is check_solver, the check search() runs before it starts
    for broken in (NarrowSetup, DoneIsAMethod, InjectIsNotCallable):
        with pytest.raises(TypeError):
            check_solver(broken())
        with pytest.raises(AssertionError):
            conformance_for(broken).test_is_a_solver()


@pytest.mark.parametrize(
    ("broken", "check"),
    [
        (WrongShape, "test_ask_shape_dtype_and_bounds"),
        (WrongShape, "test_default_operators_give_bool_genomes"),
        (FloatGenomes, "test_ask_shape_dtype_and_bounds"),
        (OutOfBounds, "test_ask_shape_dtype_and_bounds"),
        (IgnoresSeed, "test_same_seed_same_asks"),
        (FixedSeed, "test_seed_matters"),
        (GlobalNumpyRandom, "test_global_rng_untouched"),
        (DropsInitial, "test_initial_genomes_in_first_ask"),
        (Unpicklable, "test_pickle_round_trip_mid_run"),
        (ForgetsRngWhenPickled, "test_pickle_round_trip_mid_run"),
        (IgnoresTell, "test_improves_on_toy_problem"),
        (NoOpTell, "test_improves_on_toy_problem"),
        (DriftsSparser, "test_improves_on_toy_problem"),
        (MaximisesObjectives, "test_improves_on_toy_problem"),
        (AcceptsAnything, "test_tell_rejects_malformed_input"),
        (NarrowSetup, "test_is_a_solver"),
        (DoneIsAMethod, "test_is_a_solver"),
        (DoneIsAMethod, "test_done_is_a_bool_when_present"),
        (DoneIsNotABool, "test_done_is_a_bool_when_present"),
        (InjectIsNotCallable, "test_is_a_solver"),
        (InjectIsNotCallable, "test_inject_between_generations"),
    ],
)
def test_broken_solver_fails_its_check(broken: type, check: str) -> None:
    with pytest.raises(AssertionError):
        getattr(conformance_for(broken), check)()


@pytest.mark.parametrize("deaf", [IgnoresTell, NoOpTell, DriftsSparser])
def test_progress_check_names_a_solver_that_ignores_tell(deaf: type) -> None:
    with pytest.raises(AssertionError, match=r"ask\(\) must depend on what tell\(\) reports"):
        conformance_for(deaf).test_improves_on_toy_problem()


def test_progress_check_reports_both_runs_for_a_solver_that_learns_backwards() -> None:
    with pytest.raises(AssertionError, match=r"true objectives and .* unrelated random genomes"):
        conformance_for(MaximisesObjectives).test_improves_on_toy_problem()


def test_make_solver_must_be_overridden() -> None:
    with pytest.raises(NotImplementedError, match="make_solver"):
        SolverConformance().test_ask_shape_dtype_and_bounds()


def test_base_class_is_not_collected_by_pytest() -> None:
    assert not SolverConformance.__name__.startswith("Test")


@pytest.mark.parametrize("operators_class", [ToyBinaryOperators, ToyLevelOperators])
def test_toy_operators_keep_dtype_bounds_and_change_genomes(operators_class: type) -> None:
    operators = operators_class(16)
    rng = np.random.default_rng(0)
    genomes = operators.sample(50, rng)
    mutated = operators.mutate(genomes, rng)
    children = operators.crossover(genomes, mutated, rng)
    for population in (genomes, mutated, children):
        assert population.dtype == operators.dtype and population.shape == (50, 16)
        assert (population >= operators.lower).all() and (population <= operators.upper).all()
    # every mutation changes exactly one or two genes (swap) and never leaves a copy
    changed = (mutated != genomes).sum(axis=1)
    assert changed.min() >= 1 and changed.max() <= 2
    # uniform crossover takes every gene from one of the two parents
    assert ((children == genomes) | (children == mutated)).all()
    assert pickle.loads(pickle.dumps(operators)).n_genes == 16


def test_toy_binary_sampling_spreads_densities() -> None:
    # densities are drawn from U(0.25, 0.75); 2000 genes keep the binomial noise near 0.01
    densities = ToyBinaryOperators(2000).sample(400, np.random.default_rng(0)).mean(axis=1)
    assert 0.21 < densities.min() < 0.29 and 0.71 < densities.max() < 0.79


def test_toy_problem_objectives_match_direct_counts() -> None:
    operators = ToyBinaryOperators(10)
    problem = ToyProblem(operators, seed=3)
    genomes = operators.sample(5, np.random.default_rng(1))
    F = problem.evaluate(genomes)
    for genome, (size, distance) in zip(genomes, F, strict=True):
        assert size == sum(bool(gene) for gene in genome)
        assert distance == sum(a != b for a, b in zip(genome, problem.target, strict=True))
    # the target itself is on the Pareto front: zero distance
    assert problem.evaluate(problem.target)[0, 1] == 0
