from __future__ import annotations

import numpy as np
import pytest

from masksearch.problem import PruningProblem
from masksearch.search import CheckpointError, search
from masksearch.solvers import make_solver


class HillClimber:
    """The README's custom solver: mutate the best genome so far, keep the better child."""

    def setup(self, n_genes, n_obj, rng, *, operators=None, initial=None):
        self.rng, self.operators = rng, operators
        self.parent = initial[:1] if initial is not None else operators.sample(1, rng)
        self.best = np.inf

    def ask(self):
        children = self.operators.mutate(np.repeat(self.parent, 7, axis=0), self.rng)
        return np.concatenate([self.parent, children])

    def tell(self, genomes, F, violation=None):
        score = F[:, 0] + F[:, 1]  # error + density
        if score.min() < self.best:
            self.best, self.parent = score.min(), genomes[[int(np.argmin(score))]]


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
    result = search(digits_problem, HillClimber(), budget=400, seed=0)
    start = result.history[0]
    assert result.history[-1]["hypervolume"] >= start["hypervolume"]
    assert len(result.front) >= 1


def test_broken_solver_gets_a_clear_error(digits_problem) -> None:
    class WrongLength(HillClimber):
        def ask(self):
            return np.ones((4, 10), dtype=bool)

    with pytest.raises(ValueError, match="genes"):
        search(digits_problem, WrongLength(), budget=10)


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
