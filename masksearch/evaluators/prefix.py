"""Exact evaluation that reuses the activations of leading layers whose masks repeat.

In a search, many candidates share the masks of their first layers: a GA's children inherit
them from parents that agree there, and the layers near the input of a convolutional network
(few weights, few genes in play) settle early. For an ``nn.Sequential`` model the activations
entering layer ``i`` depend only on the masks of the layers before it, so
:class:`PrefixCacheEvaluator` keeps, at the input of every prunable layer after the first, a
small LRU cache of those activations keyed by the exact mask bits of the layers in front. A
candidate resumes the forward pass from the deepest cached point and computes only the rest.

On LeNet-5 the first convolution and its pooling cost most of a forward pass on the CPU while
the first layer's mask repeats in almost every child of a method-A search, so most of that cost
disappears. The result is the same computation as :class:`PlainEvaluator` (bit for bit on the
CPU: the same modules run on the same tensors). Memory is bounded by ``memory_budget``, shared
equally by the cache points; a point whose single entry would not fit is not cached.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from masksearch.evaluators.base import (
    Evaluator,
    Metrics,
    _SplitLike,
    cpu_conv_format,
    metrics_from_logits,
)
from masksearch.evaluators.incremental import UnsupportedModelError
from masksearch.evaluators.plain import _check_batch_size
from masksearch.mask import Layout

__all__ = ["PrefixCacheEvaluator"]

_DEFAULT_BUDGET = 256 * 2**20


@dataclass(frozen=True)
class _Stage:
    module: nn.Module
    params: dict[str, torch.Tensor]  # local name -> tensor (prunable ones unmasked)
    prunable: tuple[tuple[str, int, int, tuple[int, ...]], ...]  # (local name, start, stop, shape)


class PrefixCacheEvaluator(Evaluator):
    """Mean cross-entropy and error of each mask, resuming from cached leading activations.

    ``memory_budget`` (bytes, default 256 MiB) bounds the cached activations; ``batch_size``
    samples go through at a time (``None``: as :class:`PlainEvaluator`). ``hits`` counts, per
    cache point (the index of the module whose input is cached), the candidates that resumed
    there. ``label_smoothing`` > 0 smooths the loss (see :mod:`masksearch.evaluators.base`).
    Works for an ``nn.Sequential`` whose prunable weights the layout names in module order;
    anything else raises :class:`UnsupportedModelError` (use :class:`PlainEvaluator`).
    """

    def __init__(
        self,
        model: nn.Module,
        split: _SplitLike,
        layout: Layout,
        device: str | torch.device = "cpu",
        batch_size: int | None = None,
        memory_budget: int | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        self._take_snapshot(model, split, layout, device, label_smoothing)
        self.batch_size = _check_batch_size(batch_size, self.snapshot.default_batch_size)
        if memory_budget is None:
            memory_budget = _DEFAULT_BUDGET
        if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, np.integer)):
            raise TypeError(f"memory_budget must be an int (bytes), got {memory_budget!r}")
        if memory_budget < 0:
            raise ValueError(f"memory_budget must be >= 0 bytes, got {memory_budget}")
        self.memory_budget = int(memory_budget)
        for module in self.snapshot.module.modules():
            if getattr(module, "inplace", False):
                # an in-place op (ReLU(inplace=True)) would overwrite a cached activation
                module.inplace = False
        self._stages, self._gene_end = _stages(self.snapshot.module, layout)
        # the input of every prunable stage but the first: everything before it is fixed by
        # the genes in front of it, everything from it on must be computed anyway
        points = [i for i, stage in enumerate(self._stages) if stage.prunable and self._gene_end[i]]
        entry_bytes = self._entry_bytes(points)
        share = self.memory_budget // max(1, len(points))
        self._capacity = {i: share // entry_bytes[i] for i in points if share >= entry_bytes[i]}
        self._cache: dict[int, OrderedDict[bytes, torch.Tensor]] = {
            i: OrderedDict() for i in self._capacity
        }
        self.hits: dict[int, int] = dict.fromkeys(self._capacity, 0)

    @staticmethod
    def supports(model: nn.Module, layout: Layout) -> bool:
        try:
            _stages(model, layout)
        except UnsupportedModelError:
            return False
        return True

    def clear(self) -> None:
        """Forget every cached activation."""
        for entries in self._cache.values():
            entries.clear()

    @property
    def cache_bytes(self) -> int:
        return sum(
            int(t.numel() * t.element_size()) for c in self._cache.values() for t in c.values()
        )

    def __getstate__(self) -> dict:
        # activations are a cache: rebuilt on demand, never shipped to workers or checkpoints
        state = dict(self.__dict__)
        state["_cache"] = {i: OrderedDict() for i in self._cache}
        return state

    def _entry_bytes(self, points: list[int]) -> dict[int, int]:
        """Bytes of one cached activation (every sample) at each point, from a 1-sample pass."""
        sizes: dict[int, int] = {}
        with torch.no_grad():
            value = self.snapshot.x[:1]
            for index, stage in enumerate(self._stages):
                if index in points:
                    sizes[index] = int(value.numel() * value.element_size()) * self.n_samples
                value = torch.func.functional_call(stage.module, stage.params, (value,))
        return sizes

    def _evaluate(self, masks: np.ndarray) -> Metrics:
        snap = self.snapshot
        losses = np.empty(len(masks), dtype=np.float64)
        errors = np.empty(len(masks), dtype=np.float64)
        with torch.no_grad():
            for row, flat in enumerate(masks):
                keys = {i: np.packbits(flat[: self._gene_end[i]]).tobytes() for i in self._cache}
                start, cached = 0, None
                for index in sorted(self._cache, reverse=True):
                    entry = self._cache[index].get(keys[index])
                    if entry is not None:
                        self._cache[index].move_to_end(keys[index])
                        self.hits[index] += 1
                        start, cached = index, entry
                        break
                stored: dict[int, list[torch.Tensor]] = {i: [] for i in self._cache if i > start}
                params = [self._masked(stage, flat) for stage in self._stages[start:]]
                loss_sum, correct = 0.0, 0
                for first in range(0, snap.n_samples, self.batch_size):
                    stop = first + self.batch_size
                    value = snap.x[first:stop] if cached is None else cached[first:stop]
                    for offset, stage in enumerate(self._stages[start:]):
                        index = start + offset
                        if index in stored:
                            stored[index].append(value)
                        value = torch.func.functional_call(stage.module, params[offset], (value,))
                    batch_loss, batch_correct = metrics_from_logits(
                        value, snap.y[first:stop], self.label_smoothing
                    )
                    loss_sum += batch_loss
                    correct += batch_correct
                for index, parts in stored.items():
                    self._store(index, keys[index], parts)
                losses[row] = loss_sum / snap.n_samples
                errors[row] = 1.0 - correct / snap.n_samples
        return {"loss": losses, "error": errors}

    def _masked(self, stage: _Stage, flat: np.ndarray) -> dict[str, torch.Tensor]:
        if not stage.prunable:
            return stage.params
        params = dict(stage.params)
        for name, start, stop, shape in stage.prunable:
            keep = torch.from_numpy(np.ascontiguousarray(flat[start:stop])).to(self.device)
            params[name] = cpu_conv_format(params[name] * keep.view(shape))
        return params

    def _store(self, index: int, key: bytes, parts: list[torch.Tensor]) -> None:
        entries = self._cache[index]
        entries[key] = parts[0] if len(parts) == 1 else torch.cat(parts)
        while len(entries) > self._capacity[index]:
            entries.popitem(last=False)


def _stages(model: nn.Module, layout: Layout) -> tuple[list[_Stage], list[int]]:
    """The model's top-level modules with their parameters, and the genes in front of each."""
    if not isinstance(model, nn.Sequential):
        raise UnsupportedModelError(
            f"prefix caching needs an nn.Sequential model, got {type(model).__name__}; use the "
            "plain or batched evaluator"
        )
    offsets = dict(zip(layout.names, np.cumsum((0, *layout.sizes[:-1])).tolist(), strict=True))
    shapes = dict(zip(layout.names, layout.shapes, strict=True))
    sizes = dict(zip(layout.names, layout.sizes, strict=True))
    stages: list[_Stage] = []
    gene_end: list[int] = []
    covered = 0  # genes of the layout owned by the stages seen so far, in layout order
    for child_name, child in model.named_children():
        local = {
            **{n: p.detach() for n, p in child.named_parameters()},
            **{n: b.detach() for n, b in child.named_buffers()},
        }
        prunable = []
        for name in local:
            full = f"{child_name}.{name}"
            if full in offsets:
                start = offsets[full]
                prunable.append((name, start, start + sizes[full], tuple(shapes[full])))
        gene_end.append(covered)
        for _name, start, stop, _shape in sorted(prunable, key=lambda item: item[1]):
            if start != covered:
                raise UnsupportedModelError(
                    "prefix caching needs the layout's weights in module order; build the "
                    "layout with Layout.of(model)"
                )
            covered = stop
        stages.append(_Stage(child, local, tuple(prunable)))
    if covered != layout.n_total:
        raise UnsupportedModelError(
            "the layout names weights outside the model's top-level modules; build the layout "
            "with Layout.of(model)"
        )
    return stages, gene_end
