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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import torch
from torch import nn

from masksearch.evaluators.base import Evaluator, Metrics, _SplitLike
from masksearch.mask import Layout

__all__ = ["IncrementalEvaluator", "UnsupportedModelError", "linear_stack"]

_NO_OPS = (nn.Identity, nn.Dropout)
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
# weights summed into a row per pass of the layer update (the code unrolls exactly four)
_GROUP = 4
# reassociation lets LLVM vectorise; no flag assumes away inf or NaN
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
# float32 exp: Cephes' expf (range reduction by ln 2 split in two, degree-5 polynomial, 2^n from
# the exponent bits), written out so that LLVM vectorises it (numba's exp is a libm call a
# sample); max relative error ~3e-7 on [-87, 0]
_LOG2E = np.float32(1.4426950408889634)
_LN2_HIGH = np.float32(0.693359375)
_LN2_LOW = np.float32(-2.12194440e-4)
# below this exp(x) would leave the float32 normals; against a sum >= 1 it is nothing anyway
_EXP_FLOOR = np.float32(-87.0)
# samples whose softmax sums (each in [1, classes]) are multiplied before one log is taken
_LOG_CHUNK = 16
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


class UnsupportedModelError(ValueError):
    """The model is not a plain Linear stack the incremental evaluator can handle."""


@dataclass(frozen=True)
class _Layer:
    weight: np.ndarray  # (out, in) float32
    relu: bool  # a ReLU follows this layer
    genes: slice | None  # where this weight's mask sits in the flat mask (None: not pruned)
    rows: slice  # where this layer's neurons sit in the stacked pre-activations

    @property
    def shape(self) -> tuple[int, int]:
        return self.weight.shape  # type: ignore[return-value]


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


def linear_stack(model: nn.Module, layout: Layout) -> list[tuple[str, nn.Linear, bool]]:
    """``(name, linear, relu_follows)`` for each Linear layer of a supported model.

    Raises :class:`UnsupportedModelError` naming the first module or layout entry that an
    incremental evaluation cannot handle.
    """
    if not isinstance(model, nn.Sequential):
        raise UnsupportedModelError(
            f"incremental evaluation needs an nn.Sequential of Flatten/Linear/ReLU, got "
            f"{type(model).__name__}; use kind='batched' or 'plain'"
        )
    layers: list[tuple[str, nn.Linear, bool]] = []
    for name, module in model.named_children():
        if isinstance(module, nn.Linear):
            layers.append((name, module, False))
        elif isinstance(module, nn.ReLU):
            if not layers:
                raise UnsupportedModelError("a ReLU before the first Linear layer is not supported")
            last = layers[-1]
            layers[-1] = (last[0], last[1], True)
        elif isinstance(module, nn.Flatten):
            if layers and (module.start_dim != 1 or module.end_dim != -1):
                raise UnsupportedModelError(f"module {name!r}: only Flatten() is supported")
        elif not isinstance(module, _NO_OPS):
            raise UnsupportedModelError(
                f"module {name!r} ({type(module).__name__}) is not Flatten/Linear/ReLU; "
                "incremental evaluation supports plain MLPs only — use kind='batched'"
            )
    if not layers:
        raise UnsupportedModelError("the model has no Linear layer")
    weights = {f"{name}.weight" for name, _, _ in layers}
    for entry in layout.names:
        if entry not in weights:
            raise UnsupportedModelError(
                f"the layout prunes {entry!r}; incremental evaluation only prunes the Linear "
                "layers' weights (no biases) — use kind='batched'"
            )
    return layers


class IncrementalEvaluator(Evaluator):
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
    ) -> None:
        stack = linear_stack(model, layout)
        self._take_snapshot(model, split, layout, device)
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

    # -- checkpoints --------------------------------------------------------------------
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
        }
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

    # -- evaluation ---------------------------------------------------------------------
    def _evaluate(self, masks: np.ndarray) -> Metrics:
        previous_threads = numba.get_num_threads()
        if self.threads is not None:
            numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
        try:
            return self._evaluate_population(masks)
        finally:
            numba.set_num_threads(previous_threads)
            self._pinned[:] = False

    def _evaluate_population(self, masks: np.ndarray) -> Metrics:
        words = _pack(masks, self._n_words)
        # identical masks in one population are scored once
        rows, inverse = _distinct_rows(words)
        distinct = words if len(rows) == len(words) else words[rows]
        loss = np.empty(len(masks), dtype=np.float64)
        error = np.empty(len(masks), dtype=np.float64)
        self.stats["cached"] += len(masks) - len(rows)
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
            loss[row], error[row] = self._full_pass(masks[row], words[row])
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
            self._rows_scratch,
            self._dense_scratch,
            workers,
            _BLOCK,
            _SCATTER_COST,
        )
        return loss_sums / self.n_samples, 1.0 - hits / self.n_samples

    def _rebuildable(self, record: int) -> bool:
        """Whether a record's parent still holds, in a slot, the activations it came from."""
        parent = self._parent[record]
        return (
            parent >= 0
            and self._valid[parent]
            and self._stamp[parent] == self._parent_stamp[record]
            and self._slot[parent] >= 0
        )

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
            loss = -float(log_probs.gather(0, labels.view(1, -1)).double().sum()) / self.n_samples
            error = 1.0 - int((hidden.argmax(dim=0) == labels).sum()) / self.n_samples
        return loss, error, kept

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


_NO_POINTERS = np.zeros(1, dtype=np.int64)
_NO_COLUMNS = np.zeros(0, dtype=np.int64)
_NO_VALUES = np.zeros(0, dtype=np.float32)


_STATE_PARENT = 0  # the layer's child pre-activations are the parent's
_STATE_ROWS = 1  # only the rows in ``changed`` differ (held in the rows scratch)
_STATE_DENSE = 2  # the whole layer is in the dense scratch


@numba.njit(inline="always")
def _gene_on(words, gene):  # pragma: no cover - compiled
    """Bit ``gene`` of a mask packed by :func:`_pack` (bytes big-endian, words little-endian)."""
    byte = gene >> 3
    shift = 8 * (byte & 7) + 7 - (gene & 7)
    return (words[byte >> 3] >> np.uint64(shift)) & np.uint64(1) != 0


@numba.njit(inline="always")
def _act(value, relu):  # pragma: no cover - compiled
    return max(value, np.float32(0.0)) if relu else value


@numba.njit(cache=True)
def _plan_children(
    bits, parents, child_words, kept_records, row_start, n_inputs, gene_start, scatter_cost
):  # pragma: no cover - compiled
    """Per child of ``parents[c]``: flipped genes (CSR), kept weights per neuron, estimated
    multiply-adds per sample of the update, and whether a flip empties a whole layer."""
    n = len(parents)
    n_layers = len(gene_start)
    pointers = np.zeros(n + 1, dtype=np.int64)
    for c in range(n):
        count = 0
        for w in range(child_words.shape[1]):
            count += np.int64(_popcount64(bits[parents[c], w] ^ child_words[c, w]))
        pointers[c + 1] = pointers[c] + count
    flips = np.empty(pointers[n], dtype=np.int64)
    kept = np.empty((n, kept_records.shape[1]), dtype=np.int32)
    cost = np.zeros(n)
    emptied = np.zeros(n, dtype=np.bool_)
    for c in range(n):
        mine = flips[pointers[c] : pointers[c + 1]]
        _write_flipped(bits[parents[c]], child_words[c], mine)
        kept[c] = kept_records[parents[c]]
        changed = 0
        for layer in range(n_layers):
            out = row_start[layer + 1] - row_start[layer]
            n_in = n_inputs[layer]
            low = high = 0
            if gene_start[layer] >= 0:
                low = np.searchsorted(mine, gene_start[layer])
                high = np.searchsorted(mine, gene_start[layer] + out * n_in)
            distinct = 0
            for f in range(low, high):
                neuron = (mine[f] - gene_start[layer]) // n_in
                if f == low or neuron != (mine[f - 1] - gene_start[layer]) // n_in:
                    distinct += 1
                kept[c, row_start[layer] + neuron] += 1 if _gene_on(child_words[c], mine[f]) else -1
            if high > low:
                alive = False
                for row in range(row_start[layer], row_start[layer + 1]):
                    alive = alive or kept[c, row] != 0
                emptied[c] = emptied[c] or not alive
            if layer + 1 == n_layers or 2 * changed >= n_in:
                cost[c] += out * n_in
                changed = out
                continue
            cost[c] += scatter_cost * (high - low + changed * out)
            if changed:
                changed = out
            elif high > low:
                changed = distinct
    return pointers, flips, kept, cost, emptied


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _score_children(
    z,
    indices,
    sources,
    targets,
    words,
    flip_pointers,
    flips,
    kept,
    weights,
    bias,
    row_start,
    gene_start,
    relu,
    inputs_t,
    labels,
    rows_scratch,
    dense_scratch,
    workers,
    block,
    scatter_cost,
):  # pragma: no cover - compiled
    """(Σ cross-entropy, # correct) of children ``indices`` of the plan, child ``c`` from the
    activations in slot ``sources[c]``; ``workers`` threads score whole children, each with its
    own scratch, so a child's arithmetic does not depend on the thread count. A child whose
    ``targets[c]`` is >= 0 also has its activations written to that slot (one child a call)."""
    n = len(indices)
    loss = np.zeros(n)
    hits = np.zeros(n, dtype=np.int64)
    for worker in numba.prange(workers):
        for c in range(worker, n, workers):
            i = indices[c]
            loss[c], hits[c] = _score_one(
                z,
                sources[c],
                targets[c],
                words[i],
                flips[flip_pointers[i] : flip_pointers[i + 1]],
                kept[i],
                weights,
                bias,
                row_start,
                gene_start,
                relu,
                inputs_t,
                labels,
                rows_scratch[worker],
                dense_scratch[worker],
                block,
                scatter_cost,
            )
    return loss, hits


@numba.njit(cache=True, fastmath=_FASTMATH)
def _score_one(
    z,
    source,
    target,
    words,
    flips,
    kept,
    weights,
    bias,
    row_start,
    gene_start,
    relu,
    inputs_t,
    labels,
    rows_buffer,
    dense_buffer,
    block,
    scatter_cost,
):  # pragma: no cover - compiled
    """One child, layer by layer (see the module docstring); (Σ cross-entropy, # correct)."""
    n_layers = len(weights)
    parent = z[source]
    widest = 0
    for layer in range(n_layers):
        widest = max(widest, row_start[layer + 1] - row_start[layer])
    changed = np.empty(widest, dtype=np.int64)
    n_changed = 0
    state = _STATE_PARENT
    if target >= 0:
        z[target] = parent
    for layer in range(n_layers):
        weight = weights[layer]
        out, n_in = weight.shape
        first_row = row_start[layer]
        start = gene_start[layer]
        low = high = 0
        if start >= 0:
            low = np.searchsorted(flips, start)
            high = np.searchsorted(flips, start + out * n_in)
        mine = flips[low:high]
        source_relu = relu[layer - 1] if layer > 0 else False
        parent_input = inputs_t if layer == 0 else parent[row_start[layer - 1] : first_row]
        z_parent = parent[first_row : first_row + out]
        result = dense_buffer[first_row : first_row + out]
        recompute = layer + 1 == n_layers or state == _STATE_DENSE
        pair_pointers = _NO_POINTERS
        pair_columns = _NO_COLUMNS
        pair_values = _NO_VALUES
        if not recompute and state == _STATE_ROWS:
            pair_pointers, pair_columns, pair_values = _pairs(
                weight, words, start, changed[:n_changed]
            )
            update = scatter_cost * len(pair_columns) + n_changed
            recompute = update > out * n_in
        if recompute:
            if state == _STATE_ROWS:
                # the child's input: the parent's with the changed rows replaced
                child_input = dense_buffer[row_start[layer - 1] : first_row]
                child_input[:] = parent_input
                for i in range(n_changed):
                    child_input[changed[i]] = rows_buffer[row_start[layer - 1] + i]
            elif state == _STATE_DENSE:
                child_input = dense_buffer[row_start[layer - 1] : first_row]
            else:
                child_input = parent_input
            _dense_layer(
                weight, words, start, child_input, source_relu, bias[first_row:], result, block
            )
            state = _STATE_DENSE
        elif state == _STATE_ROWS:
            _delta_layer(
                z_parent,
                parent_input,
                source_relu,
                changed[:n_changed],
                rows_buffer[row_start[layer - 1] :],
                pair_pointers,
                pair_columns,
                pair_values,
                weight,
                words,
                start,
                mine,
                kept[first_row : first_row + out],
                bias[first_row : first_row + out],
                result,
                block,
            )
            state = _STATE_DENSE
        elif len(mine):
            n_changed = _flip_rows(
                z_parent,
                parent_input,
                source_relu,
                weight,
                words,
                start,
                mine,
                kept[first_row : first_row + out],
                bias[first_row : first_row + out],
                changed,
                rows_buffer[first_row:],
            )
            state = _STATE_ROWS
        if target >= 0:
            written = z[target, first_row : first_row + out]
            if state == _STATE_DENSE:
                written[:] = result
            elif state == _STATE_ROWS and len(mine):
                for i in range(n_changed):
                    written[changed[i]] = rows_buffer[first_row + i]
    return _cross_entropy(dense_buffer[row_start[n_layers - 1] :], relu[n_layers - 1], labels)


@numba.njit(cache=True)
def _pairs(weight, words, start, changed):  # pragma: no cover - compiled
    """The child's nonzero weights from the changed inputs, grouped by output row (CSR).

    Returns (pointers into the lists per row, positions in ``changed``, weights); ``start`` is
    where the layer's genes begin in the packed mask ``words`` (-1: the layer is not pruned).
    """
    out, n_in = weight.shape
    pointers = np.zeros(out + 1, dtype=np.int64)
    columns = np.empty(len(changed) * out, dtype=np.int64)
    values = np.empty(len(changed) * out, dtype=np.float32)
    count = 0
    for o in range(out):
        for c in range(len(changed)):
            column = changed[c]
            if start >= 0 and not _gene_on(words, start + o * n_in + column):
                continue
            value = weight[o, column]
            if value != 0:
                columns[count] = c
                values[count] = value
                count += 1
        pointers[o + 1] = count
    return pointers, columns[:count], values[:count]


@numba.njit(inline="always")
def _flip_delta(weight, words, start, gene):  # pragma: no cover - compiled
    """(row, column, child weight - parent weight) of a flipped gene."""
    n_in = weight.shape[1]
    row = (gene - start) // n_in
    column = (gene - start) - row * n_in
    value = weight[row, column]
    return row, column, value if _gene_on(words, gene) else -value


@numba.njit(cache=True, fastmath=_FASTMATH)
def _flip_rows(
    z_layer, source, source_relu, weight, words, start, flips, kept, bias, changed, out
):  # pragma: no cover - compiled
    """Rows of a layer whose only change is flipped weights (its inputs unchanged).

    The flipped rows (sorted, as the flips are) go to ``changed`` and their values to ``out``:
    ``z_layer[row] + Σ_f delta_f · act(source[column_f])``; a row left without weights is its
    bias. Returns how many rows changed.
    """
    n_samples = z_layer.shape[1]
    n_changed = 0
    for f in range(len(flips)):
        row, column, delta = _flip_delta(weight, words, start, flips[f])
        if n_changed == 0 or changed[n_changed - 1] != row:
            changed[n_changed] = row
            out[n_changed] = z_layer[row]
            n_changed += 1
        target = out[n_changed - 1]
        values = source[column]
        for s in range(n_samples):
            target[s] += delta * _act(values[s], source_relu)
    for i in range(n_changed):
        if kept[changed[i]] == 0:
            out[i] = bias[changed[i]]
    return n_changed


@numba.njit(cache=True, fastmath=_FASTMATH)
def _delta_layer(
    z_layer,
    parent_input,
    source_relu,
    changed,
    changed_values,
    pair_pointers,
    pair_columns,
    pair_values,
    weight,
    words,
    start,
    flips,
    kept,
    bias,
    out,
    block,
):  # pragma: no cover - compiled
    """A whole layer from the parent's: changed inputs times the child's weights, plus flips.

    ``changed_values[c]`` is the child's pre-activation of input ``changed[c]`` (the parent's is
    ``parent_input[changed[c]]``). Row by row within a block of samples, so that the row being
    summed stays in the L1 cache, four weights at a time (one load and store of the row per
    four multiply-adds; the parent's row is read by the first four); an input whose activation
    did not move on a block of samples is skipped there.
    """
    n_samples = z_layer.shape[1]
    zero = np.float32(0.0)
    width = min(block, n_samples)
    n_changed = len(changed)
    # an extra all-zero row (index n_changed) pads the last group of four
    delta = np.zeros((n_changed + 1, width), dtype=np.float32)
    moved = np.zeros(n_changed, dtype=np.bool_)
    group = np.empty(_GROUP, dtype=np.int64)
    group_values = np.empty(_GROUP, dtype=np.float32)
    for low in range(0, n_samples, width):
        high = min(low + width, n_samples)
        size = high - low
        for c in range(n_changed):
            new_values = changed_values[c, low:high]
            old_values = parent_input[changed[c], low:high]
            row_delta = delta[c]
            count = 0
            for s in range(size):
                new = new_values[s]
                old = old_values[s]
                if source_relu:
                    new = max(new, zero)
                    old = max(old, zero)
                row_delta[s] = new - old
                count += new != old
            moved[c] = count > 0
        for o in range(z_layer.shape[0]):
            target = out[o, low:high]
            source = z_layer[o, low:high]
            e = pair_pointers[o]
            first = True
            while True:
                n_group = 0
                while e < pair_pointers[o + 1] and n_group < _GROUP:
                    if moved[pair_columns[e]]:
                        group[n_group] = pair_columns[e]
                        group_values[n_group] = pair_values[e]
                        n_group += 1
                    e += 1
                if n_group == 0:
                    break
                for k in range(n_group, _GROUP):
                    group[k] = n_changed
                    group_values[k] = zero
                d0, d1, d2, d3 = delta[group[0]], delta[group[1]], delta[group[2]], delta[group[3]]
                v0, v1, v2, v3 = group_values[0], group_values[1], group_values[2], group_values[3]
                if first:
                    for s in range(size):
                        step = (v0 * d0[s] + v1 * d1[s]) + (v2 * d2[s] + v3 * d3[s])
                        target[s] = source[s] + step
                    first = False
                else:
                    for s in range(size):
                        target[s] += (v0 * d0[s] + v1 * d1[s]) + (v2 * d2[s] + v3 * d3[s])
            if first:
                target[:] = source
        for f in range(len(flips)):
            row, column, value = _flip_delta(weight, words, start, flips[f])
            target = out[row, low:high]
            values = parent_input[column, low:high]
            for s in range(size):
                target[s] += value * _act(values[s], source_relu)
    for o in range(z_layer.shape[0]):
        if kept[o] == 0:
            out[o] = bias[o]


@numba.njit(cache=True, fastmath=_FASTMATH)
def _dense_layer(
    weight, words, start, source, source_relu, bias, out, block
):  # pragma: no cover - compiled
    """``out = (weight ⊙ child mask) · act(source) + bias`` (features × samples), zero weights
    skipped; ``start`` is where the layer's genes begin in ``words`` (-1: not pruned)."""
    n_samples = source.shape[1]
    n_out, n_in = weight.shape
    zero = np.float32(0.0)
    # per input, the outputs its child weights reach: an input that reaches none is skipped
    # (most, in a sparse layer), its activation never computed
    reach_rows = np.empty(n_out, dtype=np.int64)
    reach_values = np.empty(n_out, dtype=np.float32)
    width = min(block, n_samples)
    activation = np.empty(width, dtype=np.float32)
    for low in range(0, n_samples, width):
        high = min(low + width, n_samples)
        size = high - low
        for o in range(n_out):
            out[o, low:high] = bias[o]
        for i in range(n_in):
            n_reach = 0
            for o in range(n_out):
                value = weight[o, i]
                if value != zero and (start < 0 or _gene_on(words, start + o * n_in + i)):
                    reach_rows[n_reach] = o
                    reach_values[n_reach] = value
                    n_reach += 1
            if n_reach == 0:
                continue
            values = source[i, low:high]
            if source_relu:
                for s in range(size):
                    activation[s] = max(values[s], zero)
            else:
                activation[:size] = values
            for r in range(n_reach):
                target = out[reach_rows[r], low:high]
                value = reach_values[r]
                for s in range(size):
                    target[s] += value * activation[s]


@numba.njit(cache=True, fastmath=_FASTMATH)
def _cross_entropy(logits, last_relu, labels):  # pragma: no cover - compiled
    """(Σ cross-entropy, # correct) of logits stored classes × samples.

    The max-subtracted log-sum-exp is summed in float32 (each term in (0, 1], the sum in
    [1, classes]) and every sample's loss accumulated in float64; the predicted class is the
    first maximal logit, as ``torch.argmax`` picks it. A NaN logit gives a NaN loss.
    """
    n_samples = logits.shape[1]
    width = logits.shape[0]
    # class-outer loops: every pass is a contiguous run over the samples, vectorised
    top = np.empty(n_samples, dtype=np.float32)
    best = np.zeros(n_samples, dtype=np.int32)
    for s in range(n_samples):
        top[s] = _act(logits[0, s], last_relu)
    for o in range(1, width):
        row = logits[o]
        for s in range(n_samples):
            value = _act(row[s], last_relu)
            greater = value > top[s]
            top[s] = value if greater else top[s]
            best[s] = np.int32(o) if greater else best[s]
    total = np.zeros(n_samples, dtype=np.float32)
    mantissa = np.empty(n_samples, dtype=np.float32)
    exponent = np.empty(n_samples, dtype=np.int32)
    power = exponent.view(np.float32)  # 2^n, written as float32 bits
    for o in range(width):
        row = logits[o]
        for s in range(n_samples):
            x = _act(row[s], last_relu) - top[s]
            if x < _EXP_FLOOR:
                x = _EXP_FLOOR
            n = np.floor(x * _LOG2E + np.float32(0.5))
            r = x - n * _LN2_HIGH - n * _LN2_LOW
            p = np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)
            p = p * r + np.float32(8.3334519073e-3)
            p = p * r + np.float32(4.1665795894e-2)
            p = p * r + np.float32(1.6666665459e-1)
            p = p * r + np.float32(5.0000001201e-1)
            mantissa[s] = p * (r * r) + r + np.float32(1.0)
            exponent[s] = (np.int32(n) + np.int32(127)) << np.int32(23)
        for s in range(n_samples):
            total[s] += mantissa[s] * power[s]
    loss = 0.0
    hits = 0
    for s in range(n_samples):
        loss += np.float64(top[s]) - np.float64(_act(logits[labels[s], s], last_relu))
        hits += best[s] == labels[s]
    # Σ log(sum) as the log of products of a few sums: one log per chunk, not per sample
    for low in range(0, n_samples, _LOG_CHUNK):
        product = 1.0
        for s in range(low, min(low + _LOG_CHUNK, n_samples)):
            product *= np.float64(total[s])
        loss += np.log(product)
    return loss, hits


@numba.njit(cache=True)
def _popcount64(value):  # pragma: no cover - compiled
    value = value - ((value >> np.uint64(1)) & np.uint64(0x5555555555555555))
    value = (value & np.uint64(0x3333333333333333)) + (
        (value >> np.uint64(2)) & np.uint64(0x3333333333333333)
    )
    value = (value + (value >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (value * np.uint64(0x0101010101010101)) >> np.uint64(56)


@numba.njit(cache=True)
def _nearest(bits, slots, child, sample, shortlist):  # pragma: no cover - compiled
    """(record, exact Hamming distance) of the remembered mask nearest to ``child``.

    A distance over ``sample`` words ranks every record in ``slots``; the best ``shortlist``
    get the exact distance.
    """
    rough = np.empty(len(slots), dtype=np.int64)
    for s in range(len(slots)):
        total = 0
        for w in sample:
            total += np.int64(_popcount64(bits[slots[s], w] ^ child[w]))
        rough[s] = total
    return _shortlisted(bits, slots, child, rough, shortlist)


@numba.njit(cache=True)
def _shortlisted(bits, slots, child, rough, shortlist):  # pragma: no cover - compiled
    order = np.argsort(rough, kind="mergesort")
    best_slot = -1
    best = np.int64(2**62)
    for rank in range(min(shortlist, len(slots))):
        slot = slots[order[rank]]
        total = 0
        for w in range(child.shape[0]):
            total += np.int64(_popcount64(bits[slot, w] ^ child[w]))
            if total >= best:
                break
        if total < best:
            best = total
            best_slot = slot
    return best_slot, best


@numba.njit(parallel=True, cache=True)
def _nearest_batch(
    rough_bits, bits, records, rough_children, children, shortlist
):  # pragma: no cover
    """:func:`_nearest` for every row of ``children``, in parallel; (records, distances)."""
    n = children.shape[0]
    nearest = np.empty(n, dtype=np.int64)
    distance = np.empty(n, dtype=np.int64)
    for c in numba.prange(n):
        rough = np.empty(len(records), dtype=np.int64)
        for r in range(len(records)):
            total = 0
            for w in range(rough_children.shape[1]):
                total += np.int64(_popcount64(rough_bits[records[r], w] ^ rough_children[c, w]))
            rough[r] = total
        nearest[c], distance[c] = _shortlisted(bits, records, children[c], rough, shortlist)
    return nearest, distance


@numba.njit(cache=True)
def _flipped(parent, child):  # pragma: no cover - compiled
    """Flat indices (sorted, np.packbits bit order) of the genes where two packed masks differ."""
    count = 0
    for w in range(parent.shape[0]):
        count += np.int64(_popcount64(parent[w] ^ child[w]))
    out = np.empty(count, dtype=np.int64)
    _write_flipped(parent, child, out)
    return out


@numba.njit(cache=True)
def _write_flipped(parent, child, out):  # pragma: no cover - compiled
    """:func:`_flipped` into ``out`` (sized to the Hamming distance)."""
    position = 0
    for w in range(parent.shape[0]):
        word = parent[w] ^ child[w]
        if word == 0:
            continue
        for k in range(8):  # bytes in memory order (little-endian words)
            byte = (word >> np.uint64(8 * k)) & np.uint64(0xFF)
            if byte == 0:
                continue
            for bit in range(8):
                if byte & (np.uint64(0x80) >> np.uint64(bit)):
                    out[position] = (w * 8 + k) * 8 + bit
                    position += 1


def _pack(masks: np.ndarray, n_words: int) -> np.ndarray:
    """Rows of bool masks as uint64 words (big-endian bit order within each byte)."""
    return _pack_rows(masks.view(np.uint8), n_words).view(np.uint64)


@numba.njit(parallel=True, cache=True)
def _pack_rows(masks, n_words):  # pragma: no cover - compiled
    """:func:`np.packbits` of each row of 0/1 bytes, zero-padded to ``n_words`` words, in one
    pass (no intermediate copy)."""
    n, n_total = masks.shape
    packed = np.zeros((n, n_words * 8), dtype=np.uint8)
    whole = n_total // 8
    # eight 0/1 bytes read as one little-endian word; the multiply moves byte k's bit to bit
    # 63 - k of the product (all partial products land on distinct bits: no carries)
    gather = np.uint64(0x8040201008040201)
    for r in numba.prange(n):
        row = masks[r]
        target = packed[r]
        for b in range(whole):
            word = np.uint64(0)
            for k in range(8):
                word |= np.uint64(row[8 * b + k]) << np.uint64(8 * k)
            target[b] = np.uint8((word * gather) >> np.uint64(56))
        if whole * 8 < n_total:
            byte = np.uint8(0)
            for k in range(n_total - whole * 8):
                byte |= np.uint8(row[8 * whole + k]) << np.uint8(7 - k)
            target[whole] = byte
    return packed


@numba.njit(cache=True)
def _distinct_rows(words):  # pragma: no cover - compiled
    """(first, inverse) of the rows of ``words``: the first row of each distinct one
    (ascending), and for every row the position in ``first`` of its copy.

    Rows are grouped by a hash, and rows of equal hash compared in full.
    """
    n, width = words.shape
    hashes = np.empty(n, dtype=np.uint64)
    for r in range(n):
        # four interleaved multiply-xor chains, for instruction-level parallelism
        lanes = np.full(4, np.uint64(0x9E3779B97F4A7C15))
        for low in range(0, width, 4):
            for k in range(min(4, width - low)):
                lanes[k] = (lanes[k] ^ words[r, low + k]) * np.uint64(0x100000001B3)
        hashes[r] = lanes[0] ^ (lanes[1] << np.uint64(1)) ^ (lanes[2] << np.uint64(2))
        hashes[r] ^= lanes[3] << np.uint64(3)
    order = np.argsort(hashes, kind="mergesort")  # stable: equal hashes in row order
    copy_of = np.arange(n)
    start = 0
    while start < n:
        end = start + 1
        while end < n and hashes[order[end]] == hashes[order[start]]:
            end += 1
        for a in range(start, end):
            first = order[a]
            if copy_of[first] != first:
                continue
            for b in range(a + 1, end):
                other = order[b]
                if copy_of[other] == other and np.array_equal(words[first], words[other]):
                    copy_of[other] = first
        start = end
    position = np.full(n, -1, dtype=np.int64)
    count = 0
    for r in range(n):
        if copy_of[r] == r:
            position[r] = count
            count += 1
    first_rows = np.empty(count, dtype=np.int64)
    inverse = np.empty(n, dtype=np.int64)
    for r in range(n):
        if copy_of[r] == r:
            first_rows[position[r]] = r
        inverse[r] = position[copy_of[r]]
    return first_rows, inverse


def _unpack(words: np.ndarray, n_total: int) -> np.ndarray:
    return np.unpackbits(words.view(np.uint8))[:n_total].astype(bool)


def _set_bits(words: np.ndarray) -> np.ndarray:
    """Flat indices of the set bits of packed words (sorted)."""
    as_bytes = words.view(np.uint8)
    nonzero = np.flatnonzero(as_bytes)
    bits = np.unpackbits(as_bytes[nonzero]).reshape(-1, 8)
    which, position = np.nonzero(bits)
    return (nonzero[which] * 8 + position).astype(np.int64)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _positive_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)
