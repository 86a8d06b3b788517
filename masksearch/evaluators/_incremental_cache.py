"""The memory of an incremental evaluator: remembered masks and the activations of some.

Every mask the evaluator scores becomes a *record* (packed bits, kept weights per neuron, loss,
error, the record it was updated from); a bounded set of *slots* holds the pre-activations of
some records. :class:`ActivationCache` allocates them and decides what goes where: the least
recently used record or slot makes room, except those *pinned* (the parents of the children
being scored), with a scratch slot (index ``capacity``) when every slot is pinned. Each slot
keeps the :class:`_Recipe` that computed it, which a checkpoint stores in place of the
activations (:mod:`masksearch.evaluators._incremental_checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class _Recipe:
    """How a slot's activations were computed: a full pass of ``words``, or the update of the
    parent recipe's activations to ``words``. A checkpoint stores recipes and replays them (the
    same arithmetic gives the same bits) instead of the slots' activations, which are large.
    """

    words: np.ndarray  # the packed mask (a copy: its record may be replaced meanwhile)
    kept: np.ndarray  # kept weights per neuron, as the update was given them
    parent: _Recipe | None  # None: a full forward pass
    record: int  # the record it was computed for, and that record's stamp then: while the
    stamp: int  # stamp holds, a checkpoint refers to the record's mask instead of a copy


class ActivationCache:
    """Records and activation slots of an
    :class:`~masksearch.evaluators.incremental.IncrementalEvaluator`, and their bookkeeping.

    A base of the evaluator, not usable alone: the evaluator's constructor sets the sizes below
    and then calls :meth:`_allocate`.
    """

    capacity: int  # slots (the scratch slot ``capacity`` comes on top)
    n_records: int
    n_samples: int
    prefault: bool
    _n_rows: int  # neurons of all layers: the rows of a slot
    _n_words: int  # uint64 words of a packed mask
    _sample_words: np.ndarray  # the words the rough Hamming distance reads

    def _allocate(self) -> None:
        # slot ``capacity`` is scratch: it takes a result that has no slot to go to
        self._z = np.empty((self.capacity + 1, self._n_rows, self.n_samples), dtype=np.float32)
        if self.prefault:
            self._z.fill(0.0)
        self._slot_owner = np.full(self.capacity + 1, -1, dtype=np.int64)
        # records: every remembered mask
        n = self.n_records
        self._bits = np.zeros((n, self._n_words), dtype=np.uint64)
        self._rough = np.zeros((n, len(self._sample_words)), dtype=np.uint64)
        # kept weights per neuron: a neuron with none is exactly its bias, whatever rounding
        # the incremental updates leave behind
        self._kept = np.zeros((n, self._n_rows), dtype=np.int32)
        self._valid = np.zeros(n, dtype=bool)
        self._pinned = np.zeros(n, dtype=bool)
        self._last_used = np.zeros(n, dtype=np.int64)
        self._depth = np.zeros(n, dtype=np.int64)
        self._loss = np.zeros(n, dtype=np.float64)
        self._error = np.zeros(n, dtype=np.float64)
        self._slot = np.full(n, -1, dtype=np.int64)  # the record's slot, -1: not materialised
        self._parent = np.full(n, -1, dtype=np.int64)  # record it was computed from
        self._parent_stamp = np.zeros(n, dtype=np.int64)
        self._stamp = np.zeros(n, dtype=np.int64)  # bumped whenever the record is replaced
        self._clock = 0
        # how each slot's activations were computed (None: the slot holds nothing of use)
        self._recipes: list[_Recipe | None] = [None] * (self.capacity + 1)
        # scratch of the update, per worker thread (allocated on first use): changed rows and
        # whole layers
        self._rows_scratch: np.ndarray | None = None
        self._dense_scratch: np.ndarray | None = None

    def clear(self) -> None:
        """Forget every remembered mask."""
        self._valid[:] = False
        self._slot[:] = -1
        self._slot_owner[:] = -1
        self._recipes = [None] * (self.capacity + 1)

    _CACHE_ARRAYS = (
        "_z",
        "_slot_owner",
        "_bits",
        "_rough",
        "_kept",
        "_valid",
        "_pinned",
        "_last_used",
        "_depth",
        "_loss",
        "_error",
        "_slot",
        "_parent",
        "_parent_stamp",
        "_stamp",
        "_rows_scratch",
        "_dense_scratch",
    )

    def __getstate__(self) -> dict:
        # the cache is large and only useful to this process: ship none, rebuild it empty
        state = dict(self.__dict__)
        for name in self._CACHE_ARRAYS:
            del state[name]
        del state["_recipes"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._allocate()

    def _rebuildable(self, record: int) -> bool:
        """Whether a record's parent still holds, in a slot, the activations it came from."""
        parent = self._parent[record]
        return (
            parent >= 0
            and self._valid[parent]
            and self._stamp[parent] == self._parent_stamp[record]
            and self._slot[parent] >= 0
        )

    # -- cache bookkeeping --------------------------------------------------------------
    def _touch(self, record: int) -> None:
        self._clock += 1
        self._last_used[record] = self._clock

    def _remember(
        self, words: np.ndarray, loss: float, error: float, kept: np.ndarray, parent: int
    ) -> int:
        """Store a scored mask as a record (lazy when ``parent`` >= 0); returns it, or -1."""
        free = np.flatnonzero(~self._valid)
        if len(free):
            record = int(free[0])
        else:
            ages = np.where(self._pinned, np.iinfo(np.int64).max, self._last_used)
            record = int(np.argmin(ages))
            if self._pinned[record]:
                return -1
            self._release(record)
        self._bits[record] = words
        self._rough[record] = words[self._sample_words]
        self._kept[record] = kept
        self._valid[record] = True
        self._loss[record], self._error[record] = loss, error
        self._stamp[record] += 1
        self._slot[record] = -1
        self._parent[record] = parent
        if parent >= 0:
            self._parent_stamp[record] = self._stamp[parent]
            self._depth[record] = self._depth[parent] + 1
        else:
            self._depth[record] = 0
        self._touch(record)
        return record

    def _remember_children(
        self,
        words: np.ndarray,
        losses: np.ndarray,
        errors: np.ndarray,
        kept: np.ndarray,
        parents: np.ndarray,
    ) -> None:
        """:meth:`_remember` each of a batch of lazy children, in order, with array operations
        (the records, clocks and evictions are those of the one-by-one calls)."""
        count = len(words)
        records = np.flatnonzero(~self._valid)[:count]
        missing = count - len(records)
        if missing:
            never = np.iinfo(np.int64).max
            ages = np.where(self._pinned | ~self._valid, never, self._last_used)
            oldest = np.argsort(ages, kind="stable")[:missing]
            if ages[oldest[-1]] == never:
                # one by one, the batch would evict its own records (or find none to evict)
                for index in range(count):
                    self._remember(
                        words[index],
                        float(losses[index]),
                        float(errors[index]),
                        kept[index],
                        parent=int(parents[index]),
                    )
                return
            slots = self._slot[oldest]
            self._slot_owner[slots[slots >= 0]] = -1
            for slot in slots[slots >= 0].tolist():
                self._recipes[slot] = None
            records = np.concatenate([records, oldest])
        self._bits[records] = words
        self._rough[records] = words[:, self._sample_words]
        self._kept[records] = kept
        self._valid[records] = True
        self._loss[records], self._error[records] = losses, errors
        self._stamp[records] += 1
        self._slot[records] = -1
        self._parent[records] = parents
        self._parent_stamp[records] = self._stamp[parents]
        self._depth[records] = self._depth[parents] + 1
        self._last_used[records] = self._clock + np.arange(1, count + 1)
        self._clock += count

    def _release(self, record: int) -> None:
        slot = self._slot[record]
        if slot >= 0:
            self._slot_owner[slot] = -1
            self._recipes[slot] = None
        self._slot[record] = -1
        self._valid[record] = False

    def _assign(self, record: int, slot: int, source: _Recipe | None) -> None:
        """Give ``slot`` to ``record``, whose activations it now holds: computed by a full pass
        (``source`` None) or updated from the activations of recipe ``source``."""
        if slot >= self.capacity:
            self._slot_owner[slot] = record  # scratch: for the current group only
            return
        self._slot_owner[slot] = record
        self._slot[record] = slot
        self._recipes[slot] = _Recipe(
            words=self._bits[record].copy(),
            kept=self._kept[record].copy(),
            parent=source,
            record=record,
            stamp=int(self._stamp[record]),
        )

    def _victim(self, exclude: int = -1) -> int:
        """The slot a new activation block goes to: a free one, else the one of the least
        recently used unpinned record, else the scratch slot (``capacity``)."""
        owners = self._slot_owner[: self.capacity]
        free = np.flatnonzero(owners < 0)
        free = free[free != exclude]
        if len(free):
            return int(free[0])
        ages = np.where(self._pinned[owners], np.iinfo(np.int64).max, self._last_used[owners])
        if 0 <= exclude < self.capacity:
            ages[exclude] = np.iinfo(np.int64).max
        oldest = int(np.argmin(ages))
        if ages[oldest] == np.iinfo(np.int64).max:
            return self.capacity
        self._slot[owners[oldest]] = -1
        self._slot_owner[oldest] = -1
        self._recipes[oldest] = None
        return oldest
