"""Checkpoints load through an allow-list: every shipped solver resumes, no planted code runs."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

import masksearch as ms
from masksearch import models
from masksearch.checkpoint import (
    CheckpointError,
    SafeUnpickler,
    load_checkpoint,
    safe_loads,
    save_checkpoint,
    trust,
)
from masksearch.cli import main
from masksearch.encodings import make_encoding
from masksearch.search import search_fingerprint
from masksearch.solvers import SOLVERS, make_solver


class _Payload:
    """What an attacker plants: unpickling it would run ``touch MARKER``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _GlobalsEscape:
    """getattr(function, '__globals__') is the classic way out of a naive allow-list."""

    def __reduce__(self):
        return (getattr, (np.sum, "__globals__"))  # np.sum itself is allowed


def _plant(path, obj) -> None:
    path.write_bytes(pickle.dumps({"format": 2, "fingerprint": {}, "solver": obj}))


@pytest.mark.parametrize("name", SOLVERS)
def test_every_shipped_solver_checkpoint_loads_through_the_allow_list(
    tmp_path, digits_problem, name
) -> None:
    path = tmp_path / "checkpoint.pkl"
    options = {} if name == "moead" else {"pop_size": 8}
    local_search = ms.GradientSwaps() if name in ("nsga2", "deap-nsga2") else None
    solver = make_solver(name, **options)
    ms.search(digits_problem, solver, budget=30, seed=0, checkpoint=path, local_search=local_search)
    state = load_checkpoint(path, search_fingerprint(digits_problem, solver, 0, local_search))
    assert type(state["solver"]) is type(solver)
    assert len(state["front"]) > 0


def test_planted_payload_does_not_run_on_resume(tmp_path, digits_problem) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "checkpoint.pkl"
    _plant(path, _Payload(str(marker)))
    with pytest.raises(CheckpointError, match=r"posix\.system|os\.system|nt\.system"):
        ms.search(
            digits_problem, make_solver("nsga2", pop_size=8), budget=8, checkpoint=path, resume=True
        )
    assert not marker.exists()


def test_getattr_cannot_reach_a_functions_globals(tmp_path) -> None:
    path = tmp_path / "checkpoint.pkl"
    _plant(path, _GlobalsEscape())
    with pytest.raises(CheckpointError, match="__globals__"):
        load_checkpoint(path, {})


def test_planted_payload_does_not_run_from_the_command_line(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert (
        main(["run", "--problem", "digits_mlp", "--budget", "16", "--out", str(out), "--quiet"])
        == 0
    )
    marker = tmp_path / "PWNED"
    _plant(out / "checkpoint.pkl", _Payload(str(marker)))
    assert main(["run", "--resume", str(out), "--budget", "32", "--quiet"]) == 2
    assert not marker.exists()
    message = capsys.readouterr().err
    assert "does not load from a checkpoint" in message and "checkpoint.pkl" in message


class _CountingSolver(ms.solvers.GenomeSolver):
    """A user's own solver class: resumable because search() trusts the solver it is given."""

    def _setup(self, initial) -> None:
        self.generation = 0

    def _ask(self) -> np.ndarray:
        self.generation += 1
        return self.operators.mutate(self.operators.sample(6, self._rng), self._rng)

    def _tell(self, genomes, F, violation) -> None:
        pass


def test_a_custom_solver_resumes(tmp_path, digits_problem) -> None:
    path = tmp_path / "checkpoint.pkl"
    first = ms.search(digits_problem, _CountingSolver(), budget=12, seed=1, checkpoint=path)
    resumed = ms.search(
        digits_problem, _CountingSolver(), budget=24, seed=1, checkpoint=path, resume=True
    )
    assert resumed.n_evals >= 24 > first.n_evals


def test_trust_takes_classes_only() -> None:
    with pytest.raises(TypeError, match="classes"):
        trust("masksearch.Foo")  # type: ignore[arg-type]


def test_checkpoint_round_trip_keeps_the_fingerprint(tmp_path) -> None:
    path = tmp_path / "c.pkl"
    save_checkpoint(path, {"n_evals": 3, "array": np.arange(4)}, {"seed": 1})
    state = load_checkpoint(path, {"seed": 1})
    assert state["n_evals"] == 3 and np.array_equal(state["array"], np.arange(4))
    with pytest.raises(CheckpointError, match="different search"):
        load_checkpoint(path, {"seed": 2})


@pytest.mark.parametrize("old_path", [True, False], ids=["pre-split-path", "module-path"])
@pytest.mark.parametrize("name", ["weights", "pool", "levels", "channels"])
def test_encoding_checkpoints_load_by_the_old_and_the_new_module_path(
    tmp_path, monkeypatch, name, old_path
) -> None:
    model = models.digits_mlp(seed=0)
    encoding = make_encoding(name, model, **({"density": 0.05} if name == "pool" else {}))
    cls = type(encoding)
    module = f"masksearch.encodings.{name}"
    assert cls.__module__ == module
    if old_path:  # what a checkpoint written while encodings was one module names
        monkeypatch.setattr(cls, "__module__", "masksearch.encodings")
    path = tmp_path / "checkpoint.pkl"
    # a solver keeps bound operators too: they pickle as getattr(encoding, "mutate")
    save_checkpoint(path, {"encoding": encoding, "mutate": encoding.mutate}, {})
    monkeypatch.undo()
    resolved = []
    find_class = SafeUnpickler.find_class

    def recording(self, module_name, qualname):
        resolved.append((module_name, qualname))
        return find_class(self, module_name, qualname)

    monkeypatch.setattr(SafeUnpickler, "find_class", recording)
    state = load_checkpoint(path, {})
    expected = ("masksearch.encodings" if old_path else module, cls.__name__)
    assert expected in resolved
    assert type(state["encoding"]) is cls and state["mutate"].__self__ is state["encoding"]
    genomes = encoding.sample(3, np.random.default_rng(0))
    assert np.array_equal(state["encoding"].decode(genomes), encoding.decode(genomes))


def test_a_groups_search_resumes_from_its_checkpoint(tmp_path, residual_problem) -> None:
    # the structured encoding and its channel-group table load through the allow-list, and
    # the resumed search reaches the uninterrupted one's front
    problem = residual_problem()
    path = tmp_path / "checkpoint.pkl"
    whole = ms.search(problem, make_solver("nsga2", pop_size=8), budget=48, seed=3)
    first = make_solver("nsga2", pop_size=8)
    ms.search(problem, first, budget=24, seed=3, checkpoint=path)
    state = load_checkpoint(path, search_fingerprint(problem, first, 3, None))
    assert state["n_evals"] == 24 and type(state["solver"]) is type(first)
    evaluated = []
    evaluate = problem.evaluate

    def counting(genomes, *args, **kwargs):
        evaluated.append(len(genomes))
        return evaluate(genomes, *args, **kwargs)

    problem.evaluate = counting  # the resumed run scores only what the checkpoint lacks
    resumed = ms.search(
        problem, make_solver("nsga2", pop_size=8), budget=48, seed=3, checkpoint=path, resume=True
    )
    assert sum(evaluated) == 24
    assert resumed.n_evals == whole.n_evals == 48
    assert np.array_equal(resumed.front.genomes, whole.front.genomes)
    assert np.array_equal(resumed.front.objectives, whole.front.objectives)


def test_a_groups_encoding_pickled_before_widths_only_loads_as_a_free_one(
    residual_problem,
) -> None:
    from masksearch.encodings import GroupsEncoding

    encoding = GroupsEncoding(residual_problem().model, input_shape=(1, 6, 6), widths_only=True)
    rng = np.random.default_rng(1)
    genomes = rng.random((5, encoding.n_genes)) < 0.5
    old = pickle.loads(pickle.dumps(encoding))
    del old.__dict__["widths_only"], old.__dict__["_rank_in_group"]  # as an older version had it
    loaded = safe_loads(pickle.dumps(old))
    assert loaded.widths_only is False
    assert np.array_equal(loaded._rank_in_group, encoding._rank_in_group)
    free = GroupsEncoding(residual_problem().model, input_shape=(1, 6, 6))
    assert np.array_equal(loaded.validate(genomes), free.validate(genomes))


def test_a_groups_checkpoint_is_refused_by_a_problem_with_other_encoding_options(
    tmp_path, residual_problem
) -> None:
    problem = residual_problem()
    path = tmp_path / "checkpoint.pkl"
    ms.search(problem, make_solver("nsga2", pop_size=8), budget=16, seed=0, checkpoint=path)
    widths = ms.PruningProblem(
        problem.model,
        problem.data,
        encoding="groups",
        densities=problem.densities,
        encoding_options={"widths_only": True},
    )
    with pytest.raises(CheckpointError, match="encoding_options"):
        ms.search(
            widths,
            make_solver("nsga2", pop_size=8),
            budget=32,
            seed=0,
            checkpoint=path,
            resume=True,
        )
