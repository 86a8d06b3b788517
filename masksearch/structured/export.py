"""Export a channel genome as a physically smaller model, and save it for use without masksearch.

A genome of the 'groups' encoding says, for every channel of every dependency group, whether it
is kept. Searching evaluates it as a *masked* model: the removed channels' weights are zero and
the network keeps its size. :func:`shrink` removes those channels for real with Torch-Pruning,
so the result has fewer parameters and runs faster, and computes what the masked model computes
(to float rounding). :func:`save_structured` writes it as a ``torch.export`` program (``.pt2``),
which plain PyTorch loads with no model code (it is already in inference mode: no ``.eval()``)::

    model = torch.export.load("pruned.pt2").module()

``torch.export`` was chosen over TorchScript because ``torch.jit.trace`` is deprecated in
recent PyTorch, and over a pickled module or a state dict because both need the model's class
(torchvision, masksearch or the user's own code) to load.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from masksearch.io import atomic_write
from masksearch.mask import Mask, MaskError
from masksearch.structured.groups import ChannelGroup, channel_groups, traced_table

__all__ = ["load_structured", "masked", "save_structured", "shrink"]

# Where the advice to get a valid genome points, in every genome error.
_GENOME_SOURCE = (
    "build genomes with the 'groups' encoding of the same model, input_shape and ignored "
    "layers (its n_genes is channel_groups(model, input_shape, ignored).n_genes)"
)


def _check_genome(genome: np.ndarray | torch.Tensor | Sequence[int], n_genes: int) -> np.ndarray:
    """``genome`` as a bool vector of ``n_genes`` (True = keep); refuse anything else by name."""
    if isinstance(genome, torch.Tensor):
        genome = genome.detach().cpu().numpy()
    values = np.asarray(genome)
    if values.ndim != 1 or values.size != n_genes:
        raise MaskError(
            f"the genome has shape {values.shape} but the model has {n_genes} channel genes; "
            f"expected one bool per gene, shape ({n_genes},): {_GENOME_SOURCE}"
        )
    if values.dtype == np.bool_:
        return values
    if values.dtype.kind not in "biuf" or not np.isin(values, (0, 1)).all():
        odd = values[~np.isin(values, (0, 1))] if values.dtype.kind in "biuf" else values
        raise MaskError(
            f"the genome must be bool (or 0/1: True = keep the channel), got {values.dtype} "
            f"values such as {odd[:5].tolist()}: {_GENOME_SOURCE}"
        )
    return values != 0


def _check_groups_kept(genome: np.ndarray, groups: Sequence[ChannelGroup]) -> None:
    """Refuse a group with no channel left: the network would be cut in two there."""
    start = 0
    for number, group in enumerate(groups):
        if not genome[start : start + group.channels].any():
            raise MaskError(
                f"the genome removes every one of the {group.channels} channels of group "
                f"{number} (root layer {group.root!r}, genes {start}..{start + group.channels - 1})"
                ", which would disconnect the network; keep at least one channel of every group "
                "(the 'groups' encoding's validate keeps each group's best channel)"
            )
        start += group.channels


def shrink(
    model: nn.Module,
    genome: np.ndarray | torch.Tensor | Sequence[int],
    input_shape: Sequence[int],
    *,
    ignored: Sequence[str] | None = None,
) -> nn.Module:
    """A copy of ``model`` with the channels ``genome`` removes physically taken out.

    ``genome`` holds one bool per channel gene (True = keep), numbered as
    :func:`~masksearch.structured.channel_groups` numbers them for ``model``, ``input_shape``
    (one input, no batch dimension) and ``ignored``. ``model`` is not changed. The copy is
    returned in eval mode; its outputs equal those of :func:`masked` with the same arguments.
    Raises :class:`~masksearch.mask.MaskError` (a ``ValueError``) for a genome of the wrong
    length, with values other than 0/1, or that removes every channel of a group.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    pruned = copy.deepcopy(model).eval()
    # the table refuses the layers whose zeroing is not a removal (grouped convs, ...) and
    # numbers the genes; the graph it was traced from prunes the copy
    table, graph, named = traced_table(pruned, input_shape, ignored)
    keep = _check_genome(genome, table.n_genes)
    _check_groups_kept(keep, table.groups)
    start = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Torch-Pruning warns about layers it then handles
        for info, group in named:
            drop = np.flatnonzero(~keep[start : start + info.channels]).tolist()
            start += info.channels
            if drop:
                # the stored group holds every channel; ask the graph for the dropped ones only
                root = group.items[0].dep
                graph.get_pruning_group(root.target.module, root.handler, idxs=drop).prune()
    return pruned


def masked(
    model: nn.Module,
    genome: np.ndarray | torch.Tensor | Sequence[int],
    input_shape: Sequence[int],
    *,
    ignored: Sequence[str] | None = None,
) -> nn.Module:
    """A copy of ``model``, in eval mode, with the weights of the removed channels zeroed.

    The model a search evaluates for ``genome``: same size as ``model``, same outputs as
    :func:`shrink`. A genome that empties a group is allowed here (the zeros are still well
    defined) but refused by :func:`shrink`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    result = copy.deepcopy(model).eval()
    table = channel_groups(result, input_shape, ignored)
    keep = _check_genome(genome, table.n_genes)
    flat = np.ones(table.layout.n_total, dtype=bool)
    for gene in np.flatnonzero(~keep):
        flat[table.positions_of(int(gene))] = False
    Mask.from_flat(table.layout, flat).apply(result)
    return result


def _example(module: nn.Module, input_shape: Sequence[int], batch: int) -> torch.Tensor:
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(
            f"input_shape must be the shape of one input without the batch dimension, e.g. "
            f"(3, 32, 32); got {tuple(input_shape)}"
        )
    floats = [p.dtype for p in module.parameters() if p.is_floating_point()]
    return torch.randn((batch, *shape), dtype=floats[0] if floats else torch.float32)


def _export(
    module: nn.Module, input_shape: Sequence[int], batch_size: int | None
) -> torch.export.ExportedProgram:
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
        raise ValueError(
            f"batch_size must be a positive int, or None for any batch size; got {batch_size!r}"
        )
    # a CPU copy in eval mode: the file then loads on any machine, and the caller's module
    # keeps its device and mode
    source = copy.deepcopy(module).to("cpu").eval()
    # an example batch of 1 would be specialised to the constant 1, so a dynamic one uses 2
    example = _example(source, input_shape, 2 if batch_size is None else int(batch_size))
    dynamic = None if batch_size is not None else ({0: torch.export.Dim("batch", min=1)},)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.export(source, (example,), dynamic_shapes=dynamic)
    except Exception as error:  # export runs the user's forward; say what was exported
        hint = "" if batch_size is not None else ", or pass batch_size=N to export one batch size"
        raise RuntimeError(
            f"torch.export could not export {type(module).__name__} for inputs of shape "
            f"{tuple(example.shape)} ({type(error).__name__}: {str(error).strip()[:500]}); "
            f"check input_shape{hint}"
        ) from error


def save_structured(
    module: nn.Module,
    path: str | os.PathLike[str],
    input_shape: Sequence[int],
    *,
    batch_size: int | None = None,
) -> Path:
    """Write ``module`` as a ``torch.export`` program (use the ``.pt2`` suffix) at ``path``.

    The program computes ``module``'s eval-mode forward on CPU for inputs of ``input_shape``
    (no batch dimension) and any batch size, or only ``batch_size`` if one is given. It is
    written atomically (a crash never leaves half a file) and needs neither masksearch nor the
    model's code to load: ``torch.export.load(path).module()``. The loaded module is already
    in inference mode and refuses ``.eval()``/``.train()`` (a torch.export limit); to run it
    on a GPU, ``torch.export.passes.move_to_device_pass(torch.export.load(path), "cuda")``
    moves the whole program. Returns the path written.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch nn.Module, got {type(module).__name__}")
    program = _export(module, input_shape, batch_size)
    return atomic_write(path, lambda file: torch.export.save(program, file))


def load_structured(path: str | os.PathLike[str]) -> nn.Module:
    """The module :func:`save_structured` wrote; without masksearch the same is::

        import torch
        model = torch.export.load("pruned.pt2").module()

    It computes the eval-mode forward already; do not call ``.eval()`` on it (torch refuses).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no exported model at {path}: write one with save_structured")
    try:
        program = torch.export.load(path)
    except Exception as error:  # torch's own message does not say what it expected
        raise ValueError(
            f"{path} is not a torch.export program ({type(error).__name__}: {error}); "
            "write one with save_structured"
        ) from error
    return program.module()
