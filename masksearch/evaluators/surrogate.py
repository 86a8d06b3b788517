"""Empirical-Fisher quadratic surrogate of the loss of a mask, and surrogate screening.

With dense weights ``w``, the mean gradient ``g`` on the split and per-sample gradients
``g_n`` of ``N`` samples, pruning (``δw_i = -w_i`` on pruned weights) changes the loss by about::

    ΔL(δw) ≈ gᵀδw + 1/(2N) · Σ_n (g_nᵀδw)²

Stored per weight ``i``: ``gw[i] = g_i·w_i`` (float64) and one row ``hw[i, :] = g_{n,i}·w_i``
over the samples (float32, shape ``(n_weights, N)``, so a flipped weight reads one contiguous
row). With ``z_n = g_nᵀδw = -Σ_{i pruned} hw[i, n]`` a mask costs O(N·min(kept, pruned)) from
scratch (sums over the kept weights start from the all-pruned totals), and a child that flips
``k`` genes of its parent O(N·k) from the parent's ``z`` (:meth:`SurrogateEvaluator.children`).
The quadratic captures interactions between pruned weights, unlike the additive diagonal OBD
saliency, but it is a local model: use it to rank and screen candidates
(:class:`ScreenedEvaluator`), never as a fitness of its own.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from masksearch.evaluators.base import Evaluator, Metrics, ModelSnapshot, _SplitLike, check_masks
from masksearch.evaluators.batched import random_subset
from masksearch.mask import Layout

__all__ = ["ScreenedEvaluator", "SurrogateEvaluator"]

_PARENT_MEMO = 1024  # parents whose z vector children() remembers
_GRADIENT_CHUNK = 16  # samples per vmap'd per-sample-gradient pass


class SurrogateEvaluator(Evaluator):
    """Predicted loss ``base_loss + ΔL`` of each mask (no error prediction).

    ``n_samples`` (N) random samples of ``split`` (drawn with ``seed``) give the per-sample
    gradients; the linear term and ``base_loss`` use the whole split. Memory:
    ``4 · n_weights · N`` bytes (lenet300, N=128: 136 MB). The result holds ``"loss"``,
    ``"error"`` (NaN: the surrogate does not predict accuracy) and ``"exact"`` (all False).
    """

    def __init__(
        self,
        model: nn.Module,
        split: _SplitLike,
        layout: Layout,
        n_samples: int = 128,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        snapshot = ModelSnapshot(model, split, layout, device)
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
            raise TypeError(f"n_samples must be an int, got {n_samples!r}")
        if not 1 <= n_samples <= snapshot.n_samples:
            raise ValueError(
                f"n_samples must be in 1..{snapshot.n_samples} (the split's size), got {n_samples}"
            )
        self.layout = layout
        self.n_samples = snapshot.n_samples
        self.n_gradients = int(n_samples)
        weights = torch.cat([snapshot.params[n].reshape(-1) for n in layout.names])
        base_loss, mean_gradient = _loss_and_gradient(snapshot)
        per_sample = _per_sample_gradients(snapshot, random_subset(split, self.n_gradients, seed))
        self.base_loss = base_loss
        self.gw = (mean_gradient.double() * weights.double()).cpu().numpy()
        per_sample.mul_(weights.to(per_sample.device)[:, None])  # in place: it is the big one
        self.hw = np.ascontiguousarray(per_sample.cpu().numpy(), dtype=np.float32)
        # totals with every weight pruned: masks sum over their smaller side from these
        self._lin_all = -float(self.gw.sum())
        self._z_all = -self.hw.sum(axis=0, dtype=np.float64)
        self._parents: OrderedDict[bytes, tuple[np.ndarray, float]] = OrderedDict()

    def delta_loss(self, masks: np.ndarray) -> np.ndarray:
        """Predicted ΔL of each mask (shape ``(P,)``, float64)."""
        masks = check_masks(masks, self.layout)
        return _population_delta(masks, self.hw, self.gw, self._z_all, self._lin_all)

    def _evaluate(self, masks: np.ndarray) -> Metrics:
        delta = _population_delta(masks, self.hw, self.gw, self._z_all, self._lin_all)
        return {
            "loss": self.base_loss + delta,
            "error": np.full(len(masks), np.nan),
            "exact": np.zeros(len(masks), dtype=bool),
        }

    def children(self, parent_mask: np.ndarray, child_diffs: np.ndarray) -> np.ndarray:
        """Predicted loss of children of ``parent_mask``, O(N·k) each.

        ``child_diffs`` is an int array ``(C, k)``: row ``c`` lists the distinct gene indices
        child ``c`` flips relative to the parent; ``-1`` entries are padding (flip nothing),
        so children may flip different numbers of genes.
        """
        parent = check_masks(np.asarray(parent_mask).reshape(1, -1), self.layout)[0]
        diffs = np.asarray(child_diffs)
        if diffs.ndim != 2 or not np.issubdtype(diffs.dtype, np.integer):
            raise ValueError(
                "child_diffs must be a 2-D integer array (children × flipped genes, -1 = "
                f"padding), got shape {diffs.shape} and dtype {diffs.dtype}"
            )
        diffs = np.ascontiguousarray(diffs, dtype=np.int64)
        if diffs.size and (diffs.min() < -1 or diffs.max() >= self.layout.n_total):
            raise ValueError(
                f"child_diffs holds gene indices outside 0..{self.layout.n_total - 1} "
                "(use -1 for padding)"
            )
        z, lin = self._parent_state(parent)
        blocks = 8 * numba.get_num_threads()
        return self.base_loss + _children_delta(parent, diffs, z, lin, self.hw, self.gw, blocks)

    def _parent_state(self, parent: np.ndarray) -> tuple[np.ndarray, float]:
        key = np.packbits(parent).tobytes()
        if key in self._parents:
            self._parents.move_to_end(key)
            return self._parents[key]
        z, lin = _mask_state(parent, self.hw, self.gw, self._z_all, self._lin_all)
        self._parents[key] = (z, float(lin))
        while len(self._parents) > _PARENT_MEMO:
            self._parents.popitem(last=False)
        return z, float(lin)


class ScreenedEvaluator(Evaluator):
    """Evaluate exactly only the candidates the surrogate ranks best.

    The best ``keep`` fraction (at least one) by surrogate loss goes to ``exact``; the rest get
    ``loss = inf``, ``error = 1.0`` and ``"exact" = False`` so a search can leave them out of
    its archive. ``"predicted_loss"`` holds the surrogate's loss for every candidate.
    """

    def __init__(self, exact: Evaluator, surrogate: SurrogateEvaluator, keep: float = 1 / 3):
        if exact.layout != surrogate.layout:
            raise ValueError("the exact evaluator and the surrogate must share one layout")
        if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
            raise ValueError(f"keep must be a fraction in (0, 1], got {keep!r}")
        self.exact = exact
        self.surrogate = surrogate
        self.keep = float(keep)
        self.layout = exact.layout
        self.n_samples = getattr(exact, "n_samples", None)

    def _evaluate(self, masks: np.ndarray) -> Metrics:
        predicted = self.surrogate.base_loss + self.surrogate.delta_loss(masks)
        n_exact = max(1, math.ceil(self.keep * len(masks)))
        chosen = np.sort(np.argsort(predicted, kind="stable")[:n_exact])
        result = self.exact(masks[chosen])
        loss = np.full(len(masks), np.inf)
        error = np.ones(len(masks))
        exact = np.zeros(len(masks), dtype=bool)
        loss[chosen], error[chosen], exact[chosen] = result["loss"], result["error"], True
        return {"loss": loss, "error": error, "exact": exact, "predicted_loss": predicted}


# -- gradients ----------------------------------------------------------------------------


def _loss_and_gradient(snapshot: ModelSnapshot) -> tuple[float, torch.Tensor]:
    """Mean loss on the split and its gradient with respect to the layout's weights (flat)."""
    names = snapshot.layout.names
    weights = {n: snapshot.params[n].clone().requires_grad_(True) for n in names}
    params = {**snapshot.params, **weights}
    total = 0.0
    gradients = [torch.zeros_like(weights[n]) for n in names]
    for start in range(0, snapshot.n_samples, 1024):
        logits = functional_call(snapshot.module, params, (snapshot.x[start : start + 1024],))
        loss = F.cross_entropy(logits, snapshot.y[start : start + 1024], reduction="sum")
        parts = torch.autograd.grad(loss, [weights[n] for n in names])
        total += float(loss.detach())
        for accumulated, part in zip(gradients, parts, strict=True):
            accumulated += part
    flat = torch.cat([g.reshape(-1) for g in gradients]) / snapshot.n_samples
    return total / snapshot.n_samples, flat


def _per_sample_gradients(snapshot: ModelSnapshot, subset: _SplitLike) -> torch.Tensor:
    """Gradients of each sample's loss, one row per weight: shape ``(n_weights, N)``."""
    names = snapshot.layout.names
    fixed = {n: t for n, t in snapshot.params.items() if n not in set(names)}
    weights = {n: snapshot.params[n] for n in names}

    def sample_loss(chosen: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor):
        logits = functional_call(snapshot.module, {**fixed, **chosen}, (x[None],))
        return F.cross_entropy(logits, y[None])

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    x = subset.x.to(snapshot.device, snapshot.x.dtype)
    y = subset.y.to(snapshot.device).long()
    out = torch.empty((snapshot.layout.n_total, len(y)), dtype=x.dtype, device=x.device)
    for start in range(0, len(y), _GRADIENT_CHUNK):
        stop = start + _GRADIENT_CHUNK
        parts = per_sample(weights, x[start:stop], y[start:stop])
        flat = torch.cat([parts[n].reshape(len(parts[n]), -1) for n in names], dim=1)
        out[:, start : start + len(flat)] = flat.t()
    return out


# -- Numba kernels ------------------------------------------------------------------------


@numba.njit(cache=True)
def _mask_state(mask, hw, gw, z_all, lin_all):  # pragma: no cover - compiled
    """(z, linear term) of one mask, summing over whichever side (kept/pruned) is smaller."""
    n_weights, n = hw.shape
    kept = 0
    for i in range(n_weights):
        kept += mask[i]
    z = np.zeros(n)
    lin = 0.0
    if 2 * kept <= n_weights:
        for i in range(n_weights):
            if mask[i]:
                lin += gw[i]
                for s in range(n):
                    z[s] += hw[i, s]
        for s in range(n):
            z[s] += z_all[s]
        lin += lin_all
    else:
        for i in range(n_weights):
            if not mask[i]:
                lin -= gw[i]
                for s in range(n):
                    z[s] -= hw[i, s]
    return z, lin


@numba.njit(parallel=True, cache=True)
def _population_delta(masks, hw, gw, z_all, lin_all):  # pragma: no cover - compiled
    n = hw.shape[1]
    out = np.empty(masks.shape[0])
    for p in numba.prange(masks.shape[0]):
        z, lin = _mask_state(masks[p], hw, gw, z_all, lin_all)
        out[p] = lin + 0.5 / n * np.sum(z * z)
    return out


@numba.njit(parallel=True, cache=True)
def _children_delta(parent, diffs, parent_z, parent_lin, hw, gw, n_blocks):  # pragma: no cover
    # n_blocks (a few per thread) each reuse one z buffer: no allocation per child
    n = hw.shape[1]
    n_children = diffs.shape[0]
    out = np.empty(n_children)
    n_blocks = max(1, min(n_children, n_blocks))
    for block in numba.prange(n_blocks):
        z = np.empty(n)
        for c in range(block * n_children // n_blocks, (block + 1) * n_children // n_blocks):
            z[:] = parent_z
            lin = parent_lin
            for j in range(diffs.shape[1]):
                i = diffs[c, j]
                if i < 0:
                    continue
                # the child keeps what the parent pruned (z gains +hw) and prunes what it kept
                sign = -1.0 if parent[i] else 1.0
                lin += sign * gw[i]
                for s in range(n):
                    z[s] += sign * hw[i, s]
            total = 0.0
            for s in range(n):
                total += z[s] * z[s]
            out[c] = lin + 0.5 / n * total
    return out
