from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from masksearch.solvers import PymooSolver, make_solver
from masksearch.solvers.pymoo_adapter import PYMOO_ALGORITHMS, reference_directions
from masksearch.testing import ToyBinaryOperators, ToyLevelOperators, ToyProblem


def run(solver, operators, generations, seed=0, **setup_options):
    solver.setup(
        operators.n_genes, 2, np.random.default_rng(seed), operators=operators, **setup_options
    )
    problem = ToyProblem(operators)
    asked = []
    for _ in range(generations):
        genomes = solver.ask()
        asked.append(genomes)
        solver.tell(genomes, problem.evaluate(genomes))
    return asked


@pytest.mark.parametrize("algorithm", PYMOO_ALGORITHMS)
@pytest.mark.parametrize("operators_class", [ToyBinaryOperators, ToyLevelOperators])
def test_genomes_keep_their_dtype_across_generations(algorithm, operators_class) -> None:
    # pymoo#496: pymoo turns bool variables into floats after a generation
    operators = operators_class(20)
    solver = PymooSolver(algorithm, pop_size=8)
    asked = run(solver, operators, generations=10)
    for genomes in asked:
        assert genomes.dtype == operators.dtype
        assert (genomes >= operators.lower).all() and (genomes <= operators.upper).all()
    # pymoo's own population stays canonical too, not only what ask() hands out
    assert solver._algorithm.pop.get("X").dtype == operators.dtype


def test_without_operators_genomes_are_bool() -> None:
    solver = PymooSolver("nsga2", pop_size=6)
    solver.setup(12, 2, np.random.default_rng(0))
    for _ in range(4):
        genomes = solver.ask()
        assert genomes.dtype == np.bool_ and genomes.shape[1] == 12
        solver.tell(genomes, np.stack([genomes.sum(1), (~genomes).sum(1)], axis=1))


@pytest.mark.parametrize("algorithm", ["nsga2", "ga", "nsga3", "smsemoa"])
def test_asks_contain_no_duplicate_genomes(algorithm) -> None:
    asked = run(PymooSolver(algorithm, pop_size=10), ToyBinaryOperators(16), generations=6)
    for genomes in asked:
        assert len(np.unique(genomes, axis=0)) == len(genomes)


def test_more_initial_genomes_than_pop_size_all_appear() -> None:
    operators = ToyBinaryOperators(16)
    initial = operators.sample(10, np.random.default_rng(5))
    first = run(PymooSolver("nsga2", pop_size=4), operators, generations=1, initial=initial)[0]
    assert all((first == genome).all(axis=1).any() for genome in initial)


def test_moead_rejects_more_initial_genomes_than_subproblems() -> None:
    operators = ToyBinaryOperators(16)
    solver = PymooSolver("moead", pop_size=4)
    with pytest.raises(ValueError, match="raise pop_size"):
        solver.setup(
            16,
            2,
            np.random.default_rng(0),
            operators=operators,
            initial=operators.sample(5, np.random.default_rng(1)),
        )


def test_violation_becomes_a_pymoo_constraint() -> None:
    operators = ToyBinaryOperators(16)
    solver = PymooSolver("nsga2", pop_size=6)
    solver.setup(16, 2, np.random.default_rng(0), operators=operators)
    parents = solver.ask()
    solver.tell(parents, np.ones((len(parents), 2)))
    children = solver.ask()
    # children dominate every parent but are infeasible: survival must keep the parents
    solver.tell(children, np.zeros((len(children), 2)), np.ones(len(children)))
    survivors = solver._algorithm.pop.get("X")
    assert sorted(map(bytes, survivors)) == sorted(map(bytes, parents))
    assert (solver._algorithm.pop.get("CV") == 0).all()


def test_ga_optimises_the_first_objective() -> None:
    operators = ToyBinaryOperators(20)
    solver = PymooSolver("ga", pop_size=8)
    asked = run(solver, operators, generations=12)
    assert solver._algorithm.pop.get("F").shape == (8, 1)
    problem = ToyProblem(operators)
    assert problem.evaluate(asked[-1])[:, 0].mean() < problem.evaluate(asked[0])[:, 0].mean()


@pytest.mark.parametrize("algorithm", ["nsga3", "moead", "smsemoa"])
def test_multi_objective_only_algorithms_reject_one_objective(algorithm) -> None:
    with pytest.raises(ValueError, match="at least 2 objectives"):
        PymooSolver(algorithm, pop_size=6).setup(8, 1, np.random.default_rng(0))


@pytest.mark.parametrize("algorithm", PYMOO_ALGORITHMS)
def test_failed_and_infeasible_candidates_raise_no_numpy_warnings(algorithm) -> None:
    operators = ToyBinaryOperators(16)
    solver = PymooSolver(algorithm, pop_size=6)
    solver.setup(16, 2, np.random.default_rng(0), operators=operators)
    problem = ToyProblem(operators)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(5):
            genomes = solver.ask()
            F = problem.evaluate(genomes)
            F[::2, 0] = np.inf
            solver.tell(genomes, F, np.where(np.arange(len(F)) % 3 == 0, 1.0, 0.0))


def test_converged_population_keeps_asking(monkeypatch) -> None:
    # two genes give four genomes in all: pymoo soon finds no unseen child and the
    # adapter falls back to mutating the population instead of ending the run
    restarts = []
    original = PymooSolver._restart_infills
    monkeypatch.setattr(
        PymooSolver, "_restart_infills", lambda self: restarts.append(1) or original(self)
    )
    solver = PymooSolver("nsga2", pop_size=4)
    solver.setup(2, 2, np.random.default_rng(0))
    for _ in range(6):
        genomes = solver.ask()
        assert genomes.dtype == np.bool_ and genomes.shape[1] == 2 and len(genomes) >= 1
        solver.tell(genomes, np.stack([genomes.sum(1), (~genomes).sum(1)], axis=1))
    assert restarts
    assert not solver._algorithm.termination.has_terminated()


@pytest.mark.parametrize("algorithm", PYMOO_ALGORITHMS)
def test_pymoo_never_terminates_on_its_own(algorithm) -> None:
    # the search loop owns the budget; pymoo's default convergence tests must stay off
    solver = PymooSolver(algorithm, pop_size=6)
    run(solver, ToyBinaryOperators(8), generations=15)
    assert type(solver._algorithm.termination).__name__ == "NoTermination"
    assert not solver._algorithm.termination.has_terminated()


def test_pymoo_never_evaluates_on_its_own() -> None:
    solver = PymooSolver("nsga2", pop_size=4)
    solver.setup(6, 2, np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="tell"):
        solver._problem.evaluate(np.zeros((2, 6)))


def test_pickle_keeps_pymoo_random_state() -> None:
    operators = ToyLevelOperators(12)
    solver = PymooSolver("smsemoa", pop_size=6)
    run(solver, operators, generations=3)
    clone = pickle.loads(pickle.dumps(solver))
    assert np.array_equal(solver.ask(), clone.ask())


def test_reference_directions_fit_the_population() -> None:
    for n_obj, max_points in [(2, 8), (3, 12), (3, 100), (4, 30)]:
        directions = reference_directions(n_obj, max_points)
        assert directions.shape[1] == n_obj and 2 <= len(directions) <= max_points
        assert np.allclose(directions.sum(axis=1), 1.0)
    assert len(reference_directions(2, 8)) == 8


def test_options_are_checked_early() -> None:
    with pytest.raises(ValueError, match="unknown pymoo algorithm 'nsga4'.*nsga2, ga"):
        PymooSolver("nsga4")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['pop_sise'\]"):
        PymooSolver("smsemoa", pop_sise=10)
    with pytest.raises(ValueError, match="set by PymooSolver"):
        PymooSolver("nsga2", mutation=None)
    with pytest.raises(ValueError, match="pop_size"):
        PymooSolver("nsga2", pop_size=1)
    with pytest.raises(ValueError, match="crossover_prob"):
        PymooSolver("nsga2", crossover_prob=1.5)
    # a real option of the algorithm is forwarded
    solver = PymooSolver("moead", pop_size=6, n_neighbors=3)
    solver.setup(8, 2, np.random.default_rng(0))
    assert solver._algorithm.n_neighbors == 3


def test_seed_is_drawn_from_the_given_rng() -> None:
    first = run(PymooSolver("nsga2", pop_size=6), ToyBinaryOperators(16), generations=2, seed=3)
    again = run(PymooSolver("nsga2", pop_size=6), ToyBinaryOperators(16), generations=2, seed=3)
    other = run(PymooSolver("nsga2", pop_size=6), ToyBinaryOperators(16), generations=2, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("algorithm", ["nsga2", "ga", "smsemoa"])
def test_injected_elite_enters_pymoo_population(algorithm) -> None:
    operators = ToyBinaryOperators(12)
    solver = make_solver(algorithm, pop_size=6)
    solver.setup(12, 2, np.random.default_rng(0), operators=operators)
    problem = ToyProblem(operators)
    genomes = solver.ask()
    solver.tell(genomes, problem.evaluate(genomes))
    best = np.zeros((1, 12), dtype=bool)
    solver.inject(best, np.array([[-1.0, -1.0]]))
    population = np.asarray(solver._algorithm.pop.get("X"))  # noqa: SLF001
    assert any(np.array_equal(row.astype(bool), best[0]) for row in population)
    assert solver.ask().dtype == np.bool_  # and the run goes on with canonical genomes


class _DeclaredConstraint(PymooSolver):
    """The constraint declared from the first generation (as before it was declared lazily)."""

    def _setup(self, initial):
        super()._setup(initial)
        self._problem.n_ieq_constr = 1


@pytest.mark.parametrize("algorithm", ["nsga2", "ga", "nsga3", "smsemoa"])
@pytest.mark.parametrize("probabilities", [(0.9, 1.0), (0.3, 0.6)])
def test_constraint_declared_at_the_first_violation_changes_no_choice(
    algorithm, probabilities
) -> None:
    # pymoo meets the constraint only once a violation arrives; before that every candidate
    # was feasible, so every ask must equal a run that declared it from the start, through a
    # checkpoint (a pickle round trip) before and after the first violation
    crossover_prob, mutation_prob = probabilities
    operators = ToyBinaryOperators(24)
    problem = ToyProblem(operators)
    runs = []
    for solver in (
        PymooSolver(
            algorithm, pop_size=8, crossover_prob=crossover_prob, mutation_prob=mutation_prob
        ),
        _DeclaredConstraint(
            algorithm, pop_size=8, crossover_prob=crossover_prob, mutation_prob=mutation_prob
        ),
    ):
        solver.setup(24, 2, np.random.default_rng(3), operators=operators)
        violation_rng = np.random.default_rng(7)
        asked = []
        for generation in range(8):
            if generation in (2, 5):
                solver = pickle.loads(pickle.dumps(solver))
            genomes = solver.ask()
            asked.append(genomes)
            violation = np.zeros(len(genomes))
            if generation >= 3:  # violations appear mid-run
                violation = np.where(violation_rng.random(len(genomes)) < 0.5, 1.0, 0.0)
            solver.tell(genomes, problem.evaluate(genomes), violation)
        runs.append((asked, solver))
    (lazy, lazy_solver), (declared, _) = runs
    assert lazy_solver._problem.n_ieq_constr == 1  # noqa: SLF001
    for lazy_genomes, declared_genomes in zip(lazy, declared, strict=True):
        np.testing.assert_array_equal(lazy_genomes, declared_genomes)


def test_unconstrained_run_declares_no_pymoo_constraint() -> None:
    operators = ToyBinaryOperators(16)
    solver = PymooSolver("nsga2", pop_size=6)
    run(solver, operators, 3)
    assert solver._problem.n_ieq_constr == 0  # noqa: SLF001


def test_duplicate_keys_follow_a_replaced_genome() -> None:
    from pymoo.core.population import Population

    from masksearch.keys import row_keys
    from masksearch.solvers.pymoo_adapter import _HashDuplicateElimination

    rows = np.random.default_rng(0).integers(0, 256, (4, 9), dtype=np.uint8)
    population = Population.new("X", rows)
    elimination = _HashDuplicateElimination(np.uint8)
    assert elimination._keys(population) == row_keys(rows)  # noqa: SLF001
    population[2].X = rows[0].copy()  # pymoo replaces a genome, it never edits one in place
    assert elimination._keys(population)[2] == row_keys(rows)[0]  # noqa: SLF001
    # and duplicates within and across populations are found
    is_duplicate = elimination._do(population, None, np.zeros(4, dtype=bool))  # noqa: SLF001
    assert is_duplicate.tolist() == [False, False, True, False]


def _toy_population(n: int, n_genes: int, seed: int):
    from pymoo.core.population import Population

    rows = np.random.default_rng(seed).random((n, n_genes)) < 0.5
    return Population.new("X", rows)


@pytest.mark.parametrize("prob", [1.0, 0.5, 0.0])
def test_crossover_makes_pymoos_children_with_pymoos_draws(prob) -> None:
    # the adapter's Crossover.do copies each child once; pymoo's own do is the reference
    from pymoo.core.crossover import Crossover

    from masksearch.solvers.pymoo_adapter import _AskTellProblem, _OperatorCrossover

    operators = ToyBinaryOperators(40)
    crossover = _OperatorCrossover(operators, prob)
    problem = _AskTellProblem(40, 2, 0, np.zeros(40), np.ones(40))
    population = _toy_population(10, 40, seed=1)
    parents = np.random.default_rng(2).integers(0, 10, (7, 2))
    ours_rng, reference_rng = np.random.default_rng(5), np.random.default_rng(5)
    ours = crossover.do(problem, population, parents, random_state=ours_rng)
    reference = Crossover.do(crossover, problem, population, parents, random_state=reference_rng)
    np.testing.assert_array_equal(ours.get("X"), reference.get("X").astype(bool))
    assert ours_rng.random() == reference_rng.random()  # the same draws, no more
    for individual in ours:
        assert individual.X.base is None  # owns its genome: no view keeps a batch alive
        assert individual.X.dtype == np.bool_


@pytest.mark.parametrize("prob", [1.0, 0.5])
def test_mutation_mutates_as_pymoo_does_with_pymoos_draws(prob) -> None:
    from pymoo.core.mutation import Mutation

    from masksearch.solvers.pymoo_adapter import _AskTellProblem, _OperatorMutation

    operators = ToyBinaryOperators(40)
    mutation = _OperatorMutation(operators, prob)
    problem = _AskTellProblem(40, 2, 0, np.zeros(40), np.ones(40))
    ours_rng, reference_rng = np.random.default_rng(9), np.random.default_rng(9)
    ours = mutation.do(problem, _toy_population(12, 40, seed=3), random_state=ours_rng)
    reference = Mutation.do(
        mutation, problem, _toy_population(12, 40, seed=3), random_state=reference_rng
    )
    np.testing.assert_array_equal(ours.get("X"), reference.get("X"))
    assert ours_rng.random() == reference_rng.random()
    assert all(individual.X.base is None for individual in ours)


class _RepairInPlace(ToyBinaryOperators):
    """A plug-in encoding whose repair edits its input and returns it (the protocol allows it)."""

    def repair(self, genomes: np.ndarray) -> np.ndarray:
        genomes[:, 0] = True
        return genomes


def test_a_repair_that_edits_in_place_reaches_pymoos_population() -> None:
    operators = _RepairInPlace(16)
    solver = PymooSolver("nsga2", pop_size=8)
    asked = run(solver, operators, 6)
    assert all(genomes[:, 0].all() for genomes in asked[1:])  # children are repaired


@pytest.mark.parametrize(
    "tournament_type", ["comp_by_dom_and_crowding", "comp_by_rank_and_crowding"]
)
@pytest.mark.parametrize("constrained", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_binary_tournament_picks_pymoos_winners_with_pymoos_draws(
    tournament_type, constrained, seed
) -> None:
    from types import SimpleNamespace

    from pymoo.algorithms.moo.nsga2 import binary_tournament
    from pymoo.core.individual import Individual
    from pymoo.core.population import Population

    from masksearch.solvers.pymoo_adapter import _AskTellProblem, _binary_tournament

    rng = np.random.default_rng(seed)
    n = 20
    individuals = []
    for _ in range(n):
        individual = Individual()
        # few distinct values, so that violations, objectives and crowding tie often
        individual.F = rng.integers(0, 3, 2).astype(float)
        if constrained:
            individual.G = np.array([float(rng.choice([0.0, 0.0, 0.5, 1.0]))])
        individual.set("rank", int(rng.integers(0, 3)))
        individual.set("crowding", float(rng.choice([0.1, 0.2, np.inf])))
        individuals.append(individual)
    population = Population(individuals)
    P = rng.integers(0, n, (40, 2))
    # without constraints the tournament takes every violation as 0 instead of reading CV
    problem = _AskTellProblem(4, 2, int(constrained), np.zeros(4), np.ones(4))
    ours, theirs = (
        SimpleNamespace(
            tournament_type=tournament_type, random_state=np.random.default_rng(9), problem=problem
        )
        for _ in range(2)
    )
    np.testing.assert_array_equal(
        _binary_tournament(population, P, ours), binary_tournament(population, P, theirs)
    )
    assert ours.random_state.random() == theirs.random_state.random()


@pytest.mark.parametrize("n_ieq_constr", [0, 1])
def test_told_evaluator_sets_what_pymoos_evaluator_sets(n_ieq_constr) -> None:
    # the adapter's evaluator skips stacking the genomes; pymoo's own is the reference
    from pymoo.core.evaluator import Evaluator

    from masksearch.solvers.pymoo_adapter import _AskTellProblem, _ToldEvaluator

    problem = _AskTellProblem(40, 2, n_ieq_constr, np.zeros(40), np.ones(40))
    told_rng = np.random.default_rng(4)
    told = {"F": told_rng.random((9, 2))}
    if n_ieq_constr:
        told["G"] = np.where(told_rng.random((9, 1)) < 0.5, 0.0, told_rng.random((9, 1)))
    populations = []
    for evaluator in (_ToldEvaluator(), Evaluator()):
        population = _toy_population(9, 40, seed=6)
        problem.told = told
        evaluator.eval(problem, population, skip_already_evaluated=False)
        problem.told = None
        populations.append((evaluator, population))
    (ours, ours_population), (reference, reference_population) = populations
    assert ours.n_eval == reference.n_eval == 9
    for mine, theirs in zip(ours_population, reference_population, strict=True):
        assert mine.evaluated == theirs.evaluated
        for key in ("F", "G", "H", "CV", "FEAS"):
            np.testing.assert_array_equal(mine.get(key), theirs.get(key))
            assert mine.get(key).dtype == theirs.get(key).dtype
        assert mine.F.base is None  # owns its values: no view keeps the batch alive
    problem.told = {"F": told["F"][:3]}
    with pytest.raises(RuntimeError, match="PymooSolver.tell"):
        _ToldEvaluator().eval(problem, _toy_population(9, 40, seed=6))


@pytest.mark.parametrize("constrained", [False, True])
def test_nsga2_keeps_pymoos_optimum(constrained) -> None:
    from pymoo.algorithms.moo.nsga2 import NSGA2

    solver = (_DeclaredConstraint if constrained else PymooSolver)("nsga2", pop_size=10)
    operators = ToyBinaryOperators(24)
    solver.setup(24, 2, np.random.default_rng(2), operators=operators)
    problem = ToyProblem(operators)
    violation_rng = np.random.default_rng(8)
    for _ in range(6):
        genomes = solver.ask()
        violation = np.zeros(len(genomes))
        if constrained:
            violation = np.where(violation_rng.random(len(genomes)) < 0.7, 1.0, 0.0)
        solver.tell(genomes, problem.evaluate(genomes), violation)
        algorithm = solver._algorithm  # noqa: SLF001
        ours = algorithm.opt.get("X")
        NSGA2._set_optimum(algorithm)  # pymoo's own, on the same population
        np.testing.assert_array_equal(ours, algorithm.opt.get("X"))
        assert len(ours) > 0


@pytest.mark.parametrize("seed", range(8))
def test_rank_and_crowding_survives_as_pymoos_does(seed) -> None:
    from pymoo.core.population import Population
    from pymoo.operators.survival.rank_and_crowding import RankAndCrowding as PymooRankAndCrowding

    from masksearch.solvers._pymoo_nsga2 import RankAndCrowding

    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    # few distinct values: tied objectives, duplicate rows, fronts of one or two members
    F = rng.integers(0, 4 + seed, (n, 2 + seed % 2)).astype(float)
    if seed % 3 == 0:
        F[:, 0] = 1.0  # an objective with a zero range
    if seed >= 6:  # one large front of tied pairs: the sort's stability decides the order
        values = np.repeat(rng.permutation(30), 2).astype(float)
        F, n = np.stack([values, 30.0 - values], axis=1), 60
    problem = _problem_without_constraints(F.shape[1])
    for n_survive in (1, n // 3, n // 2, n - 1, n):
        survivors = []
        for survival in (RankAndCrowding(), PymooRankAndCrowding()):
            population = Population.new("X", np.arange(n)[:, None], "F", F)
            chosen = survival.do(
                problem, population, n_survive=n_survive, random_state=np.random.default_rng(5)
            )
            survivors.append(
                (
                    chosen.get("X").ravel().tolist(),
                    [member.get("rank") for member in population],
                    [member.get("crowding") for member in population],
                )
            )
        assert survivors[0] == survivors[1]


def _problem_without_constraints(n_obj: int):
    from masksearch.solvers.pymoo_adapter import _AskTellProblem

    return _AskTellProblem(1, n_obj, 0, np.zeros(1), np.ones(1))


@pytest.mark.parametrize("seed", range(3))
def test_nsga2_asks_what_it_asks_with_pymoos_own_survival(seed) -> None:
    from pymoo.operators.survival.rank_and_crowding import RankAndCrowding as PymooRankAndCrowding

    operators = ToyBinaryOperators(24)
    ours = run(PymooSolver("nsga2", pop_size=8), operators, 10, seed=seed)
    theirs = run(
        PymooSolver("nsga2", pop_size=8, survival=PymooRankAndCrowding()), operators, 10, seed=seed
    )
    for mine, reference in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(mine, reference)
