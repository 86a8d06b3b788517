"""What every benchmark records about the machine it ran on.

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
