"""``benchmarks/methods.py``: method A's search is shared by its rows, and runs are resumed."""

from __future__ import annotations

import json

import pytest

from .conftest import load_script


@pytest.fixture(scope="module")
def methods_benchmark():
    return load_script("methods")


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


def test_a_grid_split_by_seed_is_joined_by_reuse_and_only_for_the_same_dense_weights(
    methods_benchmark, tmp_path, monkeypatch
):
    grid = ["--models", "digits_mlp_digits", "--methods", "magnitude,GMP", "--sparsities", "0.9"]
    grid += ["--seeds", "2", "--epochs", "1"]
    quiet = {"echo": lambda _line: None}
    first = methods_benchmark.main(
        [*grid, "--only-seeds", "0", "--out", str(tmp_path / "a")], **quiet
    )
    second = methods_benchmark.main(
        [*grid, "--only-seeds", "1", "--out", str(tmp_path / "b")], **quiet
    )
    assert {r["seed"] for r in first["runs"]} == {0} and {r["seed"] for r in second["runs"]} == {1}

    calls = []
    original = methods_benchmark.run_one
    monkeypatch.setattr(
        methods_benchmark, "run_one", lambda *a, **k: calls.append(a[1:4]) or original(*a, **k)
    )
    reuse = ["--reuse", str(tmp_path / "b" / "methods.json")]
    joined = methods_benchmark.main([*grid, "--out", str(tmp_path / "a"), *reuse], **quiet)
    assert calls == [], "both halves are reused"
    assert sorted((r["method"], r["seed"]) for r in joined["runs"]) == [
        ("GMP", 0),
        ("GMP", 1),
        ("magnitude", 0),
        ("magnitude", 1),
    ]
    assert all(row["n"] == 2 for row in joined["summary"])
    generated = (tmp_path / "a" / "methods.md").read_text()
    assert "--reuse" not in generated and "--seeds 2 --epochs 1" in generated

    # other dense weights (a different digest) reuse nothing
    monkeypatch.setattr(methods_benchmark.zoo, "dense_sha256", lambda *a, **k: "f" * 64)
    methods_benchmark.main([*grid, "--out", str(tmp_path / "a")], **quiet)
    assert sorted(calls) == [
        ("GMP", 0.9, 0),
        ("GMP", 0.9, 1),
        ("magnitude", 0.9, 0),
        ("magnitude", 0.9, 1),
    ]


def test_only_seeds_outside_the_grid_and_a_missing_reuse_file_are_refused(
    methods_benchmark, tmp_path
):
    with pytest.raises(SystemExit):
        methods_benchmark.parse_args(["--seeds", "2", "--only-seeds", "2"])
    with pytest.raises(SystemExit):
        methods_benchmark.parse_args(["--reuse", str(tmp_path / "missing.json")])


def test_fresh_reruns_the_grid_and_the_markdown_keeps_other_models(
    methods_benchmark, tmp_path, monkeypatch
):
    other_model = {  # a run of another model saved earlier, at the same epoch budget
        "model": "lenet300_fashion",
        "method": "magnitude",
        "registered": "magnitude",
        "sparsity": 0.9,
        "seed": 0,
        "epochs": 0,
        "budget": 1,
        "dense_sha256": "e" * 64,
        "test_accuracy": 0.4321,
        "density": 0.1,
        "pruned_weights_zero": True,
    }
    (tmp_path / "methods.json").write_text(
        json.dumps({"dense": {"lenet300_fashion": 0.89}, "runs": [other_model]})
    )
    grid = ["--models", "digits_mlp_digits", "--methods", "magnitude", "--sparsities", "0.9"]
    grid += ["--seeds", "1", "--epochs", "1", "--out", str(tmp_path)]
    methods_benchmark.main(grid, echo=lambda _line: None)
    calls = []
    original = methods_benchmark.run_one
    monkeypatch.setattr(
        methods_benchmark, "run_one", lambda *a, **k: calls.append(a[1]) or original(*a, **k)
    )
    methods_benchmark.main([*grid, "--fresh"], echo=lambda _line: None)
    assert calls == ["magnitude"], "--fresh reruns the grid"
    saved = json.loads((tmp_path / "methods.json").read_text())
    assert other_model in saved["runs"] and len(saved["runs"]) == 2
    markdown = (tmp_path / "methods.md").read_text()
    assert "## digits_mlp_digits" in markdown and "## lenet300_fashion (dense 89.00%)" in markdown
    assert "43.21%" in markdown


def test_verdicts_count_a_gap_only_beyond_two_standard_errors(methods_benchmark):
    def row(method, sparsity, mean, std, n=3):
        return {
            "model": "m",
            "method": method,
            "sparsity": sparsity,
            "mean": mean,
            "std": std,
            "n": n,
        }

    # 90%: 5 points apart with std 1 (2 s.e. of the difference = 1.63): clearly better;
    # 95%: 1 point apart with std 1: within noise; 98%: B 3 points below: clearly worse
    summary = [
        row("B", 0.90, 0.85, 0.01),
        row("DNS", 0.90, 0.80, 0.01),
        row("B", 0.95, 0.85, 0.01),
        row("DNS", 0.95, 0.84, 0.01),
    ]
    lines = methods_benchmark.verdicts(summary, ["d"])
    assert "clearly better at 1, within noise at 1 and clearly worse at 0 of 2" in lines[0]
    assert "is not shown" in lines[0]
    summary += [row("B", 0.98, 0.80, 0.01), row("DNS", 0.98, 0.83, 0.01)]
    assert "the claim does not hold" in methods_benchmark.verdicts(summary, ["d"])[0]
    assert "the claim holds" in methods_benchmark.verdicts(summary[:2], ["d"])[0]
    # one seed: no noise estimate, any gap counts
    one_seed = [row("A", 0.9, 0.501, 0.0, 1), row("magnitude", 0.9, 0.5, 0.0, 1)]
    assert "the claim holds" in methods_benchmark.verdicts(one_seed, ["d"])[0]
