from __future__ import annotations

import io
import json
import os
import pickle
import signal
from types import SimpleNamespace

import numpy as np
import pytest

from masksearch.progress import (
    JsonLines,
    LogFile,
    ProgressBar,
    StopOnSignal,
    error_at_densities,
    format_duration,
    summarize,
)


def fake_front(density: list[float], error: list[float]) -> SimpleNamespace:
    return SimpleNamespace(metrics={"density": np.array(density), "error": np.array(error)})


def record(n_evals: int = 250, wall: float = 10.0, front=None) -> dict:
    return {
        "generation": 4,
        "n_evals": n_evals,
        "wall_time": wall,
        "front_size": 3,
        "hypervolume": 0.75,
        "best_error": 0.1,
        "front": front,
    }


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_error_at_densities_matches_a_plain_minimum():
    rng = np.random.default_rng(0)
    density, error = rng.random(40), rng.random(40)
    got = error_at_densities(fake_front(list(density), list(error)), (0.5, 0.1, 0.001))
    for target in (0.5, 0.1):
        expected = min(e for d, e in zip(density, error, strict=True) if d <= target)
        assert got[f"{target:.4g}"] == pytest.approx(expected)
    assert got["0.001"] is None  # no member that sparse


def test_summarize_drops_the_front_and_stays_json():
    summary = summarize(record(front=fake_front([0.2], [0.3])), (0.5,))
    assert "front" not in summary
    assert summary["error_at"] == {"0.5": 0.3}
    assert json.loads(json.dumps(summary)) == summary


def test_progress_line_shows_eta_rate_front_and_hypervolume():
    stream = io.StringIO()
    bar = ProgressBar(budget=1000, densities=(0.05, 0.01), stream=stream, interval=0.0)
    bar(record(250, 10.0, fake_front([0.04, 0.5], [0.2, 0.05])))
    line = stream.getvalue()
    # 750 evaluations left at 25 evaluations/s: 30 s
    assert line.startswith(" 25%|") and "250/1000 [00:10<00:30, 25.00ev/s" in line
    assert "gen 5, front 3, HV 0.7500" in line
    assert line.endswith("err@density 0.05:0.200 0.01:-]\n")  # nothing at 1%
    assert "\r" not in line  # not a terminal: plain lines for a log
    bar.close()
    assert stream.getvalue() == line  # nothing hidden by throttling: close adds no duplicate


def test_progress_counts_past_the_budget_without_a_negative_eta():
    stream = io.StringIO()
    bar = ProgressBar(budget=1000, stream=stream, interval=0.0)
    bar(record(1030, 40.0))  # the last generation ends past the budget
    bar.close()
    assert "100%|" in stream.getvalue() and "1030/1030 [00:40<00:00" in stream.getvalue()


def test_progress_counts_seconds_when_only_a_time_limit_is_given():
    stream = io.StringIO()
    bar = ProgressBar(time_limit=60.0, stream=stream, interval=0.0)
    bar(record(250, 15.0))
    bar.close()
    line = stream.getvalue()
    assert line.startswith(" 25%|") and "[00:15<00:45, 250 evals, 16.67ev/s, gen 5" in line


def test_progress_with_both_limits_shows_the_time_left():
    stream = io.StringIO()
    bar = ProgressBar(budget=1000, time_limit=15.0, stream=stream, interval=0.0)
    bar(record(250, 10.0))
    bar.close()
    assert "250/1000 [00:10<00:30, 25.00ev/s, time left 0:05, gen 5" in stream.getvalue()


def test_progress_without_limits_counts_evaluations():
    stream = io.StringIO()
    bar = ProgressBar(stream=stream, interval=0.0)
    bar(record(250, 10.0))
    bar.close()
    assert stream.getvalue().startswith("250ev [00:10, 25.00ev/s, gen 5, front 3")


def test_progress_throttles_a_log_and_prints_the_last_record_on_close():
    stream = io.StringIO()
    bar = ProgressBar(budget=100, stream=stream, interval=3600.0)
    bar(record(10, 1.0))
    bar(record(20, 2.0))  # throttled
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "10/100 [00:01<00:09" in lines[0]
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "20/100 [00:02<00:08" in lines[1]


def test_progress_redraws_in_place_on_a_terminal_and_shows_the_last_line_on_close():
    stream = _Terminal()
    bar = ProgressBar(budget=100, stream=stream, interval=3600.0)
    assert stream.getvalue() == ""  # nothing before the first generation
    bar(record(10, 1.0))
    bar(record(20, 2.0))  # throttled
    assert stream.getvalue().count("\r") == 1 and "10/100" in stream.getvalue()
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "20/100" in text.split("\r")[-1] and text.count("\n") == 1


def test_json_lines_and_log_file(tmp_path):
    stream = io.StringIO()
    log = tmp_path / "log.jsonl"
    for callback in (JsonLines(densities=(0.5,), stream=stream), LogFile(log, densities=(0.5,))):
        callback(record(100, 1.0, fake_front([0.3], [0.4])))
        callback(record(200, 2.0, fake_front([0.3], [0.35])))
    printed = [json.loads(line) for line in stream.getvalue().splitlines()]
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [p["n_evals"] for p in printed] == [100, 200] == [entry["n_evals"] for entry in logged]
    assert printed[1]["error_at"] == {"0.5": 0.35} and printed[0]["event"] == "generation"


def test_format_duration():
    assert format_duration(59.6) == "1:00"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(None) == "?"


def test_stop_on_signal_stops_after_the_generation_it_was_asked_in(tmp_path):
    from masksearch.catalogue import digits_mlp
    from masksearch.search import search
    from masksearch.solvers import make_solver

    problem = digits_mlp(val_samples=100)
    handler_before = signal.getsignal(signal.SIGINT)
    with StopOnSignal(stream=io.StringIO()) as stopper:

        def press_ctrl_c(entry: dict) -> None:
            if entry["generation"] == 2:
                os.kill(os.getpid(), signal.SIGINT)

        result = search(
            problem,
            make_solver("nsga2", pop_size=10),
            budget=1000,
            seed=0,
            callbacks=[press_ctrl_c, stopper],
            checkpoint=tmp_path / "checkpoint.pkl",
        )
    assert signal.getsignal(signal.SIGINT) is handler_before
    assert result.stopped == "interrupted"
    assert len(result.history) == 3
    with open(tmp_path / "checkpoint.pkl", "rb") as handle:
        saved = pickle.load(handle)
    assert len(saved["history"]) == 3  # the interrupted generation was checkpointed first
