"""Exact incremental evaluation of masks close to recently evaluated ones (Linear stacks).

For an ``nn.Sequential`` of Flatten / Linear / ReLU (plus eval-mode no-ops: Identity, Dropout),
every evaluated mask leaves its pre-activations ``z_l`` (every Linear layer, every sample of the
split) in a bounded LRU cache. A new candidate looks for the cached "parent" at the smallest
Hamming distance (bit-packed XOR + popcount) and, when the difference is small, updates the
parent's pre-activations instead of recomputing them::

    z_l(child) = z_l(parent) + W_l(child) · (a_{l-1}(child) - a_{l-1}(parent))    [changed inputs]
                             + (W_l(child) - W_l(parent)) · a_{l-1}(parent)         [flipped weights]

Layer 1 has no first term (its input is the data); its second term costs O(samples·k) for k
flipped weights. A deeper layer's first term only involves the neurons of the previous layer
that can have changed and only the child's nonzero weights from them (sparse at the densities a
pruning search visits); an input whose activation did not change on a block of samples (a ReLU
that stays off) is skipped. The output layer (small) and any layer most of whose inputs changed
are recomputed in full, which also keeps exact ties between logits exact. Everything runs in
one Numba kernel, on pre-activations stored neuron × sample, parallel over blocks of samples,
so that every update is a vectorised run over samples.

Exact up to float32 rounding; a chain of incremental updates is cut by a full recomputation
every ``max_depth`` generations so rounding cannot accumulate. CPU only.

Memory: the cache holds ``capacity`` entries of ``4 · n_samples · Σ_l out_l`` bytes (float32;
lenet300 on 1,024 samples: 1.68 MB per entry), at most ``cache_size`` entries and
``cache_memory`` bytes (defaults 256 entries, 512 MiB). Size it to at least twice the
population, so the parents of a generation survive while their children are stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch
from torch import nn

from masksearch.evaluators.base import Evaluator, Metrics, ModelSnapshot, _SplitLike
from masksearch.mask import Layout

__all__ = ["IncrementalEvaluator", "UnsupportedModelError", "linear_stack"]

_NO_OPS = (nn.Identity, nn.Dropout)
# per-sample cost of an incremental update relative to a full pass, in multiply-adds: a
# scattered update costs about this many GEMM multiply-adds
_SCATTER_COST = 2.0
# the sampled Hamming distance shortlists this many parents for the exact distance
_SHORTLIST = 4
_SAMPLED_WORDS = 64


class UnsupportedModelError(ValueError):
    """The model is not a plain Linear stack the incremental evaluator can handle."""


@dataclass(frozen=True)
class _Layer:
    weight: np.ndarray  # (out, in) float32
    relu: bool  # a ReLU follows this layer
    genes: slice | None  # where this weight's mask sits in the flat mask (None: not pruned)

    @property
    def shape(self) -> tuple[int, int]:
        return self.weight.shape  # type: ignore[return-value]


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
    """Exact evaluator that reuses the activations of cached, nearby masks (CPU).

    ``cache_size`` (entries) and ``cache_memory`` (bytes) bound the parent cache (the smaller
    wins; at least 2 entries). A candidate is computed incrementally when the estimated cost of
    the update is below ``full_ratio`` times that of a full forward pass, and from scratch (one
    forward pass written straight into its cache slot) otherwise. ``max_depth`` caps chains of
    incremental updates. ``threads`` sets the Numba threads of the update kernel (default:
    Numba's; on a machine whose cores are busy with other work, 1 avoids waiting on descheduled
    threads). The cache's memory is committed as slots are first written, and a first write
    costs page faults (about as much as an incremental update); ``prefault=True`` touches all
    of it at construction instead, for steady timings from the first generation. ``stats`` counts ``"incremental"``, ``"full"`` and ``"cached"``
    (already in the cache) candidates.
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
    ) -> None:
        stack = linear_stack(model, layout)
        self.snapshot = ModelSnapshot(model, split, layout, device)
        if self.snapshot.device.type != "cpu":
            raise ValueError(
                "incremental evaluation runs on the CPU; on a GPU use kind='batched' "
                f"(got device {device!r})"
            )
        self.layout = layout
        self.device = self.snapshot.device
        self.n_samples = self.snapshot.n_samples
        self.full_ratio = _positive_float("full_ratio", full_ratio)
        self.max_depth = _positive_int("max_depth", max_depth)
        self.threads = None if threads is None else _positive_int("threads", threads)
        self.prefault = bool(prefault)
        snap = self.snapshot
        self._layers: list[_Layer] = []
        self._biases: list[torch.Tensor | None] = []
        for name, _module, relu in stack:
            key = f"{name}.weight"
            weight = snap.params[key].to(torch.float32).contiguous()
            self._layers.append(
                _Layer(
                    weight=weight.numpy(),
                    relu=relu,
                    genes=layout.slice(key) if key in layout.names else None,
                )
            )
            bias = snap.params.get(f"{name}.bias")
            self._biases.append(None if bias is None else bias.to(torch.float32))
        inputs = snap.x.reshape(self.n_samples, -1).to(torch.float32).contiguous()
        if inputs.shape[1] != self._layers[0].shape[1]:
            raise UnsupportedModelError(
                f"inputs have {inputs.shape[1]} features but the first Linear layer expects "
                f"{self._layers[0].shape[1]}"
            )
        # feature-major (features × samples): every update is a contiguous run over samples
        self._inputs_t = np.ascontiguousarray(inputs.numpy().T)
        self._labels = snap.y.numpy().astype(np.int64)
        outs = [layer.shape[0] for layer in self._layers]
        self._offsets = np.concatenate([[0], np.cumsum(outs)]).astype(np.int64)
        self._relu = np.array([layer.relu for layer in self._layers], dtype=np.bool_)
        self._bias = np.zeros(int(self._offsets[-1]), dtype=np.float32)
        for index, bias in enumerate(self._biases):
            if bias is not None:
                self._bias[self._offsets[index] : self._offsets[index + 1]] = bias.numpy()
        self._full_cost = float(sum(o * i for o, i in (layer.shape for layer in self._layers)))

        # cache: pre-activations of every layer stacked, one row per neuron -----------------
        self._n_words = ((layout.n_total + 7) // 8 + 7) // 8
        self.entry_bytes = 4 * self.n_samples * int(self._offsets[-1]) + 8 * self._n_words + 32
        self.capacity = max(
            2, min(_positive_int("cache_size", cache_size), int(cache_memory) // self.entry_bytes)
        )
        self._allocate()
        stride = max(1, self._n_words // _SAMPLED_WORDS)
        self._sample_words = np.arange(0, self._n_words, stride)
        self.stats = {"incremental": 0, "full": 0, "cached": 0}

    def _allocate(self) -> None:
        # one extra scratch slot takes a result when every entry is pinned as someone's parent
        shape = (self.capacity + 1, int(self._offsets[-1]), self.n_samples)
        self._z = np.empty(shape, dtype=np.float32)
        if self.prefault:
            self._z.fill(0.0)
        # kept weights per neuron: a neuron with none is exactly its bias, whatever rounding
        # the incremental updates leave behind
        self._row_kept = np.zeros((self.capacity + 1, int(self._offsets[-1])), dtype=np.int64)
        self._bits = np.zeros((self.capacity, self._n_words), dtype=np.uint64)
        self._valid = np.zeros(self.capacity, dtype=bool)
        self._pinned = np.zeros(self.capacity, dtype=bool)
        self._last_used = np.zeros(self.capacity, dtype=np.int64)
        self._depth = np.zeros(self.capacity, dtype=np.int64)
        self._loss = np.zeros(self.capacity, dtype=np.float64)
        self._error = np.zeros(self.capacity, dtype=np.float64)
        self._clock = 0

    @staticmethod
    def supports(model: nn.Module, layout: Layout) -> bool:
        """Whether ``model`` (with ``layout``) is a Linear stack this evaluator handles."""
        try:
            linear_stack(model, layout)
        except UnsupportedModelError:
            return False
        return True

    def clear(self) -> None:
        """Forget every cached parent."""
        self._valid[:] = False

    def __getstate__(self) -> dict:
        # the cache is large and only useful to this process: ship none, rebuild it empty
        state = dict(self.__dict__)
        for name in (
            "_z",
            "_row_kept",
            "_bits",
            "_valid",
            "_pinned",
            "_last_used",
            "_depth",
            "_loss",
            "_error",
        ):
            del state[name]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._allocate()

    # -- evaluation ---------------------------------------------------------------------
    def _evaluate(self, masks: np.ndarray) -> Metrics:
        words = _pack(masks, self._n_words)
        loss = np.empty(len(masks), dtype=np.float64)
        error = np.empty(len(masks), dtype=np.float64)
        full: list[int] = []
        planned: list[tuple[int, int, np.ndarray]] = []
        for row in range(len(masks)):
            plan = self._plan(words[row])
            if plan is None:
                full.append(row)
            elif len(plan[1]) == 0:
                self._answer_cached(plan[0], row, loss, error)
            else:
                planned.append((row, *plan))
                # a pinned parent cannot be evicted before its child is computed
                self._pinned[plan[0]] = True
        try:
            self._evaluate_full(masks, words, full, loss, error)
            for row, parent, flipped in planned:
                result = self._evaluate_child(masks[row], words[row], parent, flipped)
                if result is None:
                    self._evaluate_full(masks, words, [row], loss, error)
                else:
                    loss[row], error[row] = result
                    self.stats["incremental"] += 1
        finally:
            self._pinned[:] = False
        return {"loss": loss, "error": error}

    def _answer_cached(self, slot: int, row: int, loss: np.ndarray, error: np.ndarray) -> None:
        self._touch(slot)
        loss[row], error[row] = self._loss[slot], self._error[slot]
        self.stats["cached"] += 1

    def _plan(self, child_words: np.ndarray) -> tuple[int, np.ndarray] | None:
        """(parent slot, flipped gene indices) when an incremental update pays, else None."""
        slots = np.flatnonzero(self._valid)
        if len(slots) == 0:
            return None
        slot, distance = _nearest(self._bits, slots, child_words, self._sample_words, _SHORTLIST)
        if distance == 0:
            return slot, np.zeros(0, dtype=np.int64)
        if self._depth[slot] >= self.max_depth:
            return None
        if distance * _SCATTER_COST > self.full_ratio * self._full_cost:
            return None
        flipped = _set_bits(self._bits[slot] ^ child_words)
        if self._incremental_cost(flipped) > self.full_ratio * self._full_cost:
            return None
        return slot, flipped

    def _incremental_cost(self, flipped: np.ndarray) -> float:
        """Estimated multiply-adds per sample of the update (see :meth:`_evaluate_child`)."""
        cost = float(self._offsets[-1])  # copying the parent's pre-activations
        changed = 0
        for index, layer in enumerate(self._layers):
            out, n_in = layer.shape
            mine = _in_slice(flipped, layer.genes)
            if index + 1 == len(self._layers) or 2 * changed >= n_in:
                cost += out * n_in
                changed = out
                continue
            cost += _SCATTER_COST * len(mine) + changed * out
            if changed:
                changed = out
            elif len(mine):
                changed = len(np.unique((mine - layer.genes.start) // n_in))
        return cost

    def _evaluate_child(
        self, mask: np.ndarray, child_words: np.ndarray, parent: int, flipped: np.ndarray
    ) -> tuple[float, float] | None:
        """(loss, error) of a child of a cached parent; None when it must be computed in full."""
        row_kept = self._row_kept[parent].copy()
        for index, layer in enumerate(self._layers):
            mine = _in_slice(flipped, layer.genes)
            if len(mine):
                rows = (mine - layer.genes.start) // layer.shape[1]
                counts = row_kept[self._offsets[index] : self._offsets[index + 1]]
                np.add.at(counts, rows, np.where(mask[mine], 1, -1))
                if not counts.any():
                    # A layer without weights makes the network constant: plain evaluation then
                    # ties all logits exactly, which rounding residue of an update would not.
                    return None
        self._touch(parent)
        slot = self._victim(exclude=parent)
        self._row_kept[slot] = row_kept
        update = _Update(len(self._layers))
        changed: np.ndarray = _EMPTY_INT  # neurons of the previous layer that may have changed
        for index, layer in enumerate(self._layers):
            out, n_in = layer.shape
            layer_mask = None if layer.genes is None else mask[layer.genes].reshape(out, n_in)
            mine = _in_slice(flipped, layer.genes)
            rows = mine
            if len(mine):
                rows, cols = np.divmod(mine - layer.genes.start, n_in)
                kept = mask[mine]
                counts = row_kept[self._offsets[index] : self._offsets[index + 1]]
            if index + 1 == len(self._layers) or 2 * len(changed) >= n_in:
                # Recompute the layer in full: the output layer always (it is small, and logits
                # that tie exactly, as for a constant output, then still tie exactly) and any
                # layer most of whose inputs may have changed (it costs about the same).
                weight = layer.weight if layer_mask is None else layer.weight * layer_mask
                update.recompute(index, weight)
            else:
                if len(changed):
                    # the child's nonzero weights from each changed input: (input, neuron, w)
                    columns = layer.weight[:, changed].T  # (changed inputs, out)
                    if layer_mask is not None:
                        columns = columns * layer_mask[:, changed].T
                    update.add_inputs(index, changed, columns)
                if len(mine):
                    # +w where the child keeps a weight the parent pruned, -w the other way
                    signed = np.where(kept, 1.0, -1.0).astype(np.float32)
                    update.add_flips(index, rows, cols, signed * layer.weight[rows, cols])
                    touched = np.unique(rows)
                    update.dead[index] = touched[counts[touched] == 0]
            if len(changed) or update.full[index]:
                changed = np.arange(out, dtype=np.int64)
            else:
                changed = np.unique(rows).astype(np.int64)
        previous_threads = numba.get_num_threads()
        if self.threads is not None:
            numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
        try:
            loss_sum, correct = update.run(
                self._inputs_t,
                self._z[parent],
                self._z[slot],
                self._labels,
                self._offsets,
                self._relu,
                self._bias,
            )
        finally:
            numba.set_num_threads(previous_threads)
        loss = loss_sum / self.n_samples
        error = 1.0 - correct / self.n_samples
        self._store(slot, child_words, loss, error, depth=int(self._depth[parent]) + 1)
        return loss, error

    def _evaluate_full(
        self,
        masks: np.ndarray,
        words: np.ndarray,
        rows: list[int],
        loss: np.ndarray,
        error: np.ndarray,
    ) -> None:
        """Forward passes from scratch, written straight into cache slots (no temporaries)."""
        inputs_t = torch.from_numpy(self._inputs_t)
        labels = torch.from_numpy(self._labels)
        for row in rows:
            mask_t = torch.from_numpy(masks[row])
            slot = self._victim()
            target = torch.from_numpy(self._z[slot])
            row_kept = self._row_kept[slot]
            with torch.no_grad():
                hidden = inputs_t
                for index, (layer, bias) in enumerate(zip(self._layers, self._biases, strict=True)):
                    start, stop = self._offsets[index], self._offsets[index + 1]
                    weight = torch.from_numpy(layer.weight)
                    if layer.genes is None:
                        row_kept[start:stop] = layer.shape[1]
                    else:
                        keep = mask_t[layer.genes].view(layer.shape)
                        weight = weight * keep
                        row_kept[start:stop] = keep.sum(dim=1).numpy()
                    z = target[start:stop]  # (out, samples), a view of the slot
                    torch.mm(weight, hidden, out=z)
                    if bias is not None:
                        z += bias[:, None]
                    hidden = torch.relu(z) if layer.relu else z
                log_probs = torch.log_softmax(hidden, dim=0)
                loss[row] = -float(log_probs.gather(0, labels.view(1, -1)).double().sum())
                loss[row] /= self.n_samples
                error[row] = 1.0 - int((hidden.argmax(dim=0) == labels).sum()) / self.n_samples
            self._store(slot, words[row], loss[row], error[row], depth=0)
            self.stats["full"] += 1

    # -- cache bookkeeping --------------------------------------------------------------
    def _touch(self, slot: int) -> None:
        self._clock += 1
        self._last_used[slot] = self._clock

    def _victim(self, exclude: int = -1) -> int:
        """The slot a new entry goes to: a free one, else the least recently used unpinned one,
        else the scratch slot (``capacity``), whose content is never looked up."""
        free = np.flatnonzero(~self._valid)
        if len(free):
            return int(free[0])
        ages = self._last_used.astype(np.float64)
        ages[self._pinned] = np.inf
        if exclude >= 0:
            ages[exclude] = np.inf
        oldest = int(np.argmin(ages))
        return self.capacity if np.isinf(ages[oldest]) else oldest

    def _store(self, slot: int, words: np.ndarray, loss: float, error: float, depth: int) -> None:
        if slot == self.capacity:
            return
        self._bits[slot] = words
        self._valid[slot] = True
        self._loss[slot], self._error[slot] = loss, error
        self._depth[slot] = depth
        self._touch(slot)


class _Update:
    """The flat arrays one child's update kernel reads, built layer by layer."""

    def __init__(self, n_layers: int) -> None:
        self.n_layers = n_layers
        self.full = np.zeros(n_layers, dtype=np.bool_)
        self.full_weights: list[np.ndarray] = [_EMPTY_FLOAT] * n_layers
        self.changed: list[np.ndarray] = [_EMPTY_INT] * n_layers
        self.pair_counts: list[np.ndarray] = [_EMPTY_INT] * n_layers
        self.pair_rows: list[np.ndarray] = [_EMPTY_INT] * n_layers
        self.pair_values: list[np.ndarray] = [_EMPTY_FLOAT] * n_layers
        self.flips: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [
            (_EMPTY_INT, _EMPTY_INT, _EMPTY_FLOAT)
        ] * n_layers
        self.dead: list[np.ndarray] = [_EMPTY_INT] * n_layers

    def recompute(self, layer: int, weight: np.ndarray) -> None:
        self.full[layer] = True
        self.full_weights[layer] = np.ascontiguousarray(weight, dtype=np.float32).ravel()

    def add_inputs(self, layer: int, changed: np.ndarray, columns: np.ndarray) -> None:
        which, rows = np.nonzero(columns)  # sorted by changed input
        self.changed[layer] = changed
        self.pair_counts[layer] = np.bincount(which, minlength=len(changed))
        self.pair_rows[layer] = rows
        self.pair_values[layer] = columns[which, rows]

    def add_flips(self, layer: int, rows: np.ndarray, cols: np.ndarray, delta: np.ndarray) -> None:
        self.flips[layer] = (rows, cols, delta)

    def run(self, inputs_t, z_parent, z_child, labels, offsets, relu, bias) -> tuple[float, int]:
        n_samples = z_parent.shape[1]
        n_blocks = max(1, min(n_samples // _MIN_BLOCK, 2 * numba.get_num_threads()))
        return _update_child(
            inputs_t,
            z_parent,
            z_child,
            labels,
            offsets,
            relu,
            bias,
            self.full,
            _pointers([len(w) for w in self.full_weights]),
            _concat(self.full_weights, np.float32),
            _pointers([len(c) for c in self.changed]),
            _concat(self.changed, np.int64),
            _pointers(np.concatenate(self.pair_counts).tolist()),
            _concat(self.pair_rows, np.int64),
            _concat(self.pair_values, np.float32),
            _pointers([len(f[0]) for f in self.flips]),
            _concat([f[0] for f in self.flips], np.int64),
            _concat([f[1] for f in self.flips], np.int64),
            _concat([f[2] for f in self.flips], np.float32),
            _pointers([len(d) for d in self.dead]),
            _concat(self.dead, np.int64),
            n_blocks,
        )


_EMPTY_INT = np.zeros(0, dtype=np.int64)
_EMPTY_FLOAT = np.zeros(0, dtype=np.float32)
_MIN_BLOCK = 64  # samples: below this a thread's share is not worth the split


def _pointers(lengths: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)


@numba.njit(
    parallel=True,
    cache=True,
    # reassociation lets LLVM vectorise; no flag assumes away inf or NaN
    fastmath={"reassoc", "contract", "nsz", "arcp"},
)
def _update_child(  # pragma: no cover - compiled
    inputs_t,
    z_parent,
    z_child,
    labels,
    offsets,
    relu,
    bias,
    full,
    full_ptr,
    full_weights,
    input_ptr,
    input_index,
    pair_ptr,
    pair_rows,
    pair_values,
    flip_ptr,
    flip_rows,
    flip_cols,
    flip_delta,
    dead_ptr,
    dead_rows,
    n_blocks,
):
    """Child pre-activations (neurons × samples) from the parent's; returns (Σ loss, # hits).

    Samples are split in ``n_blocks`` contiguous blocks worked on in parallel; within a block
    every update is a vectorised run over the block's samples.
    """
    n_samples = z_parent.shape[1]
    n_layers = len(offsets) - 1
    zero = np.float32(0.0)
    block_loss = np.zeros(n_blocks)
    block_hits = np.zeros(n_blocks, dtype=np.int64)
    for block in numba.prange(n_blocks):
        low = block * n_samples // n_blocks
        high = (block + 1) * n_samples // n_blocks
        size = high - low
        z_child[:, low:high] = z_parent[:, low:high]
        activation = np.empty(size, dtype=np.float32)
        for layer in range(n_layers):
            start = offsets[layer]
            width = offsets[layer + 1] - start
            before = offsets[layer - 1] if layer > 0 else 0
            previous_relu = relu[layer - 1] if layer > 0 else False
            if full[layer]:
                # z = W_child · a_child + b from the child's input activations
                n_in = inputs_t.shape[0] if layer == 0 else start - before
                for o in range(width):
                    z_child[start + o, low:high] = bias[start + o]
                for i in range(n_in):
                    if layer == 0:
                        activation[:] = inputs_t[i, low:high]
                    else:
                        for s in range(size):
                            value = z_child[before + i, low + s]
                            activation[s] = max(value, zero) if previous_relu else value
                    for o in range(width):
                        weight = full_weights[full_ptr[layer] + o * n_in + i]
                        if weight != zero:
                            row = z_child[start + o, low:high]
                            for s in range(size):
                                row[s] += weight * activation[s]
                continue
            # inputs (previous neurons) whose activation changed, times the child's weights
            for entry in range(input_ptr[layer], input_ptr[layer + 1]):
                if pair_ptr[entry] == pair_ptr[entry + 1]:
                    continue
                j = before + input_index[entry]
                moved = False
                for s in range(size):
                    new = z_child[j, low + s]
                    old = z_parent[j, low + s]
                    if previous_relu:
                        new = max(new, zero)
                        old = max(old, zero)
                    activation[s] = new - old
                    moved = moved or new != old
                if not moved:
                    continue
                for e in range(pair_ptr[entry], pair_ptr[entry + 1]):
                    weight = pair_values[e]
                    row = z_child[start + pair_rows[e], low:high]
                    for s in range(size):
                        row[s] += weight * activation[s]
            # flipped weights, times the parent's input
            for f in range(flip_ptr[layer], flip_ptr[layer + 1]):
                row = z_child[start + flip_rows[f], low:high]
                delta = flip_delta[f]
                if layer == 0:
                    source = inputs_t[flip_cols[f], low:high]
                    for s in range(size):
                        row[s] += delta * source[s]
                else:
                    source = z_parent[before + flip_cols[f], low:high]
                    if previous_relu:
                        for s in range(size):
                            row[s] += delta * max(source[s], zero)
                    else:
                        for s in range(size):
                            row[s] += delta * source[s]
            # neurons left without weights are exactly their bias
            for d in range(dead_ptr[layer], dead_ptr[layer + 1]):
                z_child[start + dead_rows[d], low:high] = bias[start + dead_rows[d]]
        # cross-entropy and hits of the block's samples (float64 log-sum-exp)
        start = offsets[n_layers - 1]
        width = offsets[n_layers] - start
        last_relu = relu[n_layers - 1]
        loss = 0.0
        hits = 0
        for s in range(low, high):
            best = 0
            top = z_child[start, s]
            if last_relu:
                top = max(top, zero)
            for o in range(1, width):
                value = z_child[start + o, s]
                if last_relu:
                    value = max(value, zero)
                if value > top:
                    top = value
                    best = o
            total = 0.0
            for o in range(width):
                value = z_child[start + o, s]
                if last_relu:
                    value = max(value, zero)
                total += np.exp(np.float64(value) - np.float64(top))
            target = z_child[start + labels[s], s]
            if last_relu:
                target = max(target, zero)
            loss += np.float64(top) + np.log(total) - np.float64(target)
            if best == labels[s]:
                hits += 1
        block_loss[block] = loss
        block_hits[block] = hits
    return block_loss.sum(), block_hits.sum()


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
    """(slot, exact Hamming distance) of the cached mask nearest to ``child``.

    A distance over ``sample`` words ranks every slot; the best ``shortlist`` get the exact
    distance.
    """
    rough = np.empty(len(slots), dtype=np.int64)
    for s in range(len(slots)):
        total = 0
        for w in sample:
            total += np.int64(_popcount64(bits[slots[s], w] ^ child[w]))
        rough[s] = total
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


def _pack(masks: np.ndarray, n_words: int) -> np.ndarray:
    """Rows of bool masks as uint64 words (big-endian bit order within each byte)."""
    packed = np.packbits(masks, axis=1)
    padded = np.zeros((len(masks), n_words * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view(np.uint64)


def _set_bits(words: np.ndarray) -> np.ndarray:
    """Flat indices of the set bits of packed words (sorted)."""
    as_bytes = words.view(np.uint8)
    nonzero = np.flatnonzero(as_bytes)
    bits = np.unpackbits(as_bytes[nonzero]).reshape(-1, 8)
    which, position = np.nonzero(bits)
    return (nonzero[which] * 8 + position).astype(np.int64)


def _in_slice(indices: np.ndarray, genes: slice | None) -> np.ndarray:
    if genes is None:
        return indices[:0]
    low, high = np.searchsorted(indices, [genes.start, genes.stop])
    return indices[low:high]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _positive_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)
