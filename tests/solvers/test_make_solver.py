from __future__ import annotations

import numpy as np
import pytest

from masksearch.solvers import (
    SOLVERS,
    DeapSolver,
    EvoPressSolver,
    PymooSolver,
    RandomSearch,
    Solver,
    make_solver,
)

EXPECTED_TYPES = {
    "nsga2": PymooSolver,
    "ga": PymooSolver,
    "nsga3": PymooSolver,
    "smsemoa": PymooSolver,
    "moead": PymooSolver,
    "deap-nsga2": DeapSolver,
    "deap-ga": DeapSolver,
    "random": RandomSearch,
    "evopress": EvoPressSolver,
}


def test_every_name_builds_its_solver() -> None:
    assert set(SOLVERS) == set(EXPECTED_TYPES)
    for name in SOLVERS:
        solver = make_solver(name)
        assert isinstance(solver, Solver) and type(solver) is EXPECTED_TYPES[name]
    assert make_solver("smsemoa").algorithm == "smsemoa"
    assert make_solver("deap-ga").kind == "ga"


def test_options_reach_the_solver() -> None:
    solver = make_solver("random", pop_size=3)
    solver.setup(5, 2, np.random.default_rng(0))
    assert solver.ask().shape == (3, 5)
    assert make_solver("deap-nsga2", mu=7, lambda_=3).lambda_ == 3
    assert make_solver("evopress", lambda_=2).lambda_ == 2


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown solver 'cmaes'") as error:
        make_solver("cmaes")
    assert all(name in str(error.value) for name in SOLVERS)
