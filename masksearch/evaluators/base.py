"""The :class:`Evaluator` interface and what every evaluator shares.

An evaluator scores a whole population of flat masks (numpy ``bool`` of shape
``(P, layout.n_total)``, the concatenation of each prunable parameter's mask in
:class:`~masksearch.mask.Layout` order) on one data split and returns float64 arrays
``{"loss": mean cross-entropy, "error": 1 - accuracy}`` of shape ``(P,)``; with
``label_smoothing`` ε > 0 the loss is the label-smoothed cross-entropy ``(1 − ε)·CE + ε·mean_k(−log
p_k)``, as ``torch.nn.functional.cross_entropy(..., label_smoothing=ε)`` defines it (the loss of
masks learned with smoothed labels). Wrappers may add keys
(``"fidelity"``, ``"exact"``). :meth:`Evaluator.evaluate_packed` takes the same masks as
:func:`numpy.packbits` rows, the form the search keeps genomes in.

Evaluators never change the model they are given: they take a snapshot (a deep copy in eval
mode, gradients off) when they are built, so later edits of the caller's model do not reach
them either.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from masksearch._bits import unpack_bits
from masksearch.data import split_tensors
from masksearch.device import resolve_device
from masksearch.mask import Layout

__all__ = [
    "CPU_CONV_BATCH",
    "Evaluator",
    "ModelSnapshot",
    "check_label_smoothing",
    "check_masks",
    "check_packed_masks",
    "convolutions_on_cpu",
    "cpu_conv_format",
    "empty_metrics",
    "inner_state",
    "label_log_likelihood",
    "load_inner_state",
    "split_tensors",
]

Metrics = dict[str, np.ndarray]


class _SplitLike(Protocol):
    x: torch.Tensor
    y: torch.Tensor


class Evaluator(ABC):
    """Scores a population of flat masks on one data split.

    An evaluator only reads the masks it is given (they may share memory with the genomes the
    search archives). Subclasses implement :meth:`_evaluate` on already validated masks; :meth:`__call__`
    validates, handles an empty population and counts what was evaluated
    (``n_calls``, ``n_candidates``).
    """

    layout: Layout
    n_calls: int = 0
    n_candidates: int = 0

    def __call__(self, masks: np.ndarray) -> Metrics:
        """Metrics of each row of ``masks`` (bool, shape ``(P, layout.n_total)``)."""
        masks = check_masks(masks, self.layout)
        self.n_calls += 1
        self.n_candidates += len(masks)
        if len(masks) == 0:
            return empty_metrics()
        return self._evaluate(masks)

    def evaluate_packed(self, rows: np.ndarray) -> Metrics:
        """:meth:`__call__` of masks given as :func:`numpy.packbits` rows (uint8, shape
        ``(P, ceil(layout.n_total / 8))``, zero padding bits): the search hands packed genomes
        of the ``weights`` encoding over as they are, and an evaluator that works on bits
        (incremental, cached) never builds the bool population."""
        rows = check_packed_masks(rows, self.layout)
        self.n_calls += 1
        self.n_candidates += len(rows)
        if len(rows) == 0:
            return empty_metrics()
        return self._evaluate_packed(rows)

    @abstractmethod
    def _evaluate(self, masks: np.ndarray) -> Metrics:
        """Metrics of a validated, non-empty population."""

    def _evaluate_packed(self, rows: np.ndarray) -> Metrics:
        """Metrics of validated, non-empty packed masks; evaluators that read bits override
        this, the others score the unpacked masks."""
        return self._evaluate(unpack_bits(rows, self.layout.n_total))

    def _take_snapshot(
        self,
        model: nn.Module,
        split: _SplitLike,
        layout: Layout,
        device: str | torch.device,
        label_smoothing: float = 0.0,
    ) -> ModelSnapshot:
        """The private model copy, plus what every exact evaluator exposes: ``snapshot``,
        ``layout``, ``device``, ``n_samples`` and ``label_smoothing``."""
        self.label_smoothing = check_label_smoothing(label_smoothing)
        self.snapshot = ModelSnapshot(model, split, layout, device)
        self.layout = layout
        self.device = self.snapshot.device
        self.n_samples = self.snapshot.n_samples
        return self.snapshot

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_total={self.layout.n_total})"


def check_fits(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Fail early, and readably, when samples ``x`` with labels ``y`` do not fit ``model``
    (the one check of this; the problem and every evaluator's snapshot call it)."""
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            logits = model.eval()(x[:2].to(device))
    except RuntimeError as error:
        raise ValueError(
            f"data of shape {tuple(x.shape[1:])} per sample does not fit the model "
            f"{type(model).__name__}: {str(error).splitlines()[0]}. Use the dataset the model "
            "was built for."
        ) from None
    if logits.dim() != 2:
        raise ValueError(
            f"the model returns outputs of shape {tuple(logits.shape[1:])} per sample; a "
            "classifier must return (batch, num_classes) logits"
        )
    if int(y.min()) < 0 or int(y.max()) >= logits.shape[1]:
        raise ValueError(
            f"labels range over [{int(y.min())}, {int(y.max())}] but the model has "
            f"{logits.shape[1]} outputs; the data does not belong to this model"
        )


def check_label_smoothing(value: Any) -> float:
    """``value`` as the label smoothing of a loss: a number in [0, 1), refused otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"label_smoothing must be a number in [0, 1), got {value!r}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(
            f"label_smoothing must be in [0, 1) (0: the plain cross-entropy; 0.1 is usual), "
            f"got {value!r}"
        )
    return float(value)


def check_masks(masks: Any, layout: Layout) -> np.ndarray:
    """Return ``masks`` as a C-contiguous bool array of shape ``(P, layout.n_total)``.

    Raises :class:`TypeError` for a non-array or a non-bool dtype and :class:`ValueError` for a
    wrong shape, each naming the fix.
    """
    if isinstance(masks, torch.Tensor):
        masks = masks.detach().cpu().numpy()
    if not isinstance(masks, np.ndarray):
        raise TypeError(
            f"masks must be a numpy array of shape (P, {layout.n_total}) and dtype bool, "
            f"got {type(masks).__name__}"
        )
    if masks.dtype != np.bool_:
        raise TypeError(
            f"masks must have dtype bool (True = keep), got {masks.dtype}; convert 0/1 "
            "genomes with `masks.astype(bool)` (solvers working in floats: `masks > 0.5`)"
        )
    if masks.ndim != 2 or masks.shape[1] != layout.n_total:
        hint = " (one mask: pass masks[None, :])" if masks.ndim == 1 else ""
        raise ValueError(
            f"masks must have shape (P, {layout.n_total}) — one flat mask per row over the "
            f"layout's {layout.n_total} weights — got {masks.shape}{hint}; decode genomes "
            "with the encoding first"
        )
    return np.ascontiguousarray(masks)


def check_packed_masks(rows: Any, layout: Layout) -> np.ndarray:
    """Return ``rows`` as C-contiguous :func:`numpy.packbits` rows of ``layout``'s masks; a
    wrong dtype, width or set padding bit is refused, naming the fix."""
    n_bytes = (layout.n_total + 7) // 8
    if not isinstance(rows, np.ndarray) or rows.dtype != np.uint8:
        kind = rows.dtype if isinstance(rows, np.ndarray) else type(rows).__name__
        raise TypeError(
            f"packed masks must be a uint8 numpy array (np.packbits of bool masks), got {kind}"
        )
    if rows.ndim != 2 or rows.shape[1] != n_bytes:
        raise ValueError(
            f"packed masks must have shape (P, {n_bytes}) — np.packbits(masks, axis=1) of "
            f"masks over the layout's {layout.n_total} weights — got {rows.shape}"
        )
    padding = 8 * n_bytes - layout.n_total
    if padding and len(rows) and np.any(rows[:, -1] & np.uint8((1 << padding) - 1)):
        raise ValueError(
            "packed masks have bits set past the last weight; pack bool masks with "
            "np.packbits(masks, axis=1)"
        )
    return np.ascontiguousarray(rows)


def inner_state(evaluator: Evaluator) -> Any:
    """``evaluator.state_dict()``, or None for an evaluator that keeps no state.

    A wrapper puts its inner evaluator's state in its own, so that a checkpoint, which asks
    only the outermost evaluator, also saves what the inner one caches.
    """
    state_dict = getattr(evaluator, "state_dict", None)
    return state_dict() if callable(state_dict) else None


def load_inner_state(evaluator: Evaluator, state: Any) -> None:
    """Restore what :func:`inner_state` returned for ``evaluator`` (None: nothing to do)."""
    if state is None:
        return
    load = getattr(evaluator, "load_state_dict", None)
    if not callable(load):
        raise ValueError(
            f"the saved state holds a cache of the inner evaluator, but this one "
            f"({type(evaluator).__name__}) keeps none; wrap the same kind of evaluator"
        )
    load(state)


def empty_metrics() -> Metrics:
    return {"loss": np.zeros(0, dtype=np.float64), "error": np.zeros(0, dtype=np.float64)}


class ModelSnapshot:
    """A private, frozen copy of a model plus the data split, on one device.

    ``params`` maps every parameter and buffer name to a detached tensor; ``masked(name, mask)``
    gives the weight with the mask applied. Picklable (for process-based parallelism).
    """

    def __init__(
        self,
        model: nn.Module,
        split: _SplitLike,
        layout: Layout,
        device: str | torch.device = "cpu",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(layout, Layout):
            raise TypeError(
                f"layout must be a masksearch.mask.Layout (Layout.of(model)), got "
                f"{type(layout).__name__}"
            )
        self.device = resolve_device(device)
        x, y = split_tensors(split)
        with torch.no_grad():
            module = copy.deepcopy(model).to(self.device).eval()
        module.requires_grad_(False)
        self.module = module
        named = dict(module.named_parameters())
        for name, shape in zip(layout.names, layout.shapes, strict=True):
            if name not in named:
                raise ValueError(
                    f"the layout names parameter {name!r}, which the model does not have; "
                    "build the layout with Layout.of(model)"
                )
            if tuple(named[name].shape) != tuple(shape):
                raise ValueError(
                    f"the layout gives {name!r} shape {tuple(shape)} but the model's parameter "
                    f"has shape {tuple(named[name].shape)}; build the layout with Layout.of(model)"
                )
        self.layout = layout
        self.params: dict[str, torch.Tensor] = {
            **{n: p.detach() for n, p in module.named_parameters()},
            **{n: b.detach() for n, b in module.named_buffers()},
        }
        dtype = named[layout.names[0]].dtype
        self.x = x.to(self.device, dtype)
        self.y = y.to(self.device)
        self.n_samples = len(self.y)
        self.sizes = layout.sizes
        self._check_fits()

    def _check_fits(self) -> None:
        check_fits(self.module, self.x, self.y)

    def mask_tensors(self, flat: np.ndarray) -> list[torch.Tensor]:
        """One flat bool mask (numpy) as per-parameter bool tensors on the device."""
        whole = torch.from_numpy(np.ascontiguousarray(flat)).to(self.device)
        return [
            chunk.view(shape)
            for chunk, shape in zip(torch.split(whole, self.sizes), self.layout.shapes, strict=True)
        ]

    def masked_params(self, flat: np.ndarray) -> dict[str, torch.Tensor]:
        """All parameters and buffers, the prunable ones multiplied by the mask (convolution
        weights channels-last on the CPU, see :func:`cpu_conv_format`)."""
        params = dict(self.params)
        for name, keep in zip(self.layout.names, self.mask_tensors(flat), strict=True):
            params[name] = cpu_conv_format(params[name] * keep)
        return params

    @property
    def default_batch_size(self) -> int:
        """Samples per forward pass when an evaluator is given none: 256 for a model with
        convolutions on the CPU, whose activations for a whole split spill out of the caches,
        the whole split otherwise (one matrix product per layer)."""
        if convolutions_on_cpu(self.params.values()):
            return min(CPU_CONV_BATCH, self.n_samples)
        return self.n_samples


# samples per pass through a model with convolutions on the CPU: small passes keep the
# activations close to the cores (the LeNet-5 rows of benchmarks/results/engine.md time it)
CPU_CONV_BATCH = 256


def convolutions_on_cpu(params: Iterable[torch.Tensor]) -> bool:
    """Whether ``params`` include a convolution weight (4-D) on the CPU."""
    return any(p.dim() == 4 and p.device.type == "cpu" for p in params)


def cpu_conv_format(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` in channels-last memory order if it is a convolution weight on the CPU.

    oneDNN runs convolutions, and the max-pooling after them, faster on channels-last
    tensors; a convolution with a channels-last weight returns a channels-last
    output, so the format carries through the network. The values are unchanged (the
    computed outputs differ from NCHW ones only by float rounding). A masked weight must be
    converted explicitly: a product with a mask can come back in NCHW strides.
    """
    if weight.dim() == 4 and weight.device.type == "cpu":
        return weight.to(memory_format=torch.channels_last)
    return weight


def label_log_likelihood(
    log_probs: torch.Tensor, labels: torch.Tensor, label_smoothing: float, dim: int
) -> torch.Tensor:
    """Each sample's log-probability of its label from ``log_probs`` (classes along ``dim``,
    ``labels`` broadcast against the others with size 1 there); with ``label_smoothing`` ε the
    smoothed target's, ``(1 − ε)·log p_label + ε·mean_k log p_k``, so its negative is the loss
    ``cross_entropy(..., label_smoothing=ε)`` gives."""
    picked = log_probs.gather(dim, labels)
    if label_smoothing:
        mean = log_probs.mean(dim=dim, keepdim=True)
        picked = (1.0 - label_smoothing) * picked + label_smoothing * mean
    return picked


def metrics_from_logits(
    logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0
) -> tuple[float, int]:
    """(sum of cross-entropy, number correct) of one batch of logits."""
    loss_sum = float(
        torch.nn.functional.cross_entropy(
            logits, labels, reduction="sum", label_smoothing=label_smoothing
        )
    )
    correct = int((logits.argmax(dim=-1) == labels).sum())
    return loss_sum, correct
