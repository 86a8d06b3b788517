"""The run directory: where ``masksearch run`` keeps everything about one search.

.. code-block:: text

    DIR/config.json       the resolved configuration (what `--resume` and `report` rebuild from)
    DIR/environment.json  versions, device, seed, CPU count, start (and resume) times
    DIR/checkpoint.pkl    full search state, rewritten atomically after every generation
    DIR/log.jsonl         one JSON line per generation
    DIR/history.json      the per-generation records of the whole run
    DIR/front.json        one row per Pareto-front member: metrics + its row in masks.npz
    DIR/masks.npz         the members' flat masks, bit-packed, with the layout (names, shapes)
    DIR/report.md         tables and plots (front.png, hypervolume.png); report.json: the numbers

Every file is written atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from masksearch.io import atomic_write, atomic_write_json
from masksearch.mask import Layout, Mask

__all__ = ["RunDir", "environment_info", "load_masks", "save_masks"]

MASKS_FORMAT = 1


class RunDir:
    """Paths of one run directory (nothing is created until something is written)."""

    FILES = {
        "config": "config.json",
        "environment": "environment.json",
        "checkpoint": "checkpoint.pkl",
        "log": "log.jsonl",
        "history": "history.json",
        "front": "front.json",
        "masks": "masks.npz",
        "report": "report.md",
        "report_json": "report.json",
        "front_plot": "front.png",
        "hypervolume_plot": "hypervolume.png",
    }

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __getattr__(self, which: str) -> Path:
        try:
            return self.path / RunDir.FILES[which]
        except KeyError:
            raise AttributeError(which) from None

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def holds_run(self) -> bool:
        """Whether a search already started here (a checkpoint or results exist)."""
        return self.checkpoint.exists() or self.front.exists()

    def read_json(self, which: str) -> Any:
        """Parse ``config``/``environment``/``front``/``history``/``report_json``."""
        path = getattr(self, which)
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist; is {self.path} a masksearch run directory "
                "(made by `masksearch run --out DIR`)?"
            )
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(
                f"{path} is not valid JSON ({error}); the run directory is damaged"
            ) from None

    def write_json(self, which: str, obj: Any) -> Path:
        return atomic_write_json(obj, getattr(self, which))


def environment_info(*, device: str, seed: int) -> dict[str, Any]:
    """What the run ran on: versions, device, seed, CPU count, start time."""
    import torch

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("masksearch", "torch", "numpy", "pymoo", "deap", "joblib", "dask"):
        # the imported module's own version where loaded (torch's carries its CUDA build tag)
        module = sys.modules.get(package)
        try:
            versions[package] = getattr(module, "__version__", None) or metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    info: dict[str, Any] = {
        "versions": versions,
        "platform": platform.platform(),
        "executable": sys.executable,
        "device": device,
        "cuda": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
        "seed": seed,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return info


def save_masks(
    path: str | os.PathLike[str],
    layout: Layout,
    masks: np.ndarray,
    genomes: np.ndarray | None = None,
) -> Path:
    """Write flat masks ``(P, layout.n_total)`` bit-packed, with the layout, to ``path`` (.npz).

    ``genomes`` (the members' genomes, bool packed or int) are kept too, so a front can be
    rebuilt exactly.
    """
    masks = np.asarray(masks, dtype=bool).reshape(-1, layout.n_total)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(MASKS_FORMAT),
        "n_total": np.array(layout.n_total),
        "names": np.array(layout.names, dtype=str),
        "ndims": np.array([len(s) for s in layout.shapes], dtype=np.int64),
        "dims": np.array([d for s in layout.shapes for d in s], dtype=np.int64),
        "bits": np.packbits(masks, axis=1),
    }
    if genomes is not None:
        genomes = np.asarray(genomes)
        arrays["genome_dtype"] = np.array(str(genomes.dtype))
        arrays["n_genes"] = np.array(genomes.shape[1] if genomes.ndim == 2 else 0)
        arrays["genomes"] = np.packbits(genomes, axis=1) if genomes.dtype == bool else genomes

    def write(handle: Any) -> None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        handle.write(buffer.getvalue())

    return atomic_write(path, write)


def load_masks(path: str | os.PathLike[str]) -> tuple[Layout, np.ndarray]:
    """The layout and the ``(P, n_total)`` bool flat masks stored by :func:`save_masks`."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            names = tuple(str(n) for n in stored["names"])
            ndims, dims = stored["ndims"].tolist(), stored["dims"].tolist()
            n_total = int(stored["n_total"])
            bits = stored["bits"]
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} does not exist; the run has not written results yet"
        ) from None
    except Exception as error:  # any unreadable file is the same problem to the user
        raise ValueError(f"{path} is not a masksearch masks file ({error})") from None
    shapes, start = [], 0
    for ndim in ndims:
        shapes.append(tuple(dims[start : start + ndim]))
        start += ndim
    layout = Layout(names, tuple(shapes))
    if layout.n_total != n_total:
        raise ValueError(f"{path} is damaged: its layout does not add up to {n_total} weights")
    masks = np.unpackbits(bits, axis=1, count=n_total).astype(bool)
    return layout, masks


def load_mask(path: str | os.PathLike[str], row: int) -> Mask:
    """The :class:`Mask` of front member ``row`` in a masks file."""
    layout, masks = load_masks(path)
    if not 0 <= row < len(masks):
        raise IndexError(f"{path} holds {len(masks)} masks; there is no row {row}")
    return Mask.from_flat(layout, masks[row])
