"""``benchmarks/compare_results.py``: a rerun is identical unless a result (not a timing) moved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import load_script


@pytest.fixture(scope="module")
def compare_results():
    return load_script("compare_results")


def _result(accuracy: float, seconds: float, evals_per_s: float) -> dict:
    return {
        "environment": {"cpu": {"model": f"cpu {seconds}"}, "torch_threads": 2},
        "per_seed": {"0": {"test_accuracy": accuracy, "build_seconds": seconds}},
        "rows": [{"front": [[0.05, accuracy]], "evals_per_s": evals_per_s, "n_evals": 300}],
    }


def _folders(tmp_path: Path, name: str, first: dict, second: dict) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, payload in ((a, first), (b, second)):
        folder.mkdir(exist_ok=True)
        (folder / name).write_text(json.dumps(payload))
    return a, b


def test_timings_and_machine_differ_but_the_results_are_identical(
    compare_results, tmp_path, capsys
):
    a, b = _folders(tmp_path, "quality.json", _result(0.8, 10.0, 50.0), _result(0.8, 12.5, 41.0))
    assert compare_results.main([str(a), str(b)]) == 0
    assert "| quality.json | 4 | 0 | 0 | 0 | identical |" in capsys.readouterr().out


def test_a_moved_accuracy_is_a_difference(compare_results, tmp_path, capsys):
    a, b = _folders(tmp_path, "quality.json", _result(0.8, 10.0, 50.0), _result(0.8001, 10.0, 50.0))
    assert compare_results.main([str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "| quality.json | 4 | 2 | 0.0001 | 0 | **differs** |" in out
    assert "per_seed.0.test_accuracy" in out


def test_time_bounded_searches_are_reported_but_not_failed(compare_results, tmp_path, capsys):
    name = "search_quality.json"
    a, b = _folders(tmp_path, name, _result(0.8, 10.0, 50.0), _result(0.7, 10.0, 50.0))
    assert compare_results.main([str(a), str(b)]) == 0
    assert "time-bounded" in capsys.readouterr().out


def test_budget_bound_searches_must_match(compare_results, tmp_path, capsys):
    name = "search_quality.json"
    first = {**_result(0.8, 10.0, 50.0), "budget": 2000, "time_limit": None}
    second = {**_result(0.7, 10.0, 50.0), "budget": 2000, "time_limit": None}
    a, b = _folders(tmp_path, name, first, second)
    assert compare_results.main([str(a), str(b)]) == 1
    assert "**differs**" in capsys.readouterr().out


def test_runs_are_matched_by_what_they_are_not_by_position(compare_results, tmp_path, capsys):
    def run(model: str, seed: int, accuracy: float) -> dict:
        return {"model": model, "method": "B", "seed": seed, "test_accuracy": accuracy}

    committed = {
        "config": {"argv": ["--out", "benchmarks/results"]},
        "runs": [run("lenet5", 0, 0.9), run("lenet300", 0, 0.8), run("lenet300", 1, 0.7)],
    }
    rerun = {
        "config": {"argv": ["--out", "/tmp/rerun"]},
        "runs": [run("lenet300", 1, 0.7), run("lenet300", 0, 0.8)],  # other order, no lenet5
    }
    a, b = _folders(tmp_path, "methods.json", committed, rerun)
    assert compare_results.main([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "| methods.json | 8 | 0 | 0 | 4 | identical |" in out  # lenet5 run: one side only

    rerun["runs"][1]["test_accuracy"] = 0.81
    a, b = _folders(tmp_path, "methods.json", committed, rerun)
    assert compare_results.main([str(a), str(b)]) == 1
    assert "model=lenet300,method=B,seed=0].test_accuracy" in capsys.readouterr().out


def test_machine_words_are_whole_words(compare_results):
    assert compare_results.is_machine_key("build_seconds")
    assert compare_results.is_machine_key("evals_per_s")
    assert compare_results.is_machine_key("ms_per_eval_per_million_weights")
    assert not compare_results.is_machine_key("per_seed")
    assert not compare_results.is_machine_key("digits_mlp_digits")  # "git" inside a word
