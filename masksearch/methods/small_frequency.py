"""Greedy pruning by how often weights were small: method B of docs/methods.md (Hu et al.).

Read from the paper's abstract (see ``docs/methods.md``, section B):

1. Statistic. While training, every ``sample_every`` steps within the last ``window`` steps of
   a round, each weight is tested against τ_l = α·std(W_l) (α = 0.5, std over the layer's
   whole shadow tensor); p_i is the fraction of samples with |w_i| < τ_l
   (:class:`SmallWeightStatistic`), collected afresh in every round. (The spec's alternative,
   an EMA with β = 0.99, is not implemented.)
2. Importance. I_i = λ1·rank(1 − p_i) + λ2·rank(|w_i|) + λ3·rank(ΔL_i), every term rank-normalised
   to [0, 1] within its layer, ΔL_i = |−g_i·w_i + ½·h_ii·w_i²| with g the mean gradient and h the
   empirical-Fisher diagonal over ``fisher_samples`` samples, both taken at the masked weights
   W ⊙ M and with w_i the (shadow) value of the weight (:func:`importance`).
3. Stages of rising sparsity (:func:`stage_sparsities`: steps of 0.10 to 80%, then 0.05 to 95%,
   then 97/98/99/99.5/99.8/99.9%, ending on the target). A round trains with the mask while
   pruned weights keep shadow values that still receive gradients (as in DNS), then, per layer:
   in the stage's first round the lowest-I active weights are pruned down to the stage's count;
   then the r = 1% (``swap_fraction``) of active weights with the lowest I are exchanged for the
   r pruned ones with the highest I — pair by pair, only while the restored weight's I exceeds
   the pruned one's, so a settled layer stops changing. A stage ends when fewer than 0.1% of all
   mask entries change in a round, or after 20 rounds.

Budget: ``finetune_fraction`` (20%) of the steps is kept for training the final mask; the rest
is shared out evenly over the stages (what a stage leaves unused passes on). A round lasts
``round_epochs`` (one epoch), shortened when the budget cannot give every stage two rounds.
Per-layer counts of a stage come from a global magnitude ranking of the masked weights
(``allocation="global"``) or the same fraction everywhere (``"layer"``); swaps hold them.

Registered as ``small_frequency``; the old name ``method_b`` (and the old module path
:mod:`masksearch.methods.method_b` with ``MethodB``) still work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from masksearch.methods._trainer import start_run
from masksearch.methods._util import (
    ALLOCATIONS,
    active_first,
    global_counts,
    keep_top_per_layer,
    layer_counts,
    rank_normalize,
    to_mask,
)
from masksearch.methods.base import (
    MethodError,
    TrainingMethod,
    check_fraction,
    check_int,
    emit,
    register,
)
from masksearch.methods.oneshot import gradient_statistics

__all__ = [
    "STAGE_LADDER",
    "SmallFrequencyGreedy",
    "SmallWeightStatistic",
    "importance",
    "sample_steps",
    "stage_sparsities",
    "swap_step",
]

STAGE_LADDER: tuple[float, ...] = (
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.85,
    0.9,
    0.95,
    0.97,
    0.98,
    0.99,
    0.995,
    0.998,
    0.999,
)


class SmallWeightStatistic:
    """p_i: the fraction of observations in which |w_i| < τ_l = α·std(W_l).

    ``std`` is the population standard deviation of all entries of the layer's tensor as
    observed (for B: the shadow weights, pruned ones included).
    """

    def __init__(self, alpha: float = 0.5) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
            raise MethodError(f"alpha must be a number > 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.reset()

    def reset(self) -> None:
        self.counts: dict[str, torch.Tensor] = {}
        self.samples = 0

    def observe(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Count one sample of every named tensor."""
        with torch.no_grad():
            for name, weight in weights.items():
                tau = self.alpha * float(weight.detach().double().std(unbiased=False))
                small = (weight.detach().abs() < tau).to("cpu", torch.float64)
                self.counts[name] = self.counts.get(name, 0) + small
        self.samples += 1

    def probability(self) -> dict[str, torch.Tensor]:
        if self.samples == 0:
            raise MethodError("the small-weight statistic has no samples yet; observe() first")
        return {name: count / self.samples for name, count in self.counts.items()}


def sample_steps(n_steps: int, every: int, window: int | None = None) -> list[int]:
    """Indices (0-based) of the steps, out of ``n_steps``, after which the statistic samples.

    Counting back from the last step (always sampled) every ``every`` steps, within the last
    ``window`` steps (all of them when ``None``).
    """
    if n_steps <= 0:
        return []
    span = n_steps if window is None else min(window, n_steps)
    first_allowed = n_steps - span
    return list(range(n_steps - 1, first_allowed - 1, -every))[::-1]


def importance(
    probability: Mapping[str, torch.Tensor],
    weights: Mapping[str, torch.Tensor],
    delta_loss: Mapping[str, torch.Tensor],
    lambdas: Sequence[float] = (1 / 3, 1 / 3, 1 / 3),
) -> dict[str, torch.Tensor]:
    """I = λ1·rank(1 − p) + λ2·rank(|w|) + λ3·rank(ΔL), ranks normalised within each tensor."""
    first, second, third = lambdas
    return {
        name: first * rank_normalize(1.0 - probability[name].double().cpu())
        + second * rank_normalize(weights[name].detach().abs().double().cpu())
        + third * rank_normalize(delta_loss[name].detach().double().cpu())
        for name in weights
    }


def swap_step(
    scores: torch.Tensor, keep: torch.Tensor, fraction: float
) -> tuple[torch.Tensor, int]:
    """Exchange up to r = max(1, round(fraction·active)) low-score kept entries for high-score
    pruned ones, pair by pair while the pruned entry scores higher; returns (mask, swaps)."""
    flat_scores = scores.detach().reshape(-1).to("cpu", torch.float64)
    flat_keep = keep.reshape(-1).to("cpu").clone()
    active = torch.nonzero(flat_keep).squeeze(1)
    pruned = torch.nonzero(~flat_keep).squeeze(1)
    r = min(max(1, round(fraction * active.numel())), active.numel(), pruned.numel())
    if r == 0:
        return keep.clone(), 0
    weakest = active[torch.sort(flat_scores[active], stable=True).indices[:r]]
    strongest = pruned[torch.sort(-flat_scores[pruned], stable=True).indices[:r]]
    better = flat_scores[strongest] > flat_scores[weakest]
    # both lists are sorted, so once a pair fails every later pair fails too
    swaps = int(better.cumprod(0).sum())
    flat_keep[weakest[:swaps]] = False
    flat_keep[strongest[:swaps]] = True
    return flat_keep.reshape(keep.shape).to(keep.device), swaps


def stage_sparsities(target: float, start: float = 0.0) -> list[float]:
    """Sparsity of each stage from ``start`` to ``target`` on :data:`STAGE_LADDER`."""
    if target <= start:
        return []
    return [s for s in STAGE_LADDER if start < s < target - 1e-9] + [target]


@register
@dataclass
class SmallFrequencyGreedy(TrainingMethod):
    """Greedy prune-and-restore by a combined importance (see the module docstring)."""

    name: ClassVar[str] = "small_frequency"
    old_names: ClassVar[tuple[str, ...]] = ("method_b",)

    alpha: float = 0.5
    sample_every: int = 10
    window: int | None = None
    lambdas: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    swap_fraction: float = 0.01
    stable_fraction: float = 0.001
    max_rounds: int = 20
    round_epochs: float = 1.0
    finetune_fraction: float = 0.2
    fisher_samples: int = 128
    chunk_size: int = 64
    allocation: str = "global"
    stages: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        SmallWeightStatistic(self.alpha)
        check_int("sample_every", self.sample_every, 1)
        if self.window is not None:
            check_int("window", self.window, 1)
        if len(self.lambdas) != 3 or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in self.lambdas
        ):
            raise MethodError(f"lambdas must be three numbers >= 0, got {self.lambdas!r}")
        check_fraction("swap_fraction", self.swap_fraction, low_open=True, high=0.5)
        check_fraction("stable_fraction", self.stable_fraction)
        check_int("max_rounds", self.max_rounds, 1)
        if (
            isinstance(self.round_epochs, bool)
            or not isinstance(self.round_epochs, (int, float))
            or self.round_epochs <= 0
        ):
            raise MethodError(f"round_epochs must be a number > 0, got {self.round_epochs!r}")
        check_fraction("finetune_fraction", self.finetune_fraction, high=0.9)
        check_int("fisher_samples", self.fisher_samples, 1)
        check_int("chunk_size", self.chunk_size, 1)
        if self.allocation not in ALLOCATIONS:
            raise MethodError(
                f"allocation must be one of {list(ALLOCATIONS)}, got {self.allocation!r}"
            )
        if self.stages is not None:
            stages = tuple(self.stages)
            if (
                not stages
                or any(not 0 < s < 1 for s in stages)
                or list(stages) != sorted(set(stages))
            ):
                raise MethodError(
                    f"stages must be strictly rising sparsities in (0, 1), got {self.stages!r}"
                )

    def _stages(self, target: float) -> list[float]:
        if self.stages is None:
            return stage_sparsities(target)
        if target == 0.0:
            return []
        if abs(self.stages[-1] - target) > 1e-9:
            raise MethodError(
                f"the last stage ({self.stages[-1]}) must be the target sparsity {target}"
            )
        return list(self.stages)

    def _run(self, model, split, density, epochs, seed, device, progress):
        trainer = start_run(self, model, split, epochs, seed, device)
        params = trainer.params
        names = list(params)
        sizes = {n: p.numel() for n, p in params.items()}
        total = sum(sizes.values())
        stages = self._stages(1.0 - density)
        budget = trainer.budget_steps
        stage_budget = budget - math.ceil(self.finetune_fraction * budget) if stages else 0
        if stage_budget < len(stages):
            needed = math.ceil(
                len(stages) / ((1 - self.finetune_fraction) * trainer.steps_per_epoch)
            )
            raise MethodError(
                f"method B needs at least one training step for each of its {len(stages)} "
                f"stages; {epochs} epoch(s) give {stage_budget} stage steps. Use epochs >= "
                f"{needed + 1} or fewer stages"
            )
        round_steps = max(1, round(self.round_epochs * trainer.steps_per_epoch))
        if stages:
            round_steps = min(round_steps, max(1, stage_budget // (2 * len(stages))))
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(len(split.y), generator=generator)[: self.fisher_samples]
        fisher_x = split.x[index].to(trainer.device, trainer.stream.x.dtype)
        fisher_y = split.y[index].to(trainer.device).long()
        statistic = SmallWeightStatistic(self.alpha)
        masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}

        used = 0
        for stage_index, stage_sparsity in enumerate(stages):
            share = (stage_budget - used) // (len(stages) - stage_index)
            stage_used = 0
            for round_index in range(1, self.max_rounds + 1):
                if stage_used >= share:
                    break
                steps = min(round_steps, share - stage_used)
                statistic.reset()
                offset = trainer.steps_done
                sampled = set(sample_steps(steps, self.sample_every, self.window))

                def observe(step: int, offset: int = offset, sampled: set[int] = sampled) -> None:
                    if step - offset in sampled:
                        statistic.observe(params)

                loss = trainer.train(steps, masks, shadow=True, after_step=observe)
                stage_used += steps
                scores = self._importance(trainer, statistic, masks, fisher_x, fisher_y)
                before = {n: m.clone() for n, m in masks.items()}
                pruned = restored = 0
                if round_index == 1:
                    counts = self._counts(trainer, masks, sizes, 1.0 - stage_sparsity)
                    ranked = {n: active_first(scores[n], masks[n]) for n in names}
                    new = trainer.device_masks(keep_top_per_layer(ranked, counts))
                    pruned += sum(int((masks[n] & ~new[n]).sum()) for n in names)
                    restored += sum(int((new[n] & ~masks[n]).sum()) for n in names)
                    masks = new
                for name in names:
                    masks[name], swaps = swap_step(scores[name], masks[name], self.swap_fraction)
                    pruned += swaps
                    restored += swaps
                changed = sum(int((before[n] != masks[n]).sum()) for n in names)
                mask = to_mask(masks)
                emit(
                    progress,
                    self.name,
                    "round",
                    mask,
                    stage=stage_index + 1,
                    stage_sparsity=stage_sparsity,
                    round=round_index,
                    pruned=pruned,
                    restored=restored,
                    changed=changed,
                    changed_fraction=changed / total,
                    loss=loss,
                    epochs_used=trainer.epochs_used,
                )
                if changed < self.stable_fraction * total:
                    break
            used += stage_used

        trainer.zero_pruned(masks)
        loss = trainer.train(trainer.steps_left, masks, shadow=False)
        emit(
            progress,
            self.name,
            "finetune",
            to_mask(masks),
            loss=loss,
            epochs_used=trainer.epochs_used,
        )
        trainer.finish()
        mask = to_mask(masks)
        emit(progress, self.name, "done", mask, epochs_used=trainer.epochs_used, stages=stages)
        return trainer.model, mask

    def _importance(self, trainer, statistic, masks, fisher_x, fisher_y) -> dict[str, torch.Tensor]:
        params = trainer.params
        names = list(params)
        effective = {n: params[n].detach().masked_fill(~masks[n], 0.0) for n in names}
        g, h = gradient_statistics(
            trainer.model, fisher_x, fisher_y, names, weights=effective, chunk_size=self.chunk_size
        )
        shadow = {n: params[n].detach() for n in names}
        delta_loss = {n: (-g[n] * shadow[n] + 0.5 * h[n] * shadow[n] ** 2).abs() for n in names}
        return importance(statistic.probability(), shadow, delta_loss, self.lambdas)

    def _counts(self, trainer, masks, sizes, stage_density) -> dict[str, int]:
        if self.allocation == "layer":
            return layer_counts(sizes, stage_density)
        scores = {
            n: torch.where(masks[n], p.detach().abs(), torch.full_like(p.detach(), -1.0))
            for n, p in trainer.params.items()
        }
        return global_counts(scores, stage_density)
