"""Channel dependency groups: which parameters one removed channel takes with it.

Removing output channel j of a convolution is only a real removal when everything coupled to
it goes too: its batch-norm entry, the input channel j of every consumer, and, across a
residual add or a depthwise convolution, the same channel of every other layer that writes
into that tensor. Torch-Pruning's :class:`~torch_pruning.DependencyGraph` traces the model and
finds these groups; this module turns each group into a plain table — for every channel (a
*gene*), the flat positions in a :class:`~masksearch.mask.Layout` it zeroes — so that an
encoding or an evaluator never needs the graph again, and checks that zeroing those positions
computes exactly what physically removing the channel computes.

Zeroing is exact because every removed channel's producers (conv/linear rows and biases,
batch-norm scale and shift) output 0 and every consumer ignores it (its input columns are 0),
whatever sits in between. It is not exact for layers whose output mixes channels in a way
zeros do not cancel (normalisation over channels, grouped convolutions that are not
depthwise); those are refused by name.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from masksearch.mask import Layout, MaskError

__all__ = [
    "SUPPORTED_LAYERS",
    "ChannelGroup",
    "GroupTable",
    "channel_groups",
    "group_layout",
    "trace_groups",
    "traced_table",
]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCH_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_NOTHING = np.zeros(0, dtype=np.int64)
SUPPORTED_LAYERS = (
    "Linear, Conv1d/2d/3d (ungrouped or depthwise), BatchNorm1d/2d/3d (affine), PReLU and "
    "layers without parameters (activations, pooling, flatten, residual adds, concatenation)"
)


@dataclass(frozen=True)
class ChannelGroup:
    """One dependency group: ``channels`` genes that each remove one coupled channel."""

    root: str  # the layer whose output channels the group is named after
    channels: int
    members: tuple[str, ...]  # "layer:out" / "layer:in", in Torch-Pruning's order


@dataclass(frozen=True)
class GroupTable:
    """Per gene, the flat layout positions its removal zeroes (CSR: ``pointers``, ``positions``).

    Genes are numbered group by group: gene ``offsets[g] + c`` is channel ``c`` of group ``g``.
    ``layer_groups`` says, for every Linear/Conv layer, which group sets its input and its
    output width (-1: fixed), which is all a latency model needs.
    """

    layout: Layout
    groups: tuple[ChannelGroup, ...]
    offsets: np.ndarray  # (n_groups + 1,) first gene of each group
    pointers: np.ndarray  # (n_genes + 1,)
    positions: np.ndarray  # flat positions, gene by gene
    layer_groups: dict[str, tuple[int, int]]
    #: layers whose outputs are never removed (the classifier by default)
    ignored: tuple[str, ...] = ()

    @property
    def n_genes(self) -> int:
        return int(self.offsets[-1])

    def gene_group(self) -> np.ndarray:
        """``(n_genes,)`` the group of every gene."""
        return np.repeat(np.arange(len(self.groups)), np.diff(self.offsets))

    def positions_of(self, gene: int) -> np.ndarray:
        return self.positions[self.pointers[gene] : self.pointers[gene + 1]]


def _example(model: nn.Module, input_shape: Sequence[int]) -> torch.Tensor:
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(
            f"input_shape must be the shape of one input without the batch dimension, e.g. "
            f"(1, 28, 28); got {tuple(input_shape)}"
        )
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    return torch.zeros((1, *shape), device=device)


def _output_layers(model: nn.Module, example: torch.Tensor) -> list[nn.Module]:
    """The last Linear/Conv layer a forward pass runs: its outputs are the classes."""
    order: list[nn.Module] = []
    handles = [
        module.register_forward_hook(lambda m, _i, _o: order.append(m))
        for module in model.modules()
        if isinstance(module, (nn.Linear, *_CONV))
    ]
    try:
        with torch.no_grad():
            model(example)
    except Exception as error:  # the user's forward: say which input it was given
        raise MaskError(
            f"could not trace the channel dependencies of {type(model).__name__}: its forward "
            f"pass fails on an input of shape {tuple(example.shape)} ({type(error).__name__}: "
            f"{error}); check input_shape (one input's shape, without the batch dimension)"
        ) from error
    finally:
        for handle in handles:
            handle.remove()
    return order[-1:]


def trace_groups(
    model: nn.Module, input_shape: Sequence[int], ignored: Sequence[str] | None = None
) -> tuple[object, list[tuple[ChannelGroup, object]]]:
    """Torch-Pruning's dependency graph of ``model`` and its prunable groups, named.

    ``ignored`` names layers whose output channels are never removed; by default the last
    Linear/Conv layer the forward pass runs (the classifier). Groups come in Torch-Pruning's
    order, which depends only on the model and the input shape.
    """
    graph, named, _ = _traced(model, input_shape, ignored)
    return graph, named


def _traced(
    model: nn.Module, input_shape: Sequence[int], ignored: Sequence[str] | None
) -> tuple[object, list[tuple[ChannelGroup, object]], tuple[str, ...]]:
    """:func:`trace_groups`, plus the names of the ignored layers (the default resolved)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    example = _example(model, input_shape)
    names = dict(model.named_modules())
    # eval mode before any forward pass: training mode would update batch-norm statistics
    was_training = model.training
    model.eval()
    try:
        # Torch-Pruning traces through autograd, which a caller's no_grad() would switch off
        with torch.enable_grad():
            return _trace(model, example, names, ignored)
    finally:
        model.train(was_training)


def _trace(
    model: nn.Module,
    example: torch.Tensor,
    names: dict[str, nn.Module],
    ignored: Sequence[str] | None,
) -> tuple[object, list[tuple[ChannelGroup, object]], tuple[str, ...]]:
    import torch_pruning as tp

    if ignored is None:
        ignored_modules = _output_layers(model, example)
    else:
        unknown = [name for name in ignored if name not in names]
        if unknown:
            raise MaskError(
                f"ignored layer {unknown[0]!r} is not a module of the model; choose from "
                f"{[n for n, m in names.items() if isinstance(m, (nn.Linear, *_CONV))]}"
            )
        ignored_modules = [names[name] for name in ignored]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tp warns about things it then handles
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
            found = list(
                graph.get_all_groups(
                    ignored_layers=ignored_modules, root_module_types=[*_CONV, nn.Linear]
                )
            )
    except Exception as error:  # tracing runs the user's forward; say where it failed
        raise MaskError(
            f"could not trace the channel dependencies of {type(model).__name__} with an input "
            f"of shape {tuple(example.shape)} ({type(error).__name__}: {error}); check "
            "input_shape, or use the 'weights' or 'levels' encoding"
        ) from error
    module_names = {module: name for name, module in names.items()}
    named = []
    for group in found:
        root_item = group.items[0]
        root = module_names.get(root_item.dep.target.module, "?")
        members = tuple(
            f"{module_names[item.dep.target.module]}:"
            f"{'out' if graph.is_out_channel_pruning_fn(item.dep.handler) else 'in'}"
            for item in group.items
            if item.dep.target.module in module_names
        )
        named.append((ChannelGroup(root, len(root_item.idxs), members), group))
    if not named:
        raise MaskError(
            f"{type(model).__name__} has no channel that can be removed: every Linear/Conv "
            "output is either the model's output or an ignored layer"
        )
    return graph, named, tuple(module_names[module] for module in ignored_modules)


def _positions(
    module: nn.Module, name: str, out: bool, index: int, layout: Layout, offsets: dict[str, int]
) -> np.ndarray:
    """Flat positions of channel ``index`` of ``module`` (its output or input side)."""

    def rows(param: str, channel: int) -> np.ndarray:
        key = f"{name}.{param}" if name else param
        tensor = getattr(module, param)
        per_row = int(np.prod(tensor.shape[1:], dtype=np.int64))
        start = offsets[key] + channel * per_row
        return np.arange(start, start + per_row, dtype=np.int64)

    def columns(param: str, channel: int) -> np.ndarray:
        key = f"{name}.{param}" if name else param
        tensor = getattr(module, param)
        n_rows, n_cols = tensor.shape[0], tensor.shape[1]
        per = int(np.prod(tensor.shape[2:], dtype=np.int64))
        base = offsets[key] + channel * per
        starts = base + np.arange(n_rows, dtype=np.int64)[:, None] * n_cols * per
        return (starts + np.arange(per, dtype=np.int64)[None, :]).reshape(-1)

    if isinstance(module, (*_CONV, nn.Linear)):
        groups = getattr(module, "groups", 1)
        depthwise = groups > 1 and groups == module.in_channels == module.out_channels
        if groups > 1 and not depthwise:
            raise MaskError(
                f"layer {name!r} is a grouped convolution (groups={groups}, "
                f"{module.in_channels} → {module.out_channels} channels): removing one of its "
                "channels is not a channel removal Torch-Pruning performs exactly. Supported: "
                f"{SUPPORTED_LAYERS}. Add it to `ignored` together with its producers, or use "
                "the 'weights' or 'levels' encoding"
            )
        if out or depthwise:
            found = [rows("weight", index)]
            if module.bias is not None:
                found.append(rows("bias", index))
            return np.concatenate(found)
        return columns("weight", index)
    if isinstance(module, _BATCH_NORM):
        if not module.affine:
            raise MaskError(
                f"layer {name!r} is a BatchNorm without affine parameters: a removed channel "
                f"cannot be zeroed through it. Supported: {SUPPORTED_LAYERS}"
            )
        return np.concatenate([rows("weight", index), rows("bias", index)])
    if isinstance(module, nn.PReLU):
        return rows("weight", index) if module.num_parameters > 1 else _NOTHING
    if next(module.parameters(recurse=False), None) is None:
        return _NOTHING
    raise MaskError(
        f"layer {name!r} ({type(module).__name__}) sits in a channel dependency group, and "
        f"zeroing a channel through it is not the same as removing it. Supported: "
        f"{SUPPORTED_LAYERS}. Add the layers that feed it to `ignored`, or use the 'weights' "
        "or 'levels' encoding"
    )


def group_layout(model: nn.Module) -> Layout:
    """Every Linear/Conv weight and bias and every batch-norm/PReLU parameter: what a channel
    removal can zero, so that a mask's density is the fraction of these parameters kept."""
    names = []
    for module_name, module in model.named_modules():
        if isinstance(module, (*_CONV, nn.Linear, *_BATCH_NORM, nn.PReLU)):
            prefix = f"{module_name}." if module_name else ""
            names += [prefix + p for p, _ in module.named_parameters(recurse=False)]
    if not names:
        raise MaskError(
            f"{type(model).__name__} has nothing to prune: it has no Linear or Conv layer"
        )
    return Layout.of(model, names)


def channel_groups(
    model: nn.Module, input_shape: Sequence[int], ignored: Sequence[str] | None = None
) -> GroupTable:
    """The :class:`GroupTable` of ``model`` for inputs of ``input_shape`` (no batch dim)."""
    return traced_table(model, input_shape, ignored)[0]


def traced_table(
    model: nn.Module, input_shape: Sequence[int], ignored: Sequence[str] | None = None
) -> tuple[GroupTable, object, list[tuple[ChannelGroup, object]]]:
    """:func:`channel_groups` with the graph and groups it was built from (one trace), for a
    caller that goes on to prune ``model`` with them."""
    graph, named, ignored_names = _traced(model, input_shape, ignored)
    layout = group_layout(model)
    offsets = dict(zip(layout.names, layout.offsets[:-1], strict=True))
    modules = dict(model.named_modules())
    module_names = {module: name for name, module in modules.items()}
    gene_offsets = np.concatenate([[0], np.cumsum([g.channels for g, _ in named])]).astype(np.int64)
    per_gene: list[list[np.ndarray]] = [[] for _ in range(int(gene_offsets[-1]))]
    layer_groups: dict[str, list[int]] = {
        name: [-1, -1] for name, m in modules.items() if isinstance(m, (*_CONV, nn.Linear))
    }
    for number, (_, group) in enumerate(named):
        for item in group.items:
            module = item.dep.target.module
            if module not in module_names:
                continue  # Torch-Pruning's own operators (add, flatten, concat) hold nothing
            name = module_names[module]
            out = graph.is_out_channel_pruning_fn(item.dep.handler)
            if name in layer_groups:
                layer_groups[name][1 if out else 0] = number
                if getattr(module, "groups", 1) > 1:
                    layer_groups[name] = [number, number]
            for index, root_index in zip(item.idxs, item.root_idxs, strict=True):
                gene = int(gene_offsets[number]) + int(root_index)
                per_gene[gene].append(_positions(module, name, out, int(index), layout, offsets))
    unique = [np.unique(np.concatenate([_NOTHING, *p])) for p in per_gene]
    pointers = np.concatenate([[0], np.cumsum([u.size for u in unique])]).astype(np.int64)
    table = GroupTable(
        layout=layout,
        groups=tuple(g for g, _ in named),
        offsets=gene_offsets,
        pointers=pointers,
        positions=np.concatenate(unique) if unique else np.zeros(0, dtype=np.int64),
        layer_groups={k: (v[0], v[1]) for k, v in layer_groups.items()},
        ignored=ignored_names,
    )
    return table, graph, named
