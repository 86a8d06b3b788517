"""``benchmarks/structured.py``'s hand-set architecture rows (``--widths``): parsing, refusal
and how they reach the summary and the table. The benchmark itself runs for half an hour."""

from __future__ import annotations

import argparse

import pytest

from .conftest import load_script


def test_widths_are_parsed_and_bad_ones_refused_by_argparse() -> None:
    structured = load_script("structured")
    assert structured.parse_widths("64,16,4") == (64, 16, 4)
    assert structured.widths_label((64, 16, 4)) == "widths 64,16,4"
    with pytest.raises(argparse.ArgumentTypeError, match="comma-separated channel counts"):
        structured.parse_widths("64,wide")


def _row(test_after: float) -> dict[str, float]:
    return {
        "measured_speedup": 2.0,
        "table_latency": 0.5,
        "params": 1000,
        "val_error": 0.5,
        "test_before": 0.4,
        "test_after": test_after,
    }


def test_hand_rows_are_summarised_and_tabled_after_the_methods() -> None:
    structured = load_script("structured")
    labels = ("search", "torch-pruning magnitude", "uniform", "widths 8,4")
    seeds = [
        {
            "seed": s,
            "search_seconds": 1.0,
            "n_evals": 8,
            "rows": {k: _row(0.8 + s / 10) for k in labels},
        }
        for s in range(2)
    ]
    summary = structured.summarise(seeds)
    assert tuple(summary) == labels
    # mean and (population) std of the seeds' values, computed by hand
    assert summary["widths 8,4"]["test_after"] == pytest.approx([0.85, 0.05])
    payload = {
        "command": "python benchmarks/structured.py --widths 8,4",
        "config": {
            "latency_batch": 64, "speedup": 2.0, "budget": 8, "val_samples": 16,
            "finetune": 1, "pick": "error", "widths": [(8, 4)], "torchvision_batch": 1,
        },
        "dense_test": 0.9, "dense_params": 2000, "dense_seconds": 0.01, "table_seconds": 1.0,
        "groups": ["a (16)", "b (8)"], "seeds": seeds, "summary": summary,
    }  # fmt: skip
    table = structured.markdown(payload)
    assert "| widths 8,4 | 2.00× ± 0.00 |" in table
    assert "in the encoding's order: a (16), b (8)" in table
    payload["config"]["widths"] = None
    assert "hand-set" not in structured.markdown(payload)


def test_a_measured_speedup_is_the_median_of_back_to_back_ratios(monkeypatch) -> None:
    structured = load_script("structured")
    # dense, small, dense, small, ...: ratios 2.0, 4.0, 2.5 → median 2.5; one timing → 2.0
    times = iter([2.0, 1.0, 4.0, 1.0, 5.0, 2.0])
    monkeypatch.setattr(structured, "timed", lambda model, shape, batch: next(times))
    encoding = argparse.Namespace(input_shape=(1, 28, 28))
    monkeypatch.setattr(structured, "SPEED_TIMINGS", 3)
    assert structured.relative_speed(None, None, encoding, 64) == 2.5
    times = iter([2.0, 1.0, 4.0, 1.0])
    monkeypatch.setattr(structured, "SPEED_TIMINGS", 1)
    assert structured.relative_speed(None, None, encoding, 64) == 2.0


@pytest.mark.parametrize("flag", ["--timings", "--confirm"])
def test_timings_and_confirmations_below_one_are_refused_before_any_work(capsys, flag) -> None:
    structured = load_script("structured")
    with pytest.raises(SystemExit) as exited:
        structured.main([flag, "0"])
    assert exited.value.code == 2
    assert f"{flag} must be at least 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("checks", "speeds", "expected", "measured"),
    [
        (1, [2.1], True, 1),
        (2, [2.1, 1.9], False, 2),  # a lucky first timing, not confirmed
        (2, [2.1, 2.05], True, 2),
        (3, [1.9, 2.5, 2.5], False, 1),  # a first failure ends the checks
    ],
)
def test_a_candidate_reaches_the_target_only_when_every_check_does(
    monkeypatch, checks, speeds, expected, measured
) -> None:
    structured = load_script("structured")
    calls = iter(speeds)
    taken = []

    def relative_speed(dense, small, encoding, batch):
        taken.append(small)
        return next(calls)

    monkeypatch.setattr(structured, "relative_speed", relative_speed)
    monkeypatch.setattr(structured, "SPEED_CHECKS", checks)
    encoding = argparse.Namespace(input_shape=(1, 28, 28))
    assert structured.reaches(None, "small", encoding, 64, 2.0) is expected
    assert len(taken) == measured
    assert set(taken) == {"small"}  # the one shrunk model, timed each time


def test_distilled_fine_tuning_gets_its_own_column_files_and_recipe() -> None:
    structured = load_script("structured")
    labels = ("search", "torch-pruning magnitude", "uniform")
    seeds = [
        {
            "seed": s,
            "search_seconds": 1.0,
            "n_evals": 8,
            "rows": {k: {**_row(0.8), "test_after_kd": 0.81 + s / 100} for k in labels},
        }
        for s in range(2)
    ]
    summary = structured.summarise(seeds)
    assert summary["uniform"]["test_after_kd"] == pytest.approx([0.815, 0.005])
    payload = {
        "command": "python benchmarks/structured.py --distill",
        "config": {
            "latency_batch": 64, "speedup": 2.0, "budget": 8, "val_samples": 16,
            "finetune": 1, "pick": "error", "widths": None, "torchvision_batch": 1,
            "distill": True,
        },
        "dense_test": 0.9, "dense_params": 2000, "dense_seconds": 0.01, "table_seconds": 1.0,
        "groups": ["a (16)"], "seeds": seeds, "summary": summary,
    }  # fmt: skip
    table = structured.markdown(payload)
    assert "| test, + FT | test, + distilled FT |" in table
    assert "| 80.00 ± 0.00 | 81.50 ± 0.50 |" in table
    assert "temperature 4, weight 0.9" in table
    # without --distill: no column, and rows without the field are summarised as before
    plain = [{**s, "rows": {k: _row(0.8) for k in labels}} for s in seeds]
    payload.update(summary=structured.summarise(plain), seeds=plain)
    payload["config"]["distill"] = False
    assert "distilled" not in structured.markdown(payload)
    assert "test_after_kd" not in payload["summary"]["search"]


def test_the_distilled_fine_tune_is_the_recipe_with_the_dense_teacher(monkeypatch) -> None:
    structured = load_script("structured")
    calls = []
    monkeypatch.setattr(structured, "train", lambda model, split, **kw: calls.append(kw))
    monkeypatch.setattr(structured, "evaluate", lambda *a, **kw: type("S", (), {"accuracy": 0.5}))
    teacher = object()
    loaded = type("L", (), {"train": "train", "test": "test"})

    class Model:
        def eval(self) -> None:
            pass

    structured.finetuned_accuracy(Model(), loaded, 1, 3, 0)
    structured.finetuned_accuracy(Model(), loaded, 1, 3, 0, teacher=teacher)
    assert calls[0] == {"epochs": 1, "seed": 3, **structured.FINETUNE}
    assert calls[1] == {**calls[0], "teacher": teacher, **structured.DISTILL}
