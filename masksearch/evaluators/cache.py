"""Memoisation of evaluated masks: no genome is evaluated twice.

Keys are a BLAKE2b digest of the bit-packed mask (16 bytes per entry plus the metrics), so
the cache stays small even for millions of masks. Its state is a plain dict that pickles, for
checkpoints, and holds the inner evaluator's state too (an incremental evaluator's cache
decides the last bits of later results).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from masksearch.evaluators.base import Evaluator, Metrics, inner_state, load_inner_state

__all__ = ["CachedEvaluator", "mask_key"]

_FORMAT = 1


def mask_key(mask: np.ndarray) -> bytes:
    """16-byte digest of one flat bool mask (its bit-packed bytes and its length)."""
    return _packed_key(np.packbits(mask), len(mask))


def _packed_key(packed: np.ndarray, n_bits: int) -> bytes:
    """:func:`mask_key` of the mask whose :func:`numpy.packbits` row is ``packed``."""
    digest = hashlib.blake2b(packed.tobytes(), digest_size=16)
    digest.update(n_bits.to_bytes(8, "little"))
    return digest.digest()


class CachedEvaluator(Evaluator):
    """Wraps an evaluator so that each distinct mask reaches it once.

    Duplicates inside one population are evaluated once; masks seen in earlier calls are
    answered from the cache (``hits``/``misses`` count them). Results that are not exact
    (``"exact"`` False, or ``"fidelity"`` below 1) are passed through but not stored, so a later
    exact evaluation can still happen. ``max_entries`` (default unbounded) drops the oldest
    entries first. :meth:`state_dict` / :meth:`load_state_dict` save and restore the entries,
    and the inner evaluator's state when it has one.
    """

    def __init__(self, inner: Evaluator, max_entries: int | None = None) -> None:
        if not isinstance(inner, Evaluator):
            raise TypeError(f"inner must be an Evaluator, got {type(inner).__name__}")
        if max_entries is not None and (
            isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1
        ):
            raise ValueError(f"max_entries must be an int >= 1 or None, got {max_entries!r}")
        self.inner = inner
        self.layout = inner.layout
        self.n_samples = getattr(inner, "n_samples", None)
        self.max_entries = max_entries
        self.entries: dict[bytes, dict[str, Any]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self.entries)

    def _evaluate(self, masks: np.ndarray) -> Metrics:
        return self._answer([mask_key(row) for row in masks], masks, self.inner)

    def _evaluate_packed(self, rows: np.ndarray) -> Metrics:
        # the keys hash the packed bytes: packed masks need no packing, nor any unpacking
        n_total = self.layout.n_total
        keys = [_packed_key(row, n_total) for row in rows]
        return self._answer(keys, rows, self.inner.evaluate_packed)

    def _answer(
        self, keys: list[bytes], masks: np.ndarray, score: Callable[[np.ndarray], Metrics]
    ) -> Metrics:
        """Metrics of ``masks`` (bool or packed rows, keyed by ``keys``): cached ones looked up,
        the first of each other key scored by ``score``."""
        first_of: dict[bytes, int] = {}
        todo: list[int] = []
        for row, key in enumerate(keys):
            if key not in self.entries and key not in first_of:
                first_of[key] = row
                todo.append(row)
        self.misses += len(todo)
        self.hits += len(masks) - len(todo)
        fresh: dict[bytes, dict[str, Any]] = {}
        if todo:
            result = score(masks[todo])
            for position, row in enumerate(todo):
                values = {name: array[position] for name, array in result.items()}
                fresh[keys[row]] = values
                if _is_exact(values):
                    self.entries[keys[row]] = values
            self._trim()
        rows = [fresh[key] if key in fresh else self.entries[key] for key in keys]
        names = list(rows[0])
        return {name: np.asarray([values[name] for values in rows]) for name in names}

    def _trim(self) -> None:
        if self.max_entries is None:
            return
        # dicts keep insertion order: the first keys are the oldest
        excess = len(self.entries) - self.max_entries
        for key in list(self.entries)[: max(0, excess)]:
            del self.entries[key]

    def state_dict(self) -> dict[str, Any]:
        """The cached entries and counters (and the inner evaluator's state) as a picklable
        dict."""
        return {
            "format": _FORMAT,
            "n_total": self.layout.n_total,
            "entries": {key: dict(values) for key, values in self.entries.items()},
            "hits": self.hits,
            "misses": self.misses,
            "inner": inner_state(self.inner),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (for the same layout)."""
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError("not a CachedEvaluator state (expected the dict from state_dict())")
        if state["n_total"] != self.layout.n_total:
            raise ValueError(
                f"the saved cache is for masks of {state['n_total']} weights, this evaluator's "
                f"layout has {self.layout.n_total}"
            )
        self.entries = {key: dict(values) for key, values in state["entries"].items()}
        self.hits, self.misses = int(state["hits"]), int(state["misses"])
        # a state saved before the inner evaluator's was included has none: nothing to restore
        load_inner_state(self.inner, state.get("inner"))


def _is_exact(values: dict[str, Any]) -> bool:
    if "exact" in values and not bool(values["exact"]):
        return False
    return not ("fidelity" in values and float(values["fidelity"]) < 1.0)
