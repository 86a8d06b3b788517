from __future__ import annotations

import pytest

from masksearch.solvers import SOLVERS, Solver, make_solver
from masksearch.testing import SolverConformance

# small populations keep every conformance check in milliseconds
SMALL_OPTIONS = {
    "nsga2": {"pop_size": 8},
    "ga": {"pop_size": 8},
    "nsga3": {"pop_size": 8},
    "smsemoa": {"pop_size": 8},
    "moead": {"pop_size": 8},
    "deap-nsga2": {"mu": 8},
    "deap-ga": {"mu": 8},
    "random": {"pop_size": 8},
    "evopress": {"lambda_": 4},
}


def test_every_shipped_solver_has_small_options() -> None:
    assert set(SMALL_OPTIONS) == set(SOLVERS)


class TestShippedSolvers(SolverConformance):
    @pytest.fixture(autouse=True, params=SOLVERS)
    def solver_name(self, request: pytest.FixtureRequest) -> str:
        self.name = request.param
        return request.param

    def make_solver(self) -> Solver:
        return make_solver(self.name, **SMALL_OPTIONS[self.name])
