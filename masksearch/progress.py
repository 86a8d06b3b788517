"""Progress callbacks for :func:`masksearch.search.search`.

Each callback receives the per-generation record ``search()`` passes: ``generation``,
``n_evals``, ``wall_time``, ``front_size``, ``hypervolume``, ``best_<objective>`` and, not meant
for JSON, ``front`` (the live :class:`~masksearch.front.ParetoFront`). :func:`summarize` turns a
record into a JSON-safe dict with the best error at the problem's target densities.

* :class:`ProgressBar` — a :mod:`tqdm` bar on stderr with ETA, evaluations/s, front size,
  hypervolume and the best error at the target densities; on a non-terminal it prints a plain
  line every few seconds instead, so logs stay readable.
* :class:`JsonLines` — one JSON object per generation on a stream (stdout for scripts).
* :class:`LogFile` — appends one JSON line per generation to a file (``DIR/log.jsonl``).
* :class:`StopOnSignal` — turns Ctrl-C into "stop after this generation's checkpoint".
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

import numpy as np
from tqdm import tqdm

from masksearch.front import best_within

__all__ = [
    "JsonLines",
    "LogFile",
    "ProgressBar",
    "StopOnSignal",
    "error_at_densities",
    "format_duration",
    "summarize",
]


def error_at_densities(
    front: Any, densities: Sequence[float], slack: float = 1e-12
) -> dict[str, float | None]:
    """Lowest error on ``front`` among members with density <= each target (None: none there).

    ``slack`` is added to each target: pass half a weight (``0.5 / n_weights``) so that a mask
    keeping ``round(target * n_weights)`` weights counts as meeting the target. Keys are the
    densities written with up to 4 significant digits (``"0.05"``), stable JSON keys.
    """
    result: dict[str, float | None] = {}
    metrics = getattr(front, "metrics", {}) if front is not None else {}
    errors = metrics.get("error")
    density = metrics.get("density")
    for target in densities:
        key = density_key(target)
        if errors is None or density is None or len(errors) == 0:
            result[key] = None
            continue
        position = best_within(density, errors, target, slack)
        result[key] = None if position is None else float(np.asarray(errors)[position])
    return result


def density_key(density: float) -> str:
    return f"{density:.4g}"


def summarize(
    record: dict[str, Any], densities: Sequence[float] = (), slack: float = 1e-12
) -> dict[str, Any]:
    """A JSON-safe copy of a search record: ``front`` replaced by ``error_at`` per density."""
    summary = {k: _json_safe(v) for k, v in record.items() if k != "front"}
    if densities:
        summary["error_at"] = error_at_densities(record.get("front"), densities, slack)
    return summary


def _json_safe(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_duration(seconds: float | None) -> str:
    """``h:mm:ss`` or ``m:ss``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """A :mod:`tqdm` progress bar on ``stream`` (default stderr), updated once per generation.

    The bar counts evaluations up to ``budget``, or seconds up to ``time_limit`` when only that
    is given; elapsed time, rate and ETA are the search's own (the record's ``wall_time``). The
    postfix shows the generation, front size, hypervolume and the best error at each of
    ``densities``; with both limits it adds the time left. On a terminal the line redraws in
    place every ``interval`` seconds (default 0.1); elsewhere (a pipe, a log file) it is printed
    as a plain line every ``interval`` seconds (default 5), so logs stay readable.
    """

    def __init__(
        self,
        *,
        budget: int | None = None,
        time_limit: float | None = None,
        densities: Sequence[float] = (),
        stream: IO[str] | None = None,
        interval: float | None = None,
        slack: float = 1e-12,
    ) -> None:
        self.budget = budget
        self.time_limit = time_limit
        self.densities = tuple(densities)
        self.slack = slack
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.1 if self.interactive else 5.0)
        self._bar: tqdm | None = None  # opened by the first record, after the CLI's notes
        self._wall = 0.0
        self._last_draw = -math.inf

    def postfix(self, record: dict[str, Any]) -> str:
        """The text after the bar's counters for ``record``."""
        parts = []
        if self.budget and self.time_limit:
            parts.append(
                f"time left {format_duration(max(0.0, self.time_limit - record['wall_time']))}"
            )
        elif not self.budget and self.time_limit:  # the bar counts seconds: show the evaluations
            wall = record["wall_time"]
            rate = record["n_evals"] / wall if wall > 0 else 0.0
            parts.append(f"{record['n_evals']} evals, {rate:.2f}ev/s")
        parts.append(f"gen {record['generation'] + 1}")
        parts.append(f"front {record['front_size']}")
        parts.append(f"HV {record['hypervolume']:.4f}")
        if self.densities:
            # last: the longest part, the first to be clipped on a narrow terminal
            errors = error_at_densities(record.get("front"), self.densities, self.slack)
            shown = " ".join(
                f"{float(key):.3g}:{'-' if value is None else f'{value:.3f}'}"
                for key, value in errors.items()
            )
            parts.append(f"err@density {shown}")
        return ", ".join(parts)

    def _open(self) -> tqdm:
        time_only = not self.budget and bool(self.time_limit)
        bar = tqdm(
            total=self.time_limit if time_only else self.budget or None,
            unit="s" if time_only else "ev",
            # in seconds mode the counters would repeat the elapsed time: show it once
            bar_format="{l_bar}{bar}| [{elapsed}<{remaining}{postfix}]" if time_only else None,
            file=self.stream if self.interactive else _Lines(self.stream),
            ncols=_columns(self.stream) if self.interactive else None,
            nrows=24,  # only stacked bars use the height; tqdm's guess (-1 when unsized) hides ours
            smoothing=0,  # the rate is the run's average, like the search's own summary
            delay=math.inf,  # no empty bar at creation: the first draw shows the first record
        )
        bar.delay = 0
        return bar

    def __call__(self, record: dict[str, Any]) -> None:
        if self._bar is None:
            self._bar = self._open()
        bar = self._bar
        self._wall = float(record["wall_time"])
        if not self.budget and self.time_limit:
            bar.n = min(self._wall, self.time_limit)
        else:
            bar.n = record["n_evals"]
            if self.budget:  # a search finishes its last generation past the budget
                bar.total = max(self.budget, bar.n)
        bar.set_postfix_str(self.postfix(record), refresh=False)
        now = time.monotonic()
        if now - self._last_draw >= self.interval:
            self._last_draw = now
            self._sync_clock()
            bar.refresh()

    def _sync_clock(self) -> None:
        # tqdm's elapsed time (and so its rate and ETA) is the record's wall time
        assert self._bar is not None
        self._bar.start_t = self._bar._time() - self._wall
        if self.interactive:  # follow a resized terminal
            self._bar.ncols = _columns(self.stream)

    def close(self) -> None:
        """Show the last record (if throttling hid it) and end the line."""
        if self._bar is not None:
            self._sync_clock()
            self._bar.close()
        self._bar = None
        self._last_draw = -math.inf


def _columns(stream: IO[str]) -> int | None:
    """The terminal's width less one (a full line would wrap), None when unknown."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return None
    # a pseudo-terminal nobody sized reports 0 columns; tqdm would then print nothing
    return columns - 1 if columns > 20 else None


class _Lines:
    """A non-terminal stream for tqdm: each redraw becomes one plain line, repeats dropped."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._last = ""

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line and line != self._last:
            self.stream.write(line + "\n")
            self._last = line

    def flush(self) -> None:
        self.stream.flush()


class JsonLines:
    """Writes :func:`summarize` of every record as one JSON line on ``stream`` (stdout)."""

    def __init__(
        self,
        *,
        densities: Sequence[float] = (),
        stream: IO[str] | None = None,
        slack: float = 1e-12,
    ) -> None:
        self.densities = tuple(densities)
        self.stream = stream if stream is not None else sys.stdout
        self.slack = slack

    def __call__(self, record: dict[str, Any]) -> None:
        summary = {"event": "generation", **summarize(record, self.densities, self.slack)}
        self.stream.write(json.dumps(summary) + "\n")
        self.stream.flush()


class LogFile:
    """Appends :func:`summarize` of every record as one JSON line to ``path``.

    Each line is flushed and fsynced, so the log survives a crash up to the last generation.
    The first record a process writes drops the lines of that generation and later ones: a
    resumed search redoes the generations after its checkpoint, and the log keeps one line each.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, densities: Sequence[float] = (), slack: float = 1e-12
    ) -> None:
        self.path = os.fspath(path)
        self.densities = tuple(densities)
        self.slack = slack
        self._trimmed = False

    def __call__(self, record: dict[str, Any]) -> None:
        if not self._trimmed:
            self._trim(int(record.get("generation", 0)))
            self._trimmed = True
        line = json.dumps(summarize(record, self.densities, self.slack)) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def _trim(self, generation: int) -> None:
        from masksearch.io import atomic_write_text

        try:
            with open(self.path, encoding="utf-8") as handle:
                lines = handle.readlines()
        except FileNotFoundError:
            return
        kept = []
        for line in lines:
            try:
                earlier = json.loads(line).get("generation", -1) < generation
            except (json.JSONDecodeError, AttributeError, TypeError):
                earlier = False  # a line torn by a kill mid-write
            if earlier:
                kept.append(line if line.endswith("\n") else line + "\n")
        if len(kept) != len(lines):
            atomic_write_text("".join(kept), self.path)


class StopOnSignal:
    """Ctrl-C (SIGINT) or SIGTERM asks the search to stop after the current generation.

    Use as a context manager and put it *last* in the callbacks: this one raises
    ``KeyboardInterrupt``, which ``search()`` holds until the generation's checkpoint is written
    and then turns into a clean stop (``Result.stopped == "interrupted"``). A second Ctrl-C
    interrupts at once.
    """

    def __init__(self, *, stream: IO[str] | None = None) -> None:
        self.requested = False
        self.stream = stream if stream is not None else sys.stderr
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.stream.write(
            "\nmasksearch: stopping after this generation's checkpoint "
            "(press Ctrl-C again to stop at once)\n"
        )
        self.stream.flush()

    def __call__(self, record: dict[str, Any]) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def __enter__(self) -> StopOnSignal:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
