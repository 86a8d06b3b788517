"""Weight masks: named boolean tensors, one per prunable parameter.

A :class:`Mask` is the currency of masksearch: encodings decode genomes into masks, pruning
methods return masks, and a mask is applied to a model, saved, or exported to the
``torch.nn.utils.prune`` form (``weight_orig`` + ``weight_mask``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from masksearch.io import atomic_torch_save

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)


class MaskError(ValueError):
    """A mask does not fit a model, or a model cannot be pruned as asked."""


def prunable_parameters(
    model: nn.Module,
    *,
    include_bias: bool = False,
    include_norm: bool = False,
    include_embedding: bool = False,
) -> dict[str, nn.Parameter]:
    """The parameters masksearch prunes, by name, in ``model.named_parameters()`` order.

    By default the ``.weight`` of every Linear and Conv layer; biases, normalisation
    parameters and embeddings only when asked.
    """
    wanted: set[int] = set()
    for module in model.modules():
        if isinstance(module, (nn.Linear, *_CONV)):
            wanted.add(id(module.weight))
            if include_bias and module.bias is not None:
                wanted.add(id(module.bias))
        elif include_norm and isinstance(module, _NORM):
            wanted.update(id(p) for p in module.parameters(recurse=False))
        elif include_embedding and isinstance(module, nn.Embedding):
            wanted.add(id(module.weight))
    found = {name: p for name, p in model.named_parameters() if id(p) in wanted}
    if not found:
        raise MaskError(
            f"{type(model).__name__} has nothing to prune: masksearch prunes the weights of "
            "nn.Linear and nn.Conv layers (and, when asked, biases, norms and embeddings). "
            "Pass a model that contains such layers."
        )
    return found


def check_finite(model: nn.Module) -> None:
    """Raise :class:`MaskError` naming the first parameter that holds NaN or inf."""
    for name, param in model.named_parameters():
        if not torch.isfinite(param.detach()).all():
            raise MaskError(
                f"parameter {name!r} contains NaN or inf values; a pruning search on a broken "
                "model is meaningless. Retrain or reload the model's weights."
            )


@dataclass(frozen=True)
class Layout:
    """Ordered names, shapes and flat offsets of a model's prunable parameters.

    The flat view concatenates every parameter (row-major) in ``names`` order; encodings and
    evaluators index weights through it.
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, model: nn.Module, names: Iterable[str] | None = None) -> Layout:
        params = dict(model.named_parameters())
        if names is None:
            chosen = list(prunable_parameters(model))
        else:
            chosen = list(names)
            missing = [n for n in chosen if n not in params]
            if missing:
                raise MaskError(
                    f"the model has no parameter named {missing[0]!r}; choose from {sorted(params)}"
                )
        return cls(tuple(chosen), tuple(tuple(params[n].shape) for n in chosen))

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(np.prod(s)) for s in self.shapes)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start of each parameter in the flat view, plus the total at the end."""
        return tuple(int(v) for v in np.concatenate([[0], np.cumsum(self.sizes)]))

    @property
    def n_total(self) -> int:
        return self.offsets[-1]

    def slice(self, name: str) -> slice:
        index = self.names.index(name)
        offsets = self.offsets
        return slice(offsets[index], offsets[index + 1])


class Mask:
    """Named boolean tensors, ``True`` = keep, one per prunable parameter."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]) -> None:
        if not tensors:
            raise MaskError("a Mask needs at least one tensor")
        self.tensors: dict[str, torch.Tensor] = {}
        for name, tensor in tensors.items():
            tensor = torch.as_tensor(tensor)
            if tensor.dtype != torch.bool:
                values = torch.unique(tensor)
                if not bool(((values == 0) | (values == 1)).all()):
                    raise MaskError(
                        f"mask for {name!r} must be boolean (or 0/1), got values "
                        f"{values[:5].tolist()}"
                    )
                tensor = tensor != 0
            self.tensors[name] = tensor.detach().to("cpu")

    # -- construction ------------------------------------------------------------------
    @classmethod
    def ones(cls, model: nn.Module, names: Iterable[str] | None = None) -> Mask:
        """The dense mask (everything kept) over ``names`` or the default prunable set."""
        layout = Layout.of(model, names)
        return cls(
            {
                n: torch.ones(s, dtype=torch.bool)
                for n, s in zip(layout.names, layout.shapes, strict=True)
            }
        )

    @classmethod
    def from_scores(
        cls, scores: Mapping[str, torch.Tensor], density: float, scope: str = "global"
    ) -> Mask:
        """Keep the top ``density`` fraction of entries by score.

        ``scope="global"`` ranks all entries together; ``"layer"`` keeps the same fraction in
        every tensor (rounded to the nearest count, at least one). Ties go to the lower flat
        index, so the result is deterministic.
        """
        check_density(density)
        if scope not in ("global", "layer"):
            raise MaskError(f"scope must be 'global' or 'layer', got {scope!r}")
        names = list(scores)
        flats = [scores[n].detach().reshape(-1).to("cpu", torch.float64) for n in names]
        if scope == "global":
            allscores = torch.cat(flats)
            keep = _top_k(allscores, max(1, round(density * allscores.numel())))
            chunks = torch.split(keep, [f.numel() for f in flats])
        else:
            chunks = [_top_k(f, max(1, round(density * f.numel()))) for f in flats]
        return cls({n: c.reshape(scores[n].shape) for n, c in zip(names, chunks, strict=True)})

    @classmethod
    def magnitude(
        cls,
        model: nn.Module,
        density: float,
        scope: str = "global",
        names: Iterable[str] | None = None,
    ) -> Mask:
        """Keep the largest-|w| weights: the baseline every search is compared against."""
        layout = Layout.of(model, names)
        params = dict(model.named_parameters())
        return cls.from_scores({n: params[n].detach().abs() for n in layout.names}, density, scope)

    @classmethod
    def from_flat(cls, layout: Layout, flat: np.ndarray | torch.Tensor) -> Mask:
        flat = torch.as_tensor(np.asarray(flat)).reshape(-1)
        if flat.numel() != layout.n_total:
            raise MaskError(
                f"flat mask has {flat.numel()} entries but the layout has {layout.n_total} weights"
            )
        chunks = torch.split(flat, list(layout.sizes))
        return cls(
            {n: c.reshape(s) for n, c, s in zip(layout.names, chunks, layout.shapes, strict=True)}
        )

    @classmethod
    def from_pruned(cls, model: nn.Module) -> Mask:
        """Read the ``<name>_mask`` buffers that ``torch.nn.utils.prune`` leaves on a model."""
        tensors = {}
        for module_name, module in model.named_modules():
            for buffer_name, buffer in module.named_buffers(recurse=False):
                if buffer_name.endswith("_mask"):
                    param = buffer_name[: -len("_mask")]
                    full = f"{module_name}.{param}" if module_name else param
                    tensors[full] = buffer.detach().to("cpu") != 0
        if not tensors:
            raise MaskError(
                "the model carries no torch.nn.utils.prune masks (no '*_mask' buffers); "
                "export one with Mask.to_prune(model) first"
            )
        return cls(tensors)

    # -- accounting --------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.tensors)

    @property
    def n_kept(self) -> int:
        return int(sum(int(t.sum()) for t in self.tensors.values()))

    @property
    def n_total(self) -> int:
        return int(sum(t.numel() for t in self.tensors.values()))

    @property
    def density(self) -> float:
        return self.n_kept / self.n_total

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density

    def layer_densities(self) -> dict[str, float]:
        return {n: float(t.float().mean()) for n, t in self.tensors.items()}

    def flat(self) -> np.ndarray:
        return torch.cat([t.reshape(-1) for t in self.tensors.values()]).numpy()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mask):
            return NotImplemented
        return self.names == other.names and all(
            torch.equal(self.tensors[n], other.tensors[n]) for n in self.names
        )

    def __repr__(self) -> str:
        return f"Mask({len(self.tensors)} tensors, density={self.density:.4f})"

    # -- use ----------------------------------------------------------------------------
    def validate(self, model: nn.Module) -> None:
        """Raise :class:`MaskError` unless every entry names a parameter of matching shape."""
        params = dict(model.named_parameters())
        for name, tensor in self.tensors.items():
            if name not in params:
                # an exported model stores the parameter as `<name>_orig`
                if f"{name}_orig" in params:
                    params[name] = params[f"{name}_orig"]
                else:
                    raise MaskError(
                        f"mask names parameter {name!r}, which the model does not have; "
                        f"the model's parameters are {sorted(params)}"
                    )
            if tuple(params[name].shape) != tuple(tensor.shape):
                raise MaskError(
                    f"mask for {name!r} has shape {tuple(tensor.shape)} but the parameter has "
                    f"shape {tuple(params[name].shape)}; build the mask from this model"
                )

    def apply(self, model: nn.Module) -> nn.Module:
        """Zero the pruned weights of ``model`` in place and return it."""
        self.validate(model)
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, tensor in self.tensors.items():
                param = params[name]
                param.mul_(tensor.to(param.device, param.dtype))
        return model

    def to(self, device: torch.device | str) -> dict[str, torch.Tensor]:
        """The tensors on ``device`` (for hot loops that multiply masks many times)."""
        return {n: t.to(device) for n, t in self.tensors.items()}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write bit-packed masks atomically (a crash never leaves a half-written file)."""
        payload = {
            "format": 1,
            "names": self.names,
            "shapes": [tuple(t.shape) for t in self.tensors.values()],
            "bits": np.packbits(self.flat()),
        }
        atomic_torch_save(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Mask:
        try:
            payload = torch.load(path, map_location="cpu", weights_only=False)
            layout = Layout(tuple(payload["names"]), tuple(tuple(s) for s in payload["shapes"]))
            flat = np.unpackbits(payload["bits"], count=layout.n_total).astype(bool)
        except FileNotFoundError:
            raise
        except Exception as error:  # any unreadable payload is the same problem to the user
            raise MaskError(f"{path} is not a masksearch mask file ({error})") from error
        return cls.from_flat(layout, flat)

    def to_prune(self, model: nn.Module) -> nn.Module:
        """Export into ``torch.nn.utils.prune`` form: ``<name>_orig`` + ``<name>_mask``."""
        self.validate(model)
        modules = dict(model.named_modules())
        for name, tensor in self.tensors.items():
            module_name, _, param_name = name.rpartition(".")
            module = modules[module_name]
            if prune.is_pruned(module) and hasattr(module, f"{param_name}_mask"):
                raise MaskError(
                    f"{name!r} is already pruned; call Mask.make_permanent(model) first"
                )
            device = getattr(module, param_name).device
            prune.custom_from_mask(module, param_name, tensor.to(device))
        return model

    @staticmethod
    def make_permanent(model: nn.Module) -> nn.Module:
        """Fold every ``torch.nn.utils.prune`` reparametrisation into a plain parameter."""
        for module in model.modules():
            for hook in list(module._forward_pre_hooks.values()):
                if isinstance(hook, prune.BasePruningMethod):
                    prune.remove(module, hook._tensor_name)
        return model


def check_density(density: float) -> float:
    """Validate a target density in (0, 1] and return it as a float."""
    try:
        value = float(density)
    except (TypeError, ValueError):
        raise MaskError(f"density must be a number in (0, 1], got {density!r}") from None
    if not 0.0 < value <= 1.0:
        raise MaskError(
            f"density must be in (0, 1] (the fraction of weights kept), got {density!r}; "
            "for a sparsity of s use density = 1 - s"
        )
    return value


def _top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    # a stable sort on -score keeps the lower index first among equal scores
    order = torch.sort(-scores, stable=True).indices[:k]
    keep = torch.zeros(scores.numel(), dtype=torch.bool)
    keep[order] = True
    return keep
