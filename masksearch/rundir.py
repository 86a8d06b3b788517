"""The run directory: where ``masksearch run`` keeps everything about one search.

.. code-block:: text

    DIR/config.json       the resolved configuration (what `--resume` and `report` rebuild from)
    DIR/environment.json  versions, device, seed, CPU count, start (and resume) times
    DIR/checkpoint.pkl    full search state, rewritten atomically after every generation
    DIR/log.jsonl         one JSON line per generation
    DIR/history.json      the per-generation records of the whole run
    DIR/front.json        one row per Pareto-front member: metrics + its row in masks.npz, and
                          the SHA-256 of masks.npz (written last: it seals the set)
    DIR/masks.npz         the members' flat masks, bit-packed, with the layout (names, shapes)
    DIR/seeds.npz         the warm start's masks the search began from, in the same form
    DIR/report.md         tables and plots (front.png, hypervolume.png); report.json: the numbers
    DIR/.lock             held (``flock``) by the one process writing the directory; its PID

Every file is written atomically (temporary file, fsync, rename), so a kill leaves each file
whole, old or new. Between two files it can leave a new ``masks.npz`` beside an old
``front.json``: :meth:`RunDir.read_results` detects that by the digest and says how to rewrite
them (``masksearch run --resume DIR``). Nothing here is unpickled: JSON and ``.npz`` read with
``allow_pickle=False``; the checkpoint goes through :mod:`masksearch.checkpoint`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import numbers
import os
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from masksearch.io import atomic_write, atomic_write_json, write_npz
from masksearch.mask import Layout, Mask

__all__ = [
    "Results",
    "ResultsError",
    "RunDir",
    "RunLockedError",
    "environment_info",
    "load_masks",
    "save_masks",
]

MASKS_FORMAT = 1
# what every front.json member must hold for report and export to use it
MEMBER_FIELDS = ("index", "density", "error", "accuracy")


class ResultsError(ValueError):
    """A run directory's result files are missing fields or do not belong together."""


class RunLockedError(RuntimeError):
    """Another process is writing the run directory."""


@dataclass(frozen=True)
class Results:
    """The checked results of a run: ``front.json``'s document and the members' flat masks."""

    document: dict[str, Any]
    layout: Layout
    masks: np.ndarray

    @property
    def members(self) -> list[dict[str, Any]]:
        return self.document["members"]


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
        "seeds": "seeds.npz",
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

    def record_start(self, config: dict[str, Any], *, device: str, resume: bool) -> None:
        """Write ``config.json`` and ``environment.json`` as a search (re)starts; a resumed
        run's environment keeps the earlier sessions' and lists this one under ``resumed``."""
        self.write_json("config", config)
        environment = environment_info(device=device, seed=int(config.get("seed", 0)))
        if resume and self.environment.exists():
            previous = self.read_json("environment")
            previous.setdefault("resumed", []).append(environment)
            environment = previous
        self.write_json("environment", environment)

    def check_writable(self) -> None:
        """Refuse a path that exists but is not a directory."""
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(
                f"{self.path} is a file, not a run directory; choose another --out"
            )

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory's exclusive lock; a second writer gets :class:`RunLockedError`.

        ``flock`` is released by the kernel when the holder dies, so a killed run never leaves
        a stale lock behind.
        """
        import fcntl

        self.check_writable()
        self.path.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                holder = os.pread(handle, 200, 0).decode("utf-8", "replace").strip() or "?"
                raise RunLockedError(
                    f"{self.path} is in use by another masksearch process (PID {holder}); wait "
                    "for it to finish or stop it, or choose another --out"
                ) from None
            os.ftruncate(handle, 0)
            os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(handle)  # releases the lock

    def read_seeds(self, layout: Layout) -> np.ndarray | None:
        """The flat masks of ``seeds.npz`` (the warm start the search began from), None when
        the run kept none; ValueError when the file is unreadable or holds masks of another
        layout than ``layout`` (the results')."""
        if not self.seeds.exists():
            return None
        stored, seeds = load_masks(self.seeds)
        if stored != layout:
            raise ValueError(
                f"{self.seeds} holds masks of another model than {self.masks} (left by another "
                f"search?); delete {self.seeds.name} to choose among the front's members only"
            )
        return seeds

    def read_results(self) -> Results:
        """``front.json`` and ``masks.npz``, checked to be whole and to belong together."""
        document = self.read_json("front")
        fix = f"rewrite them with `masksearch run --resume {self.path}`"
        members = document.get("members") if isinstance(document, dict) else None
        if not isinstance(members, list):
            raise ResultsError(f"{self.front} has no list of members; {fix}")
        for position, member in enumerate(members):
            missing = [
                f
                for f in MEMBER_FIELDS
                if not isinstance(member, dict)
                or isinstance(member.get(f), bool)
                or not isinstance(member.get(f), numbers.Real)
            ]
            if missing:
                raise ResultsError(
                    f"{self.front}: member {position} lacks a number for "
                    f"{', '.join(repr(f) for f in missing)} (was the file edited?); {fix}"
                )
        digest = document.get("masks_sha256")
        if digest is not None and self.masks.exists() and file_sha256(self.masks) != digest:
            raise ResultsError(
                f"{self.masks} does not match {self.front} (the run was stopped while writing "
                f"its results); {fix}"
            )
        layout, masks = load_masks(self.masks)
        indices = sorted(int(m["index"]) for m in members)
        if indices != list(range(len(masks))):
            raise ResultsError(
                f"{self.front} lists {len(members)} members but {self.masks} holds "
                f"{len(masks)} masks; {fix}"
            )
        for member in members:
            density = float(masks[int(member["index"])].mean())
            if abs(density - float(member["density"])) > 0.5 / max(layout.n_total, 1):
                raise ResultsError(
                    f"{self.front}: member {member['index']} has density {member['density']:.6f} "
                    f"but its mask keeps {density:.6f}; {fix}"
                )
        return Results(document, layout, masks)


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
        **layout.to_arrays(),
        "bits": np.packbits(masks, axis=1),
    }
    if genomes is not None:
        genomes = np.asarray(genomes)
        arrays["genome_dtype"] = np.array(str(genomes.dtype))
        arrays["n_genes"] = np.array(genomes.shape[1] if genomes.ndim == 2 else 0)
        arrays["genomes"] = np.packbits(genomes, axis=1) if genomes.dtype == bool else genomes

    return atomic_write(path, lambda handle: write_npz(handle, arrays))


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_masks(path: str | os.PathLike[str]) -> tuple[Layout, np.ndarray]:
    """The layout and the ``(P, n_total)`` bool flat masks stored by :func:`save_masks`."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            layout = Layout.from_arrays(stored["names"], stored["ndims"], stored["dims"])
            n_total = int(stored["n_total"])
            bits = stored["bits"]
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} does not exist; the run has not written results yet"
        ) from None
    except Exception as error:  # any unreadable file is the same problem to the user
        raise ValueError(f"{path} is not a masksearch masks file ({error})") from None
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
