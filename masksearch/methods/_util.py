"""Small tensor helpers shared by the pruning methods (stable top-k, ranks, allocations)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from masksearch.mask import Mask, top_k_keep

# how a target density is shared out over the layers: by a global magnitude ranking
# (global_counts) or the same fraction everywhere (layer_counts)
ALLOCATIONS = ("global", "layer")


def stable_top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool tensor (shape of ``scores``) keeping the ``k`` highest; ties go to the lower index."""
    flat = scores.detach().reshape(-1).to("cpu", torch.float64)
    return top_k_keep(flat, k).reshape(scores.shape)


def keep_top_per_layer(
    scores: Mapping[str, torch.Tensor], counts: Mapping[str, int]
) -> dict[str, torch.Tensor]:
    """Per tensor, keep exactly ``counts[name]`` entries with the highest score (CPU bools)."""
    return {name: stable_top_k(scores[name], int(counts[name])) for name in scores}


def active_first(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Scores that rank every kept entry above every pruned one, each group by ``values`` (≥ 0).

    Used to shrink or grow a mask: cutting the lowest removes the smallest kept entries, keeping
    more than the current count adds the largest pruned ones.
    """
    values = values.detach().to("cpu", torch.float64)
    offset = float(values.max()) + 1.0 if values.numel() else 1.0
    return torch.where(keep.to("cpu"), values + offset, values)


def global_counts(scores: Mapping[str, torch.Tensor], density: float) -> dict[str, int]:
    """How many entries of each tensor a global top-``density`` selection by ``scores`` keeps."""
    mask = Mask.from_scores(dict(scores), density, scope="global")
    return {name: int(tensor.sum()) for name, tensor in mask.tensors.items()}


def layer_counts(sizes: Mapping[str, int], density: float) -> dict[str, int]:
    """The same fraction of every tensor, rounded to the nearest count and at least one."""
    return {name: max(1, round(density * size)) for name, size in sizes.items()}


def rank_normalize(values: torch.Tensor) -> torch.Tensor:
    """Ranks scaled to [0, 1] (0 = smallest), ties sharing their average rank; same shape."""
    flat = values.detach().reshape(-1).to("cpu", torch.float64)
    n = flat.numel()
    if n <= 1:
        return torch.full(values.shape, 0.5, dtype=torch.float64)
    ordered, order = torch.sort(flat, stable=True)
    # runs of equal values in sorted order share the mean of their positions
    starts = torch.ones(n, dtype=torch.bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    group = torch.cumsum(starts, 0) - 1
    positions = torch.arange(n, dtype=torch.float64)
    n_groups = int(group[-1]) + 1
    sums = torch.zeros(n_groups, dtype=torch.float64).index_add_(0, group, positions)
    counts = torch.bincount(group, minlength=n_groups).to(torch.float64)
    ranks = torch.empty(n, dtype=torch.float64)
    ranks[order] = (sums / counts)[group]
    return (ranks / (n - 1)).reshape(values.shape)


def to_mask(tensors: Mapping[str, torch.Tensor]) -> Mask:
    """A :class:`Mask` of ``tensors`` (name -> bool, possibly on a GPU) on the CPU."""
    return Mask({name: tensor.detach().to("cpu") for name, tensor in tensors.items()})
