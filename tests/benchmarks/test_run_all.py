"""Smoke test of the benchmark suite: ``benchmarks/run_all.py --quick`` end to end.

One quick run (a few minutes on 2 CPU cores) into a temporary folder, started as soon as
collection finds these tests and run beside the rest of the suite; the tests then check that
every benchmark's files exist and parse, that the quick run left nothing in the committed
results folder, and that the search beats global magnitude at the quick run's density.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest
import torch

from masksearch import catalogue
from masksearch import data as datasets
from masksearch.mask import Mask

from .conftest import COMMITTED, QUICK_SUITE, ROOT, load_script

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not datasets.available("fashion-mnist"), reason="the benchmarks need Fashion-MNIST"
    ),
]


@pytest.fixture(scope="module")
def quick_run() -> tuple[Path, subprocess.CompletedProcess, set[Path]]:
    """The quick suite's output folder, its finished process and the files it added to the
    committed results. It was started when collection found these tests (see conftest)."""
    # generous: a loaded machine runs the ~5-minute suite slower
    return QUICK_SUITE.result(timeout=1800)


def test_every_benchmark_ran_and_wrote_files_that_parse(quick_run) -> None:
    out, finished, _ = quick_run
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    names = [record["name"] for record in summary["benchmarks"]]
    assert names == ["search_quality", "engine", "methods", "screening", "quality", "scale"]
    for record in summary["benchmarks"]:
        assert record["status"] == "ok", record
        for name in record["outputs"]:
            path = out / name
            assert path.exists(), f"{record['name']} did not write {name}"
            if name.endswith(".json"):
                assert json.loads(path.read_text()), name
            elif name.endswith(".png"):
                assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
            else:
                assert path.read_text().startswith("#"), name
    assert summary["environment"]["packages"]["torch"]  # versions are recorded
    markdown = (out / "summary.md").read_text()
    for record in summary["benchmarks"]:
        assert record["command"] in markdown  # every table says which command produced it
    assert "quality_quick.png" in markdown


def test_quick_run_leaves_the_committed_results_alone(quick_run) -> None:
    _, _, new_files = quick_run
    assert not new_files, f"the quick run wrote into {COMMITTED}: {sorted(new_files)}"


def test_search_beats_magnitude_at_the_quick_density(quick_run) -> None:
    out, _, _ = quick_run
    report = json.loads((out / "quality_quick.json").read_text())
    (density,) = report["config"]["densities"]
    rows = {
        r["method"]: r
        for r in report["summary"]
        if r["table"] == "mask" and r["density"] == density and r["model"] == "lenet300_fashion"
    }
    # the magnitude figure in the report, against a plain masked forward pass computed here
    problem = catalogue.lenet300_fashion(val_samples=64)
    mask = Mask.magnitude(problem.model, density)
    model = mask.apply(copy.deepcopy(problem.model)).eval()
    with torch.no_grad():
        predicted = model(problem.test_data.x).argmax(dim=1)
    expected = float((predicted == problem.test_data.y).float().mean())
    assert rows["magnitude"]["mean"] == pytest.approx(expected, abs=1e-6)
    # the default search (memetic NSGA-II) beats magnitude clearly even on the quick budget
    assert rows["nsga2+ls"]["mean"] > rows["magnitude"]["mean"] + 0.05, rows


@pytest.mark.parametrize("quick", [True, False])
def test_device_reaches_every_benchmark(quick: bool, tmp_path: Path) -> None:
    run_all = load_script("run_all")
    for benchmark in run_all.suite(quick, tmp_path, "cuda", None, None):
        pairs = list(zip(benchmark.args, benchmark.args[1:], strict=False))
        assert ("--device", "cuda") in pairs, benchmark.shown()
        script = (ROOT / "benchmarks" / benchmark.script).read_text()
        assert '"--device"' in script, f"{benchmark.script} has no --device option"
