"""Empirical-Fisher quadratic surrogate of the loss of a mask, and surrogate screening.

The quadratic is expanded around an *anchor* mask ``a`` (default: the dense model): with the
dense weights ``w``, the mean gradient ``g`` and per-sample gradients ``g_n`` of ``N`` samples,
all taken at the anchored weights ``w⊙a``, a mask ``m`` moves the weights by
``δw_i = (m_i − a_i)·w_i`` and changes the loss by about::

    ΔL(δw) ≈ gᵀδw + 1/(2N) · Σ_n (g_nᵀδw)²

Stored per weight ``i``: ``gw[i] = g_i·w_i`` (float64) and one row ``hw[i, :] = g_{n,i}·w_i``
over the samples (shape ``(n_weights, N)``, so a flipped weight reads one contiguous row), in
float16 (the default) times a power-of-two ``hw_scale`` or in float32 (float16 halves the
bytes a child reads; the kernels widen to float32 on load and sum as the float32 ones do; ``gw``
is then rounded to float32 too). ``z_n = g_nᵀδw = Σ_i (m_i − a_i)·hw[i, n]`` costs O(N·k) for
a mask, where ``k`` is the smallest of its kept weights, its pruned weights and the weights
where it differs from the anchor (sums over the kept or pruned side start from precomputed
totals); a child that flips ``k`` genes of its parent costs O(N·k) from the parent's ``z``
(:meth:`SurrogateEvaluator.children`).

The quadratic captures interactions between pruned weights, unlike the additive diagonal OBD
saliency, but it is a local model: it ranks masks near its anchor far better than masks far
from it (anchor it at the masks a search explores, e.g. the magnitude mask at the target
density, and :meth:`SurrogateEvaluator.reanchor` when the search moves). Use it to rank and
screen candidates (:class:`ScreenedEvaluator`), never as a fitness of its own.

The compiled sums over ``hw`` live in :mod:`masksearch.evaluators._surrogate_kernels`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from masksearch.evaluators._surrogate_kernels import (
    _CACHE_LINE,
    _children_delta,
    _mask_state,
    _population_delta,
    _side_totals,
)
from masksearch.evaluators.base import (
    Evaluator,
    Metrics,
    ModelSnapshot,
    _SplitLike,
    check_label_smoothing,
    check_masks,
)
from masksearch.evaluators.batched import random_subset
from masksearch.front import non_dominated
from masksearch.mask import Layout

__all__ = ["PRECISIONS", "ScreenedEvaluator", "SurrogateEvaluator"]

_PARENT_MEMO = 1024  # parents whose z vector children() remembers
_GRADIENT_CHUNK = 16  # samples per vmap'd per-sample-gradient pass
_BLOCKS_PER_THREAD = 8  # children() work blocks per Numba thread: evens out a noisy machine
_PREFETCH_CHILDREN = 2  # children() prefetches the rows of the child this far ahead (float32)
_HUGE_PAGE = 2 << 20  # bytes
_FLOAT16_TOP = 2.0**15  # float16 hw is scaled so its largest |value| lands in [2^15, 2^16)
RANK_BY = ("loss", "pareto")
PRECISIONS = ("float32", "float16")


class SurrogateEvaluator(Evaluator):
    """Predicted loss ``base_loss + ΔL`` of each mask (no error prediction).

    ``n_samples`` (N) random samples of ``split`` (drawn with ``seed``) give the per-sample
    gradients; the linear term and ``base_loss`` (the loss of the anchored model) use the whole
    split. ``anchor`` (a flat bool mask, default ``None`` = dense) is the expansion point: the
    masks to rank should lie near it (see the module docstring); :meth:`reanchor` moves it.
    ``precision`` is how ``hw`` is stored. ``"float16"`` (the default) takes
    ``2 · n_weights · N`` bytes (lenet300, N=128: 68 MB) and children() reads half the bytes of
    float32; it ranked 5 sets of 64 children of a 5% mask exactly as float32 did. ``hw`` then
    holds ``g_{n,i}·w_i · hw_scale`` with a power-of-two ``hw_scale`` that puts the largest
    value just under float16's maximum, so small values keep their relative precision instead
    of underflowing, and ``gw`` is rounded to float32. ``"float32"`` (``hw_scale`` 1) is the
    reference. Building
    with float16 briefly needs the float32 table as well. The result holds ``"loss"``,
    ``"error"`` (NaN: the surrogate does not predict accuracy) and ``"exact"`` (all False).
    ``label_smoothing`` > 0 expands the label-smoothed loss (see
    :mod:`masksearch.evaluators.base`).
    """

    def __init__(
        self,
        model: nn.Module,
        split: _SplitLike,
        layout: Layout,
        n_samples: int = 128,
        device: str | torch.device = "cpu",
        seed: int = 0,
        anchor: np.ndarray | None = None,
        precision: str = "float16",
        label_smoothing: float = 0.0,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
        snapshot = ModelSnapshot(model, split, layout, device)
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
            raise TypeError(f"n_samples must be an int, got {n_samples!r}")
        if not 1 <= n_samples <= snapshot.n_samples:
            raise ValueError(
                f"n_samples must be in 1..{snapshot.n_samples} (the split's size), got {n_samples}"
            )
        self.layout = layout
        self.label_smoothing = check_label_smoothing(label_smoothing)
        self.n_samples = snapshot.n_samples
        self.n_gradients = int(n_samples)
        self._snapshot = snapshot
        self._subset = random_subset(split, self.n_gradients, seed)
        self.precision = precision
        self.hw = _aligned_empty((layout.n_total, self.n_gradients), np.dtype(precision).type)
        self.hw_scale = 1.0
        self._parents: OrderedDict[bytes, tuple[np.ndarray, float]] = OrderedDict()
        self.reanchor(anchor)

    def reanchor(self, anchor: np.ndarray | None) -> None:
        """Expand the quadratic around ``anchor`` (a flat bool mask; ``None`` = dense).

        Recomputes the gradients at the anchored weights: as costly as building the surrogate
        (about two seconds on lenet300, N=128), and reuses the ``hw`` buffer (float16 goes
        through a temporary float32 table).
        """
        if anchor is None:
            anchor = np.ones(self.layout.n_total, dtype=bool)
        else:
            anchor = check_masks(np.asarray(anchor).reshape(1, -1), self.layout)[0].copy()
        snapshot = self._snapshot
        params = snapshot.masked_params(anchor)
        weights = torch.cat([snapshot.params[n].reshape(-1) for n in self.layout.names])
        base_loss, mean_gradient = _loss_and_gradient(snapshot, params, self.label_smoothing)
        self.anchor = anchor
        self.base_loss = base_loss
        gw = (mean_gradient.double() * weights.double()).cpu().numpy()
        if self.hw.dtype == np.float32:
            self._gw = self.gw = gw
            _fill_per_sample_gradients(
                snapshot, params, self._subset, weights, self.hw, self.label_smoothing
            )
        else:
            # children() then reads 4 bytes of gw per gene instead of 8 (a table half the
            # size stays in cache more often); rounding gw to float32 moves it by < 6e-8 of
            # itself, far below the float16 rounding of hw; self.gw holds the same values
            self._gw = gw.astype(np.float32)
            self.gw = self._gw.astype(np.float64)
            exact = np.empty(self.hw.shape, dtype=np.float32)
            _fill_per_sample_gradients(
                snapshot, params, self._subset, weights, exact, self.label_smoothing
            )
            self.hw_scale = _float16_scale(exact)
            np.multiply(exact, np.float32(self.hw_scale), out=exact)  # a power of two: exact
            self.hw[...] = exact
            del exact
        kept_hw, pruned_hw, kept_gw, pruned_gw = _side_totals(
            anchor, self._rows(), 1.0 / self.hw_scale, self._gw
        )
        # z and the linear term of a mask summed over its kept (pruned) side start from these
        self._z_kept, self._lin_kept = -kept_hw, -kept_gw
        self._z_pruned, self._lin_pruned = pruned_hw, pruned_gw
        self._parents.clear()

    def delta_loss(self, masks: np.ndarray) -> np.ndarray:
        """Predicted ΔL of each mask relative to the anchor (shape ``(P,)``, float64)."""
        return self._delta(check_masks(masks, self.layout))

    def _delta(self, masks: np.ndarray) -> np.ndarray:
        return _population_delta(masks, *self._state_arrays())

    def _rows(self) -> np.ndarray:
        """``hw`` as the kernels read it: float16 as its uint16 bit patterns (Numba has no
        float16 on the CPU; :func:`~masksearch.evaluators._surrogate_kernels._widen` converts)."""
        return self.hw.view(np.uint16) if self.hw.dtype == np.float16 else self.hw

    def _state_arrays(self) -> tuple:
        return (
            self.anchor,
            self._rows(),
            1.0 / self.hw_scale,
            self._gw,
            self._z_kept,
            self._lin_kept,
            self._z_pruned,
            self._lin_pruned,
        )

    def _evaluate(self, masks: np.ndarray) -> Metrics:
        return {
            "loss": self.base_loss + self._delta(masks),
            "error": np.full(len(masks), np.nan),
            "exact": np.zeros(len(masks), dtype=bool),
        }

    def children(self, parent_mask: np.ndarray, child_diffs: np.ndarray) -> np.ndarray:
        """Predicted loss of children of ``parent_mask``, O(N·k) each.

        ``child_diffs`` is an int array ``(C, k)``: row ``c`` lists the distinct gene indices
        child ``c`` flips relative to the parent; ``-1`` entries are padding (flip nothing),
        so children may flip different numbers of genes. The children's ``z`` sums are
        accumulated in float32 on top of the parent's (float64) ones: the result agrees with
        :meth:`delta_loss` to about 1e-6 of the loss change.
        """
        parent = check_masks(np.asarray(parent_mask).reshape(1, -1), self.layout)[0]
        diffs = np.asarray(child_diffs)
        if diffs.ndim != 2 or not np.issubdtype(diffs.dtype, np.integer):
            raise ValueError(
                "child_diffs must be a 2-D integer array (children × flipped genes, -1 = "
                f"padding), got shape {diffs.shape} and dtype {diffs.dtype}"
            )
        if diffs.dtype not in (np.int32, np.int64):
            diffs = diffs.astype(np.int64)
        diffs = np.ascontiguousarray(diffs)
        z, lin = self._parent_state(parent)
        n_blocks = _BLOCKS_PER_THREAD * numba.get_num_threads()
        # the same number of row bytes in flight: float16 rows prefetch twice as many children
        ahead = _PREFETCH_CHILDREN * 4 // self.hw.itemsize
        # the kernel checks the indices as it reads them (a separate pass costs ~5%); blocks go
        # to whichever thread is free (the default splits them evenly up front, so a thread
        # that another process slows holds the others back)
        with numba.parallel_chunksize(1):
            delta, n_bad = _children_delta(
                parent,
                diffs,
                z,
                lin,
                self._rows(),
                np.float32(1.0 / self.hw_scale),
                self._gw,
                n_blocks,
                ahead,
            )
        if n_bad:
            raise ValueError(
                f"child_diffs holds {n_bad} gene indices outside 0..{self.layout.n_total - 1} "
                "(use -1 for padding)"
            )
        return self.base_loss + delta

    def _parent_state(self, parent: np.ndarray) -> tuple[np.ndarray, float]:
        key = np.packbits(parent).tobytes()
        if key in self._parents:
            self._parents.move_to_end(key)
            return self._parents[key]
        z, lin = _mask_state(parent, *self._state_arrays())
        self._parents[key] = (z, float(lin))
        while len(self._parents) > _PARENT_MEMO:
            self._parents.popitem(last=False)
        return z, float(lin)


class ScreenedEvaluator(Evaluator):
    """Evaluate exactly only the candidates the surrogate ranks best.

    The best ``keep`` fraction (at least one) goes to ``exact``; the rest get ``loss = inf``,
    ``error = 1.0`` and ``"exact" = False`` so a search can leave them out of its archive.
    ``"predicted_loss"`` holds the surrogate's loss for every candidate.

    ``surrogate`` may be one surrogate or several anchored at different masks (e.g. the
    magnitude masks at the densities a search targets): each candidate is then predicted by the
    surrogate whose anchor is nearest in Hamming distance, since the quadratic is only trusted
    near its anchor. ``rank_by="loss"`` ranks by predicted loss alone; ``"pareto"`` by
    non-dominated sorting of (predicted loss, density), ties within a front broken by predicted
    loss — for searches that also minimise density, where ranking by loss alone would favour
    the densest candidates. The first ``warmup_calls`` populations (a search's seeded initial
    population) are evaluated exactly in full: screening is meant for offspring.

    ``keep`` trades exact evaluations for generations. In ``benchmarks/bench_screening.py``
    (NSGA-II, population 64, lenet300_fashion) ``keep=0.15`` reached the unscreened search's final
    hypervolume after 0.23 ± 0.04 of its exact evaluations over 3 seeds, where 1/3 (the default,
    the safer choice when the surrogate's anchors are far from the population) needed more.
    """

    def __init__(
        self,
        exact: Evaluator,
        surrogate: SurrogateEvaluator | Sequence[SurrogateEvaluator],
        keep: float = 1 / 3,
        rank_by: str = "loss",
        warmup_calls: int = 0,
    ):
        surrogates = [surrogate] if isinstance(surrogate, SurrogateEvaluator) else list(surrogate)
        if not surrogates or not all(isinstance(s, SurrogateEvaluator) for s in surrogates):
            raise TypeError("surrogate must be a SurrogateEvaluator or a non-empty list of them")
        if any(exact.layout != s.layout for s in surrogates):
            raise ValueError("the exact evaluator and the surrogate must share one layout")
        if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
            raise ValueError(f"keep must be a fraction in (0, 1], got {keep!r}")
        if rank_by not in RANK_BY:
            raise ValueError(f"unknown rank_by {rank_by!r}; choose one of {list(RANK_BY)}")
        if isinstance(warmup_calls, bool) or not isinstance(warmup_calls, int) or warmup_calls < 0:
            raise ValueError(f"warmup_calls must be an int >= 0, got {warmup_calls!r}")
        self.exact = exact
        self.surrogates = surrogates
        self.surrogate = surrogates[0]
        self.keep = float(keep)
        self.rank_by = rank_by
        self.warmup_calls = warmup_calls
        self.layout = exact.layout
        self.n_samples = getattr(exact, "n_samples", None)

    def predicted_loss(self, masks: np.ndarray) -> np.ndarray:
        """Each mask's loss predicted by the surrogate anchored nearest to it."""
        masks = check_masks(masks, self.layout)
        if len(self.surrogates) == 1:
            nearest = np.zeros(len(masks), dtype=np.int64)
        else:
            distance = np.stack([(masks != s.anchor).sum(axis=1) for s in self.surrogates])
            nearest = distance.argmin(axis=0)
        predicted = np.empty(len(masks))
        for index, surrogate in enumerate(self.surrogates):
            rows = nearest == index
            if rows.any():
                predicted[rows] = surrogate.base_loss + surrogate.delta_loss(masks[rows])
        return predicted

    def _evaluate(self, masks: np.ndarray) -> Metrics:
        predicted = self.predicted_loss(masks)
        if self.n_calls <= self.warmup_calls:
            n_exact = len(masks)
        else:
            n_exact = max(1, math.ceil(self.keep * len(masks)))
        if self.rank_by == "loss":
            order = np.argsort(predicted, kind="stable")
        else:
            density = masks.sum(axis=1) / self.layout.n_total
            fronts = _front_ranks(np.stack([predicted, density], axis=1))
            order = np.lexsort((predicted, fronts))
        chosen = np.sort(order[:n_exact])
        result = self.exact(masks[chosen])
        loss = np.full(len(masks), np.inf)
        error = np.ones(len(masks))
        exact = np.zeros(len(masks), dtype=bool)
        loss[chosen], error[chosen], exact[chosen] = result["loss"], result["error"], True
        return {"loss": loss, "error": error, "exact": exact, "predicted_loss": predicted}


def _front_ranks(objectives: np.ndarray) -> np.ndarray:
    """Non-dominated front index (0 = best) of each row (minimised)."""
    ranks = np.full(len(objectives), -1)
    remaining = np.arange(len(objectives))
    front = 0
    while len(remaining):
        best = non_dominated(objectives[remaining])
        ranks[remaining[best]] = front
        remaining = remaining[~best]
        front += 1
    return ranks


def _float16_scale(hw: np.ndarray) -> float:
    """The power of two that puts the largest finite ``|hw|`` in ``[2^15, 2^16)``, below
    float16's maximum (65504): the per-sample gradient·weight values span many decades (lenet300:
    1e-21 to 2.5), and unscaled float16 would flush the smallest to zero."""
    largest = float(np.abs(hw).max(initial=0.0))
    if not math.isfinite(largest):
        raise ValueError("the per-sample gradients hold non-finite values: cannot store float16")
    if largest == 0.0:
        return 1.0
    return 2.0 ** (math.log2(_FLOAT16_TOP) - math.floor(math.log2(largest)))


def _aligned_empty(shape: tuple[int, int], dtype: type[np.generic]) -> np.ndarray:
    """An uninitialised C-contiguous array whose first byte starts a huge page (a cache line
    for arrays under one huge page).

    children() gathers whole rows of ``hw``: with 128 float32 samples a row is 512 bytes, 8
    cache lines when the buffer starts on a line and 9 when it does not (numpy's buffers start
    16 bytes past a page). numpy asks for transparent huge pages on large buffers, and a buffer
    that starts on a huge page is covered by them to its first byte: the random row gathers
    then miss the TLB far less often.
    """
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    alignment = _HUGE_PAGE if nbytes >= _HUGE_PAGE else _CACHE_LINE
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    offset = -raw.ctypes.data % alignment
    return raw[offset : offset + nbytes].view(dtype).reshape(shape)


# -- gradients ----------------------------------------------------------------------------


def _loss_and_gradient(
    snapshot: ModelSnapshot, params: dict[str, torch.Tensor], label_smoothing: float = 0.0
) -> tuple[float, torch.Tensor]:
    """Mean loss on the split at ``params`` and its gradient w.r.t. the layout's weights."""
    names = snapshot.layout.names
    weights = {n: params[n].clone().requires_grad_(True) for n in names}
    params = {**params, **weights}
    total = 0.0
    gradients = [torch.zeros_like(weights[n]) for n in names]
    for start in range(0, snapshot.n_samples, 1024):
        logits = functional_call(snapshot.module, params, (snapshot.x[start : start + 1024],))
        loss = F.cross_entropy(
            logits,
            snapshot.y[start : start + 1024],
            reduction="sum",
            label_smoothing=label_smoothing,
        )
        parts = torch.autograd.grad(loss, [weights[n] for n in names])
        total += float(loss.detach())
        for accumulated, part in zip(gradients, parts, strict=True):
            accumulated += part
    flat = torch.cat([g.reshape(-1) for g in gradients]) / snapshot.n_samples
    return total / snapshot.n_samples, flat


def _fill_per_sample_gradients(
    snapshot: ModelSnapshot,
    params: dict[str, torch.Tensor],
    subset: _SplitLike,
    weights: torch.Tensor,
    out: np.ndarray,
    label_smoothing: float = 0.0,
) -> None:
    """Write ``g_{n,i}·w_i`` (gradients at ``params``) into ``out``, shape ``(n_weights, N)``."""
    names = snapshot.layout.names
    fixed = {n: t for n, t in params.items() if n not in set(names)}
    chosen_weights = {n: params[n] for n in names}

    def sample_loss(chosen: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor):
        logits = functional_call(snapshot.module, {**fixed, **chosen}, (x[None],))
        return F.cross_entropy(logits, y[None], label_smoothing=label_smoothing)

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    x = subset.x.to(snapshot.device, snapshot.x.dtype)
    y = subset.y.to(snapshot.device).long()
    on_cpu = snapshot.device.type == "cpu"
    # on the CPU the gradients go straight into the numpy buffer (no second 4·n·N copy)
    target = torch.from_numpy(out) if on_cpu else torch.empty(out.shape, device=snapshot.device)
    for start in range(0, len(y), _GRADIENT_CHUNK):
        stop = start + _GRADIENT_CHUNK
        parts = per_sample(chosen_weights, x[start:stop], y[start:stop])
        flat = torch.cat([parts[n].reshape(len(parts[n]), -1) for n in names], dim=1)
        target[:, start : start + len(flat)] = flat.t()
    target.mul_(weights.to(target.device, target.dtype)[:, None])
    if not on_cpu:
        out[...] = target.cpu().numpy()
