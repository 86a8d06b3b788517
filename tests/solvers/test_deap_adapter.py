from __future__ import annotations

import copy
import pickle
import random

import deap.creator
import numpy as np
import pytest
from deap import tools

from masksearch.solvers import DeapSolver, lexicographic_order, non_dominated
from masksearch.solvers.deap_adapter import DeapIndividual, MinimisingFitness, nsga2_selection
from masksearch.testing import ToyBinaryOperators, ToyLevelOperators, ToyProblem


def started(kind="nsga2", operators=None, seed=0, **options):
    operators = operators or ToyBinaryOperators(16)
    solver = DeapSolver(kind, **options)
    solver.setup(operators.n_genes, 2, np.random.default_rng(seed), operators=operators)
    return solver, operators


def population_arrays(solver):
    genomes = np.stack([individual.genome for individual in solver.population])
    F = np.array([individual.fitness.values for individual in solver.population])
    violation = np.array([individual.violation for individual in solver.population])
    return genomes, F, violation


def front_ranks(F, violation):
    """Front index of every row by peeling non-dominated sets (the reference computation)."""
    ranks = np.full(len(F), -1)
    remaining = np.arange(len(F))
    front = 0
    while len(remaining):
        first = non_dominated(F[remaining], violation[remaining])
        ranks[remaining[first]] = front
        remaining = remaining[~first]
        front += 1
    return ranks


@pytest.mark.parametrize("kind", ["nsga2", "ga"])
def test_global_random_and_creator_untouched(kind) -> None:
    random.seed(1234)
    state = random.getstate()
    creator_names = set(dir(deap.creator))
    solver, operators = started(kind, mu=6)
    problem = ToyProblem(operators)
    for _ in range(5):
        genomes = solver.ask()
        solver.tell(genomes, problem.evaluate(genomes))
    pickle.loads(pickle.dumps(solver)).ask()
    assert random.getstate() == state
    assert set(dir(deap.creator)) == creator_names


def test_fitness_minimises_and_pickles() -> None:
    better, worse = MinimisingFitness(2, (1.0, 2.0)), MinimisingFitness(2, (2.0, 2.0))
    assert better.dominates(worse) and not worse.dominates(better)
    assert better > worse  # DEAP compares weighted values: smaller objectives are better
    for clone in (pickle.loads(pickle.dumps(better)), copy.deepcopy(better)):
        assert clone.values == (1.0, 2.0) and clone.weights == (-1.0, -1.0)


def test_nsga2_survivors_come_from_the_best_fronts() -> None:
    solver, operators = started("nsga2", mu=6, lambda_=10)
    problem = ToyProblem(operators)
    for _ in range(3):
        genomes = solver.ask()
        F = problem.evaluate(genomes)
        _, parents_F, _ = population_arrays(solver) if solver.population else (None, F[:0], None)
        solver.tell(genomes, F)
    # the last survival chose 6 of (previous population + 10 children): whole fronts first,
    # so the survivors' front ranks are the 6 smallest ranks among the candidates
    candidates_F = np.concatenate([parents_F, F])
    ranks = front_ranks(candidates_F, np.zeros(len(candidates_F)))
    _, survivors_F, _ = population_arrays(solver)
    survivor_ranks = [ranks[(candidates_F == row).all(axis=1)][0] for row in survivors_F]
    assert sorted(survivor_ranks) == sorted(ranks)[:6]


def test_ga_keeps_the_elite_and_prefers_feasible() -> None:
    solver, operators = started("ga", mu=6, lambda_=6, n_elite=1)
    problem = ToyProblem(operators)
    genomes = solver.ask()
    F = problem.evaluate(genomes)
    solver.tell(genomes, F)
    best_parent = genomes[lexicographic_order(F, np.zeros(len(F)))[0]]
    children = solver.ask()
    # children beat everyone but are infeasible: the feasible elite must stay
    solver.tell(children, np.zeros((len(children), 2)) - 1, np.ones(len(children)))
    survivors, _, violation = population_arrays(solver)
    assert (survivors == best_parent).all(axis=1).any()
    assert violation[0] == 0


def test_nsga2_prefers_feasible_individuals() -> None:
    solver, operators = started("nsga2", mu=4, lambda_=4)
    genomes = solver.ask()
    solver.tell(genomes, np.ones((len(genomes), 2)))
    children = solver.ask()
    solver.tell(children, np.zeros((len(children), 2)), np.ones(len(children)))
    _, _, violation = population_arrays(solver)
    assert (violation == 0).all()


def test_children_are_never_plain_copies() -> None:
    # cxpb = mutpb = 0 would make copies; the adapter mutates them instead
    solver, operators = started("nsga2", mu=5, lambda_=12, cxpb=0.0, mutpb=0.0)
    genomes = solver.ask()
    solver.tell(genomes, ToyProblem(operators).evaluate(genomes))
    children = solver.ask()
    assert len(children) == 12
    assert not any((genomes == child).all(axis=1).any() for child in children)


def test_int_genomes_stay_int_and_in_bounds() -> None:
    solver, operators = started("ga", operators=ToyLevelOperators(12), mu=6)
    problem = ToyProblem(operators)
    for _ in range(5):
        genomes = solver.ask()
        assert genomes.dtype == np.int64
        assert (genomes >= operators.lower).all() and (genomes <= operators.upper).all()
        solver.tell(genomes, problem.evaluate(genomes))


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown DEAP kind 'spea2'"):
        DeapSolver("spea2")
    with pytest.raises(ValueError, match="mu must be an integer >= 2"):
        DeapSolver(mu=1)
    with pytest.raises(ValueError, match="lambda_"):
        DeapSolver(lambda_=0)
    with pytest.raises(ValueError, match="cxpb"):
        DeapSolver(cxpb=-0.1)
    with pytest.raises(ValueError, match="tournsize"):
        DeapSolver("ga", tournsize=0)


@pytest.mark.parametrize("seed", range(60))
def test_nsga2_selection_chooses_what_sel_nsga2_chooses_in_its_order(seed) -> None:
    # the order matters too: parents are drawn by position. Ties (integer objectives, equal
    # rows) exercise DEAP's grouping of equal fitnesses and its stable crowding sorts.
    rng = np.random.default_rng(seed)
    n, n_obj = int(rng.integers(1, 40)), int(rng.integers(1, 4))
    k = int(rng.integers(0, n + 2))
    ties = rng.integers(0, 4, size=(n, n_obj)).astype(float)
    F = ties if seed % 2 else rng.random((n, n_obj))
    individuals = [
        DeapIndividual(np.zeros(1), MinimisingFitness(n_obj, tuple(row)), 0.0) for row in F.tolist()
    ]
    position = {id(individual): index for index, individual in enumerate(individuals)}
    expected = [position[id(chosen)] for chosen in tools.selNSGA2(individuals, k)] if k else []
    wvalues = np.array([individual.fitness.wvalues for individual in individuals])
    assert nsga2_selection(wvalues, k) == expected
