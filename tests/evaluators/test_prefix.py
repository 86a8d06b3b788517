"""PrefixCacheEvaluator: resuming from cached leading activations changes no result."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from masksearch.evaluators import PlainEvaluator, PrefixCacheEvaluator, UnsupportedModelError
from masksearch.mask import Layout

from .conftest import edge_masks, random_masks, synthetic_split, tiny_convnet


def _family(layout: Layout, rng: np.random.Generator) -> np.ndarray:
    """Masks that share their first layers in every combination: parents and children."""
    parents = random_masks(layout, 3, rng)
    rows = [parents[0], parents[1], parents[0]]  # an exact repeat hits the deepest point
    for name in layout.names:  # change one layer at a time, front to back
        child = parents[0].copy()
        part = layout.slice(name)
        child[part] = parents[2][part]
        rows.append(child)
    rows.extend(edge_masks(layout))
    rows.append(parents[0])  # after the edge masks evicted nothing (capacity allows it)
    return np.stack(rows)


def test_equals_the_plain_forward_pass_bit_for_bit(convnet, conv_split):
    layout = Layout.of(convnet)
    masks = _family(layout, np.random.default_rng(0))
    reference = PlainEvaluator(convnet, conv_split, layout)(masks)
    evaluator = PrefixCacheEvaluator(convnet, conv_split, layout)
    result = evaluator(masks)
    np.testing.assert_array_equal(result["loss"], reference["loss"])
    np.testing.assert_array_equal(result["error"], reference["error"])
    assert sum(evaluator.hits.values()) > 0, "repeated leading masks must resume from the cache"
    # the cache points are the inputs of conv2 and fc (the first prunable layer has none)
    names = [name for name, _ in convnet.named_children()]
    assert sorted(names[i] for i in evaluator.hits) == ["conv2", "fc"]


def test_batches_and_a_second_call_agree(convnet, conv_split):
    layout = Layout.of(convnet)
    masks = _family(layout, np.random.default_rng(1))
    whole = PrefixCacheEvaluator(convnet, conv_split, layout)
    batched = PrefixCacheEvaluator(convnet, conv_split, layout, batch_size=7)
    first = whole(masks)
    again = whole(masks[::-1])
    np.testing.assert_array_equal(again["loss"], first["loss"][::-1])
    np.testing.assert_allclose(batched(masks)["loss"], first["loss"], rtol=1e-6)


def test_hits_resume_at_the_deepest_point_whose_leading_masks_repeat(convnet, conv_split):
    layout = Layout.of(convnet)
    evaluator = PrefixCacheEvaluator(convnet, conv_split, layout)
    names = [name for name, _ in convnet.named_children()]
    conv2, fc = names.index("conv2"), names.index("fc")
    parent = random_masks(layout, 1, np.random.default_rng(2))[0]
    evaluator(parent[None])
    assert evaluator.hits == {conv2: 0, fc: 0}
    only_fc = parent.copy()
    only_fc[layout.slice("fc.weight")] ^= True
    evaluator(only_fc[None])
    assert evaluator.hits == {conv2: 0, fc: 1}
    only_conv2 = parent.copy()
    only_conv2[layout.slice("conv2.weight")] ^= True
    evaluator(only_conv2[None])
    assert evaluator.hits == {conv2: 1, fc: 1}
    only_conv1 = parent.copy()
    only_conv1[layout.slice("conv1.weight")] ^= True
    evaluator(only_conv1[None])
    assert evaluator.hits == {conv2: 1, fc: 1}


def test_memory_stays_within_the_budget(convnet, conv_split):
    layout = Layout.of(convnet)
    unbounded = PrefixCacheEvaluator(convnet, conv_split, layout)
    masks = random_masks(layout, 12, np.random.default_rng(3))
    unbounded(masks)
    one_each = unbounded.cache_bytes // 12  # every mask stored one entry per point
    budget = 3 * one_each
    bounded = PrefixCacheEvaluator(convnet, conv_split, layout, memory_budget=budget)
    reference = bounded(masks)
    assert 0 < bounded.cache_bytes <= budget
    np.testing.assert_array_equal(reference["loss"], unbounded(masks)["loss"])
    off = PrefixCacheEvaluator(convnet, conv_split, layout, memory_budget=0)
    np.testing.assert_array_equal(off(masks)["loss"], reference["loss"])
    assert off.cache_bytes == 0 and off.hits == {}


def test_an_inplace_relu_cannot_corrupt_the_cache():
    model = nn.Sequential(
        OrderedDict(
            [
                ("fc1", nn.Linear(6, 8)),
                ("relu", nn.ReLU(inplace=True)),
                ("fc2", nn.Linear(8, 5)),
                ("relu2", nn.ReLU(inplace=True)),
                ("fc3", nn.Linear(5, 3)),
            ]
        )
    ).eval()
    split = synthetic_split((6,), 20, classes=3, seed=5)
    layout = Layout.of(model)
    masks = _family(layout, np.random.default_rng(4))
    reference = PlainEvaluator(model, split, layout)(masks)
    evaluator = PrefixCacheEvaluator(model, split, layout)
    np.testing.assert_array_equal(evaluator(masks)["loss"], reference["loss"])
    np.testing.assert_array_equal(evaluator(masks)["loss"], reference["loss"])
    assert model.relu.inplace, "the user's model is left alone"


def test_pickling_drops_the_cached_activations(convnet, conv_split):
    import pickle

    layout = Layout.of(convnet)
    evaluator = PrefixCacheEvaluator(convnet, conv_split, layout)
    masks = random_masks(layout, 4, np.random.default_rng(5))
    expected = evaluator(masks)
    copy = pickle.loads(pickle.dumps(evaluator))
    assert copy.cache_bytes == 0 < evaluator.cache_bytes
    np.testing.assert_array_equal(copy(masks)["loss"], expected["loss"])


def test_models_it_cannot_split_are_refused(conv_split):
    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = tiny_convnet(seed=6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    model = Wrapped()
    assert not PrefixCacheEvaluator.supports(model, Layout.of(model))
    with pytest.raises(UnsupportedModelError, match="nn.Sequential"):
        PrefixCacheEvaluator(model, conv_split, Layout.of(model))
    with pytest.raises(ValueError, match="memory_budget"):
        PrefixCacheEvaluator(
            tiny_convnet(), conv_split, Layout.of(tiny_convnet()), memory_budget=-1
        )
