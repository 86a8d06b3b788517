"""Gradient mask learning: straight-through top-k scores over frozen weights.

Each prunable weight gets a real score s (initialised at |w|, divided by the mean |w| so that
the optimiser's step size means the same for every model). The forward pass uses W ⊙ M with M
the top-k of the scores (globally, or per layer); the backward pass treats M as if it were s
(straight-through: ∂L/∂s = ∂L/∂(W⊙M) · W, Ramanujan et al. 2020), and Adam updates the scores
while the weights stay frozen. The result is the top-k of the final scores.

:meth:`Supermask.refine` is the local-improvement step a search can call on its best masks:
it starts from a given mask (scores nudged so that the mask is exactly the initial top-k) and
keeps the same number of weights (in total, or per layer with ``scope="layer"``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from masksearch.mask import Mask, MaskError, check_density, top_k_keep
from masksearch.methods._trainer import BatchStream, check_fits
from masksearch.methods._util import layer_counts, stable_top_k
from masksearch.methods.base import (
    MethodError,
    OneShotMethod,
    Progress,
    check_epochs,
    emit,
    model_device,
    prunable,
    register,
    train_split,
)

__all__ = ["Supermask", "SupermaskPath"]

#: how the step size moves within one training call: held at ``lr``, or annealed to 0
LR_SCHEDULES = ("constant", "cosine")

# how far the given mask's kept scores sit above its pruned ones in refine(), relative to the
# mean score (1.0): close enough that a few gradient steps can reorder them
_REFINE_MARGIN = 1e-3


def _top_k_masks(
    scores: dict[str, torch.Tensor], counts: dict[str, int] | int
) -> dict[str, torch.Tensor]:
    """Global top-``counts`` (an int) or per-tensor top-``counts[name]`` of the scores."""
    if isinstance(counts, int):
        flat = torch.cat([s.detach().reshape(-1) for s in scores.values()])
        keep = top_k_keep(flat, counts)
        chunks = torch.split(keep, [s.numel() for s in scores.values()])
        return {n: c.reshape(s.shape) for (n, s), c in zip(scores.items(), chunks, strict=True)}
    return {
        n: top_k_keep(s.detach().reshape(-1), counts[n]).reshape(s.shape) for n, s in scores.items()
    }


def _kept_counts(
    params: dict[str, nn.Parameter], density: float, scope: str
) -> dict[str, int] | int:
    """How many weights a mask at ``density`` keeps: in all (``"global"``) or per tensor."""
    sizes = {n: p.numel() for n, p in params.items()}
    if scope == "global":
        return max(1, round(density * sum(sizes.values())))
    return layer_counts(sizes, density)


def _epoch_counts(
    name: str, value: Any, *, zero_allowed: bool, rule: str, per: str, hint: str = ""
) -> float | tuple[float, ...]:
    """A method's epochs option: one number, or a non-empty list of them (kept as a tuple)."""
    if isinstance(value, (list, tuple)):
        value = tuple(value)
        if not value:
            raise MethodError(f"{name} must not be empty: give one number per density")
    for epochs in value if isinstance(value, tuple) else (value,):
        if (
            isinstance(epochs, bool)
            or not isinstance(epochs, (int, float))
            or not (epochs >= 0 if zero_allowed else epochs > 0)
        ):
            raise MethodError(
                f"{name} must be a number of epochs {rule} or one such number {per}, "
                f"got {value!r}{hint}"
            )
    return value


def _per_target(
    name: str, counts: float | tuple[float, ...], n: int, targets: str
) -> tuple[float, ...]:
    """An :func:`_epoch_counts` option as ``n`` counts, one per target: one number repeated,
    or a tuple that must have ``n`` (``targets`` says which, and the fix)."""
    if not isinstance(counts, tuple):
        return (float(counts),) * n
    if n and len(counts) != n:  # a path of a single density needs no later epochs
        raise MethodError(f"{name} gives {len(counts)} epoch counts ({counts!r}) for {n} {targets}")
    return tuple(float(epochs) for epochs in counts[:n])


@register
@dataclass
class Supermask(OneShotMethod):
    """Learn a mask at a fixed density by Adam on straight-through top-k scores.

    ``epochs`` passes over the train split (in mini-batches of ``batch_size``, seeded) with
    Adam at ``lr`` on scores of mean 1. The weights are never changed; the model runs in eval
    mode, so batch-norm statistics are not updated either.

    ``lr_schedule="cosine"`` anneals the step size from ``lr`` to 0 over each training call
    (each density of :class:`SupermaskPath`), so the last steps settle the mask instead of
    still reordering it. On LeNet-300-100 at 5% for 4 epochs, annealing from ``lr=0.02``
    lifts the mask from 87.95% (the constant 0.01 default) to 88.43%; neither the higher step
    nor the annealing does alone (``benchmarks/results/supermask_recipe_d050_e4.md``).

    ``label_smoothing`` trains the scores on softened targets (torch's
    ``cross_entropy(label_smoothing=...)``). On LeNet-300-100's best path (4 epochs at 5%, 2 at
    2%, 1 at 1%, side branches, cosine steps from 0.02, batches of 256), 0.1 lifts the 2% mask
    from 86.14% to 86.40% and the 1% mask from 82.10% to 82.43%, the 5% one level
    (``benchmarks/results/path_smoothing.md``); in batches of 128 it helps at 1% only. On
    LeNet-5's seeds (a path to 2%, the 1% mask from fresh scores, batches of 128) it lifts the
    1% mask from 82.12% to 82.96% and the 2% mask from 86.08% to 86.31%
    (``benchmarks/results/path_lenet5.md``).
    """

    name: ClassVar[str] = "supermask"
    uses_epochs: ClassVar[bool] = True

    epochs: int = 2
    lr: float = 0.01
    batch_size: int = 128
    seed: int = 0
    lr_schedule: str = "constant"
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_epochs(self.epochs)
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or self.lr <= 0:
            raise MethodError(f"lr must be a number > 0, got {self.lr!r}")
        if (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, int)
            or self.batch_size < 1
        ):
            raise MethodError(f"batch_size must be an int >= 1, got {self.batch_size!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {self.seed!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise MethodError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        smoothing = self.label_smoothing
        if (
            isinstance(smoothing, bool)
            or not isinstance(smoothing, (int, float))
            or not 0.0 <= smoothing < 1.0
        ):
            raise MethodError(
                f"label_smoothing must be a number in [0, 1) (0 trains on the plain labels), "
                f"got {smoothing!r}"
            )

    def _prune(self, model, params, split, density, scope, progress) -> Mask:
        scores = self._initial_scores(params)
        counts = _kept_counts(params, density, scope)
        return self._learn(model, params, split, scores, counts, self.epochs, progress)

    def refine(
        self,
        model: nn.Module,
        mask: Mask,
        data: Any,
        epochs: int | None = None,
        *,
        scope: str = "global",
        progress: Progress | None = None,
    ) -> Mask:
        """Improve ``mask`` by mask learning, keeping its weight count (total or per layer).

        The model's weights should be the dense ones (pruned entries holding their values):
        a weight that is 0.0 contributes nothing when it is restored.
        """
        epochs = check_epochs(self.epochs if epochs is None else epochs)
        scope = self._resolve_scope(scope)
        params = prunable(model)
        if not isinstance(mask, Mask):
            raise TypeError(f"mask must be a masksearch.mask.Mask, got {type(mask).__name__}")
        mask.validate(model)
        if set(mask.names) != set(params):
            raise MaskError(
                f"refine needs a mask over the model's prunable weights {sorted(params)}, "
                f"got one over {sorted(mask.names)}"
            )
        split = train_split(data)
        scores = self._initial_scores(params)
        device = model_device(model)
        counts: dict[str, int] | int
        if scope == "global":
            counts = mask.n_kept
            flat = torch.cat([scores[n].reshape(-1) for n in params])
            kept = torch.cat([mask.tensors[n].reshape(-1) for n in params]).to(device)
            threshold = float(flat[kept].min()) if bool(kept.any()) else float(flat.max())
            thresholds = dict.fromkeys(params, threshold)
        else:
            counts = {n: int(mask.tensors[n].sum()) for n in params}
            thresholds = {}
            for n in params:
                keep = mask.tensors[n].to(device)
                thresholds[n] = (
                    float(scores[n][keep].min()) if bool(keep.any()) else float(scores[n].max())
                )
        with torch.no_grad():
            for n in params:
                keep = mask.tensors[n].to(device)
                above = torch.clamp(scores[n], min=thresholds[n] + _REFINE_MARGIN)
                below = torch.clamp(scores[n], max=thresholds[n] - _REFINE_MARGIN)
                scores[n] = torch.where(keep, above, below)
        return self._learn(model, params, split, scores, counts, epochs, progress)

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _initial_scores(params: dict[str, nn.Parameter]) -> dict[str, torch.Tensor]:
        magnitudes = {n: p.detach().abs().clone() for n, p in params.items()}
        mean = float(torch.cat([m.reshape(-1) for m in magnitudes.values()]).mean())
        if mean == 0.0:
            raise MethodError(
                "supermask: every prunable weight is zero, so there is nothing to rank"
            )
        return {n: m / mean for n, m in magnitudes.items()}

    def _learn(self, model, params, split, scores, counts, epochs, progress) -> Mask:
        learner = _ScoreLearner(self, model, params, split, scores)
        with learner.eval_mode():
            learner.train(counts, epochs, progress)
        return learner.mask(counts)


@register
@dataclass
class SupermaskPath(Supermask):
    """Gradient mask learning along a path of densities, densest first, in one run.

    :meth:`prune_each` learns ``epochs`` epochs at the densest target, then continues the
    same scores (and Adam state, and batch stream) for ``later_epochs`` epochs at each
    sparser target in turn, taking each target's mask when its phase ends. A sparse mask so
    starts from scores already shaped by the denser ones and needs little training of its
    own: on LeNet-300-100 (``benchmarks/results/warm_start_path_e4.md``), 4 epochs at 5% then
    one each at 2% and 1% take 91 s for the three masks, and the 2% and 1% masks match or beat
    :class:`Supermask`'s trained 3 epochs at each density (157 s in all). A second epoch at
    each lifts 2% further but lowers 1%, as more epochs at 1% do for :class:`Supermask`:
    ``later_epochs`` may so be one number per sparser target, densest first (``(2, 1)``).
    For a single density it is :class:`Supermask` (with its branch, if any, trained on).

    ``branch_epochs`` (one number per target, densest first; 0 = none) trains a target's mask
    longer on a side branch: from where the target's phase on the path ended, that many more
    epochs at the target give its mask, and the path then goes on from the point the branch
    left (same scores, Adam state and batches), so the sparser masks are those of the path
    without branches. Training longer on the path itself would also change where every
    sparser phase starts. On LeNet-300-100, branches of 4 and 2 epochs at 5% and 2% after a
    path of 4, 2 and 1 epochs (cosine steps from 0.02) lift the 5% mask from 88.43% to 88.66%
    (3 seeds; ``benchmarks/results/warm_start_path_e4_l2-1_br4-2-0_cos_lr0.02_b12288_train20000.md``).
    """

    name: ClassVar[str] = "supermask-path"

    later_epochs: float | tuple[float, ...] = 1.0
    branch_epochs: float | tuple[float, ...] = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.later_epochs = _epoch_counts(
            "later_epochs",
            self.later_epochs,
            zero_allowed=False,
            rule="> 0 (per sparser density)",
            per="per sparser density",
        )
        self.branch_epochs = _epoch_counts(
            "branch_epochs",
            self.branch_epochs,
            zero_allowed=True,
            rule=">= 0 (0: no branch)",
            per="per target density, densest first",
            hint=" (on the command line a list is --init-option branch_epochs=[4,2,0])",
        )

    def _later(self, n_sparser: int) -> tuple[float, ...]:
        """Epochs at each of ``n_sparser`` targets after the densest, densest first."""
        return _per_target(
            "later_epochs",
            self.later_epochs,
            n_sparser,
            "target(s) after the densest: give one per sparser target",
        )

    def _branches(self, n_targets: int) -> tuple[float, ...]:
        """Side-branch epochs at each of ``n_targets`` targets, densest first."""
        return _per_target(
            "branch_epochs",
            self.branch_epochs,
            n_targets,
            "target(s): give one per target, densest first (0 for no branch)",
        )

    def _prune(self, model, params, split, density, scope, progress) -> Mask:
        ((_, mask),) = self._walk(model, params, split, [density], scope, progress)
        return mask

    def epochs_for(self, n_densities: int) -> float:
        n = max(1, n_densities)
        return float(self.epochs + sum(self._later(n - 1)) + sum(self._branches(n)))

    def prune_each(
        self,
        model: nn.Module,
        data: Any,
        densities: Sequence[float],
        *,
        scope: str | None = None,
        progress: Progress | None = None,
    ) -> list[Mask]:
        """One mask per density (in the order given), learned densest first along one path."""
        targets = [check_density(density) for density in densities]
        if not targets:
            return []
        chosen = self._resolve_scope(scope if scope is not None else self.scope)
        params = prunable(model)
        path = sorted(set(targets), reverse=True)
        masks: dict[float, Mask] = {}
        for density, mask in self._walk(model, params, train_split(data), path, chosen, progress):
            masks[density] = mask
            emit(progress, self.name, "done", mask, scope=chosen)
        return [masks[density] for density in targets]

    def _walk(
        self, model, params, split, path: Sequence[float], scope: str, progress
    ) -> Iterator[tuple[float, Mask]]:
        """Each target of ``path`` (densest first) with its mask, as the path makes it."""
        phases = (float(self.epochs), *self._later(len(path) - 1))
        branches = self._branches(len(path))
        learner = _ScoreLearner(self, model, params, split, self._initial_scores(params))
        with learner.eval_mode():
            for density, epochs, branch in zip(path, phases, branches, strict=True):
                counts = _kept_counts(params, density, scope)
                learner.train(counts, epochs, progress)
                if branch > 0:
                    left_at = learner.snapshot()
                    learner.train(counts, branch, progress)
                    mask = learner.mask(counts)
                    learner.restore(left_at)
                else:
                    mask = learner.mask(counts)
                yield density, mask


class _ScoreLearner:
    """Adam on straight-through top-k scores over frozen weights.

    One batch stream and one optimiser serve every call to :meth:`train`, so a path of
    densities (:class:`SupermaskPath`) continues exactly where the previous density stopped.
    """

    def __init__(self, method: Supermask, model, params, split, scores) -> None:
        device = model_device(model)
        self.method = method
        self.model = model
        self.stream = BatchStream(
            split, method.batch_size, method.seed, device, next(model.parameters()).dtype
        )
        check_fits(model, self.stream.x, self.stream.y)
        self.scores = {n: s.to(device).requires_grad_(True) for n, s in scores.items()}
        self.weights = {n: p.detach() for n, p in params.items()}
        self.optimizer = torch.optim.Adam(list(self.scores.values()), lr=method.lr)
        self.epochs_done = 0.0

    def snapshot(self) -> tuple[Any, ...]:
        """Everything :meth:`train` changes, for :meth:`restore` to go back to."""
        scores = {n: s.detach().clone() for n, s in self.scores.items()}
        return scores, copy.deepcopy(self.optimizer.state_dict()), self.stream.state()

    def restore(self, snapshot: tuple[Any, ...]) -> None:
        """Back to a :meth:`snapshot`; ``epochs_done`` keeps counting the epochs spent since."""
        scores, optimizer, stream = snapshot
        with torch.no_grad():
            for n, s in self.scores.items():
                s.copy_(scores[n])
        self.optimizer.load_state_dict(optimizer)
        self.stream.set_state(stream)

    @contextmanager
    def eval_mode(self) -> Iterator[None]:
        was_training = self.model.training
        self.model.eval()
        try:
            yield
        finally:
            self.model.train(was_training)

    def train(self, counts: dict[str, int] | int, epochs: float, progress: Progress | None) -> None:
        """``epochs`` (fractional allowed) more passes at ``counts`` kept weights; progress
        after every whole epoch and after a final part-epoch."""
        scores, stream = self.scores, self.stream
        steps = max(1, round(epochs * stream.steps_per_epoch))
        start = _top_k_masks(scores, counts)
        loss_sum, in_epoch = 0.0, 0
        for step in range(1, steps + 1):
            if self.method.lr_schedule == "cosine":
                rate = self.method.lr * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / steps))
                for group in self.optimizer.param_groups:
                    group["lr"] = rate
            inputs, labels = stream.next()
            with torch.no_grad():
                keep = _top_k_masks(scores, counts)
            effective = {
                n: self.weights[n] * (keep[n].to(s.dtype) + s - s.detach())
                for n, s in scores.items()
            }
            self.optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(
                functional_call(self.model, effective, (inputs,)),
                labels,
                label_smoothing=float(self.method.label_smoothing),
            )
            loss.backward()
            self.optimizer.step()
            loss_sum += float(loss.detach())
            in_epoch += 1
            if in_epoch < stream.steps_per_epoch and step < steps:
                continue
            if progress is not None:
                current = _top_k_masks(scores, counts)
                changed = sum(int((current[n] != start[n]).sum()) for n in scores)
                used = self.epochs_done + step / stream.steps_per_epoch
                emit(
                    progress,
                    self.method.name,
                    "epoch",
                    Mask(current),
                    epoch=math.ceil(used - 1e-9),
                    loss=loss_sum / in_epoch,
                    changed_from_start=changed,
                    epochs_used=round(used, 6),
                )
            loss_sum, in_epoch = 0.0, 0
        self.epochs_done += steps / stream.steps_per_epoch

    def mask(self, counts: dict[str, int] | int) -> Mask:
        """The top-``counts`` of the current scores (ties to the lower index)."""
        final = {n: s.detach().cpu() for n, s in self.scores.items()}
        if isinstance(counts, int):
            flat_keep = stable_top_k(torch.cat([s.reshape(-1) for s in final.values()]), counts)
            chunks = torch.split(flat_keep, [s.numel() for s in final.values()])
            return Mask({n: c.reshape(final[n].shape) for n, c in zip(final, chunks, strict=True)})
        return Mask({n: stable_top_k(s, counts[n]) for n, s in final.items()})
