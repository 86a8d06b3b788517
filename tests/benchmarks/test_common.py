"""``benchmarks/_common.py``: runs built through masksearch.builder, one result writer, and
``run_all.py``'s suite declared once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import load_script


@pytest.fixture(scope="module")
def common():
    return load_script("_common")


def test_build_caps_density_and_rerun_keeps_the_problem(common) -> None:
    settings = {
        "problem": "digits_mlp",
        "solver": "nsga2",
        "pop_size": 8,
        "budget": 16,
        "local_search": "gradient-swaps",
        "init": ["magnitude"],
    }
    run = common.build(settings, max_density=0.3)
    assert run.problem.max_density == 0.3
    assert run.solver.pop_size == 8 and run.local_search is not None
    other = common.rerun(run, solver="deap-nsga2", local_search="none", seed=3)
    assert other.problem is run.problem  # same problem and evaluator
    assert other.solver.mu == 8  # the builder maps pop_size to DEAP's mu
    assert other.local_search is None and other.settings["seed"] == 3
    result = other.search()
    assert result.n_evals >= 16
    # the search started from the magnitude masks only, as masksearch.search does by default
    assert result.warm_start["sources"] == ["magnitude"]


def test_renamed_methods_keep_the_names_results_record(common) -> None:
    assert common.recorded_name("large_plus_small") == "method_a"
    assert common.recorded_name("small_frequency") == "method_b"
    assert common.recorded_name("method_b") == "method_b"
    assert common.recorded_name("magnitude") == "magnitude"


def test_write_results_writes_json_plot_and_markdown_with_the_environment(
    common, tmp_path: Path
) -> None:
    import numpy as np

    payload = {"value": np.float64(0.5), "count": np.int64(3)}
    names = common.write_results(
        tmp_path / "out",
        "thing",
        payload,
        lambda report: f"# value {report['value']}\n",
        plot=lambda path: path.write_bytes(b"png"),
    )
    assert names == ["thing.json", "thing.png", "thing.md"]
    saved = json.loads((tmp_path / "out" / "thing.json").read_text())
    assert saved["value"] == 0.5 and saved["count"] == 3
    assert saved["environment"]["packages"]["torch"]
    assert (tmp_path / "out" / "thing.md").read_text() == "# value 0.5\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(names)  # no temp file
    # an environment recorded earlier (e.g. where the measuring happened) is kept
    common.write_results(tmp_path, "kept", {"environment": {"device": "x"}}, "# text\n")
    assert json.loads((tmp_path / "kept.json").read_text())["environment"] == {"device": "x"}


def test_the_suite_is_declared_once_for_both_modes(tmp_path: Path) -> None:
    run_all = load_script("run_all")
    quick = run_all.suite(True, tmp_path, "cpu", None, None)
    full = run_all.suite(False, tmp_path, "cpu", None, None)
    assert [b.name for b in quick] == [b.name for b in full] == [e.name for e in run_all.SUITE]
    assert [b.outputs[0] for b in quick] == [
        "search_quality_quick.json",
        "engine-quick.json",
        "methods.json",
        "screening.json",
        "quality_quick.json",
        "scale_quick.json",
    ]
    seeded = {b.name: b.args for b in full if "--seeds" in b.args}
    assert sorted(seeded) == ["methods", "quality"]
    assert all(args[args.index("--seeds") + 1] == "3" for args in seeded.values())
    assert not any("--seeds" in b.args for b in quick)
    quality = next(b for b in full if b.name == "quality")
    assert str(tmp_path / "methods.json") in quality.args  # {out} filled in
    assert run_all.suite(True, tmp_path, "cpu", 2, ["methods"])[0].args[-2:] == ["--seeds", "2"]


def test_dense_models_are_recorded_as_the_committed_folder_from_any_directory(
    common, monkeypatch, tmp_path: Path, capsys
) -> None:
    committed = common.DENSE_MODELS
    monkeypatch.setenv(common.CACHE_VARIABLE, str(committed))
    assert common.dense_models_in_use() == "benchmarks/results/dense"
    # the relative form, from the repository root, is the same folder
    monkeypatch.chdir(common.ROOT)
    monkeypatch.setenv(common.CACHE_VARIABLE, "benchmarks/results/dense")
    assert common.dense_models_in_use() == "benchmarks/results/dense"
    common.pin_dense_models()
    assert "warning" not in capsys.readouterr().err
    # ... but not from benchmarks/: there it names another folder, said aloud and recorded whole
    monkeypatch.chdir(common.ROOT / "benchmarks")
    elsewhere = str((common.ROOT / "benchmarks" / "benchmarks" / "results" / "dense").resolve())
    assert common.dense_models_in_use() == elsewhere
    assert common.pin_dense_models() == Path("benchmarks/results/dense")
    err = capsys.readouterr().err
    assert f"dense models from {elsewhere}" in err
    assert "not the committed benchmarks/results/dense" in err
    monkeypatch.setenv(common.CACHE_VARIABLE, str(tmp_path))
    assert common.environment("cpu")["dense_models"] == str(tmp_path.resolve())
    monkeypatch.delenv(common.CACHE_VARIABLE)
    assert common.pin_dense_models() == committed
    assert common.environment("cpu")["dense_models"] == "benchmarks/results/dense"
