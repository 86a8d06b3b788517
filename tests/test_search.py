from __future__ import annotations

import numpy as np
import pytest

from masksearch.encodings import packed
from masksearch.local_search import GradientSwaps
from masksearch.problem import PruningProblem
from masksearch.search import CheckpointError, genome_packing, search
from masksearch.solvers import BinaryOperators, check_objectives, make_solver
from masksearch.testing import SolverConformance


class PlainHillClimber:
    """The Solver protocol with no base class: setup/ask/tell only, no ``done``, no ``inject``
    (both optional), as the README's "Without a base class" paragraph describes it."""

    def __init__(self, children: int = 8) -> None:
        self.children = children

    def setup(self, n_genes, n_obj, rng, *, operators=None, initial=None):
        self.rng, self.n_obj = rng, n_obj
        self.operators = operators if operators is not None else BinaryOperators(n_genes)
        seeds = [] if initial is None else [self.operators.validate(initial)]
        missing = self.children - sum(len(s) for s in seeds)
        if missing > 0:
            seeds.append(self.operators.validate(self.operators.sample(missing, rng)))
        self.first = np.concatenate(seeds)
        self.parent, self.best = None, np.inf

    def ask(self):
        if self.parent is None:
            return self.first.copy()
        parents = np.repeat(self.parent[None], self.children, axis=0)
        return self.operators.mutate(parents, self.rng)

    def tell(self, genomes, F, violation=None):
        genomes = np.asarray(genomes)
        F, violation = check_objectives(F, violation, len(genomes), self.n_obj)  # ValueError
        score = F.sum(axis=1) + 1e6 * violation  # error + density; infeasible far behind
        best = int(np.argmin(score))
        if score[best] <= self.best:
            self.best, self.parent = score[best], genomes[best].copy()


class TestPlainHillClimber(SolverConformance):
    """The suite passes a solver that has neither of the optional ``done`` and ``inject``."""

    def make_solver(self) -> PlainHillClimber:
        return PlainHillClimber()


def _front_signature(result) -> tuple:
    return tuple(map(tuple, np.round(result.front.F, 12))), result.n_evals


def test_nsga2_front_dominates_magnitude_somewhere(digits_problem) -> None:
    problem = digits_problem
    result = search(problem, make_solver("nsga2", pop_size=32), budget=640, seed=0)
    magnitude = problem.evaluate(problem.magnitude_genomes())
    improved = False
    for density, error in zip(
        magnitude.metrics["density"], magnitude.metrics["error"], strict=True
    ):
        entry = result.front.index(max_density=density)
        found = result.front.metrics["error"][entry]
        assert found <= error + 1e-12  # the magnitude seed is in the archive
        improved |= found < error
    assert improved
    assert result.n_evals >= 640
    assert len(result.history) >= 2
    hv = [record["hypervolume"] for record in result.history]
    assert all(b >= a - 1e-12 for a, b in zip(hv, hv[1:], strict=False))


def test_same_seed_same_front(digits_problem) -> None:
    first = search(digits_problem, make_solver("nsga2", pop_size=16), budget=200, seed=3)
    second = search(digits_problem, make_solver("nsga2", pop_size=16), budget=200, seed=3)
    assert _front_signature(first) == _front_signature(second)
    assert np.array_equal(first.front.genomes, second.front.genomes)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("nsga2", {"pop_size": 16}),
        ("ga", {"pop_size": 16}),
        ("deap-nsga2", {"mu": 16}),
        ("evopress", {"lambda_": 8}),
        ("random", {"pop_size": 16}),
    ],
)
def test_packed_genomes_reach_the_front_bool_genomes_reach(digits_problem, name, options) -> None:
    # the same solver told not to pack evolves bool genomes with the encoding's operators
    packed_solver = make_solver(name, **options)
    bool_solver = make_solver(name, **options)
    bool_solver.packs_genomes = False
    assert genome_packing(digits_problem, packed_solver) is not None
    assert genome_packing(digits_problem, bool_solver) is None
    packed = search(digits_problem, packed_solver, budget=96, seed=4)
    unpacked = search(digits_problem, bool_solver, budget=96, seed=4)
    assert packed_solver.operators.dtype == np.uint8 and bool_solver.operators.dtype == np.bool_
    assert _front_signature(packed) == _front_signature(unpacked)
    assert packed.front.genomes.dtype == np.bool_
    np.testing.assert_array_equal(packed.front.genomes, unpacked.front.genomes)


def test_large_packed_populations_are_evaluated_in_chunks_to_the_same_front(
    digits_problem, monkeypatch
) -> None:
    whole = search(digits_problem, make_solver("nsga2", pop_size=16), budget=64, seed=6)
    calls: list[int] = []
    evaluate = digits_problem.evaluate
    # three unpacked genomes per call (a large model's population would not fit at once)
    monkeypatch.setattr(packed, "UNPACKED_BYTES", 3 * digits_problem.n_genes)
    monkeypatch.setattr(
        digits_problem, "evaluate", lambda genomes: calls.append(len(genomes)) or evaluate(genomes)
    )
    chunked = search(digits_problem, make_solver("nsga2", pop_size=16), budget=64, seed=6)
    assert max(calls) == 3 and sum(calls) == chunked.n_evals
    assert _front_signature(chunked) == _front_signature(whole)
    np.testing.assert_array_equal(chunked.front.genomes, whole.front.genomes)


def test_a_search_with_local_search_is_the_same_packed_or_not(digits_problem) -> None:
    # improved genomes reach the solver through inject, packed on the way
    results = []
    for packs in (True, False):
        solver = make_solver("nsga2", pop_size=16)
        solver.packs_genomes = packs
        local = GradientSwaps(steps=1, children=4)
        results.append(search(digits_problem, solver, budget=160, seed=2, local_search=local))
    assert _front_signature(results[0]) == _front_signature(results[1])


def test_a_packed_checkpoint_is_not_resumed_by_a_bool_search(tmp_path, digits_problem) -> None:
    path = tmp_path / "checkpoint.pkl"
    search(digits_problem, make_solver("nsga2", pop_size=8), budget=8, seed=0, checkpoint=path)
    bool_solver = make_solver("nsga2", pop_size=8)
    bool_solver.packs_genomes = False
    with pytest.raises(CheckpointError, match="genomes: 'packed' vs now None"):
        search(digits_problem, bool_solver, budget=16, seed=0, checkpoint=path, resume=True)


def test_archive_keeps_members_from_every_generation(digits_problem) -> None:
    result = search(digits_problem, make_solver("nsga2", pop_size=16), budget=160, seed=1)
    F = result.front.F
    # non-dominated and unique
    for i in range(len(F)):
        others = np.delete(F, i, axis=0)
        assert not np.any(np.all(others <= F[i], axis=1) & np.any(others < F[i], axis=1))


def test_resume_reaches_the_same_front(tmp_path, digits_problem) -> None:
    path = tmp_path / "checkpoint.pkl"
    straight = search(digits_problem, make_solver("nsga2", pop_size=16), budget=192, seed=5)
    search(digits_problem, make_solver("nsga2", pop_size=16), budget=96, seed=5, checkpoint=path)
    resumed = search(
        digits_problem,
        make_solver("nsga2", pop_size=16),
        budget=192,
        seed=5,
        checkpoint=path,
        resume=True,
    )
    assert _front_signature(resumed) == _front_signature(straight)


def test_checkpoint_of_another_search_is_refused(tmp_path, digits_problem) -> None:
    path = tmp_path / "checkpoint.pkl"
    search(digits_problem, make_solver("nsga2", pop_size=8), budget=8, seed=0, checkpoint=path)
    with pytest.raises(CheckpointError, match="different search.*seed"):
        search(
            digits_problem,
            make_solver("nsga2", pop_size=8),
            budget=16,
            seed=1,
            checkpoint=path,
            resume=True,
        )


def test_damaged_checkpoint_is_reported(tmp_path, digits_problem) -> None:
    path = tmp_path / "checkpoint.pkl"
    path.write_bytes(b"\x80garbage")
    with pytest.raises(CheckpointError, match="damaged"):
        search(
            digits_problem, make_solver("nsga2", pop_size=8), budget=8, checkpoint=path, resume=True
        )


def test_custom_solver_runs_and_improves(digits_problem) -> None:
    result = search(digits_problem, PlainHillClimber(), budget=400, seed=0)
    start = result.history[0]
    assert result.history[-1]["hypervolume"] >= start["hypervolume"]
    assert len(result.front) >= 1


def test_broken_solver_gets_a_clear_error(digits_problem) -> None:
    class WrongLength(PlainHillClimber):
        def ask(self):
            return np.ones((4, 10), dtype=bool)

    with pytest.raises(ValueError, match="genes"):
        search(digits_problem, WrongLength(), budget=10)


class _NoAsk:
    def setup(self, n_genes, n_obj, rng, *, operators=None, initial=None):
        pass

    def tell(self, genomes, F, violation=None):
        pass


class _NarrowSetup(PlainHillClimber):
    def setup(self, n_genes, n_obj, rng):  # no operators=/initial=: search passes both
        super().setup(n_genes, n_obj, rng)


class _DoneAsMethod(PlainHillClimber):
    def done(self):  # would read as always-true; must be a bool attribute or property
        return False


@pytest.mark.parametrize(
    ("solver", "message"),
    [
        (PlainHillClimber, r"got the class PlainHillClimber; pass an instance"),
        (make_solver, r"got the class|not a solver"),
        (object(), r"object is not a solver: it has no setup\(\), ask\(\) or tell\(\)"),
        (_NoAsk(), r"_NoAsk is not a solver: it has no ask\(\) method"),
        (_NarrowSetup(), r"_NarrowSetup\.setup\(n_genes, n_obj, rng\) cannot be called"),
        (_DoneAsMethod(), r"_DoneAsMethod\.done is a method"),
    ],
    ids=["class", "function", "object", "no-ask", "narrow-setup", "done-method"],
)
def test_search_refuses_a_non_solver_before_it_starts(
    digits_problem, monkeypatch, solver, message
) -> None:
    calls = []
    evaluate = digits_problem.evaluate
    monkeypatch.setattr(digits_problem, "evaluate", lambda g: calls.append(1) or evaluate(g))
    with pytest.raises(TypeError, match=message):
        search(digits_problem, solver, budget=8)
    assert calls == []  # refused before a single evaluation


def test_search_stops_when_the_optional_done_turns_true(digits_problem) -> None:
    class StopsAfterTwo(PlainHillClimber):
        told = 0

        @property
        def done(self) -> bool:
            return self.told >= 2

        def tell(self, genomes, F, violation=None):
            super().tell(genomes, F, violation)
            self.told += 1

    result = search(digits_problem, StopsAfterTwo(children=4), budget=1000, seed=0)
    assert result.stopped == "solver" and len(result.history) == 2


def test_search_refuses_a_done_that_is_not_a_bool(digits_problem) -> None:
    class VagueDone(PlainHillClimber):
        done = "no"

    with pytest.raises(TypeError, match="done must be a bool"):
        search(digits_problem, VagueDone(), budget=8)


class _NoImprove:
    def setup(self, problem, rng):
        pass


class _ImprovesWrongly(GradientSwaps):
    def improve(self, problem, front):
        return super().improve(problem, front).genomes  # an array, not a Proposal


@pytest.mark.parametrize(
    ("local_search", "message"),
    [
        (GradientSwaps, r"got the class GradientSwaps; pass an instance"),
        (_NoImprove(), r"_NoImprove is not a local search: it has no improve\(\) method"),
    ],
    ids=["class", "no-improve"],
)
def test_search_refuses_a_non_local_search(digits_problem, local_search, message) -> None:
    with pytest.raises(TypeError, match=message):
        search(digits_problem, PlainHillClimber(), budget=8, local_search=local_search)


def test_local_search_must_return_a_proposal(digits_problem) -> None:
    local = _ImprovesWrongly(steps=1, children=2)
    with pytest.raises(TypeError, match=r"improve\(\) returned ndarray; it must return"):
        search(digits_problem, make_solver("nsga2", pop_size=8), budget=8, local_search=local)


def test_budget_must_be_positive(digits_problem) -> None:
    with pytest.raises(ValueError, match="budget"):
        search(digits_problem, make_solver("nsga2"), budget=0)


def test_constraint_keeps_infeasible_masks_off_the_front(digits_problem) -> None:
    problem = PruningProblem(
        digits_problem.model, digits_problem.data, max_density=0.25, densities=(0.2, 0.1)
    )
    result = search(problem, make_solver("nsga2", pop_size=16), budget=96, seed=0)
    assert np.all(result.front.metrics["density"] <= 0.25 + 1e-12)


def test_front_is_the_non_dominated_set_of_everything_evaluated(digits_problem) -> None:
    # Log every evaluation the search asks for, then rebuild the archive by brute force:
    # the front must hold exactly the non-dominated feasible exact genomes of *all*
    # generations, not just the last one's.
    # a problem of its own: the session's shared one keeps its plain evaluate()
    problem = PruningProblem(
        digits_problem.model, digits_problem.data, densities=digits_problem.densities
    )
    evaluate = problem.evaluate
    log: list[tuple[np.ndarray, np.ndarray]] = []

    def logged(genomes: np.ndarray):
        evaluation = evaluate(genomes)
        exact = np.asarray(evaluation.metrics.get("exact", np.ones(len(genomes))), dtype=bool)
        usable = exact & (evaluation.violation <= 0)
        log.append((np.array(genomes, copy=True)[usable], evaluation.F[usable].copy()))
        return evaluation

    problem.evaluate = logged  # type: ignore[method-assign]
    result = search(problem, make_solver("nsga2", pop_size=16), budget=96, seed=2)
    assert len(log) >= 4 and len(log) == len(result.history)

    first_F: dict[bytes, np.ndarray] = {}  # each distinct genome with its objectives
    generation_of: dict[bytes, int] = {}
    for generation, (genomes, F) in enumerate(log):
        for genome, row in zip(genomes, F, strict=True):
            key = genome.tobytes()
            if key in first_F:
                # a genome evaluated again scores the same, so which copy counts is moot
                assert np.array_equal(first_F[key], row)
            else:
                first_F[key], generation_of[key] = row, generation
    keys = list(first_F)
    F = np.array([first_F[key] for key in keys])
    dominated = np.array(
        [bool(np.any(np.all(row >= F, axis=1) & np.any(row > F, axis=1))) for row in F]
    )
    expected = {key for key, is_dominated in zip(keys, dominated, strict=True) if not is_dominated}
    # members found before the last generation must survive in the archive
    assert min(generation_of[key] for key in expected) < len(log) - 1

    front = {
        genome.tobytes(): row
        for genome, row in zip(result.front.genomes, result.front.F, strict=True)
    }
    assert len(front) == len(result.front)  # no genome twice
    missing, extra = len(expected - set(front)), len(set(front) - expected)
    assert (missing, extra) == (0, 0), f"{missing} non-dominated genomes missing, {extra} extra"
    for key, row in front.items():
        assert np.array_equal(row, first_F[key])


@pytest.mark.parametrize("budget", ["10", 1.5, True])
def test_budget_must_be_a_whole_number(digits_problem, budget) -> None:
    with pytest.raises(TypeError, match="budget must be a whole number"):
        search(digits_problem, make_solver("nsga2", pop_size=8), budget=budget)
