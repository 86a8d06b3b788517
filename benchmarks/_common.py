"""What every benchmark records about the machine it ran on, and the dense models it starts from.

The scripts in ``benchmarks/`` are run as files (``python benchmarks/x.py``), so their folder is
on ``sys.path`` and they import this module as ``_common``.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The dense zoo models the committed results start from. Training one is deterministic on one
# machine, but floating-point sums differ between instruction sets (AVX2, AVX-512) and thread
# counts, so each machine would otherwise train its own dense models and a rerun elsewhere
# would start from other weights.
DENSE_MODELS = ROOT / "benchmarks" / "results" / "dense"
CACHE_VARIABLE = "MASKSEARCH_CACHE"  # = masksearch.zoo.ENV_VAR, without importing torch here
PACKAGES = (
    "torch",
    "numpy",
    "scipy",
    "numba",
    "pymoo",
    "deap",
    "dask",
    "distributed",
    "joblib",
    "matplotlib",
)


def pin_dense_models() -> Path:
    """Point the zoo at the committed dense models unless ``$MASKSEARCH_CACHE`` says otherwise.

    Call before the first zoo model is loaded. A model missing there (a new recipe) is trained
    on first use and written there, to be committed with the results it produced.
    """
    os.environ.setdefault(CACHE_VARIABLE, str(DENSE_MODELS))
    return Path(os.environ[CACHE_VARIABLE])


def cpu() -> dict[str, Any]:
    """The CPU's model name and the vector extensions that change floating-point results."""
    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:  # not Linux
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "f16c")
    return {"model": model, "vector_extensions": [f for f in wanted if f in flags]}


def environment(device: str) -> dict[str, Any]:
    """Versions, machine, load and the git commit, so a result can be traced and compared.

    Imports nothing heavy: torch's thread count and GPU name are read only when the calling
    benchmark has already imported torch.
    """
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    torch = sys.modules.get("torch")
    commit, dirty = _git_state()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu(),
        "dense_models": os.environ.get(CACHE_VARIABLE),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "device": device,
        "torch": versions["torch"],
        "numpy": versions["numpy"],
        "numba": versions["numba"],
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "cuda": (
            torch.cuda.get_device_name(0)
            if torch is not None and torch.cuda.is_available()
            else None
        ),
        "packages": versions,
        "git_commit": commit,
        "git_dirty": dirty,
    }


def _git_state() -> tuple[str | None, bool | None]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return commit, bool(status.strip())
