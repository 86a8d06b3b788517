"""Mean gradient and empirical-Fisher diagonal from per-sample gradients.

For nn.Linear and plain nn.Conv2d weights the per-sample gradients come from the layer's
input and output-gradient (hooks on one batched backward pass, as BackPACK and Opacus do):
for a Linear layer fed one vector per sample, Σ_n g_n² is the single product (δ²)ᵀ·(a²); for a
convolution, g_n = δ_n·unfold(a_n)ᵀ per sample. Any other parameter, or a layer called more
than once per forward pass, falls back to ``torch.func.vmap`` over ``grad``: exact too, but much
slower on a CPU.
"""

from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap


class _NotHookable(Exception):
    pass


def gradient_statistics(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    names: list[str],
    *,
    weights: dict[str, torch.Tensor] | None = None,
    chunk_size: int = 64,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Mean gradient g and empirical-Fisher diagonal h = (1/N)·Σ_n g_n² of the cross-entropy.

    Gradients are per sample, with respect to the named parameters, evaluated at ``weights``
    when given (e.g. the masked weights ``W ⊙ M``) and at the model's own values otherwise;
    ``chunk_size`` samples are processed at a time to bound memory. The model runs in eval
    mode (batch-norm statistics are not updated).
    """
    params = dict(model.named_parameters())
    primals = {n: (weights[n] if weights is not None else params[n]).detach() for n in names}
    was_training = model.training
    model.eval()
    try:
        owners = _hookable_owners(model, names)
        if owners is not None:
            try:
                return _hooked(model, x, y, primals, owners, chunk_size)
            except _NotHookable:
                pass
        return _vmapped(model, x, y, primals, chunk_size)
    finally:
        model.train(was_training)


def _hookable_owners(model: nn.Module, names: list[str]) -> dict[str, nn.Module] | None:
    modules = dict(model.named_modules())
    owners = {}
    for name in names:
        module_name, _, attribute = name.rpartition(".")
        module = modules.get(module_name)
        if attribute != "weight" or not isinstance(module, (nn.Linear, nn.Conv2d)):
            return None
        if isinstance(module, nn.Conv2d) and (
            module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str)
        ):
            return None
        owners[name] = module
    return owners


def _hooked(model, x, y, primals, owners, chunk_size):
    sums = {n: torch.zeros_like(t) for n, t in primals.items()}
    squares = {n: torch.zeros_like(t) for n, t in primals.items()}
    for start in range(0, len(y), chunk_size):
        grads, chunk_squares = _hooked_chunk(
            model, x[start : start + chunk_size], y[start : start + chunk_size], primals, owners
        )
        for name in primals:
            sums[name] += grads[name]
            squares[name] += chunk_squares[name]
    count = len(y)
    return {n: t / count for n, t in sums.items()}, {n: t / count for n, t in squares.items()}


def _hooked_chunk(model, x, y, primals, owners):
    """Summed gradient and summed squared per-sample gradients of one chunk of samples."""
    names = list(primals)
    inputs: dict[str, torch.Tensor] = {}
    deltas: dict[str, torch.Tensor] = {}
    calls: dict[str, int] = defaultdict(int)

    def make_hook(name: str):
        def keep_delta(output_gradient: torch.Tensor) -> None:
            deltas[name] = output_gradient.detach()

        def hook(_module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            calls[name] += 1
            inputs[name] = args[0].detach()
            output.register_hook(keep_delta)

        return hook

    handles = [module.register_forward_hook(make_hook(name)) for name, module in owners.items()]
    try:
        leaves = {n: p.clone().requires_grad_(True) for n, p in primals.items()}
        loss = F.cross_entropy(functional_call(model, leaves, (x,)), y, reduction="sum")
        grads = torch.autograd.grad(loss, [leaves[n] for n in names])
    finally:
        for handle in handles:
            handle.remove()
    if any(calls[n] != 1 for n in names) or set(deltas) != set(names):
        raise _NotHookable
    squares = {n: _squared_sample_gradients(owners[n], inputs[n], deltas[n]) for n in names}
    return dict(zip(names, grads, strict=True)), squares


def _squared_sample_gradients(
    module: nn.Module, inputs: torch.Tensor, delta: torch.Tensor
) -> torch.Tensor:
    """Σ_n g_n² for one layer's weight from its inputs and output gradients."""
    n = inputs.shape[0]
    if isinstance(module, nn.Conv2d):
        patches = F.unfold(
            inputs,
            module.kernel_size,
            dilation=module.dilation,
            padding=module.padding,
            stride=module.stride,
        )
        per_sample = torch.bmm(delta.reshape(n, delta.shape[1], -1), patches.transpose(1, 2))
        return per_sample.pow(2).sum(0).reshape(module.weight.shape)
    activations = inputs.reshape(n, -1, inputs.shape[-1])
    deltas = delta.reshape(n, -1, delta.shape[-1])
    if activations.shape[1] == 1:
        return deltas[:, 0].pow(2).T @ activations[:, 0].pow(2)
    return torch.bmm(deltas.transpose(1, 2), activations).pow(2).sum(0)


def _vmapped(model, x, y, primals, chunk_size):
    def sample_loss(
        primal: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor
    ) -> torch.Tensor:
        logits = functional_call(model, primal, (xi.unsqueeze(0),))
        return F.cross_entropy(logits, yi.unsqueeze(0))

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    sums = {n: torch.zeros_like(t) for n, t in primals.items()}
    squares = {n: torch.zeros_like(t) for n, t in primals.items()}
    for start in range(0, len(y), chunk_size):
        grads = per_sample(primals, x[start : start + chunk_size], y[start : start + chunk_size])
        for n, g in grads.items():
            sums[n] += g.sum(0)
            squares[n] += (g * g).sum(0)
    count = len(y)
    return {n: t / count for n, t in sums.items()}, {n: t / count for n, t in squares.items()}
