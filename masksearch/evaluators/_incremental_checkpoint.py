"""Checkpoints of an incremental evaluator's cache, as plain data.

An update's result differs from a full pass's in the last bits, so what the cache holds decides
the bits of later results. :meth:`CheckpointableCache.state_dict` stores the records, and for
each slot the *recipe* that computed it (a full pass, or the update from its parent's recipe)
rather than its activations (megabytes each); :meth:`~CheckpointableCache.load_state_dict`
replays the recipes with the same arithmetic, so a restored evaluator scores every later
population bit for bit as the original does. The state holds only ints, strings, dicts and
numpy arrays: :mod:`masksearch.checkpoint`'s restricted unpickler needs no class of ours.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from masksearch.evaluators._incremental_cache import ActivationCache, _Recipe
from masksearch.evaluators._packed_mask_kernels import _flipped, _unpack
from masksearch.mask import Layout

# version of the dict state_dict() returns
_STATE_FORMAT = 1
# the per-record arrays a state stores whole (the packed masks are stored for valid records only)
_RECORD_ARRAYS = (
    "last_used",
    "depth",
    "loss",
    "error",
    "slot",
    "parent",
    "parent_stamp",
    "stamp",
)


class CheckpointableCache(ActivationCache, ABC):
    """:class:`ActivationCache` with :meth:`state_dict` and :meth:`load_state_dict`.

    Replaying a recipe takes the evaluator's two ways of computing activations, which it
    provides: :meth:`_forward` (a full pass) and :meth:`_run` (the compiled update).
    """

    layout: Layout
    label_smoothing: float

    @abstractmethod
    def _forward(self, mask: np.ndarray, out: np.ndarray) -> tuple[float, float, np.ndarray]:
        """(loss, error, kept per neuron) of a full pass of ``mask`` written into ``out``."""

    @abstractmethod
    def _run(
        self,
        indices: np.ndarray,
        sources: np.ndarray,
        targets: np.ndarray,
        words: np.ndarray,
        flip_pointers: np.ndarray,
        flips: np.ndarray,
        kept: np.ndarray,
        z: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(losses, errors) of planned children updated from the activations of slots."""

    def state_dict(self) -> dict[str, Any]:
        """The cache as plain data (ints, floats, strings, numpy arrays), for a checkpoint.

        The records are stored whole (packed masks and kept counts for the valid ones only),
        the slots as the recipes that computed them (a few kB each: the activations are
        megabytes). :meth:`load_state_dict` replays the recipes, so the restored evaluator
        scores every later population bit for bit as this one does.
        """
        valid = self._valid.copy()
        owned = [slot for slot in range(self.capacity) if self._slot_owner[slot] >= 0]
        # the owned slots' recipes and their ancestors, each ancestor before its descendants
        order: list[_Recipe] = []
        position: dict[int, int] = {}
        for slot in owned:
            chain: list[_Recipe] = []
            recipe = self._recipes[slot]
            while recipe is not None and id(recipe) not in position:
                chain.append(recipe)
                recipe = recipe.parent
            for recipe in reversed(chain):
                position[id(recipe)] = len(order)
                order.append(recipe)
        record = np.array([recipe.record for recipe in order], dtype=np.int64)
        stamp = np.array([recipe.stamp for recipe in order], dtype=np.int64)
        # a recipe whose record still holds its mask refers to it; the others carry a copy
        live = self._valid[record] & (self._stamp[record] == stamp)
        copied = np.flatnonzero(~live)
        copy = np.full(len(order), -1, dtype=np.int64)
        copy[copied] = np.arange(len(copied))
        slot_of = np.full(len(order), -1, dtype=np.int64)
        for slot in owned:
            slot_of[position[id(self._recipes[slot])]] = slot
        return {
            "format": _STATE_FORMAT,
            "n_total": self.layout.n_total,
            "n_samples": self.n_samples,
            "capacity": self.capacity,
            "n_records": self.n_records,
            "label_smoothing": self.label_smoothing,
            "clock": int(self._clock),
            "records": {
                "valid": valid,
                "bits": self._bits[valid],
                "kept": self._kept[valid],
                **{name: getattr(self, f"_{name}").copy() for name in _RECORD_ARRAYS},
            },
            "recipes": {
                "parent": np.array(
                    [-1 if r.parent is None else position[id(r.parent)] for r in order],
                    dtype=np.int64,
                ),
                "record": record,
                "stamp": stamp,
                "slot": slot_of,
                "copy": copy,
                "words": np.stack([order[i].words for i in copied])
                if len(copied)
                else np.zeros((0, self._n_words), dtype=np.uint64),
                "kept": np.stack([order[i].kept for i in copied])
                if len(copied)
                else np.zeros((0, self._n_rows), dtype=np.int32),
            },
            "stats": {name: int(value) for name, value in self.stats.items()},
            "rebuilds": {name: int(value) for name, value in self.rebuilds.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned, on an evaluator of the same model, data and
        settings; the slots' activations are recomputed (a forward pass or an update each)."""
        if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
            raise ValueError(
                "not an IncrementalEvaluator state (expected the dict from state_dict())"
            )
        ours = {
            "n_total": self.layout.n_total,
            "n_samples": self.n_samples,
            "capacity": self.capacity,
            "n_records": self.n_records,
            "label_smoothing": self.label_smoothing,
        }
        # states saved before the loss could be smoothed hold plain cross-entropies
        state = {"label_smoothing": 0.0, **state}
        for key, value in ours.items():
            if state[key] != value:
                raise ValueError(
                    f"the saved cache has {key}={state[key]}, this evaluator {value}; restore it "
                    "into an evaluator of the same model, data and settings"
                )
        self._allocate()
        records = state["records"]
        valid = np.asarray(records["valid"], dtype=bool)
        self._valid[:] = valid
        self._bits[valid] = records["bits"]
        self._rough[valid] = self._bits[valid][:, self._sample_words]
        self._kept[valid] = records["kept"]
        for name in _RECORD_ARRAYS:
            getattr(self, f"_{name}")[:] = records[name]
        self._clock = int(state["clock"])
        owners = np.flatnonzero(self._slot >= 0)
        self._slot_owner[self._slot[owners]] = owners
        self._replay(state["recipes"])
        self.stats = {name: int(value) for name, value in state["stats"].items()}
        self.rebuilds = {name: int(value) for name, value in state["rebuilds"].items()}

    def _replay(self, recipes: dict[str, np.ndarray]) -> None:
        """Recompute the slots of a saved state from their recipes, ancestors first, with the
        arithmetic that first computed them: a full pass, or :meth:`_run` of the update (one
        child, as :meth:`_materialise` runs it). An ancestor that holds no slot lives in a
        temporary until its last child is computed."""
        parents = np.asarray(recipes["parent"], dtype=np.int64)
        n = len(parents)
        waiting = np.bincount(parents[parents >= 0], minlength=n)  # children not yet computed
        held: dict[int, np.ndarray] = {}
        rebuilt: list[_Recipe] = []
        work = np.empty((0, self._n_rows, self.n_samples), dtype=np.float32)
        for node in range(n):
            record, copy = int(recipes["record"][node]), int(recipes["copy"][node])
            if copy >= 0:
                words = np.array(recipes["words"][copy], dtype=np.uint64)
                kept = np.array(recipes["kept"][copy], dtype=np.int32)
            else:
                words, kept = self._bits[record].copy(), self._kept[record].copy()
            slot = int(recipes["slot"][node])
            parent = int(parents[node])
            out = (
                self._z[slot]
                if slot >= 0
                else np.empty((self._n_rows, self.n_samples), dtype=np.float32)
            )
            if parent < 0:
                self._forward(_unpack(words, self.layout.n_total), out)
            else:
                # the update reads and writes slots of one array: the parent's activations
                # are copied in and the result out (copies are exact)
                if len(work) == 0:
                    work = np.empty((2, self._n_rows, self.n_samples), dtype=np.float32)
                work[0] = held[parent]
                flips = _flipped(rebuilt[parent].words, words)
                self._run(
                    np.zeros(1, dtype=np.int64),
                    np.zeros(1, dtype=np.int64),
                    np.ones(1, dtype=np.int64),
                    words[None],
                    np.array([0, len(flips)], dtype=np.int64),
                    flips,
                    kept[None],
                    z=work,
                )
                out[:] = work[1]
                waiting[parent] -= 1
                if waiting[parent] == 0:
                    del held[parent]
            if waiting[node]:
                held[node] = out
            recipe = _Recipe(
                words=words,
                kept=kept,
                parent=None if parent < 0 else rebuilt[parent],
                record=record,
                stamp=int(recipes["stamp"][node]),
            )
            rebuilt.append(recipe)
            if slot >= 0:
                self._recipes[slot] = recipe
