"""``benchmarks/methods.py``: method A's search is shared by its rows, and runs are resumed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def methods_benchmark():
    spec = importlib.util.spec_from_file_location(
        "bench_methods", ROOT / "benchmarks" / "methods.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_and_a_ft_share_one_search_and_a_rerun_reuses_every_row(methods_benchmark, tmp_path):
    argv = [
        "--models",
        "digits_mlp_digits",
        "--methods",
        "A,A+FT,magnitude",
        "--sparsities",
        "0.9",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
    ]
    calls = []
    original = methods_benchmark.run_one

    def counting(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    methods_benchmark.run_one = counting
    try:
        first = methods_benchmark.main(argv, echo=lambda _line: None)
        rows = {r["method"]: r for r in first["runs"]}
        assert rows["A"]["mask_reused"] is False and rows["A+FT"]["mask_reused"] is True
        assert rows["A"]["density"] == rows["A+FT"]["density"] == pytest.approx(0.1, abs=1e-3)
        assert rows["A"]["epochs"] == 0 and rows["A+FT"]["epochs"] == 1
        assert calls == ["A", "A+FT", "magnitude"]
        calls.clear()
        again = methods_benchmark.main(argv, echo=lambda _line: None)
    finally:
        methods_benchmark.run_one = original
    assert calls == [], "every run of the same grid and budget is reused"
    assert again["runs"] == first["runs"]
    saved = json.loads((tmp_path / "methods.json").read_text())
    assert len(saved["runs"]) == 3 and (tmp_path / "methods.md").exists()
    # another grid in the same folder keeps these runs in the file (they stay reusable)
    other = argv.copy()
    other[other.index("A,A+FT,magnitude")] = "magnitude"
    other[other.index("0.9")] = "0.8"
    methods_benchmark.main(other, echo=lambda _line: None)
    saved = json.loads((tmp_path / "methods.json").read_text())
    assert sorted((r["method"], r["sparsity"]) for r in saved["runs"]) == [
        ("A", 0.9),
        ("A+FT", 0.9),
        ("magnitude", 0.8),
        ("magnitude", 0.9),
    ]
    assert "| 80% |" in (tmp_path / "methods.md").read_text()
