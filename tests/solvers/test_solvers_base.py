from __future__ import annotations

import pickle

import numpy as np
import pytest

import masksearch.front
from masksearch.solvers import (
    BinaryOperators,
    GenomeSolver,
    Solver,
    as_genomes,
    check_objectives,
    check_solver,
    lexicographic_order,
    non_dominated,
    solver_done,
    solver_inject,
)
from masksearch.solvers.base import dominated_by
from masksearch.testing import ToyLevelOperators


class Sampler(GenomeSolver):
    """Smallest GenomeSolver: fresh samples every ask, remembers what it was told."""

    def _setup(self, initial):
        self.initial = initial
        self.told = []

    def _ask(self):
        return (
            self._seeded_population(self.initial, 4)
            if not self.told
            else self.operators.sample(4, self._rng)
        )

    def _tell(self, genomes, F, violation):
        self.told.append((genomes, F, violation))


# ---- as_genomes / check_objectives ---------------------------------------------------------


def test_as_genomes_accepts_one_genome_and_exact_floats() -> None:
    single = as_genomes([1.0, 0.0, 1.0], 3, np.bool_)
    assert single.dtype == np.bool_ and single.tolist() == [[True, False, True]]
    levels = as_genomes(np.array([[2.0, 0.0]]), 2, np.int64, lower=np.zeros(2), upper=np.full(2, 3))
    assert levels.dtype == np.int64 and levels.tolist() == [[2, 0]]


def test_as_genomes_returns_a_copy() -> None:
    source = np.zeros((2, 3), dtype=bool)
    as_genomes(source, 3, np.bool_)[0, 0] = True
    assert not source.any()


@pytest.mark.parametrize(
    ("genomes", "dtype", "message"),
    [
        (np.zeros((2, 4)), np.bool_, r"shape \(population, 3\)"),
        (np.full((2, 3), 0.5), np.bool_, "not exact bool"),
        (np.full((2, 3), 2), np.bool_, "not exact bool"),
        (np.full((2, 3), 1.5), np.int64, "not exact int64"),
        (np.array([["a", "b", "c"]]), np.int64, "must be numeric"),
        (np.full((1, 3), 4), np.int64, "outside the per-gene bounds"),
        (np.full((1, 3), -1), np.int64, "outside the per-gene bounds"),
    ],
)
def test_as_genomes_rejects_bad_input(genomes, dtype, message) -> None:
    with pytest.raises(ValueError, match=message):
        as_genomes(genomes, 3, dtype, lower=np.zeros(3), upper=np.full(3, 3))


def test_check_objectives_accepts_inf_and_defaults_violation_to_zero() -> None:
    F, violation = check_objectives([[1.0, np.inf], [0.0, 2.0]], None, 2, 2)
    assert F.dtype == np.float64 and np.isinf(F[0, 1])
    assert violation.tolist() == [0.0, 0.0]
    F1, _ = check_objectives([3, 4], [0, 1.5], 2, 1)
    assert F1.shape == (2, 1)


@pytest.mark.parametrize(
    ("F", "violation", "message"),
    [
        (np.zeros((2, 3)), None, r"shape \(population, n_obj\)"),
        (np.zeros((3, 2)), None, r"shape \(population, n_obj\)"),
        (np.array([[0.0, np.nan], [0.0, 0.0]]), None, "NaN in rows \\[0\\]"),
        (np.array([[0.0, -np.inf], [0.0, 0.0]]), None, "-inf"),
        (np.zeros((2, 2)), np.zeros(3), r"violation must have shape \(2,\)"),
        (np.zeros((2, 2)), np.array([0.0, -1.0]), ">= 0"),
        (np.zeros((2, 2)), np.array([0.0, np.nan]), ">= 0"),
    ],
)
def test_check_objectives_rejects_bad_input(F, violation, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_objectives(F, violation, 2, 2)


# ---- ranking helpers, against plain-Python references -------------------------------------


def test_lexicographic_order_matches_sorting_tuples() -> None:
    rng = np.random.default_rng(0)
    F = rng.integers(0, 3, size=(40, 2)).astype(float)
    violation = np.where(rng.random(40) < 0.3, rng.integers(1, 3, size=40), 0).astype(float)
    order = lexicographic_order(F, violation)
    expected = sorted(range(40), key=lambda i: (violation[i], F[i, 0], F[i, 1], i))
    assert order.tolist() == expected


def test_non_dominated_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    F = rng.integers(0, 5, size=(30, 3)).astype(float)
    F[0] = np.inf
    violation = np.zeros(30)

    def dominates(a, b):
        return all(x <= y for x, y in zip(a, b, strict=True)) and any(
            x < y for x, y in zip(a, b, strict=True)
        )

    expected = [not any(dominates(F[j], F[i]) for j in range(30)) for i in range(30)]
    assert non_dominated(F, violation).tolist() == expected


def test_non_dominated_puts_feasible_rows_first() -> None:
    F = np.array([[0.0, 0.0], [5.0, 5.0], [6.0, 1.0]])
    assert non_dominated(F, np.array([1.0, 0.0, 0.0])).tolist() == [False, True, True]
    # without any feasible row, the least violating rows form the front
    assert non_dominated(F, np.array([2.0, 1.0, 1.0])).tolist() == [False, True, True]


def _brute_non_dominated(F: np.ndarray) -> list[bool]:
    def dominates(a, b):
        return bool(np.all(a <= b) and np.any(a < b))

    return [not any(dominates(F[j], F[i]) for j in range(len(F))) for i in range(len(F))]


def test_non_dominated_without_violation_treats_every_row_as_feasible() -> None:
    rng = np.random.default_rng(2)
    F = rng.integers(0, 4, size=(25, 2)).astype(float)
    F[3] = F[4]  # identical rows are both kept (neither dominates the other)
    expected = _brute_non_dominated(F)
    assert non_dominated(F).tolist() == expected
    assert non_dominated(F, np.zeros(len(F))).tolist() == expected
    assert non_dominated(F.tolist()).tolist() == expected  # any array-like, ints too
    assert non_dominated(F.astype(int)).tolist() == expected


def test_non_dominated_of_nothing_is_empty() -> None:
    assert non_dominated(np.empty((0, 2))).tolist() == []
    assert non_dominated(np.empty((0, 2)), np.empty(0)).tolist() == []


@pytest.mark.parametrize("n_obj", [2, 3])
def test_non_dominated_matches_the_definition_with_nan_inf_and_strided_rows(n_obj) -> None:
    rng = np.random.default_rng(3 + n_obj)
    F = rng.integers(0, 6, size=(80, n_obj)).astype(float)
    F[5, 0], F[9, -1], F[11] = np.nan, np.inf, -np.inf  # NaN compares false either way
    assert non_dominated(F).tolist() == _brute_non_dominated(F)
    strided = np.asfortranarray(F)[::2]  # any layout
    assert non_dominated(strided).tolist() == _brute_non_dominated(F[::2])


def test_dominated_by_matches_the_definition() -> None:
    rng = np.random.default_rng(11)
    F = rng.integers(0, 5, size=(40, 2)).astype(float)
    members = rng.integers(0, 5, size=(7, 2)).astype(float)
    F[3, 1], members[2, 0] = np.nan, np.nan
    expected = [any(bool(np.all(m <= f) and np.any(m < f)) for m in members) for f in F]
    assert dominated_by(F, members).tolist() == expected
    assert dominated_by(F, members[:0]).tolist() == [False] * len(F)  # an empty archive
    with pytest.raises(ValueError, match="shapes"):
        dominated_by(F, np.zeros((2, 3)))


def test_non_dominated_checks_shapes() -> None:
    with pytest.raises(ValueError, match="F must have shape"):
        non_dominated(np.zeros(3))
    with pytest.raises(ValueError, match="violation must have shape"):
        non_dominated(np.zeros((3, 2)), np.zeros(2))


def test_one_non_dominated_for_the_archive_and_the_solvers() -> None:
    assert masksearch.front.non_dominated is non_dominated


# ---- the Solver protocol ----------------------------------------------------------------------


class _Plain:
    """The bare protocol: required methods only."""

    def setup(self, n_genes, n_obj, rng, *, operators=None, initial=None):
        pass

    def ask(self):
        return np.zeros((1, 3), dtype=bool)

    def tell(self, genomes, F, violation=None):
        pass


class _BrokenDoneProperty(_Plain):
    @property
    def done(self):
        return self.missing_state  # AttributeError: a bug, not an absent ``done``


def test_solver_protocol_is_structural() -> None:
    assert isinstance(_Plain(), Solver)
    assert isinstance(Sampler(), Solver)
    assert not isinstance(object(), Solver)
    assert check_solver(_Plain()) is not None


def test_optional_members_read_as_the_search_reads_them() -> None:
    plain, sampler = _Plain(), Sampler()
    assert solver_done(plain) is False and solver_inject(plain) is None
    sampler.setup(4, 2, np.random.default_rng(0))
    assert solver_done(sampler) is False
    assert solver_inject(sampler) == sampler.inject
    with pytest.raises(AttributeError, match="missing_state"):
        solver_done(_BrokenDoneProperty())


def test_check_solver_names_what_is_wrong() -> None:
    class NoTell:
        def setup(self, n_genes, n_obj, rng, *, operators=None, initial=None):
            pass

        def ask(self):
            pass

    class TellTakesTwo(_Plain):
        def tell(self, genomes, F):  # search passes violation too
            pass

    with pytest.raises(TypeError, match="got the class _Plain; pass an instance"):
        check_solver(_Plain)
    with pytest.raises(TypeError, match=r"NoTell is not a solver: it has no tell\(\) method"):
        check_solver(NoTell())
    with pytest.raises(TypeError, match=r"TellTakesTwo\.tell\(genomes, F\) cannot be called"):
        check_solver(TellTakesTwo())


def test_genome_solver_still_needs_its_three_methods() -> None:
    class Incomplete(GenomeSolver):
        def _setup(self, initial):
            pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


# ---- BinaryOperators -------------------------------------------------------------------------


def test_binary_operators_sample_mutate_crossover() -> None:
    operators = BinaryOperators(100)
    rng = np.random.default_rng(0)
    genomes = operators.sample(200, rng)
    assert genomes.dtype == np.bool_ and genomes.shape == (200, 100)
    assert 0.45 < genomes.mean() < 0.55
    mutated = operators.mutate(genomes, rng)
    flips = (mutated != genomes).sum(axis=1)
    # rate 1/n flips about one bit per genome, and never none
    assert flips.min() >= 1 and 1.0 < flips.mean() < 2.0
    children = operators.crossover(genomes, mutated, rng)
    assert ((children == genomes) | (children == mutated)).all()
    assert pickle.loads(pickle.dumps(operators)).n_genes == 100


def test_binary_operators_reject_bad_sizes() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        BinaryOperators(0)
    with pytest.raises(ValueError, match="equal shape"):
        BinaryOperators(3).crossover(np.zeros((2, 3)), np.zeros((1, 3)), np.random.default_rng(0))


# ---- GenomeSolver bookkeeping ------------------------------------------------------------------


def started(**options) -> Sampler:
    solver = Sampler()
    solver.setup(5, 2, np.random.default_rng(0), **options)
    return solver


def test_ask_is_idempotent_until_tell() -> None:
    solver = started()
    first = solver.ask()
    first[0] = ~first[0]  # callers mutating the returned array do not corrupt the solver
    again = solver.ask()
    assert np.array_equal(again, solver.ask()) and not np.array_equal(first, again)
    solver.tell(again, np.zeros((4, 2)))
    assert len(solver.told) == 1
    assert not np.array_equal(solver.ask(), again)


def test_tell_requires_the_asked_genomes() -> None:
    solver = started()
    with pytest.raises(RuntimeError, match="call ask"):
        solver.tell(np.zeros((4, 5), bool), np.zeros((4, 2)))
    genomes = solver.ask()
    with pytest.raises(ValueError, match="differ from the last ask"):
        solver.tell(~genomes, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="shape"):
        solver.tell(genomes[:3], np.zeros((3, 2)))
    solver.tell(genomes, np.zeros((4, 2)), np.ones(4))
    assert solver.told[0][2].tolist() == [1.0] * 4


def test_setup_checks_its_arguments() -> None:
    with pytest.raises(RuntimeError, match="setup"):
        Sampler().ask()
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        Sampler().setup(5, 2, 0)
    with pytest.raises(ValueError, match="n_genes"):
        Sampler().setup(0, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_obj"):
        Sampler().setup(5, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="operators describe 24 genes"):
        Sampler().setup(5, 2, np.random.default_rng(0), operators=ToyLevelOperators(24))
    with pytest.raises(ValueError, match="initial"):
        started(initial=np.zeros((2, 6), bool))


def test_initial_genomes_are_canonicalised_and_bounds_checked() -> None:
    solver = started(initial=np.array([[1, 0, 1, 0, 1]]))
    first = solver.ask()
    assert first.dtype == np.bool_ and first[0].tolist() == [True, False, True, False, True]
    operators = ToyLevelOperators(4)
    with pytest.raises(ValueError, match="bounds"):
        Sampler().setup(
            4, 2, np.random.default_rng(0), operators=operators, initial=np.full((1, 4), 9)
        )


def test_single_gene_genomes_are_legal() -> None:
    solver = Sampler()
    solver.setup(1, 1, np.random.default_rng(0))
    genomes = solver.ask()
    assert genomes.shape == (4, 1) and genomes.dtype == np.bool_
    solver.tell(genomes, np.arange(4.0))  # 1-D F is fine for one objective
    assert solver.told[0][1].shape == (4, 1)


def test_inject_checks_its_input_and_timing() -> None:
    from masksearch.solvers import make_solver
    from masksearch.testing import ToyBinaryOperators, ToyProblem

    operators = ToyBinaryOperators(12)
    solver = make_solver("deap-nsga2", mu=6)
    solver.setup(12, 2, np.random.default_rng(0), operators=operators)
    problem = ToyProblem(operators)
    genomes = solver.ask()
    foreign = operators.sample(2, np.random.default_rng(1))
    with pytest.raises(RuntimeError, match="pending"):
        solver.inject(foreign, problem.evaluate(foreign))
    solver.tell(genomes, problem.evaluate(genomes))
    with pytest.raises(ValueError):
        solver.inject(foreign[:, :5], problem.evaluate(foreign))
    # a genome that dominates everything joins the population (elitist survival keeps it)
    best = np.zeros((1, 12), dtype=bool)
    solver.inject(best, np.array([[-1.0, -1.0]]))
    assert any(np.array_equal(individual.genome, best[0]) for individual in solver.population)
