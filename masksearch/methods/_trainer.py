"""A step-granular training loop for methods that prune *while* training.

:func:`masksearch.training.train` trains whole epochs with a fixed mask; the training-time
methods need more: rounds of fractional epochs that share one budget, masks that change between
steps, and DNS-style "shadow" training where the forward pass uses ``W ⊙ M`` but every weight,
pruned or not, receives the gradient. :class:`StepTrainer` provides that and counts every step
against the budget; :func:`start_run`, :func:`split_steps` and :func:`finish_run` are the
beginning, phases and end that every training-time method shares.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from masksearch.device import resolve_device
from masksearch.mask import Mask, check_finite
from masksearch.methods._util import to_mask
from masksearch.methods.base import MethodError, Progress, TrainingMethod, emit, prunable


class BatchStream:
    """Endless mini-batches of a split: a fresh seeded permutation each epoch, ragged tail kept."""

    def __init__(
        self, split: Any, batch_size: int, seed: int, device: torch.device, dtype: torch.dtype
    ) -> None:
        self.x = split.x.to(device=device, dtype=dtype)
        self.y = split.y.to(device).long()
        self.n = len(self.y)
        self.batch_size = batch_size
        self.steps_per_epoch = math.ceil(self.n / batch_size)
        self._generator = torch.Generator().manual_seed(seed)
        self._order: torch.Tensor | None = None
        self._cursor = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._order is None or self._cursor >= self.n:
            self._order = torch.randperm(self.n, generator=self._generator).to(self.x.device)
            self._cursor = 0
        index = self._order[self._cursor : self._cursor + self.batch_size]
        self._cursor += self.batch_size
        return self.x[index], self.y[index]

    def state(self) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """Where the stream is: :meth:`set_state` of it replays the same batches."""
        return self._generator.get_state(), self._order, self._cursor

    def set_state(self, state: tuple[torch.Tensor, torch.Tensor | None, int]) -> None:
        generator, self._order, self._cursor = state
        self._generator.set_state(generator)


def check_fits(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """One sample through the model, turning torch's shape errors into a plain message."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(x[:1])
    except RuntimeError as error:
        raise ValueError(
            f"data of shape {tuple(x.shape[1:])} (per sample) does not fit the model "
            f"{type(model).__name__}: {error}"
        ) from None
    finally:
        model.train(was_training)
    if logits.dim() != 2 or int(y.max()) >= logits.shape[1] or int(y.min()) < 0:
        raise ValueError(
            f"the model returns outputs of shape {tuple(logits.shape)} for one sample but the "
            f"labels range over [{int(y.min())}, {int(y.max())}]; a classifier must return "
            "(batch, num_classes) logits with a column per label"
        )


class StepTrainer:
    """Train ``model`` step by step under masks, within ``epochs`` passes over ``split``.

    ``masks`` (name -> bool tensor, ``True`` = kept) are passed to every call, so a method may
    change them between steps. With ``shadow=False`` pruned weights are held at exactly 0.0 (no
    gradient, re-zeroed after each optimiser step); with ``shadow=True`` the forward pass uses
    ``W ⊙ M`` and the gradient with respect to ``W ⊙ M`` is applied to all of ``W``, so pruned
    weights keep evolving and can come back (Guo et al. 2016).
    """

    def __init__(
        self,
        model: nn.Module,
        split: Any,
        names: list[str],
        *,
        settings: Mapping[str, Any],
        seed: int,
        device: str | torch.device,
        epochs: int,
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        check_finite(model)
        dtype = next(model.parameters()).dtype
        self.stream = BatchStream(split, settings["batch_size"], seed, self.device, dtype)
        check_fits(model, self.stream.x, self.stream.y)
        self.settings = dict(settings)
        self.params = {name: param for name, param in model.named_parameters() if name in names}
        self.steps_per_epoch = self.stream.steps_per_epoch
        self.budget_steps = epochs * self.steps_per_epoch
        self.steps_done = 0
        self._was_training = model.training
        self.reset_optimizer()

    @property
    def epochs_used(self) -> float:
        return self.steps_done / self.steps_per_epoch

    @property
    def steps_left(self) -> int:
        return self.budget_steps - self.steps_done

    def reset_optimizer(self) -> None:
        """A fresh optimiser (no momentum or Adam moments), e.g. after rewinding weights."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.settings["optimizer"] == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                params,
                lr=self.settings["lr"],
                momentum=self.settings["momentum"],
                weight_decay=self.settings["weight_decay"],
            )
        else:
            self.optimizer = torch.optim.Adam(
                params, lr=self.settings["lr"], weight_decay=self.settings["weight_decay"]
            )

    def all_kept(self) -> dict[str, torch.Tensor]:
        """Masks that keep every weight (the start of a run), on the trainer's device."""
        return {n: torch.ones_like(p, dtype=torch.bool) for n, p in self.params.items()}

    def magnitudes(self) -> dict[str, torch.Tensor]:
        """|w| of every trained weight (shadow values included), detached."""
        return {n: p.detach().abs() for n, p in self.params.items()}

    def device_masks(self, masks: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: keep.to(self.device) for name, keep in masks.items()}

    def zero_pruned(self, masks: Mapping[str, torch.Tensor]) -> None:
        # masked_fill_ writes +0.0 exactly (a product with the mask would leave -0.0)
        with torch.no_grad():
            for name, keep in masks.items():
                self.params[name].masked_fill_(~keep.to(self.device), 0.0)

    def train(
        self,
        n_steps: int,
        masks: Mapping[str, torch.Tensor],
        *,
        shadow: bool,
        before_step: Callable[[int], None] | None = None,
        after_step: Callable[[int], None] | None = None,
    ) -> float:
        """Take ``n_steps`` optimiser steps; return their mean training loss.

        ``before_step(i)`` / ``after_step(i)`` (``i`` = steps done before this one, over the
        whole run) may replace entries of ``masks`` in place between steps.
        """
        if n_steps > self.steps_left:
            raise MethodError(
                f"internal budget error: {n_steps} steps asked with {self.steps_left} left"
            )
        if n_steps <= 0:
            return float("nan")
        self.model.train()
        if not shadow:
            self.zero_pruned(masks)
        total = torch.zeros((), device=self.device)
        for _ in range(n_steps):
            if before_step is not None:
                before_step(self.steps_done)
            total += self._step(masks, shadow)
            if after_step is not None:
                after_step(self.steps_done - 1)
        return float(total) / n_steps

    def finish(self) -> None:
        self.model.train(self._was_training)

    def _step(self, masks: Mapping[str, torch.Tensor], shadow: bool) -> torch.Tensor:
        inputs, labels = self.stream.next()
        self.optimizer.zero_grad(set_to_none=True)
        effective = {}
        for name, keep in masks.items():
            param = self.params[name]
            pruned_part = param.masked_fill(keep, 0.0)
            if shadow:
                # forward value W - W·(1-M) = W ⊙ M, but d/dW is the identity
                effective[name] = param - pruned_part.detach()
            else:
                effective[name] = param - pruned_part
        loss = F.cross_entropy(functional_call(self.model, effective, (inputs,)), labels)
        loss.backward()
        self.optimizer.step()
        if not shadow:
            self.zero_pruned(masks)
        self.steps_done += 1
        return loss.detach()


def start_run(
    method: TrainingMethod,
    model: nn.Module,
    split: Any,
    epochs: int,
    seed: int,
    device: str | torch.device,
) -> StepTrainer:
    """A trainer of ``model``'s prunable weights with ``method``'s optimiser settings."""
    names = list(prunable(model))
    return StepTrainer(
        model, split, names, settings=method.settings(), seed=seed, device=device, epochs=epochs
    )


def split_steps(total: int, parts: int, *, what: str) -> list[int]:
    """``total`` steps in ``parts`` near-equal phases (the first ones take the remainder)."""
    if total < parts:
        raise MethodError(
            f"the epoch budget gives {total} optimiser steps, fewer than the {parts} {what}; "
            "raise epochs (or lower batch_size)"
        )
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


def finish_run(
    method: TrainingMethod,
    trainer: StepTrainer,
    masks: dict[str, torch.Tensor],
    progress: Progress | None,
    **fields: Any,
) -> tuple[nn.Module, Mask]:
    """Zero the pruned weights, restore the model's mode, report ``"done"``; the run's result."""
    trainer.zero_pruned(masks)
    trainer.finish()
    mask = to_mask(masks)
    emit(progress, method.name, "done", mask, epochs_used=trainer.epochs_used, **fields)
    return trainer.model, mask
