from __future__ import annotations

import numpy as np
import pytest

from masksearch.solvers import EvoPressSolver, RandomSearch, non_dominated
from masksearch.testing import ToyBinaryOperators, ToyLevelOperators, ToyProblem


def hamming_to_nearest(genomes, references):
    return np.array([(references != genome).sum(axis=1).min() for genome in genomes])


# ---- RandomSearch ------------------------------------------------------------------------------


def test_random_search_archive_is_the_front_of_everything_told() -> None:
    operators = ToyBinaryOperators(12)
    problem = ToyProblem(operators)
    solver = RandomSearch(pop_size=10, archive_size=1000)
    solver.setup(12, 2, np.random.default_rng(0), operators=operators)
    all_genomes, all_F = [], []
    for _ in range(5):
        genomes = solver.ask()
        F = problem.evaluate(genomes)
        solver.tell(genomes, F)
        all_genomes.append(genomes)
        all_F.append(F)
    genomes, F = np.concatenate(all_genomes), np.concatenate(all_F)
    front = non_dominated(F, np.zeros(len(F)))
    expected = {bytes(row) for row in genomes[front]}
    assert {bytes(row) for row in solver.archive_genomes} == expected
    assert len(solver.archive_genomes) == len(expected)  # no duplicate genomes


def test_random_search_archive_cap_keeps_both_extremes() -> None:
    operators = ToyBinaryOperators(30)
    problem = ToyProblem(operators)
    solver = RandomSearch(pop_size=40, archive_size=3)
    solver.setup(30, 2, np.random.default_rng(1), operators=operators)
    genomes = solver.ask()
    F = problem.evaluate(genomes)
    solver.tell(genomes, F)
    assert len(solver.archive_genomes) <= 3
    assert solver.archive_F[:, 0].min() == F[:, 0].min()
    assert solver.archive_F[:, 1].min() == F[:, 1].min()


def test_random_search_mutation_share_extremes() -> None:
    operators = ToyBinaryOperators(40)
    problem = ToyProblem(operators)
    for share, near in [(1.0, True), (0.0, False)]:
        solver = RandomSearch(pop_size=20, mutation_share=share)
        solver.setup(40, 2, np.random.default_rng(2), operators=operators)
        genomes = solver.ask()
        solver.tell(genomes, problem.evaluate(genomes))
        distances = hamming_to_nearest(solver.ask(), solver.archive_genomes)
        # a toy mutation changes one or two genes; fresh samples of 40 genes are far away
        assert (distances <= 2).all() == near
        assert (distances > 2).all() == (not near)


def test_random_search_int_genomes() -> None:
    operators = ToyLevelOperators(10)
    solver = RandomSearch(pop_size=5)
    solver.setup(10, 2, np.random.default_rng(0), operators=operators)
    for _ in range(3):
        genomes = solver.ask()
        assert genomes.dtype == np.int64 and (genomes <= operators.upper).all()
        solver.tell(genomes, ToyProblem(operators).evaluate(genomes))


def test_random_search_checks_arguments() -> None:
    with pytest.raises(ValueError, match="mutation_share"):
        RandomSearch(mutation_share=2)
    with pytest.raises(ValueError, match="pop_size"):
        RandomSearch(pop_size=0)


# ---- EvoPress ------------------------------------------------------------------------------------


def started_evopress(lambda_=6, operators=None, **setup_options):
    operators = operators or ToyBinaryOperators(20)
    solver = EvoPressSolver(lambda_=lambda_)
    solver.setup(
        operators.n_genes, 2, np.random.default_rng(0), operators=operators, **setup_options
    )
    return solver, operators


def test_first_parent_is_the_lexicographic_best() -> None:
    solver, operators = started_evopress()
    genomes = solver.ask()
    F = np.array([[3.0, 1.0], [1.0, 5.0], [1.0, 2.0], [0.0, 9.0], [2.0, 0.0], [1.0, 2.0]])
    violation = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    solver.tell(genomes, F, violation)
    # reference: feasible first, then objectives in order, earliest row on exact ties
    best = min(range(6), key=lambda i: (violation[i], F[i, 0], F[i, 1], i))
    assert best == 2 and np.array_equal(solver.parent, genomes[best])


def test_children_are_mutants_of_the_parent() -> None:
    solver, operators = started_evopress(lambda_=7)
    genomes = solver.ask()
    solver.tell(genomes, ToyProblem(operators).evaluate(genomes))
    children = solver.ask()
    assert len(children) == 7
    distances = (children != solver.parent).sum(axis=1)
    assert ((distances >= 1) & (distances <= 2)).all()


def test_parent_replacement_rules() -> None:
    solver, operators = started_evopress(lambda_=3)
    genomes = solver.ask()
    solver.tell(genomes, np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    parent = solver.parent.copy()

    children = solver.ask()  # all worse: the parent stays
    solver.tell(children, np.array([[1.0, 2.0], [5.0, 0.0], [2.0, 0.0]]))
    assert np.array_equal(solver.parent, parent)

    children = solver.ask()  # better but infeasible: the parent stays
    solver.tell(children, np.zeros((3, 2)), np.array([0.1, 0.1, 0.1]))
    assert np.array_equal(solver.parent, parent)

    children = solver.ask()  # an exact tie: the child wins (drift across plateaus)
    solver.tell(children, np.array([[1.0, 1.0], [4.0, 4.0], [4.0, 4.0]]))
    assert np.array_equal(solver.parent, children[0])

    children = solver.ask()  # strictly better on the first objective
    solver.tell(children, np.array([[2.0, 0.0], [0.5, 9.0], [4.0, 4.0]]))
    assert np.array_equal(solver.parent, children[1]) and solver.parent_F.tolist() == [0.5, 9.0]


def test_initial_genomes_top_up_to_lambda() -> None:
    operators = ToyLevelOperators(8)
    initial = operators.sample(2, np.random.default_rng(3))
    solver, _ = started_evopress(lambda_=5, operators=operators, initial=initial)
    first = solver.ask()
    assert len(first) == 5 and np.array_equal(first[:2], initial)
    many = operators.sample(9, np.random.default_rng(4))
    solver, _ = started_evopress(lambda_=5, operators=operators, initial=many)
    assert np.array_equal(solver.ask(), many)


def test_evopress_checks_lambda() -> None:
    with pytest.raises(ValueError, match="lambda_"):
        EvoPressSolver(lambda_=0)
