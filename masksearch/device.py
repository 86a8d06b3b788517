"""Where tensors and models run: device names resolved once, with readable errors.

Every entry point that takes ``device=`` (training, evaluators, pruning methods, the CLI)
accepts the same spellings and turns them into a :class:`torch.device` with
:func:`resolve_device`, so a typo or a GPU that is not there fails the same way everywhere.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["as_model_input", "resolve_device"]


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device`` into a device.

    ``"auto"`` picks CUDA when a GPU is visible and the CPU otherwise.
    """
    if isinstance(device, str) and device.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:<index>'"
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was asked for but no CUDA device is visible; "
                "use device='cpu' or device='auto'"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s) "
                "are visible; use 'cuda' or 'auto'"
            )
    elif resolved.type not in ("cpu", "mps"):
        raise ValueError(f"unsupported device {device!r}; use 'auto', 'cpu' or 'cuda'")
    return resolved


def as_model_input(x: torch.Tensor, model: nn.Module, device: torch.device) -> torch.Tensor:
    """``x`` on ``device`` in the dtype of ``model``'s parameters (its own for a parameterless
    model), so a float64 model is fed float64 images without the caller casting."""
    reference = next(model.parameters(), None)
    dtype = reference.dtype if reference is not None else x.dtype
    return x.to(device=device, dtype=dtype)
