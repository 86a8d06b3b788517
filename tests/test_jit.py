"""``masksearch._jit``: which kernels Numba's cache lacks, and the command line's notice."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from masksearch import _jit
from masksearch.cli import main


def test_a_kernel_is_named_until_its_first_call_caches_it(tmp_path) -> None:
    # a fresh Numba cache folder stands for a fresh install; compiling the keys' kernel takes
    # about a second, the mutation's is only looked up
    script = textwrap.dedent(
        """
        import numpy as np
        from masksearch._jit import search_kernels, uncached
        from masksearch.keys import row_keys

        print(uncached(search_kernels(True)))
        row_keys(np.zeros((2, 16), dtype=np.uint8))
        print(uncached(search_kernels(True)))
        print(uncached(search_kernels(False)))
        """
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert finished.returncode == 0, finished.stderr
    before, after, unpacked = finished.stdout.strip().splitlines()
    assert before == "['_digests', '_mutate_rows']"
    assert after == "['_mutate_rows']"
    assert unpacked == "[]"


def test_a_cache_it_cannot_read_names_nothing() -> None:
    class NotADispatcher:
        py_func = test_a_cache_it_cannot_read_names_nothing

    assert _jit.uncached([NotADispatcher()]) == []


@pytest.mark.parametrize("cold", [True, False])
def test_the_first_search_says_it_compiles(tmp_path, capsys, monkeypatch, cold: bool) -> None:
    monkeypatch.setattr(_jit, "uncached", lambda kernels: ["_digests"] if cold else [])
    flags = ["--problem", "digits_mlp", "--pop-size", "8", "--budget", "16", "--init"]
    flags += ["magnitude", "--out", str(tmp_path / "run")]
    assert main(["run", *flags]) == 0
    said = "compiling masksearch's Numba kernels for this CPU" in capsys.readouterr().err
    assert said == cold
