"""Magnitude pruning on a schedule while training: Han et al., Zhu & Gupta (GMP), lottery-ticket IMP.

All three drop the smallest |w| and keep training the survivors; they differ in when and how
much they prune — Han et al. in rounds with a per-layer q·σ threshold, GMP in many small steps
on a cubic schedule, IMP in rounds of a fixed fraction with the survivors rewound to earlier
values. The budget and progress conventions are those of :mod:`masksearch.methods.training_time`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from masksearch.mask import Mask
from masksearch.methods._trainer import finish_run, split_steps, start_run
from masksearch.methods._util import keep_top_per_layer, layer_counts, to_mask
from masksearch.methods.base import (
    MethodError,
    TrainingMethod,
    check_fraction,
    check_int,
    emit,
    register,
)

__all__ = [
    "GradualMagnitude",
    "IterativeMagnitude",
    "LotteryTicket",
    "gmp_schedule",
    "gmp_sparsity",
    "imp_schedule",
]


# -- Han et al. 2015 -----------------------------------------------------------------------


@register
@dataclass
class IterativeMagnitude(TrainingMethod):
    """Han et al. 2015: per layer prune |w| ≤ q·σ_l, retrain the survivors, repeat.

    σ_l is the (population) standard deviation of the layer's surviving weights and q is shared
    by all layers. Round r of ``rounds`` aims at the density ``d^(r/R)``; q is chosen as the
    exact threshold that leaves that many weights (a global top-k of |w|/σ_l), so the last round
    lands on the target. The budget is split evenly over the retraining phases; the model given
    is taken as the trained dense network.
    """

    name: ClassVar[str] = "han"

    rounds: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("rounds", self.rounds, 1)

    def _run(self, model, split, density, epochs, seed, device, progress):
        trainer = start_run(self, model, split, epochs, seed, device)
        phases = split_steps(trainer.budget_steps, self.rounds, what="retraining rounds")
        masks = trainer.all_kept()
        for index, steps in enumerate(phases, start=1):
            round_density = density ** (index / self.rounds)
            scores = {}
            with torch.no_grad():
                for name, param in trainer.params.items():
                    keep = masks[name]
                    survivors = param.detach()[keep]
                    sigma = float(survivors.std(unbiased=False)) if survivors.numel() > 1 else 0.0
                    sigma = max(sigma, 1e-12)
                    ratio = param.detach().abs() / sigma
                    scores[name] = torch.where(keep, ratio, torch.full_like(ratio, -1.0))
            new = Mask.from_scores(scores, round_density, scope="global")
            dropped = [scores[n].to("cpu")[masks[n].to("cpu") & ~new.tensors[n]] for n in new.names]
            dropped = torch.cat([d.reshape(-1) for d in dropped])
            q = float(dropped.max()) if dropped.numel() else 0.0
            masks = trainer.device_masks(new.tensors)
            loss = trainer.train(steps, masks, shadow=False)
            emit(
                progress,
                self.name,
                "round",
                new,
                round=index,
                q=q,
                loss=loss,
                epochs_used=trainer.epochs_used,
            )
        return finish_run(self, trainer, masks, progress)


# -- Zhu & Gupta 2017 ----------------------------------------------------------------------


def gmp_sparsity(
    step: int, *, initial: float, final: float, start: int, interval: int, n_steps: int
) -> float:
    """Zhu & Gupta's cubic schedule s_t = s_f + (s_i − s_f)·(1 − (t − t0)/(n·Δt))³.

    Before ``start`` (t0) the sparsity is ``initial``; from t0 + n·Δt on it is ``final``.
    """
    if step < start:
        return initial
    span = n_steps * interval
    if span <= 0:
        return final
    done = min(1.0, (step - start) / span)
    return final + (initial - final) * (1.0 - done) ** 3


def gmp_schedule(
    total_steps: int,
    *,
    pruning_steps: int,
    start_fraction: float,
    end_fraction: float,
) -> tuple[int, int, int]:
    """(t0, Δt, n) for a run of ``total_steps``: n pruning steps spread over the given window.

    t0 = ⌊start_fraction·T⌋; the last pruning step falls at or before ⌊end_fraction·T⌋; n is
    capped at the number of steps in the window (at least one pruning step always happens).
    """
    start = math.floor(start_fraction * total_steps)
    end = math.floor(end_fraction * total_steps)
    window = max(0, end - start)
    n = min(pruning_steps, window)
    interval = window // n if n > 0 else 1
    return start, interval, n


@register
@dataclass
class GradualMagnitude(TrainingMethod):
    """Zhu & Gupta 2017: prune every layer's smallest |w| to the cubic schedule, keep training.

    Pruning steps happen at t ∈ {t0, t0+Δt, …, t0+nΔt} (see :func:`gmp_schedule`); each sets
    every layer to the scheduled sparsity (pruned weights never return: a mask only shrinks).
    Between pruning steps and after the last one the surviving weights train with the mask.
    """

    name: ClassVar[str] = "gmp"

    initial_sparsity: float = 0.0
    pruning_steps: int = 10
    start_fraction: float = 0.0
    end_fraction: float = 0.75

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction("initial_sparsity", self.initial_sparsity, high=0.999999)
        check_int("pruning_steps", self.pruning_steps, 1)
        check_fraction("start_fraction", self.start_fraction)
        check_fraction("end_fraction", self.end_fraction)
        if self.end_fraction < self.start_fraction:
            raise MethodError(
                f"end_fraction ({self.end_fraction}) must not come before start_fraction "
                f"({self.start_fraction})"
            )

    def _run(self, model, split, density, epochs, seed, device, progress):
        final = 1.0 - density
        if self.initial_sparsity > final:
            raise MethodError(
                f"initial_sparsity {self.initial_sparsity} is above the target sparsity {final}"
            )
        trainer = start_run(self, model, split, epochs, seed, device)
        start, interval, n = gmp_schedule(
            trainer.budget_steps,
            pruning_steps=self.pruning_steps,
            start_fraction=self.start_fraction,
            end_fraction=self.end_fraction,
        )
        events = [start + j * interval for j in range(n + 1)]
        sizes = {name: p.numel() for name, p in trainer.params.items()}
        masks = trainer.all_kept()
        for event in events:
            trainer.train(event - trainer.steps_done, masks, shadow=False)
            sparsity = gmp_sparsity(
                event,
                initial=self.initial_sparsity,
                final=final,
                start=start,
                interval=interval,
                n_steps=n,
            )
            counts = layer_counts(sizes, 1.0 - sparsity)
            scores = {
                name: torch.where(masks[name], value, torch.full_like(value, -1.0))
                for name, value in trainer.magnitudes().items()
            }
            masks = trainer.device_masks(keep_top_per_layer(scores, counts))
            trainer.zero_pruned(masks)
            emit(
                progress,
                self.name,
                "prune",
                to_mask(masks),
                step=event,
                scheduled_sparsity=sparsity,
                epochs_used=trainer.epochs_used,
            )
        trainer.train(trainer.steps_left, masks, shadow=False)
        return finish_run(
            self, trainer, masks, progress, schedule={"t0": start, "dt": interval, "n": n}
        )


# -- Lottery ticket / IMP (Frankle & Carbin 2019) ------------------------------------------


def _largest_remainder(ideal: list[float], total: int) -> list[int]:
    floors = [math.floor(value) for value in ideal]
    missing = total - sum(floors)
    remainders = sorted(range(len(ideal)), key=lambda i: (-(ideal[i] - floors[i]), i))
    for index in remainders[:missing]:
        floors[index] += 1
    return floors


def imp_schedule(sizes: list[int], target: int, rates: list[float]) -> list[list[int]]:
    """Per-round kept counts of iterative magnitude pruning down to ``target`` weights in all.

    Each round prunes ``round(rate · survivors)`` of every layer's survivors; the round that
    would overshoot instead scales all rates by one factor so the counts sum to ``target``
    exactly (each layer within one weight of its ideal share, by largest remainder).
    """
    active = list(sizes)
    rounds: list[list[int]] = []
    while sum(active) > target:
        following = [a - round(rate * a) for a, rate in zip(active, rates, strict=True)]
        if sum(following) <= target:
            removable = sum(a * rate for a, rate in zip(active, rates, strict=True))
            factor = (sum(active) - target) / removable
            ideal = [a * (1.0 - factor * rate) for a, rate in zip(active, rates, strict=True)]
            following = _largest_remainder(ideal, target)
        elif sum(following) == sum(active):
            raise MethodError(
                f"iterative pruning cannot get below {sum(active)} weights at these rates; "
                "raise prune_fraction or the target density"
            )
        rounds.append(following)
        active = following
    return rounds


@register
@dataclass
class LotteryTicket(TrainingMethod):
    """Frankle & Carbin 2019: train, prune 20% of survivors per layer, rewind, repeat.

    The output layer (the last prunable tensor) loses ``output_prune_fraction`` (10%) per
    round instead. Rewinding sets surviving weights — and every non-pruned parameter — back to
    their values at the start of the run, or after ``rewind_step`` steps of the first training
    phase (late rewinding; needs ``train_first``). With ``train_first=False`` (the default, for a
    model that is already trained) the first pruning uses the given weights; with ``True`` the
    dense model trains first, as for a freshly initialised network. The budget is split evenly
    over the training phases; the last round lands exactly on the target (:func:`imp_schedule`).
    """

    name: ClassVar[str] = "imp"

    prune_fraction: float = 0.2
    output_prune_fraction: float = 0.1
    train_first: bool = False
    rewind_step: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction("prune_fraction", self.prune_fraction, low_open=True, high=0.99)
        check_fraction(
            "output_prune_fraction", self.output_prune_fraction, low_open=True, high=0.99
        )
        check_int("rewind_step", self.rewind_step, 0)
        if not isinstance(self.train_first, bool):
            raise MethodError(f"train_first must be True or False, got {self.train_first!r}")
        if self.rewind_step > 0 and not self.train_first:
            raise MethodError(
                "rewind_step > 0 rewinds to weights early in the first training phase, which "
                "needs train_first=True"
            )

    def _run(self, model, split, density, epochs, seed, device, progress):
        trainer = start_run(self, model, split, epochs, seed, device)
        names = list(trainer.params)
        sizes = [trainer.params[n].numel() for n in names]
        rates = [self.prune_fraction] * (len(names) - 1) + [self.output_prune_fraction]
        schedule = imp_schedule(sizes, max(1, round(density * sum(sizes))), rates)
        phases = split_steps(
            trainer.budget_steps, len(schedule) + int(self.train_first), what="training phases"
        )
        everything = dict(model.named_parameters())
        rewind_point = {n: p.detach().clone() for n, p in everything.items()}
        masks = trainer.all_kept()

        if self.train_first:
            if self.rewind_step >= phases[0]:
                raise MethodError(
                    f"rewind_step {self.rewind_step} is not inside the first training phase "
                    f"({phases[0]} steps); lower it or raise epochs"
                )

            def capture(step: int) -> None:
                if step + 1 == self.rewind_step:
                    rewind_point.update({n: p.detach().clone() for n, p in everything.items()})

            trainer.train(phases[0], masks, shadow=False, after_step=capture)
            phases = phases[1:]

        for index, (counts, steps) in enumerate(zip(schedule, phases, strict=True), start=1):
            scores = {
                n: torch.where(masks[n], value, torch.full_like(value, -1.0))
                for n, value in trainer.magnitudes().items()
            }
            masks = trainer.device_masks(
                keep_top_per_layer(scores, dict(zip(names, counts, strict=True)))
            )
            with torch.no_grad():
                for name, param in everything.items():
                    param.copy_(rewind_point[name])
            trainer.zero_pruned(masks)
            trainer.reset_optimizer()
            emit(
                progress,
                self.name,
                "rewind",
                to_mask(masks),
                round=index,
                epochs_used=trainer.epochs_used,
            )
            loss = trainer.train(steps, masks, shadow=False)
            emit(
                progress,
                self.name,
                "round",
                to_mask(masks),
                round=index,
                loss=loss,
                epochs_used=trainer.epochs_used,
            )
        return finish_run(self, trainer, masks, progress, rounds=len(schedule))
