"""Exact incremental evaluation of masks close to recently evaluated ones (Linear stacks).

For an ``nn.Sequential`` of Flatten / Linear / ReLU (plus eval-mode no-ops: Identity, Dropout),
the evaluator remembers every mask it scored (a *record*: packed bits, loss, error) and keeps
the pre-activations ``z_l`` (every Linear layer, every sample of the split) of some of them in a
bounded set of *slots*. A new candidate looks for the remembered mask at the smallest Hamming
distance (bit-packed XOR + popcount, one Numba pass over the whole population) and, when the
difference is small, updates that parent's pre-activations instead of recomputing them::

    z_l(child) = z_l(parent) + W_l(child) · (a_{l-1}(child) - a_{l-1}(parent))    [changed inputs]
                             + (W_l(child) - W_l(parent)) · a_{l-1}(parent)         [flipped weights]

Layer by layer: while no input of a layer changed, only the rows of its flipped weights change
(O(samples·k) for k flips) and only those rows are computed; the next layer gets the touched
rows' activation change times the child's nonzero weights from them (the kept weights are
sparse at the densities a pruning search visits; a block of samples on which an input's
activation did not change, a ReLU that stays off, is skipped); the output layer (small), and any
layer for which the update would cost more than recomputing it, is recomputed from the child's
input activations, which also keeps exact ties between logits exact.

Children are *lazy*: the update runs into scratch buffers and only the child's loss, error and a
link to its parent are remembered, so scoring a child writes no slot (no 1.7 MB copy, no page
faults). A lazy record is materialised — recomputed from its parent's slot, or by a full pass
if that slot has been reused — only when a later candidate picks it as its parent.

Exact up to float32 rounding; a chain of incremental updates is cut by a full recomputation
every ``max_depth`` generations so rounding cannot accumulate. CPU only.

Memory is bounded by the settings, not by the population: ``capacity`` slots of
``entry_bytes = 4 · n_samples · Σ_l out_l`` bytes (float32; lenet300 on 1,024 samples:
1.6 MB per slot), at most ``cache_size`` slots and ``cache_memory`` bytes (defaults 256 slots,
512 MiB), plus ``records`` remembered masks of ``record_bytes`` each (packed bits and per-neuron
counts; default 4 × ``capacity``) and scratch buffers of two slots per worker thread.

The children of one call are planned (flips, kept weights, cost) and scored in single compiled
calls; threads score whole children, each with its own scratch, so a child's result does not
depend on the thread count.

An update's result differs from a full pass's in the last bits, so what the cache holds decides
the bits of later results. ``state_dict()`` saves it for a checkpoint as plain data — the
records, and for each slot the *recipe* that computed it (a full pass, or the update from its
parent's recipe) rather than its activations — and ``load_state_dict()`` replays the recipes
with the same arithmetic: a restored evaluator then scores every later population bit for bit
as the original does.

The parts live apart: :mod:`~masksearch.evaluators._incremental_stack` (the supported models),
:mod:`~masksearch.evaluators._incremental_cache` (records and slots),
:mod:`~masksearch.evaluators._incremental_checkpoint` (``state_dict``),
:mod:`~masksearch.evaluators._packed_mask_kernels` (packed masks, nearest records, update plans)
and :mod:`~masksearch.evaluators._incremental_update_kernels` (the compiled update); this
module holds the evaluator and the path of a population through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
import torch
from torch import nn

from masksearch._bits import unpack_bits
from masksearch.evaluators._incremental_checkpoint import CheckpointableCache
from masksearch.evaluators._incremental_stack import UnsupportedModelError, _Layer, linear_stack

# ``name as name``: kernels re-exported for the tests, which import them from this module
from masksearch.evaluators._incremental_update_kernels import _cross_entropy as _cross_entropy
from masksearch.evaluators._incremental_update_kernels import _delta_layer as _delta_layer
from masksearch.evaluators._incremental_update_kernels import _score_children
from masksearch.evaluators._packed_mask_kernels import (
    _distinct_rows,
    _flipped,
    _nearest_batch,
    _pack,
    _plan_children,
    _unpack,
)
from masksearch.evaluators._packed_mask_kernels import _nearest as _nearest
from masksearch.evaluators._packed_mask_kernels import _set_bits as _set_bits
from masksearch.evaluators.base import Evaluator, Metrics, _SplitLike, label_log_likelihood
from masksearch.mask import Layout

__all__ = ["IncrementalEvaluator", "UnsupportedModelError", "linear_stack"]

# cost of one scattered multiply-add (a sparse update) in GEMM multiply-adds
_SCATTER_COST = 2.0
# the sampled Hamming distance shortlists this many records for the exact distance
_SHORTLIST = 4
_SAMPLED_WORDS = 32
# samples per block of the layer kernels (larger blocks measured faster than L1-sized ones: the
# per-block work of every changed input is repeated)
_BLOCK = 1024
# children are scored in parallel, whole children per thread: each thread needs two slots of
# scratch, so the threads are capped
_MAX_WORKERS = 16
# children planned per compiled call (bounds the flip lists of far-away candidates)
_PLAN_CHUNK = 64


@dataclass(frozen=True)
class _Children:
    """Children planned for an incremental update, in compiled-call form."""

    rows: np.ndarray  # (n,) the children's rows in the population
    parents: np.ndarray  # (n,) the record each child is updated from
    words: np.ndarray  # (n, words) packed masks
    flip_pointers: np.ndarray  # (n + 1,) child i's flipped genes: flips[p[i]:p[i + 1]]
    flips: np.ndarray  # flipped genes, sorted within each child
    kept: np.ndarray  # (n, rows) kept weights per neuron
    groups: dict[int, list[int]]  # parent record → its children (indices into the above)


class IncrementalEvaluator(CheckpointableCache, Evaluator):
    """Exact evaluator that reuses the activations of remembered, nearby masks (CPU).

    ``cache_size`` (slots) and ``cache_memory`` (bytes) bound the activation slots (the smaller
    wins; at least 2); ``records`` bounds the remembered masks (default 4 × the slots). A
    candidate is computed incrementally when the estimated cost of the update is below
    ``full_ratio`` times that of a full forward pass, and from scratch (one forward pass written
    straight into a slot) otherwise. ``max_depth`` caps chains of incremental updates.
    ``threads`` sets the Numba threads that score children in parallel, whole children per
    thread (default: Numba's, at most 16; on a machine whose cores are busy with other work, 1
    avoids waiting on descheduled threads). A slot's
    memory is committed when it is first written; ``prefault=True`` touches all of it at
    construction instead, for steady timings and memory from the first generation.

    ``stats`` counts the candidates scored ``"incremental"`` (from a parent's activations),
    ``"full"`` (a forward pass) and ``"cached"`` (a remembered mask); ``rebuilds`` counts the
    lazy parents materialised ``"incremental"`` (from their own parent) or ``"full"`` (their
    parent's slot had been reused), which are extra work on top of ``stats``.

    :meth:`state_dict` / :meth:`load_state_dict` save and restore the cache for a checkpoint
    (plain data, about the records' packed masks in size); a restored evaluator scores every
    later population bit for bit as the original would.
    """

    def __init__(
        self,
        model: nn.Module,
        split: _SplitLike,
        layout: Layout,
        device: str | torch.device = "cpu",
        cache_size: int = 256,
        cache_memory: int = 512 * 2**20,
        full_ratio: float = 0.25,
        max_depth: int = 32,
        threads: int | None = None,
        prefault: bool = False,
        records: int | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        stack = linear_stack(model, layout)
        self._take_snapshot(model, split, layout, device, label_smoothing)
        if self.device.type != "cpu":
            raise ValueError(
                "incremental evaluation runs on the CPU; on a GPU use kind='batched' "
                f"(got device {device!r})"
            )
        self.full_ratio = _positive_float("full_ratio", full_ratio)
        self.max_depth = _positive_int("max_depth", max_depth)
        self.threads = None if threads is None else _positive_int("threads", threads)
        self.prefault = bool(prefault)
        snap = self.snapshot
        self._layers: list[_Layer] = []
        bias_parts: list[np.ndarray] = []
        row = 0
        for name, module, relu in stack:
            key = f"{name}.weight"
            weight = snap.params[key].to(torch.float32).contiguous().numpy()
            out = weight.shape[0]
            self._layers.append(
                _Layer(
                    weight=weight,
                    relu=relu,
                    genes=layout.slice(key) if key in layout.names else None,
                    rows=slice(row, row + out),
                )
            )
            row += out
            bias = snap.params.get(f"{name}.bias") if module.bias is not None else None
            bias_parts.append(
                np.zeros(out, np.float32) if bias is None else bias.to(torch.float32).numpy()
            )
        self._n_rows = row
        self._bias = np.ascontiguousarray(np.concatenate(bias_parts), dtype=np.float32)
        # the compiled update's view of the stack
        self._weights = tuple(layer.weight for layer in self._layers)
        self._row_start = np.array(
            [layer.rows.start for layer in self._layers] + [row], dtype=np.int64
        )
        self._n_inputs = np.array([layer.shape[1] for layer in self._layers], dtype=np.int64)
        self._gene_start = np.array(
            [layer.genes.start if layer.genes else -1 for layer in self._layers], dtype=np.int64
        )
        self._relu = np.array([layer.relu for layer in self._layers], dtype=np.bool_)
        self._max_workers = min(_MAX_WORKERS, self.threads or numba.config.NUMBA_NUM_THREADS)
        self._has_bias = [
            snap.params.get(f"{name}.bias") is not None and module.bias is not None
            for name, module, _ in stack
        ]
        inputs = snap.x.reshape(self.n_samples, -1).to(torch.float32).contiguous()
        if inputs.shape[1] != self._layers[0].shape[1]:
            raise UnsupportedModelError(
                f"inputs have {inputs.shape[1]} features but the first Linear layer expects "
                f"{self._layers[0].shape[1]}"
            )
        # feature-major (features × samples): every update is a contiguous run over samples
        self._inputs_t = np.ascontiguousarray(inputs.numpy().T)
        self._labels = snap.y.numpy().astype(np.int64)
        self._full_cost = float(sum(o * i for o, i in (layer.shape for layer in self._layers)))
        # gene → layer lookup: the prunable layers' gene ranges, in gene order
        self._pruned = [index for index, layer in enumerate(self._layers) if layer.genes]
        self._gene_bounds = np.array(
            [self._layers[i].genes.start for i in self._pruned]
            + [self._layers[self._pruned[-1]].genes.stop if self._pruned else 0],
            dtype=np.int64,
        )

        self._n_words = ((layout.n_total + 7) // 8 + 7) // 8
        self.entry_bytes = 4 * self.n_samples * self._n_rows
        self.capacity = max(
            2, min(_positive_int("cache_size", cache_size), int(cache_memory) // self.entry_bytes)
        )
        self.n_records = (
            4 * self.capacity if records is None else max(2, _positive_int("records", records))
        )
        self.record_bytes = 8 * self._n_words + 4 * self._n_rows + 64
        stride = max(1, self._n_words // _SAMPLED_WORDS)
        self._sample_words = np.arange(0, self._n_words, stride, dtype=np.int64)
        self._allocate()
        self.stats = {"incremental": 0, "full": 0, "cached": 0}
        self.rebuilds = {"incremental": 0, "full": 0}

    @property
    def memory_bytes(self) -> int:
        """The bound on the cache's memory: slots (with scratch) plus records."""
        slots = self.capacity + 1 + 2 * self._max_workers
        return slots * self.entry_bytes + self.n_records * self.record_bytes

    @staticmethod
    def supports(model: nn.Module, layout: Layout) -> bool:
        """Whether ``model`` (with ``layout``) is a Linear stack this evaluator handles."""
        try:
            linear_stack(model, layout)
        except UnsupportedModelError:
            return False
        return True

    # -- evaluation ---------------------------------------------------------------------
    def _evaluate(self, masks: np.ndarray) -> Metrics:
        return self._with_threads(_pack(masks, self._n_words), lambda row: masks[row])

    def _evaluate_packed(self, rows: np.ndarray) -> Metrics:
        # the records are np.packbits rows padded to whole words: no bool population is built,
        # and only a mask that needs a full pass (rare once parents are cached) is unpacked
        words = np.zeros((len(rows), 8 * self._n_words), dtype=np.uint8)
        words[:, : rows.shape[1]] = rows
        n_total = self.layout.n_total
        return self._with_threads(
            words.view(np.uint64), lambda row: unpack_bits(rows[row], n_total)
        )

    def _with_threads(self, words: np.ndarray, mask_of: Callable[[int], np.ndarray]) -> Metrics:
        previous_threads = numba.get_num_threads()
        if self.threads is not None:
            numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
        try:
            return self._evaluate_population(words, mask_of)
        finally:
            numba.set_num_threads(previous_threads)
            self._pinned[:] = False

    def _evaluate_population(
        self, words: np.ndarray, mask_of: Callable[[int], np.ndarray]
    ) -> Metrics:
        """Metrics of the masks packed in ``words`` (one row of uint64 words each);
        ``mask_of(row)`` gives a row's bool mask, for a full pass."""
        # identical masks in one population are scored once
        rows, inverse = _distinct_rows(words)
        distinct = words if len(rows) == len(words) else words[rows]
        loss = np.empty(len(words), dtype=np.float64)
        error = np.empty(len(words), dtype=np.float64)
        self.stats["cached"] += len(words) - len(rows)
        candidates = np.flatnonzero(self._valid)
        if len(candidates):
            nearest, distance = _nearest_batch(
                self._rough,
                self._bits,
                candidates,
                distinct[:, self._sample_words],
                distinct,
                _SHORTLIST,
            )
        else:
            nearest = np.full(len(rows), -1, dtype=np.int64)
            distance = np.full(len(rows), np.iinfo(np.int64).max, dtype=np.int64)
        full: list[int] = []
        near: list[int] = []  # rows close enough to their nearest record to plan an update
        budget = self.full_ratio * self._full_cost
        for position, (row, parent, gap) in enumerate(
            zip(rows.tolist(), nearest.tolist(), distance.tolist(), strict=True)
        ):
            if parent < 0:
                full.append(row)
            elif gap == 0:
                self._touch(parent)
                loss[row], error[row] = self._loss[parent], self._error[parent]
                self.stats["cached"] += 1
            elif self._depth[parent] >= self.max_depth or gap * _SCATTER_COST > budget:
                full.append(row)
            else:
                near.append(position)
        close = distinct if len(near) == len(rows) else distinct[near]
        children = self._plan(close, rows[near], nearest[near], budget, full)
        for parent in children.groups:
            self._touch(parent)
            self._pinned[parent] = True
            if self._slot[parent] < 0 and self._rebuildable(parent):
                self._pinned[self._parent[parent]] = True
        # children of materialised parents first, all in one compiled call: they write no slot,
        # so no parent of this call is evicted before its children are scored
        ready = [parent for parent in children.groups if self._slot[parent] >= 0]
        lazy = [parent for parent in children.groups if self._slot[parent] < 0]
        if ready:
            self._score_children(children, ready, loss, error)
        for parent in lazy:
            slot = self._materialise(parent)
            self._score_children(children, [parent], loss, error)
            if slot == self.capacity:
                self._slot_owner[slot] = -1
        self._pinned[:] = False
        for row in full:
            loss[row], error[row] = self._full_pass(mask_of(row), words[row])
            self.stats["full"] += 1
        return {"loss": loss[rows][inverse], "error": error[rows][inverse]}

    def _plan(
        self,
        words: np.ndarray,
        rows: np.ndarray,
        parents: np.ndarray,
        budget: float,
        full: list[int],
    ) -> _Children:
        """The ``rows`` (packed masks ``words``, nearest records ``parents``) worth an
        incremental update, grouped by parent; the others go to ``full``.

        A child whose flips empty a whole layer goes the full way: a layer without weights
        makes the network constant, and plain evaluation then ties all logits exactly, which
        rounding residue of an update would not.
        """
        # in chunks, keeping only the accepted children: a child far from its nearest record
        # has tens of thousands of flips, and a whole population of them would need memory
        # in proportion to the population
        kept_rows, kept_parents, kept_words, kept_counts = [], [], [], []
        kept_flips, kept_neurons = [], []
        for start in range(0, len(rows), _PLAN_CHUNK):
            stop = start + _PLAN_CHUNK
            pointers, flips, kept, cost, emptied = _plan_children(
                self._bits,
                parents[start:stop],
                words[start:stop],
                self._kept,
                self._row_start,
                self._n_inputs,
                self._gene_start,
                _SCATTER_COST,
            )
            accept = ~emptied & (cost <= budget)
            full.extend(rows[start:stop][~accept].tolist())
            chosen = np.flatnonzero(accept)
            kept_rows.append(rows[start:stop][chosen])
            kept_parents.append(parents[start:stop][chosen])
            kept_words.append(words[start:stop][chosen])
            kept_counts.append(np.diff(pointers)[chosen])
            # copies: a view would keep the whole chunk's flip list alive
            kept_flips.extend(flips[pointers[c] : pointers[c + 1]].copy() for c in chosen)
            kept_neurons.append(kept[chosen])
        rows = np.concatenate(kept_rows) if kept_rows else rows[:0]
        parents = np.concatenate(kept_parents) if kept_parents else parents[:0]
        words = np.concatenate(kept_words) if kept_words else words[:0]
        counts = np.concatenate(kept_counts) if kept_counts else np.zeros(0, dtype=np.int64)
        flip_pointers = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        flips = np.concatenate(kept_flips) if kept_flips else np.zeros(0, dtype=np.int64)
        kept = (
            np.concatenate(kept_neurons)
            if kept_neurons
            else np.zeros((0, self._kept.shape[1]), dtype=np.int32)
        )
        groups: dict[int, list[int]] = {}
        for index, parent in enumerate(parents.tolist()):
            groups.setdefault(parent, []).append(index)
        return _Children(rows, parents, words, flip_pointers, flips, kept, groups)

    def _score_children(
        self, children: _Children, parents: list[int], loss: np.ndarray, error: np.ndarray
    ) -> None:
        """Score (and remember, lazily) the children of ``parents``, which hold slots."""
        indices = np.array(
            [index for parent in parents for index in children.groups[parent]], dtype=np.int64
        )
        losses, errors = self._run(
            indices,
            self._slot[children.parents[indices]],
            np.full(len(indices), -1, dtype=np.int64),
            children.words,
            children.flip_pointers,
            children.flips,
            children.kept,
        )
        rows = children.rows[indices]
        loss[rows], error[rows] = losses, errors
        self.stats["incremental"] += len(indices)
        self._remember_children(
            children.words[indices],
            losses,
            errors,
            children.kept[indices],
            children.parents[indices],
        )

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
        """(losses, errors) of the children ``indices`` of the plan (``words``, flips as CSR,
        ``kept``) from the activations in slots ``sources``, in one compiled call; a child whose
        ``targets`` entry is a slot also has its activations written there. The slots are those
        of ``z`` (default: the cache's).
        """
        workers = max(1, min(numba.get_num_threads(), self._max_workers, len(indices)))
        if self._rows_scratch is None or self._rows_scratch.shape[0] < workers:
            shape = (workers, self._n_rows, self.n_samples)
            self._rows_scratch = np.empty(shape, dtype=np.float32)
            self._dense_scratch = np.empty(shape, dtype=np.float32)
        loss_sums, hits = _score_children(
            self._z if z is None else z,
            indices,
            sources,
            targets,
            words,
            flip_pointers,
            flips,
            kept,
            self._weights,
            self._bias,
            self._row_start,
            self._gene_start,
            self._relu,
            self._inputs_t,
            self._labels,
            self.label_smoothing,
            self._rows_scratch,
            self._dense_scratch,
            workers,
            _BLOCK,
            _SCATTER_COST,
        )
        return loss_sums / self.n_samples, 1.0 - hits / self.n_samples

    def _materialise(self, record: int) -> int:
        """Give a lazy record a slot holding its activations; returns the slot."""
        if self._rebuildable(record):
            parent = self._parent[record]
            source = int(self._slot[parent])
            slot = self._victim(exclude=source)
            flips = _flipped(self._bits[parent], self._bits[record])
            recipe = self._recipes[source]
            self._run(
                np.zeros(1, dtype=np.int64),
                np.array([source], dtype=np.int64),
                np.array([slot], dtype=np.int64),
                self._bits[record][None],
                np.array([0, len(flips)], dtype=np.int64),
                flips,
                self._kept[record][None],
            )
            self.rebuilds["incremental"] += 1
        else:
            slot = self._victim()
            self._forward(_unpack(self._bits[record], self.layout.n_total), self._z[slot])
            self._depth[record] = 0
            self.rebuilds["full"] += 1
            recipe = None
        self._assign(record, slot, recipe)
        return slot

    def _full_pass(self, mask: np.ndarray, words: np.ndarray) -> tuple[float, float]:
        """Forward pass from scratch into a slot; remembers the mask as materialised."""
        slot = self._victim()
        loss, error, kept = self._forward(mask, self._z[slot])
        record = self._remember(words, loss, error, kept, parent=-1)
        if record >= 0 and slot < self.capacity:
            self._assign(record, slot, None)
        return loss, error

    def _forward(self, mask: np.ndarray, out: np.ndarray) -> tuple[float, float, np.ndarray]:
        """(loss, error, kept per neuron) of a plain forward pass written into ``out`` (a slot's
        rows × samples)."""
        inputs_t = torch.from_numpy(self._inputs_t)
        labels = torch.from_numpy(self._labels)
        mask_t = torch.from_numpy(mask)
        target = torch.from_numpy(out)
        kept = np.empty(self._n_rows, dtype=np.int32)
        with torch.no_grad():
            hidden = inputs_t
            for layer, has_bias in zip(self._layers, self._has_bias, strict=True):
                weight = torch.from_numpy(layer.weight)
                if layer.genes is None:
                    kept[layer.rows] = layer.shape[1]
                else:
                    keep = mask_t[layer.genes].view(layer.shape)
                    weight = weight * keep
                    kept[layer.rows] = keep.sum(dim=1).numpy()
                z = target[layer.rows]  # (out, samples), a view of the slot
                torch.mm(weight, hidden, out=z)
                if has_bias:
                    z += torch.from_numpy(self._bias[layer.rows])[:, None]
                hidden = torch.relu(z) if layer.relu else z
            log_probs = torch.log_softmax(hidden, dim=0)
            picked = label_log_likelihood(
                log_probs, labels.view(1, -1), self.label_smoothing, dim=0
            )
            loss = -float(picked.double().sum()) / self.n_samples
            error = 1.0 - int((hidden.argmax(dim=0) == labels).sum()) / self.n_samples
        return loss, error, kept


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _positive_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)
