"""The README's custom solver is real: its code block runs, passes the shipped conformance
suite the way a user's tests would run it, and searches the digits problem."""

from __future__ import annotations

import functools
import re
import sys
import types
from pathlib import Path

import pytest

from masksearch.search import search
from masksearch.solvers import GenomeSolver, Solver, check_solver
from masksearch.testing import SolverConformance

README = Path(__file__).resolve().parent.parent / "README.md"
# the HTML comment right above the block; invisible on GitHub, stable under edits around it
MARKER = "<!-- custom-solver: tests/test_readme.py executes the next code block -->"
MODULE = "readme_custom_solver"


def readme_solver_source() -> str:
    """The fenced Python block that directly follows ``MARKER`` in the README."""
    text = README.read_text(encoding="utf-8")
    match = re.search(re.escape(MARKER) + r"\s*```python\n(.*?)^```", text, re.DOTALL | re.M)
    if match is None:
        raise AssertionError(
            f"README.md has no ```python block right after {MARKER!r}; the custom-solver "
            "section must keep that marker above its solver"
        )
    return match.group(1)


@functools.cache
def readme_solver_class() -> type:
    """Execute the README block as a module of its own and return the one class it defines."""
    module = types.ModuleType(MODULE)
    module.__file__ = str(README)
    # registered so that pickle (checkpoints, the suite's pickling check) finds the class
    sys.modules[MODULE] = module
    exec(compile(readme_solver_source(), f"{README}:custom-solver", "exec"), module.__dict__)
    defined = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and value.__module__ == MODULE
    ]
    if len(defined) != 1:
        raise AssertionError(
            f"the README's custom-solver block defines {len(defined)} classes "
            f"({[c.__name__ for c in defined]}); it should define exactly one solver"
        )
    return defined[0]


def test_readme_block_defines_a_genome_solver() -> None:
    solver_class = readme_solver_class()
    assert issubclass(solver_class, GenomeSolver)
    solver = solver_class()
    assert isinstance(solver, Solver)
    assert check_solver(solver) is solver


class TestReadmeSolver(SolverConformance):
    """What the README tells users to write: the shipped checks, collected by pytest."""

    def make_solver(self) -> Solver:
        return readme_solver_class()()


def test_readme_solver_searches_the_digits_problem(digits_problem) -> None:
    result = search(digits_problem, readme_solver_class()(), budget=32, seed=0)
    assert result.n_evals >= 32 and result.stopped == "budget"
    assert len(result.front) >= 1
    hypervolumes = [record["hypervolume"] for record in result.history]
    assert all(b >= a - 1e-12 for a, b in zip(hypervolumes, hypervolumes[1:], strict=False))
    # the seeds (the magnitude genomes) are evaluated in the first generation, so the front
    # is never worse than they are
    seeds = digits_problem.evaluate(digits_problem.magnitude_genomes())
    for density, error in zip(seeds.metrics["density"], seeds.metrics["error"], strict=True):
        best = result.front.index(max_density=density)
        assert result.front.metrics["error"][best] <= error + 1e-12


@pytest.mark.parametrize(
    "signature",
    [
        "setup(n_genes, n_obj, rng, *, operators=None, initial=None)",
        "ask()",
        "tell(genomes, F, violation=None)",
        "inject(genomes, F, violation=None)",
    ],
)
def test_readme_states_the_raw_protocol(signature: str) -> None:
    # the section names the methods of a solver written without a base class
    section = README.read_text(encoding="utf-8").split(MARKER, 1)
    assert len(section) == 2, f"README.md lost the marker {MARKER!r}"
    assert f"`{signature}`" in section[1].split("\n## ", 1)[0]
