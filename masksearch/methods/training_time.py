"""Training-time pruning baselines: Han et al., Zhu & Gupta (GMP), DNS, lottery-ticket IMP.

Every method here starts from the model it is given (normally a trained dense network), spends
at most ``epochs`` passes over the train split in total, and returns the trained model with
its pruned weights exactly 0.0 together with the final mask. Budgets are counted in optimiser
steps (``epochs · ceil(n / batch_size)``), so rounds may last a fraction of an epoch; every
progress record carries ``epochs_used``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from masksearch import training
from masksearch.mask import Mask
from masksearch.methods._trainer import StepTrainer
from masksearch.methods._util import (
    active_first,
    global_counts,
    keep_top_per_layer,
    layer_counts,
    to_mask,
)
from masksearch.methods.base import (
    METHODS,
    MethodError,
    OneShotMethod,
    Progress,
    TrainingMethod,
    emit,
    make_method,
    prunable,
    register,
)

__all__ = [
    "DynamicNetworkSurgery",
    "GradualMagnitude",
    "IterativeMagnitude",
    "LotteryTicket",
    "OneShotFinetune",
    "dns_c_for_count",
    "dns_thresholds",
    "dns_update",
    "dns_update_probability",
    "gmp_schedule",
    "gmp_sparsity",
    "imp_schedule",
    "split_steps",
]

ALLOCATIONS = ("global", "layer")


# -- shared helpers ------------------------------------------------------------------------


def split_steps(total: int, parts: int, *, what: str) -> list[int]:
    """``total`` steps in ``parts`` near-equal phases (the first ones take the remainder)."""
    if total < parts:
        raise MethodError(
            f"the epoch budget gives {total} optimiser steps, fewer than the {parts} {what}; "
            "raise epochs (or lower batch_size)"
        )
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


def _start(method: TrainingMethod, model, split, epochs, seed, device) -> StepTrainer:
    names = list(prunable(model))
    return StepTrainer(
        model, split, names, settings=method.settings(), seed=seed, device=device, epochs=epochs
    )


def _ones(trainer: StepTrainer) -> dict[str, torch.Tensor]:
    return {n: torch.ones_like(p, dtype=torch.bool) for n, p in trainer.params.items()}


def _finish(
    method: TrainingMethod,
    trainer: StepTrainer,
    masks: dict[str, torch.Tensor],
    progress: Progress | None,
    **fields: Any,
) -> tuple[nn.Module, Mask]:
    trainer.zero_pruned(masks)
    trainer.finish()
    mask = to_mask(masks)
    emit(progress, method.name, "done", mask, epochs_used=trainer.epochs_used, **fields)
    return trainer.model, mask


def _check_fraction(name: str, value: object, *, low_open: bool = False, high: float = 1.0) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MethodError(f"{name} must be a number, got {value!r}")
    if (value <= 0 if low_open else value < 0) or value > high:
        interval = f"({0}, {high}]" if low_open else f"[0, {high}]"
        raise MethodError(f"{name} must be in {interval}, got {value!r}")


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise MethodError(f"{name} must be an int >= {minimum}, got {value!r}")


def _magnitudes(trainer: StepTrainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().abs() for n, p in trainer.params.items()}


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
        _check_int("rounds", self.rounds, 1)

    def _run(self, model, split, density, epochs, seed, device, progress):
        trainer = _start(self, model, split, epochs, seed, device)
        phases = split_steps(trainer.budget_steps, self.rounds, what="retraining rounds")
        masks = _ones(trainer)
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
        return _finish(self, trainer, masks, progress)


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
        _check_fraction("initial_sparsity", self.initial_sparsity, high=0.999999)
        _check_int("pruning_steps", self.pruning_steps, 1)
        _check_fraction("start_fraction", self.start_fraction)
        _check_fraction("end_fraction", self.end_fraction)
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
        trainer = _start(self, model, split, epochs, seed, device)
        start, interval, n = gmp_schedule(
            trainer.budget_steps,
            pruning_steps=self.pruning_steps,
            start_fraction=self.start_fraction,
            end_fraction=self.end_fraction,
        )
        events = [start + j * interval for j in range(n + 1)]
        sizes = {name: p.numel() for name, p in trainer.params.items()}
        masks = _ones(trainer)
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
                for name, value in _magnitudes(trainer).items()
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
        return _finish(
            self, trainer, masks, progress, schedule={"t0": start, "dt": interval, "n": n}
        )


# -- Dynamic Network Surgery (Guo et al. 2016) ---------------------------------------------


def _abs_stats(weight: torch.Tensor) -> tuple[float, float]:
    magnitudes = weight.detach().abs().reshape(-1).double()
    nonzero = magnitudes[magnitudes != 0]
    if nonzero.numel() == 0:
        return 0.0, 0.0
    return float(nonzero.mean()), float(nonzero.std(unbiased=False))


def dns_thresholds(weight: torch.Tensor, c: float) -> tuple[float, float]:
    """DNS thresholds (a, b) = (0.9·t, 1.1·t), t = max(μ + c·σ, 0).

    μ and σ are the mean and (population) standard deviation of |w| over the non-zero weights.
    """
    mean, std = _abs_stats(weight)
    t = max(mean + c * std, 0.0)
    return 0.9 * t, 1.1 * t


def dns_c_for_count(weight: torch.Tensor, count: int) -> float:
    """The c that puts t = μ + c·σ halfway between the ``count``-th and next largest |w|.

    This is the limit of a bisection on c for "``count`` weights above t": the rule masksearch
    uses to pick each layer's c for a target density (the paper tunes c per layer by hand).
    """
    mean, std = _abs_stats(weight)
    magnitudes = torch.sort(weight.detach().abs().reshape(-1).double(), descending=True).values
    if count >= magnitudes.numel():
        t = 0.0
    elif count <= 0:
        t = float(magnitudes[0]) / 0.9
    else:
        t = 0.5 * float(magnitudes[count - 1] + magnitudes[count])
    return (t - mean) / std if std > 0 else 0.0


def dns_update(weight: torch.Tensor, mask: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """One DNS surgery step on one tensor: prune active |w| ≤ a, splice pruned |w| > b.

    ``weight`` holds the shadow values (pruned weights keep theirs); returns the new mask.
    """
    magnitude = weight.detach().abs()
    # an active weight stays while |w| > a; a pruned one returns once |w| > b
    return torch.where(mask, magnitude > a, magnitude > b)


def dns_update_probability(iteration: int, gamma: float, power: float) -> float:
    """Probability (1 + γ·iter)^(−power) that DNS updates a layer's mask at ``iteration``."""
    return (1.0 + gamma * iteration) ** (-power)


@register
@dataclass
class DynamicNetworkSurgery(TrainingMethod):
    """Guo et al. 2016: prune and splice on the fly while every weight keeps training.

    Per layer, once at the start, μ and σ of |w| (non-zeros) give t = max(μ + c·σ, 0),
    a = 0.9t, b = 1.1t. At each iteration < ``iter_stop``, with probability
    (1 + γ·iter)^(−power) per layer, active weights with |w| ≤ a are pruned and pruned weights
    whose shadow value has grown past b are spliced back; the forward pass uses W ⊙ M and the
    gradient reaches all of W.

    Reaching a target density (the paper's c is a hand-tuned per-layer sensitivity): each layer
    gets a kept count k_l — from a global magnitude ranking of the starting weights
    (``allocation="global"``) or the same fraction everywhere (``"layer"``) — and, unless ``c``
    is given, its own c_l solved so that t_l sits at its k_l-th largest |w|
    (:func:`dns_c_for_count`). When surgery stops (``iter_stop`` steps, default 75% of the
    budget) the mask is projected onto exactly k_l weights per layer (the active ones with the
    largest |w| first, then the largest pruned shadows) and the rest of the budget trains that
    fixed mask.
    """

    name: ClassVar[str] = "dns"

    gamma: float = 1e-4
    power: float = 1.0
    c: float | None = None
    iter_stop: int | None = None
    allocation: str = "global"

    def __post_init__(self) -> None:
        super().__post_init__()
        for option in ("gamma", "power"):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise MethodError(f"{option} must be a number >= 0, got {value!r}")
        if self.c is not None and (
            isinstance(self.c, bool) or not isinstance(self.c, (int, float))
        ):
            raise MethodError(f"c must be a number or None (solved per layer), got {self.c!r}")
        if self.iter_stop is not None:
            _check_int("iter_stop", self.iter_stop, 1)
        if self.allocation not in ALLOCATIONS:
            raise MethodError(
                f"allocation must be one of {list(ALLOCATIONS)}, got {self.allocation!r}"
            )

    def _run(self, model, split, density, epochs, seed, device, progress):
        trainer = _start(self, model, split, epochs, seed, device)
        params = trainer.params
        magnitudes = _magnitudes(trainer)
        if self.allocation == "global":
            counts = global_counts(magnitudes, density)
        else:
            counts = layer_counts({n: p.numel() for n, p in params.items()}, density)
        cs = {
            n: (float(self.c) if self.c is not None else dns_c_for_count(p, counts[n]))
            for n, p in params.items()
        }
        thresholds = {n: dns_thresholds(p, cs[n]) for n, p in params.items()}
        emit(
            progress,
            self.name,
            "thresholds",
            c=cs,
            a={n: t[0] for n, t in thresholds.items()},
            b={n: t[1] for n, t in thresholds.items()},
            target_counts=counts,
        )

        masks = _ones(trainer)
        rng = np.random.default_rng(seed)
        if self.iter_stop is None:
            surgery_steps = math.floor(0.75 * trainer.budget_steps)
        else:
            # surgery ends at iter_stop or with the budget, whichever comes first
            surgery_steps = min(self.iter_stop, trainer.budget_steps)
        tally = {"pruned": 0, "spliced": 0, "updates": 0}

        def surgery(iteration: int) -> None:
            probability = dns_update_probability(iteration, self.gamma, self.power)
            draws = rng.random(len(masks))
            for draw, name in zip(draws, list(masks), strict=True):
                if draw >= probability:
                    continue
                a, b = thresholds[name]
                old = masks[name]
                new = dns_update(params[name], old, a, b)
                changed = int((old ^ new).sum())
                shrink = int(old.sum()) - int(new.sum())  # pruned - spliced
                tally["pruned"] += (changed + shrink) // 2
                tally["spliced"] += (changed - shrink) // 2
                tally["updates"] += 1
                masks[name] = new

        while trainer.steps_done < surgery_steps:
            chunk = min(trainer.steps_per_epoch, surgery_steps - trainer.steps_done)
            loss = trainer.train(chunk, masks, shadow=True, before_step=surgery)
            emit(
                progress,
                self.name,
                "surgery",
                to_mask(masks),
                iteration=trainer.steps_done,
                loss=loss,
                changed=tally["pruned"] + tally["spliced"],
                **tally,
                epochs_used=trainer.epochs_used,
            )
            tally = dict.fromkeys(tally, 0)

        before = to_mask(masks)
        scores = {n: active_first(params[n].detach().abs(), masks[n]) for n in params}
        masks = trainer.device_masks(keep_top_per_layer(scores, counts))
        changed = int((before.flat() != to_mask(masks).flat()).sum())
        trainer.zero_pruned(masks)
        emit(
            progress,
            self.name,
            "projection",
            to_mask(masks),
            changed=changed,
            density_before=before.density,
            epochs_used=trainer.epochs_used,
        )
        trainer.train(trainer.steps_left, masks, shadow=False)
        return _finish(self, trainer, masks, progress)


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
        _check_fraction("prune_fraction", self.prune_fraction, low_open=True, high=0.99)
        _check_fraction(
            "output_prune_fraction", self.output_prune_fraction, low_open=True, high=0.99
        )
        _check_int("rewind_step", self.rewind_step, 0)
        if not isinstance(self.train_first, bool):
            raise MethodError(f"train_first must be True or False, got {self.train_first!r}")
        if self.rewind_step > 0 and not self.train_first:
            raise MethodError(
                "rewind_step > 0 rewinds to weights early in the first training phase, which "
                "needs train_first=True"
            )

    def _run(self, model, split, density, epochs, seed, device, progress):
        trainer = _start(self, model, split, epochs, seed, device)
        names = list(trainer.params)
        sizes = [trainer.params[n].numel() for n in names]
        rates = [self.prune_fraction] * (len(names) - 1) + [self.output_prune_fraction]
        schedule = imp_schedule(sizes, max(1, round(density * sum(sizes))), rates)
        phases = split_steps(
            trainer.budget_steps, len(schedule) + int(self.train_first), what="training phases"
        )
        everything = dict(model.named_parameters())
        rewind_point = {n: p.detach().clone() for n, p in everything.items()}
        masks = _ones(trainer)

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
                for n, value in _magnitudes(trainer).items()
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
        return _finish(self, trainer, masks, progress, rounds=len(schedule))


# -- one-shot criterion + fine-tuning ------------------------------------------------------


@register
@dataclass
class OneShotFinetune(TrainingMethod):
    """A one-shot criterion at the target density, then the whole budget fine-tunes that mask."""

    name: ClassVar[str] = "oneshot_finetune"

    criterion: str = "magnitude"
    scope: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        cls = METHODS.get(self.criterion)
        if cls is None or not issubclass(cls, OneShotMethod) or getattr(cls, "uses_epochs", False):
            choices = sorted(
                n
                for n, c in METHODS.items()
                if issubclass(c, OneShotMethod) and not getattr(c, "uses_epochs", False)
            )
            raise MethodError(
                f"criterion must be a one-shot method that does not train, one of {choices}; "
                f"got {self.criterion!r}"
            )
        cls(scope=self.scope)  # refuses a scope the criterion does not support

    def _run(self, model, split, density, epochs, seed, device, progress):
        criterion = make_method(self.criterion)
        model.to(training.resolve_device(device))
        mask = criterion.prune(model, split, density, scope=self.scope)
        emit(progress, self.name, "pruned", mask, criterion=self.criterion)

        def forward(entry: dict[str, Any]) -> None:
            emit(progress, self.name, "epoch", **entry, epochs_used=float(entry["epoch"]))

        training.finetune(
            model,
            mask,
            split,
            epochs=epochs,
            seed=seed,
            device=device,
            progress=forward,
            **self.settings(),
        )
        emit(progress, self.name, "done", mask, epochs_used=float(epochs))
        return model, mask
