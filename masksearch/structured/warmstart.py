"""Warm starts (and baselines) for the ``groups`` encoding from Torch-Pruning's own pruner.

:func:`torch_pruning_genomes` runs ``torch_pruning.pruner.MetaPruner`` on a copy of the model
in interactive mode, reads which channels it would remove, and writes that down as genomes of a
:class:`~masksearch.encodings.GroupsEncoding`: Torch-Pruning's importance criteria and its
global or per-layer ratio allocation, as masksearch seeds or as the baseline a search is
compared against.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from masksearch.mask import check_density

if TYPE_CHECKING:  # the encoding imports this package: a runtime import would be circular
    from masksearch.encodings.groups import GroupsEncoding

__all__ = ["IMPORTANCES", "torch_pruning_genomes"]

#: Torch-Pruning importance criteria by name.
IMPORTANCES = ("l2", "l1", "bn_scale", "lamp")


def _importance(name: str) -> object:
    import torch_pruning as tp

    if name == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if name == "bn_scale":
        return tp.importance.BNScaleImportance()
    if name == "lamp":
        return tp.importance.LAMPImportance(p=2)
    raise ValueError(f"unknown importance {name!r}; choose one of {IMPORTANCES}")


def torch_pruning_genomes(
    model: nn.Module,
    encoding: GroupsEncoding,
    ratios: Sequence[float],
    *,
    importance: str = "l2",
    uniform: bool = False,
) -> np.ndarray:
    """``(len(ratios), n_genes)``: what Torch-Pruning removes at each channel ``ratio``.

    ``importance`` picks the criterion (group L2 or L1 magnitude, batch-norm scale, LAMP);
    ``uniform=False`` ranks channels globally (``global_pruning=True``), ``uniform=True``
    removes the same ratio from every layer. ``model`` is not modified.
    """
    from masksearch.encodings.groups import GroupsEncoding

    if not isinstance(encoding, GroupsEncoding):
        raise TypeError(
            f"encoding must be the model's GroupsEncoding, got {type(encoding).__name__}"
        )
    importance_criterion = _importance(importance)
    genomes = []
    for ratio in ratios:
        ratio = float(ratio)
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"a pruning ratio is a fraction of channels in [0, 1), got {ratio}")
        if ratio > 0.0:
            check_density(1.0 - ratio)
        genomes.append(_one(model, encoding, ratio, importance_criterion, uniform))
    return encoding.validate(np.array(genomes, dtype=bool).reshape(-1, encoding.n_genes))


def _one(
    model: nn.Module, encoding: GroupsEncoding, ratio: float, importance: object, uniform: bool
) -> np.ndarray:
    import torch_pruning as tp

    target = copy.deepcopy(model).eval()
    modules = dict(target.named_modules())
    names = {module: name for name, module in modules.items()}
    roots = {group.root: number for number, group in enumerate(encoding.table.groups)}
    ignored = [modules[name] for name in encoding.table.ignored]
    parameter = next(target.parameters())
    example = torch.zeros((1, *encoding.input_shape), device=parameter.device)
    genome = np.ones(encoding.n_genes, dtype=bool)
    with warnings.catch_warnings(), torch.enable_grad():
        warnings.simplefilter("ignore")  # Torch-Pruning warns about what it then handles
        pruner = tp.pruner.MetaPruner(
            target,
            example,
            importance=importance,
            pruning_ratio=ratio,
            global_pruning=not uniform,
            ignored_layers=ignored,
        )
        for group in pruner.step(interactive=True):
            root = group.items[0]
            name = names[root.dep.target.module]
            if name not in roots:
                raise ValueError(
                    f"Torch-Pruning pruned a group rooted at {name!r}, which the encoding does "
                    "not have; build the encoding from the same model and input_shape"
                )
            offset = encoding.table.offsets[roots[name]]
            genome[offset + np.asarray(root.root_idxs, dtype=np.int64)] = False
    return genome
