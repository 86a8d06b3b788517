"""The solver contract: the :class:`Solver` protocol and the checks ``search()`` and
:class:`masksearch.testing.SolverConformance` both apply to a plug-in.

Required: ``setup``, ``ask``, ``tell``. Optional, read through :func:`solver_done` and
:func:`solver_inject` by the search loop and the conformance suite alike: ``done``, ``inject``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["GenomeOperators", "Solver", "check_solver", "solver_done", "solver_inject"]


@runtime_checkable
class GenomeOperators(Protocol):
    """What a solver needs from an encoding: genome layout, bounds and variation operators.

    ``masksearch.encodings.Encoding`` satisfies it; so do ``BinaryOperators`` and the toy
    operators of ``masksearch.testing``. Every method works on a whole population (rows).
    """

    n_genes: int
    dtype: np.dtype
    lower: np.ndarray
    upper: np.ndarray

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray: ...

    def mutate(self, genomes: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...

    def crossover(
        self, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray: ...

    def repair(self, genomes: np.ndarray) -> np.ndarray: ...

    def validate(self, genomes: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Solver(Protocol):
    """The solver contract: what ``search`` calls and ``masksearch.testing.SolverConformance``
    checks, in one place. A solver minimises every objective and never sees the model.

    Required methods (``check_solver`` refuses an object without them before a search starts):

    ``setup(n_genes, n_obj, rng, *, operators=None, initial=None)``
        Start a run, forgetting any earlier one. ``rng`` (a ``numpy.random.Generator``) is the
        only source of randomness. ``operators`` (a ``GenomeOperators``, e.g. the problem's
        encoding) sets the genome dtype, the bounds and the variation operators; ``None`` means
        plain bool genomes (``BinaryOperators(n_genes)``). Every row of ``initial`` (seed
        genomes, e.g. the magnitude masks) must appear in the first ``ask``.
    ``ask() -> numpy.ndarray``
        The next population: ``(P >= 1, n_genes)`` genomes of the operators' dtype, within
        ``[operators.lower, operators.upper]``.
    ``tell(genomes, F, violation=None)``
        The genomes of the last ``ask``, in order, with their objectives ``F`` ``(P, n_obj)``
        (minimised; ``+inf`` marks a failed evaluation) and ``violation`` ``(P,)`` (0 =
        feasible). Malformed input (wrong shapes, NaN) raises ValueError.

    The search calls ``setup`` once, then ``ask`` and ``tell`` alternately. A solver must be
    deterministic given ``rng`` (never the global ``random`` / ``np.random`` state), picklable
    between ``tell`` and ``ask`` (checkpoints pickle it) and steered by what ``tell`` reports.

    Optional capabilities: the search uses each only when the solver has it, and the
    conformance suite checks each only when present (read them through ``solver_done`` and
    ``solver_inject``, as both do):

    ``done``
        A bool attribute or property; True stops the search (``stopped="solver"``). Without
        it a solver is never done.
    ``inject(genomes, F, violation=None)``
        Merge genomes evaluated elsewhere (a local search's improvements) into the run, called
        between ``tell`` and the next ``ask``, so that they can shape later asks. Without
        it, such genomes only reach the search's archive.

    ``GenomeSolver`` implements all of it (``done`` is always False) except ``_setup``,
    ``_ask`` and ``_tell``.
    """

    def setup(
        self,
        n_genes: int,
        n_obj: int,
        rng: np.random.Generator,
        *,
        operators: GenomeOperators | None = None,
        initial: np.ndarray | None = None,
    ) -> None:
        """Prepare a run; ``initial`` genomes must appear in the first ``ask``."""

    def ask(self) -> np.ndarray:
        """Return ``(P, n_genes)`` genomes of the operators' dtype (bool without operators)."""

    def tell(self, genomes: np.ndarray, F: np.ndarray, violation: np.ndarray | None = None) -> None:
        """Report ``F`` (P, n_obj), minimised, and ``violation`` (P,), 0 = feasible."""


# What the search calls, with the arguments it passes (None stands in for each value): an
# object whose signatures cannot take them is refused before the search spends anything.
_REQUIRED_CALLS: dict[str, tuple[tuple[object, ...], dict[str, object], str]] = {
    "setup": (
        (None, None, None),
        {"operators": None, "initial": None},
        "setup(n_genes, n_obj, rng, *, operators=None, initial=None)",
    ),
    "ask": ((), {}, "ask()"),
    "tell": ((None, None, None), {}, "tell(genomes, F, violation=None)"),
}
_OPTIONAL_CALLS = {"inject": ((None, None, None), {}, "inject(genomes, F, violation=None)")}
_MISSING = object()


def check_solver(solver: object) -> Solver:
    """Return ``solver`` if it meets the ``Solver`` protocol's form, else raise TypeError naming
    what is wrong: a class instead of an instance, a missing or uncallable required method, a
    method whose signature cannot take the search's arguments, or a malformed optional member
    (an uncallable ``inject``, a ``done`` written as a plain method).

    It checks form, not behaviour (``SolverConformance`` does that); ``search`` calls it first.
    """
    if isinstance(solver, type):
        raise TypeError(
            f"solver must be a solver object, got the class {solver.__name__}; "
            f"pass an instance: {solver.__name__}(...)"
        )
    name = type(solver).__name__
    missing = [m for m in _REQUIRED_CALLS if not callable(getattr(solver, m, None))]
    if missing:
        names = [f"{m}()" for m in missing]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        raise TypeError(
            f"{name} is not a solver: it has no {listed} method; a solver needs "
            + ", ".join(signature for _, _, signature in _REQUIRED_CALLS.values())
            + " (see masksearch.solvers.Solver, or subclass masksearch.solvers.GenomeSolver)"
        )
    for method, (args, kwargs, signature) in _REQUIRED_CALLS.items():
        _check_signature(solver, method, args, kwargs, signature)
    if _has(solver, "inject"):
        if not callable(getattr(solver, "inject", None)):
            raise TypeError(f"{name}.inject must be a method: inject(genomes, F, violation=None)")
        args, kwargs, signature = _OPTIONAL_CALLS["inject"]
        _check_signature(solver, "inject", args, kwargs, signature)
    done = inspect.getattr_static(solver, "done", _MISSING)
    # a plain method would always read as truthy and stop every search before its first ask
    if inspect.isfunction(done) or isinstance(done, (staticmethod, classmethod)):
        raise TypeError(
            f"{name}.done is a method; make it a bool attribute or a @property returning a bool"
        )
    return solver  # type: ignore[return-value]


def _check_signature(
    solver: object, method: str, args: tuple[object, ...], kwargs: dict[str, object], wanted: str
) -> None:
    try:
        signature = inspect.signature(getattr(solver, method))
    except (TypeError, ValueError):
        return  # no introspectable signature (a builtin, a C extension): trust it
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(
            f"{type(solver).__name__}.{method}{signature} cannot be called as {wanted}, "
            f"which the search does ({error})"
        ) from None


def _has(solver: object, name: str) -> bool:
    # looked up statically, so that a property raising AttributeError (a bug in it) is not
    # mistaken for an absent member; objects that forward attributes through __getattr__
    # (wrappers, proxies) are asked dynamically
    if inspect.getattr_static(solver, name, _MISSING) is not _MISSING:
        return True
    return hasattr(type(solver), "__getattr__") and hasattr(solver, name)


def solver_done(solver: object) -> bool:
    """The optional ``done`` of a solver that is set up: False when it has none; TypeError when
    it is not a bool. The search and the conformance suite both read ``done`` through this."""
    if not _has(solver, "done"):
        return False
    # read it directly: an AttributeError raised inside a property is a bug to show, not a
    # sign that the solver has no ``done``
    done = solver.done  # type: ignore[attr-defined]
    if not isinstance(done, (bool, np.bool_)):
        raise TypeError(f"{type(solver).__name__}.done must be a bool, got {done!r}")
    return bool(done)


def solver_inject(solver: object) -> Callable[..., None] | None:
    """The solver's optional ``inject`` method, or None when it has none."""
    if not _has(solver, "inject"):
        return None
    inject = solver.inject  # type: ignore[attr-defined]
    if not callable(inject):
        raise TypeError(f"{type(solver).__name__}.inject must be a method, got {inject!r}")
    return inject
