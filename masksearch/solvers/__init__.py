"""Population-level solvers behind one ``setup / ask / tell`` protocol.

``make_solver(name, **options)`` builds one by name. A user's own solver is any object that
meets the ``Solver`` protocol (its docstring is the contract: required ``setup / ask / tell``,
optional ``done`` and ``inject``); subclassing ``GenomeSolver`` leaves only ``_setup``, ``_ask``
and ``_tell`` to write. ``masksearch.testing.SolverConformance`` checks one.
"""

from __future__ import annotations

from masksearch.solvers.base import (
    BinaryOperators,
    GenomeOperators,
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
from masksearch.solvers.deap_adapter import DeapSolver
from masksearch.solvers.pymoo_adapter import PymooSolver
from masksearch.solvers.simple import EvoPressSolver, RandomSearch

__all__ = [
    "SOLVERS",
    "BinaryOperators",
    "DeapSolver",
    "EvoPressSolver",
    "GenomeOperators",
    "GenomeSolver",
    "PymooSolver",
    "RandomSearch",
    "Solver",
    "as_genomes",
    "check_objectives",
    "check_solver",
    "lexicographic_order",
    "make_solver",
    "non_dominated",
    "solver_done",
    "solver_inject",
]

SOLVERS = (
    "nsga2",
    "ga",
    "nsga3",
    "smsemoa",
    "moead",
    "deap-nsga2",
    "deap-ga",
    "random",
    "evopress",
)


def make_solver(name: str, **options: object) -> Solver:
    """Build the solver called ``name`` (one of ``SOLVERS``) with its constructor ``options``.

    pymoo names ("nsga2", "ga", "nsga3", "smsemoa", "moead") give a ``PymooSolver``,
    "deap-nsga2"/"deap-ga" a ``DeapSolver``, "random" a ``RandomSearch`` and "evopress" an
    ``EvoPressSolver``. ``pop_size`` is understood by every solver: DEAP's ``mu`` and
    EvoPress's ``lambda_`` (children per generation) take it when they are not given.
    """
    if "pop_size" in options and name.startswith("deap-"):
        options.setdefault("mu", options.pop("pop_size"))
    elif "pop_size" in options and name == "evopress":
        options.setdefault("lambda_", options.pop("pop_size"))
    if name in ("nsga2", "ga", "nsga3", "smsemoa", "moead"):
        return PymooSolver(name, **options)
    if name in ("deap-nsga2", "deap-ga"):
        return DeapSolver(name.removeprefix("deap-"), **options)
    if name == "random":
        return RandomSearch(**options)
    if name == "evopress":
        return EvoPressSolver(**options)
    raise ValueError(f"unknown solver {name!r}; choose one of {', '.join(SOLVERS)}")
