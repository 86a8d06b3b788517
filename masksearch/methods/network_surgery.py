"""Dynamic Network Surgery (Guo et al. 2016): prune and splice weights while all of them train.

Pruned weights keep "shadow" values that still receive gradients (:class:`StepTrainer`'s
``shadow=True``), so a weight cut early can grow back past a threshold and return. The budget
and progress conventions are those of :mod:`masksearch.methods.training_time`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from masksearch.methods._trainer import finish_run, start_run
from masksearch.methods._util import (
    ALLOCATIONS,
    active_first,
    global_counts,
    keep_top_per_layer,
    layer_counts,
    to_mask,
)
from masksearch.methods.base import MethodError, TrainingMethod, check_int, emit, register

__all__ = [
    "DynamicNetworkSurgery",
    "dns_c_for_count",
    "dns_thresholds",
    "dns_update",
    "dns_update_probability",
]


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
            check_int("iter_stop", self.iter_stop, 1)
        if self.allocation not in ALLOCATIONS:
            raise MethodError(
                f"allocation must be one of {list(ALLOCATIONS)}, got {self.allocation!r}"
            )

    def _run(self, model, split, density, epochs, seed, device, progress):
        trainer = start_run(self, model, split, epochs, seed, device)
        params = trainer.params
        magnitudes = trainer.magnitudes()
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

        masks = trainer.all_kept()
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
        return finish_run(self, trainer, masks, progress)
