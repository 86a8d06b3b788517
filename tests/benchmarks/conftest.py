from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

from masksearch import data as datasets
from masksearch import zoo

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
COMMITTED = BENCHMARKS / "results"


def committed_files() -> set[Path]:
    return set(COMMITTED.iterdir()) if COMMITTED.exists() else set()


class QuickSuiteRun:
    """``benchmarks/run_all.py --quick`` in a subprocess, started once per session.

    The quick suite runs for minutes, mostly in processes of its own that use one core, so it
    starts as soon as collection shows a test that reads it and runs beside the rest of the
    suite; its tests then wait for it. Output goes to files, not pipes, which a process
    nobody reads from would fill and block on.
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.workdir: Path | None = None
        self.before: set[Path] = set()
        self.finished: tuple[Path, subprocess.CompletedProcess[str], set[Path]] | None = None

    def start(self) -> None:
        if self.process is not None:
            return
        self.workdir = Path(tempfile.mkdtemp(prefix="bench_quick_"))
        self.before = committed_files()
        # the user's cache, as the benchmarks_use_the_user_cache fixture sets it for the
        # benchmarks this process runs: no model is trained into benchmarks/results/dense/
        env = {**os.environ, zoo.ENV_VAR: str(zoo.cache_dir())}
        command = [sys.executable, str(BENCHMARKS / "run_all.py"), "--quick"]
        command += ["--out", str(self.workdir / "results")]
        with (
            open(self.workdir / "stdout.txt", "wb") as stdout,
            open(self.workdir / "stderr.txt", "wb") as stderr,
        ):
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=stdout, stderr=stderr
            )

    def result(self, timeout: float) -> tuple[Path, subprocess.CompletedProcess[str], set[Path]]:
        """The output folder, the finished run and what it added to the committed results;
        starts the run first if collection did not."""
        if self.finished is None:
            self.start()
            assert self.process is not None and self.workdir is not None
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"the quick benchmark suite did not end within {timeout:.0f} s")
            completed = subprocess.CompletedProcess(
                self.process.args,
                self.process.returncode,
                (self.workdir / "stdout.txt").read_text(errors="replace"),
                (self.workdir / "stderr.txt").read_text(errors="replace"),
            )
            self.finished = (self.workdir / "results", completed, committed_files() - self.before)
        return self.finished

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


QUICK_SUITE = QuickSuiteRun()
QUICK_SUITE_TESTS = "tests/benchmarks/test_run_all.py::test_"


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what they deselect
def pytest_collection_modifyitems(session, config, items) -> None:
    """Start the quick suite now and move the tests that wait for it to the end, so that the
    rest of the suite runs meanwhile. Not under pytest-xdist, where every worker collects
    every test: there the run starts when a worker first asks for it."""
    if config.option.collectonly or hasattr(config, "workerinput"):
        return
    waiting = [
        item
        for item in items
        if item.nodeid.startswith(QUICK_SUITE_TESTS) and "quick_run" in item.fixturenames
    ]
    if waiting and datasets.available("fashion-mnist"):  # without it, its tests skip
        QUICK_SUITE.start()
        items[:] = [item for item in items if item not in waiting] + waiting


def pytest_sessionfinish(session, exitstatus) -> None:
    QUICK_SUITE.stop()


@pytest.fixture(scope="session", autouse=True)
def benchmarks_use_the_user_cache():
    """Benchmarks pin the committed dense models unless $MASKSEARCH_CACHE is set; tests set it
    to the user's cache (where the other tests' models already are), so that no test trains a
    model into the repository's benchmarks/results/dense/. The benchmark scripts import their
    shared module as ``_common``, which needs their folder on sys.path."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(zoo.ENV_VAR, str(zoo.cache_dir()))
        patch.syspath_prepend(str(BENCHMARKS))
        yield


def refused_options(name: str, *options: str) -> str:
    """Run ``benchmarks/<name>.py`` with ``options``, which it must refuse as argparse does
    (exit 2, before any work); returns its stderr."""
    finished = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), *options],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 2, finished.stderr
    return finished.stderr


def load_script(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (a script, not a package module) under the name
    ``bench_<name>``."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
