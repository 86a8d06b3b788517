"""One-shot pruning criteria: score every prunable weight once, keep the top.

* ``magnitude`` — |w| (global or layer-uniform).
* ``random`` — a seeded uniform random mask (the sanity floor); native scope: per layer.
* ``snip`` — Lee et al. 2019: s_j = |g_j·w_j| / Σ|g·w| from one minibatch.
* ``obd`` — LeCun et al. 1990: saliency −g_i·w_i + ½·h_ii·w_i², g the mean gradient and h_ii
  the empirical-Fisher diagonal (1/N)·Σ_n (∂ℓ_n/∂w_i)² over N samples; the pruned set is the
  one with the smallest summed saliency, so the highest saliencies are kept.
* ``wanda`` — Sun et al. 2023: |w_ij|·‖X_j‖₂, X_j the j-th input feature of the layer over N
  samples (for a convolution, the unfolded input: one feature per input channel × kernel
  position), compared within each output row.

Every criterion keeps exactly ``round(density · n)`` weights (per layer with ``scope="layer"``
or ``"row"``, at least one each) and breaks ties towards the lower flat index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from masksearch.mask import Mask
from masksearch.methods._gradients import gradient_statistics
from masksearch.methods._util import layer_counts, stable_top_k
from masksearch.methods.base import (
    MethodError,
    OneShotMethod,
    Progress,
    model_device,
    prunable,
    register,
    train_split,
)

__all__ = [
    "OBD",
    "SNIP",
    "Magnitude",
    "RandomPruning",
    "Wanda",
    "gradient_statistics",
    "obd_saliency",
    "snip_scores",
    "wanda_input_norms",
    "wanda_scores",
]


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MethodError(f"{name} must be an int >= 1, got {value!r}")


def _check_seed(seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")


def _sample(
    split: Any, n: int, seed: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples of ``split`` (all of them if it has fewer) drawn by a seeded permutation."""
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(split.y), generator=generator)[: min(n, len(split.y))]
    return split.x[index].to(device), split.y[index].to(device).long()


@register
@dataclass
class Magnitude(OneShotMethod):
    """Keep the largest |w|: globally (``scope="global"``) or the same fraction per layer."""

    name: ClassVar[str] = "magnitude"
    needs_data: ClassVar[bool] = False

    def _prune(self, model, params, split, density, scope, progress) -> Mask:
        return Mask.from_scores({n: p.detach().abs() for n, p in params.items()}, density, scope)


@register
@dataclass
class RandomPruning(OneShotMethod):
    """A uniformly random mask, seeded; by default exactly the same density in every layer."""

    name: ClassVar[str] = "random"
    scopes: ClassVar[tuple[str, ...]] = ("layer", "global")
    needs_data: ClassVar[bool] = False

    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_seed(self.seed)

    def _prune(self, model, params, split, density, scope, progress) -> Mask:
        generator = torch.Generator().manual_seed(self.seed)
        scores = {n: torch.rand(p.shape, generator=generator) for n, p in params.items()}
        return Mask.from_scores(scores, density, scope)


def snip_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """SNIP connection sensitivities |g·w| / Σ|g·w| of the prunable weights on batch (x, y)."""
    params = prunable(model)
    was_training = model.training
    model.eval()
    try:
        primals = {n: p.detach().requires_grad_(True) for n, p in params.items()}
        loss = F.cross_entropy(functional_call(model, primals, (x,)), y)
        grads = torch.autograd.grad(loss, list(primals.values()))
    finally:
        model.train(was_training)
    products = {n: (g * p.detach()).abs() for (n, p), g in zip(params.items(), grads, strict=True)}
    total = sum(float(t.sum()) for t in products.values())
    if total == 0.0:
        raise MethodError(
            "SNIP: every gradient·weight product is zero on this minibatch, so the scores are "
            "undefined; check the model (dead layers?) or use a larger batch_size"
        )
    return {n: t / total for n, t in products.items()}


@register
@dataclass
class SNIP(OneShotMethod):
    """Lee et al. 2019: keep the top |g·w| (normalised) from one seeded minibatch."""

    name: ClassVar[str] = "snip"

    batch_size: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive_int("batch_size", self.batch_size)
        _check_seed(self.seed)

    def scores(self, model: nn.Module, data: Any) -> dict[str, torch.Tensor]:
        x, y = _sample(train_split(data), self.batch_size, self.seed, model_device(model))
        return snip_scores(model, x, y)

    def _prune(self, model, params, split, density, scope, progress) -> Mask:
        return Mask.from_scores(self.scores(model, split), density, scope)


def obd_saliency(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, chunk_size: int = 64
) -> dict[str, torch.Tensor]:
    """OBD saliency −g·w + ½·h·w² of every prunable weight (h: empirical-Fisher diagonal)."""
    params = prunable(model)
    g, h = gradient_statistics(model, x, y, list(params), chunk_size=chunk_size)
    return {n: -g[n] * p.detach() + 0.5 * h[n] * p.detach() ** 2 for n, p in params.items()}


@register
@dataclass
class OBD(OneShotMethod):
    """Optimal Brain Damage with the empirical-Fisher diagonal over ``n_samples`` samples."""

    name: ClassVar[str] = "obd"

    n_samples: int = 128
    seed: int = 0
    chunk_size: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive_int("n_samples", self.n_samples)
        _check_positive_int("chunk_size", self.chunk_size)
        _check_seed(self.seed)

    def scores(self, model: nn.Module, data: Any) -> dict[str, torch.Tensor]:
        x, y = _sample(train_split(data), self.n_samples, self.seed, model_device(model))
        return obd_saliency(model, x, y, chunk_size=self.chunk_size)

    def _prune(self, model, params, split, density, scope, progress) -> Mask:
        return Mask.from_scores(self.scores(model, split), density, scope)


# -- Wanda ---------------------------------------------------------------------------------


def _owning_modules(model: nn.Module, names: list[str]) -> dict[str, nn.Module]:
    modules = dict(model.named_modules())
    owners = {}
    for name in names:
        module_name, _, attribute = name.rpartition(".")
        module = modules[module_name]
        supported = isinstance(module, (nn.Linear, nn.Conv2d))
        if attribute != "weight" or not supported:
            raise MethodError(
                f"Wanda scores the weights of nn.Linear and nn.Conv2d layers; {name!r} is the "
                f"{attribute!r} of a {type(module).__name__}. Use magnitude, snip or obd for it"
            )
        if isinstance(module, nn.Conv2d) and (
            module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str)
        ):
            raise MethodError(
                f"Wanda handles plain nn.Conv2d layers (groups=1, numeric zero padding); "
                f"{name!r} has groups={module.groups}, padding={module.padding!r}, "
                f"padding_mode={module.padding_mode!r}"
            )
        owners[name] = module
    return owners


def wanda_input_norms(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """‖X_j‖₂ of every input feature j of each prunable layer, over the samples ``x``.

    For an nn.Linear the features are the last input dimension (all other dimensions are
    samples); for an nn.Conv2d they are the unfolded patches, shaped like one filter
    (in_channels, kh, kw), with every output position a sample.
    """
    owners = _owning_modules(model, list(prunable(model)))
    squares: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str, module: nn.Module):
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            feature_input = inputs[0].detach()
            if isinstance(module, nn.Conv2d):
                patches = F.unfold(
                    feature_input,
                    module.kernel_size,
                    dilation=module.dilation,
                    padding=module.padding,
                    stride=module.stride,
                )
                total = (patches.double() ** 2).sum(dim=(0, 2)).reshape(module.weight.shape[1:])
            else:
                rows = feature_input.reshape(-1, feature_input.shape[-1])
                total = (rows.double() ** 2).sum(0)
            squares[name] = squares.get(name, 0) + total

        return hook

    for name, module in owners.items():
        handles.append(module.register_forward_pre_hook(make_hook(name, module)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    missing = [name for name in owners if name not in squares]
    if missing:
        raise MethodError(f"Wanda: layer {missing[0]!r} was never called in the forward pass")
    return {name: torch.sqrt(total) for name, total in squares.items()}


def wanda_scores(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Wanda scores |w_ij|·‖X_j‖₂ (float64, shaped like the weights)."""
    norms = wanda_input_norms(model, x)
    return {
        n: p.detach().abs().double() * norms[n].unsqueeze(0) for n, p in prunable(model).items()
    }


def row_top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Keep ``k`` entries of a tensor, compared within each output row (dim 0).

    Every row keeps ``k // rows`` entries; the ``k % rows`` extra ones go to the rows whose next
    candidate scores highest, so the layer keeps exactly ``k``.
    """
    rows = scores.shape[0]
    flat = scores.detach().reshape(rows, -1).to("cpu", torch.float64)
    base, extra = divmod(k, rows)
    if base >= flat.shape[1]:
        return torch.ones(scores.shape, dtype=torch.bool)
    order = torch.sort(-flat, dim=1, stable=True).indices
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep.scatter_(1, order[:, :base], True)
    if extra:
        next_scores = flat.gather(1, order[:, base : base + 1]).squeeze(1)
        lucky = stable_top_k(next_scores, extra)
        keep[lucky, order[lucky, base]] = True
    return keep.reshape(scores.shape)


@register
@dataclass
class Wanda(OneShotMethod):
    """Sun et al. 2023: |w|·‖x‖, native comparison group = each output row (``scope="row"``)."""

    name: ClassVar[str] = "wanda"
    scopes: ClassVar[tuple[str, ...]] = ("row", "layer", "global")

    n_samples: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive_int("n_samples", self.n_samples)
        _check_seed(self.seed)

    def scores(self, model: nn.Module, data: Any) -> dict[str, torch.Tensor]:
        x, _ = _sample(train_split(data), self.n_samples, self.seed, model_device(model))
        return wanda_scores(model, x)

    def _prune(self, model, params, split, density, scope, progress: Progress | None) -> Mask:
        scores = self.scores(model, split)
        if scope != "row":
            return Mask.from_scores(scores, density, scope)
        counts = layer_counts({n: s.numel() for n, s in scores.items()}, density)
        return Mask({n: row_top_k(s, counts[n]) for n, s in scores.items()})
