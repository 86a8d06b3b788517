"""Training, fine-tuning and evaluation of (masked) classifiers.

A split is anything with ``.x`` (float images, NCHW) and ``.y`` (integer labels) tensors
(:class:`masksearch.data.SplitLike`), such as :class:`masksearch.data.Split`; a mask is anything
with ``.tensors`` mapping parameter names to boolean tensors, such as
:class:`masksearch.mask.Mask`. Device names are resolved by :mod:`masksearch.device`.

Training is deterministic on CPU for a given ``seed``: mini-batches are shuffled with a private
``torch.Generator`` and the global RNG is never touched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from masksearch.data import SplitLike, split_tensors
from masksearch.device import as_model_input, resolve_device
from masksearch.evaluators.base import check_label_smoothing

if TYPE_CHECKING:
    from masksearch.mask import Mask

# resolve_device lives in masksearch.device; it is re-exported because callers (the CLI, local
# search, the benchmarks) import it from here
__all__ = ["Scores", "evaluate", "finetune", "resolve_device", "train"]

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class Scores:
    """Accuracy and mean cross-entropy of a model on ``n`` samples (what :func:`evaluate` gives)."""

    accuracy: float
    loss: float
    n: int

    @property
    def error(self) -> float:
        return 1.0 - self.accuracy


# its name before it was told apart from masksearch.Evaluation (a population's objectives);
# kept for code that imported it from here
Evaluation = Scores


def evaluate(
    model: nn.Module,
    split: SplitLike,
    *,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
    label_smoothing: float = 0.0,
) -> Scores:
    """Accuracy and mean cross-entropy of ``model`` on ``split`` (eval mode, no gradients); the
    cross-entropy smoothed by ``label_smoothing``, as the evaluators smooth it.

    The model is moved to ``device``; its train/eval mode is restored afterwards.
    """
    _check_positive_int("batch_size", batch_size)
    label_smoothing = check_label_smoothing(label_smoothing)
    x, y = split_tensors(split)
    target = resolve_device(device)
    model.to(target)
    was_training = model.training
    model.eval()
    total_loss = 0.0
    correct = 0
    try:
        with torch.no_grad():
            _check_fits(model, x, y, target)
            for start in range(0, len(x), batch_size):
                inputs = as_model_input(x[start : start + batch_size], model, target)
                labels = y[start : start + batch_size].to(target)
                logits = model(inputs)
                total_loss += float(
                    F.cross_entropy(
                        logits, labels, reduction="sum", label_smoothing=label_smoothing
                    )
                )
                correct += int((logits.argmax(dim=1) == labels).sum())
    finally:
        model.train(was_training)
    return Scores(accuracy=correct / len(x), loss=total_loss / len(x), n=len(x))


def train(
    model: nn.Module,
    split: SplitLike,
    *,
    epochs: int,
    lr: float = 0.01,
    batch_size: int = 128,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    mask: Mask | None = None,
    lr_schedule: str = "constant",
    progress: Callable[[dict[str, Any]], None] | None = None,
    teacher: nn.Module | None = None,
    distill_temperature: float = 4.0,
    distill_weight: float = 0.9,
) -> list[dict[str, Any]]:
    """Train ``model`` in place with mini-batch cross-entropy; return the per-epoch log.

    ``optimizer`` is ``"sgd"`` (with ``momentum``, no Nesterov) or ``"adam"``; ``lr_schedule``
    is ``"constant"`` or ``"cosine"`` (per step, from ``lr`` down to 0). The model is moved to
    ``device``. With a ``mask`` the pruned weights are zeroed first and stay exactly 0.0 (see
    :func:`finetune`). Each log entry (also passed to ``progress``) holds ``epoch`` (from 1),
    ``loss`` (mean training loss of the epoch), ``lr`` (at the epoch's first step) and
    ``seconds``.

    With a ``teacher`` (e.g. the dense model a pruned one came from) the loss is knowledge
    distillation (Hinton et al. 2015): ``distill_weight`` × T² × KL(teacher ‖ model) on both
    logits softened by ``distill_temperature`` T, plus ``1 - distill_weight`` × the
    cross-entropy. The teacher runs once, in eval mode, over the whole split before training
    (its logits are fixed), and is never changed.
    """
    _check_positive_int("epochs", epochs)
    _check_positive_int("batch_size", batch_size)
    _check_positive_float("lr", lr)
    _check_non_negative_float("momentum", momentum)
    _check_non_negative_float("weight_decay", weight_decay)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {list(OPTIMIZERS)}")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_schedule {lr_schedule!r}; choose one of {list(LR_SCHEDULES)}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if teacher is not None:
        _check_positive_float("distill_temperature", distill_temperature)
        _check_non_negative_float("distill_weight", distill_weight)
        if distill_weight > 1:
            raise ValueError(f"distill_weight must be in [0, 1], got {distill_weight}")
    x, y = split_tensors(split)
    _check_finite_weights(model)
    target = resolve_device(device)
    model.to(target)
    pruned = _pruned_entries(model, mask, target)

    was_training = model.training
    model.eval()
    with torch.no_grad():
        _check_fits(model, x, y, target)
    soft_targets = None
    if teacher is not None:
        soft_targets = _teacher_log_probs(teacher, model, x, target, distill_temperature)
    model.train()

    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=False
        )
    else:
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    _zero_pruned(pruned)

    # the whole split goes to the device once rather than batch by batch
    x = as_model_input(x, model, target)
    channels_last = uses_channels_last(model, x, target)
    if channels_last:  # in place: the optimizer's parameters stay the same objects
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = y.to(target)
    generator = torch.Generator().manual_seed(seed)
    n = len(x)
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = epochs * steps_per_epoch
    step = 0
    log: list[dict[str, Any]] = []
    try:
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            epoch_lr = _lr_at(lr, lr_schedule, step, total_steps)
            order = torch.randperm(n, generator=generator).to(target)
            loss_sum = torch.zeros((), device=target)
            for start in range(0, n, batch_size):
                for group in opt.param_groups:
                    group["lr"] = _lr_at(lr, lr_schedule, step, total_steps)
                index = order[start : start + batch_size]
                inputs, labels = x[index], y[index]
                opt.zero_grad(set_to_none=True)
                logits = model(inputs)
                loss = F.cross_entropy(logits, labels)
                if soft_targets is not None:
                    loss = (1.0 - distill_weight) * loss + distill_weight * _distillation(
                        logits, soft_targets[index], distill_temperature
                    )
                loss.backward()
                _zero_pruned_grads(pruned)
                opt.step()
                _zero_pruned(pruned)
                loss_sum += loss.detach() * len(index)
                step += 1
            entry = {
                "epoch": epoch,
                "loss": float(loss_sum) / n,
                "lr": epoch_lr,
                "seconds": time.perf_counter() - started,
            }
            log.append(entry)
            if progress is not None:
                progress(dict(entry))
    finally:
        model.train(was_training)
        if channels_last:
            model.to(memory_format=torch.contiguous_format)
    return log


def finetune(
    model: nn.Module,
    mask: Mask,
    split: SplitLike,
    *,
    epochs: int,
    lr: float = 0.01,
    batch_size: int = 128,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    lr_schedule: str = "constant",
    progress: Callable[[dict[str, Any]], None] | None = None,
    teacher: nn.Module | None = None,
    distill_temperature: float = 4.0,
    distill_weight: float = 0.9,
) -> list[dict[str, Any]]:
    """Train the weights ``mask`` keeps; every pruned weight stays exactly 0.0.

    The mask is applied before training, the gradients of pruned entries are zeroed before each
    optimizer step and the pruned weights are zeroed again after it, so neither momentum, weight
    decay nor Adam's running moments can bring them back. Arguments as in :func:`train`.
    """
    if mask is None:
        raise ValueError("finetune needs a mask; use train() to train without one")
    return train(
        model,
        split,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        optimizer=optimizer,
        momentum=momentum,
        weight_decay=weight_decay,
        seed=seed,
        device=device,
        mask=mask,
        lr_schedule=lr_schedule,
        progress=progress,
        teacher=teacher,
        distill_temperature=distill_temperature,
        distill_weight=distill_weight,
    )


# -- helpers -------------------------------------------------------------------------------


def _teacher_log_probs(
    teacher: nn.Module,
    student: nn.Module,
    x: torch.Tensor,
    device: torch.device,
    temperature: float,
    batch_size: int = 1024,
) -> torch.Tensor:
    """The teacher's log-probabilities at ``temperature`` for every sample of ``x``, on
    ``device``; refused readably when its outputs do not match the student's."""
    teacher.to(device)
    was_training = teacher.training
    teacher.eval()
    parts = []
    try:
        with torch.no_grad():
            first = as_model_input(x[:1], student, device)
            try:
                shapes = (tuple(teacher(first).shape), tuple(student(first).shape))
            except RuntimeError as error:
                raise ValueError(
                    f"the teacher {type(teacher).__name__} does not take the data of shape "
                    f"{tuple(x.shape[1:])} (per sample): {error}"
                ) from None
            if shapes[0] != shapes[1]:
                raise ValueError(
                    f"the teacher returns outputs of shape {shapes[0]} for one sample and the "
                    f"model {shapes[1]}: distillation needs the same classes"
                )
            for start in range(0, len(x), batch_size):
                inputs = as_model_input(x[start : start + batch_size], student, device)
                parts.append(F.log_softmax(teacher(inputs).float() / temperature, dim=1))
    finally:
        teacher.train(was_training)
    return torch.cat(parts)


def _distillation(
    logits: torch.Tensor, teacher_log_probs: torch.Tensor, temperature: float
) -> torch.Tensor:
    """T² × KL(teacher ‖ student) of logits softened by T, mean over the batch: the T² keeps
    the gradients' scale independent of T (Hinton et al. 2015)."""
    student = F.log_softmax(logits / temperature, dim=1)
    kl = F.kl_div(student, teacher_log_probs, reduction="batchmean", log_target=True)
    return temperature * temperature * kl


def recalibrate_batch_norm(
    model: nn.Module,
    split: SplitLike,
    *,
    batches: int,
    batch_size: int = 128,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """Re-estimate every batch norm's running statistics, in place, as the plain mean over
    ``batches`` mini-batches of ``split`` (drawn with ``seed``); returns ``model`` in eval mode.

    After channels are removed, the statistics the remaining batch norms were fitted to no
    longer hold; re-estimating them (no gradient step) recovers much of the accuracy that
    fine-tuning would, and is what ``PruningProblem(recalibrate_bn=...)`` scores candidates by.
    """
    _check_positive_int("batches", batches)
    _check_positive_int("batch_size", batch_size)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    norms = [m for m in norms if m.track_running_stats]
    target = resolve_device(device)
    model.to(target)
    x, _ = split_tensors(split)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(int(seed)))
    rows = order[torch.arange(batches * batch_size) % len(x)].reshape(batches, batch_size)
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: every batch weighs the same
    model.train()
    try:
        with torch.no_grad():
            for chosen in rows:
                model(as_model_input(x[chosen], model, target))
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        model.eval()
    return model


def uses_channels_last(model: nn.Module, x: torch.Tensor, device: torch.device) -> bool:
    """Whether :func:`train` switches ``model`` and its images ``x`` to channels-last memory.

    On the CPU, oneDNN runs the forward and backward passes of convolutions on channels-last
    tensors about 1.5x faster (LeNet-5 on Fashion-MNIST, 2 cores: a fine-tuning epoch takes
    10 s instead of 13 s); the values agree with the default layout up to float rounding. Only
    image batches (4-D) through models whose 2-D convolutions are in the default layout
    qualify, and :func:`train` switches them back when it finishes, so callers never see it.

    A model with a 1x1 convolution of fewer than 8 input channels stays in the default layout:
    oneDNN's channels-last weight gradient of such a convolution can stall for minutes per step
    (seen with torch 2.14: Conv2d(5, 6, 1, stride=2) on 128 images of 28x28, the shortcut of
    a ResNet-8 that channel pruning left 5 channels wide), while the default layout takes
    milliseconds.
    """
    convolutions = [module for module in model.modules() if isinstance(module, nn.Conv2d)]
    thin_pointwise = any(
        module.kernel_size == (1, 1) and module.in_channels < 8 for module in convolutions
    )
    return (
        device.type == "cpu"
        and x.dim() == 4
        and bool(convolutions)
        and not thin_pointwise
        and all(module.weight.is_contiguous() for module in convolutions)
    )


def _lr_at(base_lr: float, schedule: str, step: int, total_steps: int) -> float:
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    return base_lr


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_positive_float(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def _check_non_negative_float(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _check_fits(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> None:
    # One sample through the model turns torch's deep shape error into a message that names
    # the data's shape; the caller has already switched to eval mode and disabled gradients.
    try:
        logits = model(as_model_input(x[:1], model, device))
    except RuntimeError as error:
        raise ValueError(
            f"data of shape {tuple(x.shape[1:])} (per sample) does not fit the model "
            f"{type(model).__name__}: {error}"
        ) from None
    if logits.dim() != 2:
        raise ValueError(
            f"the model returns outputs of shape {tuple(logits.shape)} for one sample; a "
            "classifier must return (batch, num_classes) logits"
        )
    n_classes = logits.shape[1]
    top_label = int(y.max())
    if int(y.min()) < 0 or top_label >= n_classes:
        raise ValueError(
            f"labels range over [{int(y.min())}, {top_label}] but the model has {n_classes} "
            f"outputs; build the model with num_classes >= {top_label + 1}"
        )


def _check_finite_weights(model: nn.Module) -> None:
    for name, param in model.named_parameters():
        if not torch.isfinite(param.detach()).all():
            raise ValueError(
                f"parameter {name!r} contains NaN or inf values; training cannot recover it. "
                "Rebuild or reload the model's weights."
            )


def _pruned_entries(
    model: nn.Module, mask: Mask | None, device: torch.device
) -> list[tuple[nn.Parameter, torch.Tensor]]:
    """(parameter, bool tensor that is True where pruned) for each masked parameter."""
    if mask is None:
        return []
    tensors = getattr(mask, "tensors", None)
    if not isinstance(tensors, Mapping):
        raise TypeError(
            f"mask must be a masksearch.mask.Mask (with .tensors), got {type(mask).__name__}"
        )
    params = dict(model.named_parameters())
    pairs = []
    for name, keep in tensors.items():
        if name not in params:
            raise ValueError(
                f"mask names parameter {name!r}, which the model does not have; "
                f"the model's parameters are {sorted(params)}"
            )
        param = params[name]
        if tuple(keep.shape) != tuple(param.shape):
            raise ValueError(
                f"mask for {name!r} has shape {tuple(keep.shape)} but the parameter has shape "
                f"{tuple(param.shape)}; build the mask from this model"
            )
        if keep.dtype != torch.bool:
            raise TypeError(f"mask for {name!r} must be a bool tensor, got dtype {keep.dtype}")
        pairs.append((param, ~keep.to(device)))
    return pairs


def _zero_pruned_grads(pruned: list[tuple[nn.Parameter, torch.Tensor]]) -> None:
    for param, is_pruned in pruned:
        if param.grad is not None:
            param.grad.masked_fill_(is_pruned, 0.0)


def _zero_pruned(pruned: list[tuple[nn.Parameter, torch.Tensor]]) -> None:
    # masked_fill_ writes +0.0 exactly (multiplying by the mask would give -0.0 for negatives)
    with torch.no_grad():
        for param, is_pruned in pruned:
            param.masked_fill_(is_pruned, 0.0)
