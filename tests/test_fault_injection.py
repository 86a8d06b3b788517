"""Fault injection on ``masksearch run``: every way a run can be cut short ends resumable.

Each faulted run is a subprocess on the digits problem whose ``-c`` script patches one library
function and then calls ``masksearch.cli.main``, so the faults land at exact points without any
hook in the library: ``kill -9`` after or halfway through a checkpoint, ``kill -9`` between two
result files, a real SIGINT, a second writer while a run holds the directory, and a disk that
fills up (on a small tmpfs, where this machine lets us mount one). Each case must end with a
directory that is consistent (``RunDir.read_results`` accepts it, or ``export`` refuses it and
names ``--resume``) and, after ``masksearch run --resume``, holds exactly what an uninterrupted
run with the same seed writes: the same ``masks.npz`` bytes, and the same ``front.json``,
``history.json`` and ``report.json`` apart from wall times.

Uninterrupted references and resumes run in this process (``main()`` returns the exit status;
no interpreter start-up per run); only the runs that must die, or must run beside another
writer, are subprocesses.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from masksearch.checkpoint import safe_loads
from masksearch.cli import main
from masksearch.rundir import RunDir

SEED = 5
# error and loss searches use the default local search (gradient swaps, 64 evaluations per
# generation), so 240 evaluations are 3 generations of 80; flops,error runs without it
# (auto picks none when flops comes first): 5 generations of 16
BUDGETS = {"error,density": 240, "loss,density": 240, "flops,error": 80}
# every objective of masksearch.problem.OBJECTIVES appears in one of these
OBJECTIVE_SETS = tuple(BUDGETS)
# each fault case runs on error,density; its repeats on the other objective sets are marked slow
# (the same mechanics, but each objective's evaluator state must survive the checkpoint too)
ACROSS_OBJECTIVES = [
    OBJECTIVE_SETS[0],
    *(pytest.param(o, marks=pytest.mark.slow) for o in OBJECTIVE_SETS[1:]),
]
# generous: two loaded cores, and a run that hangs must fail the test, not the CI job
TIMEOUT = 300

# The faulted process. argv[1] is a JSON plan:
#   argv                      masksearch.cli.main's arguments
#   write: {file, count, when[, filler]}
#       at the count-th atomic write of the file with that name: "after" = kill -9 once the
#       new file is renamed into place; "during" = write half its bytes to the temporary file,
#       then kill -9; "fill" = fill the file system (writing `filler`) and then let it write
#   wait: {generation, until}
#       after log.jsonl got that generation's line, wait (at most 2 minutes) until SIGINT has
#       been handled (until == "sigint") or the file `until` exists; the wait closes the race
#       between the test's signal or second writer and the end of a short run
FAULT_SCRIPT = r"""
import io, json, os, signal, sys, time

plan = json.loads(sys.argv[1])

import masksearch.checkpoint, masksearch.cli, masksearch.io, masksearch.progress
import masksearch.report, masksearch.rundir, masksearch.search

original_write = masksearch.io.atomic_write
writes = {}


def fill_disk(filler):
    # down to single bytes, so that not even a page is left for the next file
    with open(filler, "ab", buffering=0) as handle:
        for size in (1 << 20, 1 << 12, 1):
            block = b"\0" * size
            try:
                while True:
                    handle.write(block)
            except OSError:
                pass


def atomic_write(path, write):
    name = os.path.basename(os.fspath(path))
    writes[name] = writes.get(name, 0) + 1
    fault = plan.get("write")
    if not fault or fault["file"] != name or fault["count"] != writes[name]:
        return original_write(path, write)
    if fault["when"] == "fill":
        fill_disk(fault["filler"])
        return original_write(path, write)
    if fault["when"] == "during":
        def half_then_die(handle):
            buffer = io.BytesIO()
            write(buffer)
            data = buffer.getvalue()
            handle.write(data[: len(data) // 2])
            handle.flush()
            os.fsync(handle.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        return original_write(path, half_then_die)
    written = original_write(path, write)
    os.kill(os.getpid(), signal.SIGKILL)
    return written


# every module that imported atomic_write by name, and masksearch.io itself
for module in list(sys.modules.values()):
    if getattr(module, "__name__", "").startswith("masksearch"):
        if getattr(module, "atomic_write", None) is original_write:
            module.atomic_write = atomic_write

wait = plan.get("wait")
if wait:
    handled = []
    original_handle = masksearch.progress.StopOnSignal._handle

    def handle_signal(self, signum, frame):
        handled.append(signum)
        original_handle(self, signum, frame)

    masksearch.progress.StopOnSignal._handle = handle_signal
    original_log = masksearch.progress.LogFile.__call__

    def log(self, record):
        original_log(self, record)
        if record["generation"] + 1 != wait["generation"]:
            return
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if handled if wait["until"] == "sigint" else os.path.exists(wait["until"]):
                return
            time.sleep(0.02)

    masksearch.progress.LogFile.__call__ = log

sys.exit(masksearch.cli.main(plan["argv"]))
"""


# -- helpers -----------------------------------------------------------------------------------


def run_args(objectives: str, out: Path, budget: int | None = None) -> list[str]:
    return [
        "run", "--problem", "digits_mlp", "--pop-size", "16", "--seed", str(SEED),
        "--objectives", objectives, "--budget", str(budget or BUDGETS[objectives]),
        "--out", str(out), "--quiet",
    ]  # fmt: skip


def cli(*args: str | Path) -> int:
    """``masksearch ARGS`` in this process: its exit status (messages go to captured stderr).

    Only for commands whose results are not compared: earlier tests in this process may leave
    global numeric state behind that moves a float in its last bit.
    """
    return main([str(arg) for arg in args])


def fresh(*args: str | Path) -> None:
    """``masksearch ARGS`` in a fresh process, as a user runs it; it must succeed."""
    completed = subprocess.run(
        [sys.executable, "-m", "masksearch", *(str(arg) for arg in args)],
        env=os.environ,  # the env fixture's settings
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert completed.returncode == 0, completed.stderr


def start_faulted(plan: dict[str, Any], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", FAULT_SCRIPT, json.dumps(plan)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Wait (bounded) for ``process``; its exit status and stderr."""
    try:
        _, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"the run did not end within {TIMEOUT} s") from None
    return process.returncode, stderr


def run_faulted(plan: dict[str, Any], env: dict[str, str]) -> tuple[int, str]:
    return finish(start_faulted(plan, env))


def kill_plan(argv: list[str], file: str, count: int, when: str) -> dict[str, Any]:
    return {"argv": argv, "write": {"file": file, "count": count, "when": when}}


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            raise AssertionError(f"the run ended (exit {process.returncode}) before {what}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"timed out waiting for {what}")


def log_lines(out: Path) -> list[dict[str, Any]]:
    path = out / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def checkpointed_generations(out: Path) -> int:
    """How many generations the checkpoint holds (read without running any of its code)."""
    return len(safe_loads((out / "checkpoint.pkl").read_bytes())["history"])


def temp_files(out: Path) -> set[str]:
    # atomic_write's temporaries: ".<name>.<random>.tmp" beside the file
    return {path.name for path in out.glob(".*.tmp")}


# wall-clock durations: of the search, and of making the warm start ("seconds")
TIMINGS = frozenset({"wall_time", "seconds"})


def without_times(value: Any) -> Any:
    """``value`` (parsed JSON) without the wall-clock durations, at any depth."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_same_results(out: Path, reference: Path) -> None:
    """``out`` holds what the uninterrupted ``reference`` holds, wall times apart."""
    # digests, not bytes: a failure then prints two short lines instead of two zip files
    assert sha256(out / "masks.npz") == sha256(reference / "masks.npz"), "masks.npz differs"
    for name in ("front.json", "history.json", "report.json"):
        got, expected = (
            without_times(json.loads((d / name).read_text())) for d in (out, reference)
        )
        assert got == expected, f"{name} differs"


def assert_consistent(out: Path, allowed_temps: frozenset[str] = frozenset()) -> None:
    """Results that belong together, a well-formed log, no new temporary files."""
    results = RunDir(out).read_results()  # raises on a masks.npz that front.json did not seal
    assert results.document["masks_sha256"] == sha256(out / "masks.npz")
    assert len(results.members) == len(results.masks)
    evaluations = [line["n_evals"] for line in log_lines(out)]
    assert evaluations == sorted(set(evaluations)), f"log.jsonl repeats generations: {evaluations}"
    assert evaluations[-1] == results.document["n_evals"]
    assert temp_files(out) <= allowed_temps, "a write left its temporary file"


def assert_log_has_every_generation(out: Path) -> None:
    """log.jsonl ("one JSON line per generation") lists each generation of history.json once."""
    history = json.loads((out / "history.json").read_text())
    logged = [line["generation"] for line in log_lines(out)]
    assert logged == [record["generation"] for record in history], (
        "log.jsonl lost generations across the kill and resume"
    )


def export_refusal(out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """``export`` refuses the directory and writes no model; its one-line message."""
    model = tmp_path / "m.pt"
    capsys.readouterr()
    assert cli("export", out, "--max-density", "0.1", "--out", model) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("masksearch: error: ") and "\n" not in error, error
    assert not model.exists(), "export wrote a model from results it should have refused"
    return error


def assert_names_resume(error: str, out: Path) -> None:
    # checked last in each test, so that a vague message does not hide whether resume works
    assert f"masksearch run --resume {out}" in error, f"the refusal does not say to resume: {error}"


def resume(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fresh("run", "--resume", out, "--quiet")


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One model cache for this process and its subprocesses; no debug tracebacks.

    Float sums depend on torch's thread count, so the in-process runs and the subprocesses use
    the same one, whatever earlier tests in this process set.
    """
    with pytest.MonkeyPatch.context() as patch:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        patch.setenv("OMP_NUM_THREADS", "1")
        patch.setenv("MASKSEARCH_CACHE", str(tmp_path_factory.mktemp("model-cache")))
        patch.setenv("PYTHONUNBUFFERED", "1")
        patch.delenv("MASKSEARCH_DEBUG", raising=False)
        patch.delenv("MASKSEARCH_DATA", raising=False)
        try:
            yield dict(os.environ)
        finally:
            torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """The uninterrupted run of each objective set, made once on first use."""
    root = tmp_path_factory.mktemp("references")
    made: dict[str, Path] = {}

    def get(objectives: str) -> Path:
        if objectives not in made:
            out = root / objectives.replace(",", "-")
            fresh(*run_args(objectives, out))
            made[objectives] = out
        return made[objectives]

    return get


@pytest.fixture
def small_tmpfs(tmp_path: Path, reference: Callable[[str], Path]) -> Iterator[Path]:
    """A tmpfs a few times the size of a finished run directory, or a skip where none mounts."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root on Linux")
    measured = sum(p.stat().st_size for p in reference("error,density").iterdir() if p.is_file())
    # room for the run plus a second checkpoint while it is renamed over the first
    size = max(4 * measured, 8 << 20)
    mountpoint = tmp_path / "tmpfs"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if mounted.returncode != 0:
        reason = mounted.stderr.strip() or f"exit {mounted.returncode}"
        pytest.skip(f"cannot mount a tmpfs here ({reason})")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], timeout=60).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], timeout=60)


# -- same seed, same bytes ---------------------------------------------------------------------


@pytest.mark.parametrize("objectives", OBJECTIVE_SETS)
def test_the_same_seed_gives_byte_identical_results(
    objectives: str, reference: Callable[[str], Path], env: dict[str, str], tmp_path: Path
) -> None:
    # the twin runs in a fresh interpreter (another hash seed, no warm caches) through the real
    # entry point, meanwhile the reference runs in this one (on first use)
    twin = tmp_path / "twin"
    process = subprocess.Popen(
        [sys.executable, "-m", "masksearch", *run_args(objectives, twin)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        expected = reference(objectives)
    finally:
        status, stderr = finish(process)
    assert status == 0, stderr
    assert_consistent(twin)
    assert_same_results(twin, expected)


# -- kill -9 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("objectives", ACROSS_OBJECTIVES)
def test_kill_after_a_checkpoint_then_resume_reaches_the_uninterrupted_front(
    objectives: str,
    reference: Callable[[str], Path],
    env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    status, stderr = run_faulted(
        kill_plan(run_args(objectives, out), "checkpoint.pkl", 2, "after"), env
    )
    assert status == -signal.SIGKILL, stderr
    # the log is written before each checkpoint: it holds every checkpointed generation
    assert checkpointed_generations(out) == 2
    assert len(log_lines(out)) == 2
    assert not (out / "front.json").exists() and not (out / "masks.npz").exists()
    refusal = export_refusal(out, tmp_path, capsys)

    resume(out, capsys)
    assert_consistent(out)
    assert_same_results(out, reference(objectives))
    assert_names_resume(refusal, out)
    assert_log_has_every_generation(out)


@pytest.mark.parametrize(
    ("objectives", "count"),
    [("error,density", 2), pytest.param("flops,error", 1, marks=pytest.mark.slow)],
    ids=["second-checkpoint", "first-checkpoint"],
)
def test_kill_while_writing_a_checkpoint_keeps_the_previous_one(
    objectives: str,
    count: int,
    reference: Callable[[str], Path],
    env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    status, stderr = run_faulted(
        kill_plan(run_args(objectives, out), "checkpoint.pkl", count, "during"), env
    )
    assert status == -signal.SIGKILL, stderr
    # the half-written bytes stayed in the temporary file, never under the checkpoint's name
    stale = temp_files(out)
    assert len(stale) == 1 and next(iter(stale)).startswith(".checkpoint.pkl."), stale
    if count == 1:
        assert not (out / "checkpoint.pkl").exists()
    else:
        assert checkpointed_generations(out) == count - 1
    refusal = export_refusal(out, tmp_path, capsys)

    resume(out, capsys)
    assert_consistent(out, allowed_temps=frozenset(stale))
    assert_same_results(out, reference(objectives))
    assert_names_resume(refusal, out)
    assert_log_has_every_generation(out)


def test_kill_between_result_files_of_a_fresh_run(
    reference: Callable[[str], Path],
    env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    objectives = "error,density"
    out = tmp_path / "run"
    status, stderr = run_faulted(kill_plan(run_args(objectives, out), "masks.npz", 1, "after"), env)
    assert status == -signal.SIGKILL, stderr
    assert (out / "masks.npz").exists() and not (out / "front.json").exists()
    refusal = export_refusal(out, tmp_path, capsys)

    resume(out, capsys)
    assert_consistent(out)
    assert_same_results(out, reference(objectives))
    assert_names_resume(refusal, out)


def test_kill_between_result_files_of_a_resumed_run_never_exports_a_wrong_mask(
    reference: Callable[[str], Path],
    env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    objectives = "error,density"
    out = tmp_path / "run"
    # a finished shorter run: its front.json is there to be left behind beside new masks
    fresh(*run_args(objectives, out, budget=160))
    old_masks = (out / "masks.npz").read_bytes()
    old_front = (out / "front.json").read_text()

    longer = ["run", "--resume", str(out), "--budget", str(BUDGETS[objectives]), "--quiet"]
    status, stderr = run_faulted(kill_plan(longer, "masks.npz", 1, "after"), env)
    assert status == -signal.SIGKILL, stderr
    assert (out / "masks.npz").read_bytes() != old_masks, "the longer run found the same masks"
    assert (out / "front.json").read_text() == old_front
    refusal = export_refusal(out, tmp_path, capsys)
    assert "does not match" in refusal, refusal  # caught by front.json's digest of masks.npz
    capsys.readouterr()
    assert cli("report", out) == 2
    assert f"masksearch run --resume {out}" in capsys.readouterr().err

    resume(out, capsys)  # with the budget the killed session wrote into config.json
    assert_consistent(out)
    assert_same_results(out, reference(objectives))
    assert_names_resume(refusal, out)


def test_resume_refuses_to_restart_when_the_checkpoint_is_gone(
    reference: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference("error,density"), out)
    (out / "checkpoint.pkl").unlink()
    # .lock names whichever process held the directory last: that is all it is for
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".lock"}
    capsys.readouterr()
    assert cli("run", "--resume", out, "--quiet") == 2
    error = capsys.readouterr().err
    assert "checkpoint" in error and "--overwrite" in error, error
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".lock"}
    assert after == before, "the refused resume changed the run directory"


# -- Ctrl-C ------------------------------------------------------------------------------------


@pytest.mark.parametrize("objectives", ACROSS_OBJECTIVES[:2])
def test_sigint_stops_after_a_checkpoint_and_resume_reaches_the_uninterrupted_front(
    objectives: str,
    reference: Callable[[str], Path],
    env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    process = start_faulted(
        {"argv": run_args(objectives, out), "wait": {"generation": 2, "until": "sigint"}}, env
    )
    wait_until(lambda: len(log_lines(out)) >= 2, process, "the second generation was logged")
    os.kill(process.pid, signal.SIGINT)
    status, stderr = finish(process)
    assert status == 130, stderr
    assert "Traceback" not in stderr
    # stopped right after the generation it was in: checkpoint, log and results agree
    front = json.loads((out / "front.json").read_text())
    assert front["stopped"] == "interrupted"
    assert checkpointed_generations(out) == len(log_lines(out)) == 2
    assert front["n_evals"] == log_lines(out)[-1]["n_evals"] < BUDGETS[objectives]
    assert_consistent(out)

    resume(out, capsys)
    assert_consistent(out)
    assert_same_results(out, reference(objectives))
    assert_log_has_every_generation(out)


# -- two writers -------------------------------------------------------------------------------


def test_a_second_writer_is_refused_while_a_run_holds_the_directory(
    reference: Callable[[str], Path],
    env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    objectives = "error,density"
    out = tmp_path / "run"
    release = tmp_path / "release"
    first = start_faulted(
        {"argv": run_args(objectives, out), "wait": {"generation": 2, "until": str(release)}}, env
    )
    try:
        lock = out / ".lock"
        wait_until(
            lambda: (
                lock.exists()
                and lock.read_text().strip() == str(first.pid)
                and bool(log_lines(out))
                and (out / "checkpoint.pkl").exists()
            ),
            first,
            "the run held the lock and checkpointed a generation",
        )
        config = (out / "config.json").read_bytes()
        checkpoint = (out / "checkpoint.pkl").read_bytes()
        holder = f"in use by another masksearch process (PID {first.pid})"

        # another search into the same directory, then the same with --overwrite, then a resume
        for attempt in (
            [*run_args(objectives, out), "--seed", "9"],
            [*run_args(objectives, out), "--seed", "9", "--overwrite"],
            ["run", "--resume", str(out), "--quiet"],
        ):
            capsys.readouterr()
            assert cli(*attempt) == 2, attempt
            assert holder in capsys.readouterr().err, attempt
        # the refused writers deleted and rewrote nothing
        assert (out / "config.json").read_bytes() == config
        assert (out / "checkpoint.pkl").read_bytes() == checkpoint
    finally:
        release.touch()
        status, stderr = finish(first)
    assert status == 0, stderr
    config_seed = json.loads((out / "config.json").read_text())["seed"]
    assert config_seed == json.loads((out / "front.json").read_text())["seed"] == SEED
    assert_consistent(out)
    assert_same_results(out, reference(objectives))


# -- disk full ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "count"), [("checkpoint.pkl", 2), ("masks.npz", 1)], ids=["checkpoint", "results"]
)
def test_a_full_disk_fails_cleanly_and_resume_completes_after_freeing_space(
    file: str,
    count: int,
    small_tmpfs: Path,
    reference: Callable[[str], Path],
    env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    objectives = "error,density"
    out = small_tmpfs / "run"
    filler = small_tmpfs / "filler"
    plan = {
        "argv": run_args(objectives, out),
        "write": {"file": file, "count": count, "when": "fill", "filler": str(filler)},
    }
    status, stderr = run_faulted(plan, env)
    assert status == 2, stderr
    message = stderr.strip().splitlines()[-1]
    assert message.startswith(f"masksearch: error: could not write {out / file}: "), stderr
    assert "free some space" in message and "Traceback" not in stderr
    assert temp_files(out) == set(), "the failed write left its temporary file"
    for result in ("masks.npz", "history.json", "front.json"):
        assert not (out / result).exists(), f"{result} was written although the disk was full"
    # the checkpoint on disk is whole: the last one that fitted
    logged = len(log_lines(out))
    assert checkpointed_generations(out) == (count - 1 if file == "checkpoint.pkl" else logged)
    refusal = export_refusal(out, tmp_path, capsys)

    filler.unlink()
    resume(out, capsys)
    assert_consistent(out)
    assert_same_results(out, reference(objectives))
    assert_names_resume(refusal, out)
