from __future__ import annotations

import pickle

import numpy as np
import pytest

from masksearch.evaluators import (
    CachedEvaluator,
    Evaluator,
    IncrementalEvaluator,
    PlainEvaluator,
)
from masksearch.evaluators.cache import mask_key
from masksearch.mask import Layout

from .conftest import mutate, random_masks


def test_each_distinct_mask_is_evaluated_once(mlp, mlp_split):
    layout = Layout.of(mlp)
    inner = PlainEvaluator(mlp, mlp_split, layout)
    cached = CachedEvaluator(inner)
    masks = random_masks(layout, 4, np.random.default_rng(0))
    population = masks[[0, 1, 0, 2, 1, 3, 3]]
    result = cached(population)
    assert inner.n_candidates == 4 and inner.n_calls == 1
    expected = PlainEvaluator(mlp, mlp_split, layout)(population)
    np.testing.assert_array_equal(result["loss"], expected["loss"])
    np.testing.assert_array_equal(result["error"], expected["error"])
    again = cached(population[::-1])
    assert inner.n_calls == 1, "a population of known masks must not reach the inner evaluator"
    np.testing.assert_array_equal(again["loss"], expected["loss"][::-1])
    assert (cached.hits, cached.misses, len(cached)) == (10, 4, 4)


def test_state_round_trips_through_pickle(mlp, mlp_split):
    layout = Layout.of(mlp)
    masks = random_masks(layout, 3, np.random.default_rng(1))
    first = CachedEvaluator(PlainEvaluator(mlp, mlp_split, layout))
    expected = first(masks)
    state = pickle.loads(pickle.dumps(first.state_dict()))
    inner = PlainEvaluator(mlp, mlp_split, layout)
    second = CachedEvaluator(inner)
    second.load_state_dict(state)
    np.testing.assert_array_equal(second(masks)["loss"], expected["loss"])
    assert inner.n_candidates == 0


def test_state_holds_the_inner_evaluators_state(mlp, mlp_split):
    # a checkpoint asks only the outermost evaluator: an incremental evaluator's cache (which
    # decides the last bits of later losses) must reach it through the wrapper
    layout = Layout.of(mlp)
    rng = np.random.default_rng(4)
    masks = random_masks(layout, 6, rng)

    def build():
        return CachedEvaluator(IncrementalEvaluator(mlp, mlp_split, layout, cache_size=4))

    first = build()
    first(masks)
    children = np.stack([mutate(mask, 3, rng) for mask in masks])
    first(children)
    state = pickle.loads(pickle.dumps(first.state_dict()))
    assert state["inner"]["format"] == first.inner.state_dict()["format"]
    second = build()
    second.load_state_dict(state)
    assert len(second) == len(first)
    for _ in range(3):
        children = np.stack([mutate(child, 2, rng) for child in children])
        expected, result = first(children), second(children)
        assert np.array_equal(result["loss"], expected["loss"])
        assert np.array_equal(result["error"], expected["error"])
    assert second.inner.stats == first.inner.stats
    # an inner evaluator without state has None there, and a state without it loads
    plain = CachedEvaluator(PlainEvaluator(mlp, mlp_split, layout))
    assert plain.state_dict()["inner"] is None
    older = {key: value for key, value in plain.state_dict().items() if key != "inner"}
    plain.load_state_dict(older)


def test_state_of_another_layout_is_rejected(mlp, mlp_split, lenet300, mnist_like):
    small = CachedEvaluator(PlainEvaluator(mlp, mlp_split, Layout.of(mlp)))
    big = CachedEvaluator(PlainEvaluator(lenet300, mnist_like, Layout.of(lenet300)))
    with pytest.raises(ValueError, match="weights"):
        big.load_state_dict(small.state_dict())
    with pytest.raises(ValueError, match="state_dict"):
        big.load_state_dict({"entries": {}})


class _Screening(Evaluator):
    """Marks every other candidate as not exact, like a surrogate screen."""

    def __init__(self, layout):
        self.layout = layout

    def _evaluate(self, masks):
        exact = np.arange(len(masks)) % 2 == 0
        return {
            "loss": masks.sum(axis=1).astype(float),
            "error": np.zeros(len(masks)),
            "exact": exact,
        }


def test_inexact_results_are_not_stored(mlp):
    layout = Layout.of(mlp)
    inner = _Screening(layout)
    cached = CachedEvaluator(inner)
    masks = random_masks(layout, 4, np.random.default_rng(2))
    cached(masks)
    assert len(cached) == 2
    cached(masks)
    assert inner.n_candidates == 4 + 2


def test_max_entries_drops_the_oldest(mlp, mlp_split):
    layout = Layout.of(mlp)
    cached = CachedEvaluator(PlainEvaluator(mlp, mlp_split, layout), max_entries=2)
    masks = random_masks(layout, 3, np.random.default_rng(3))
    cached(masks)
    assert len(cached) == 2
    assert mask_key(masks[0]) not in cached.entries


def test_mask_key_separates_masks_and_lengths():
    base = np.zeros(16, dtype=bool)
    other = base.copy()
    other[3] = True
    assert mask_key(base) != mask_key(other)
    assert mask_key(base) != mask_key(np.zeros(15, dtype=bool))  # same packed bytes
    assert mask_key(base) == mask_key(base.copy())


def test_packed_masks_share_the_bool_masks_entries(mlp, mlp_split):
    # keys hash the packed bytes either way: a mask scored as bools is a hit when asked packed,
    # and the other way round
    layout = Layout.of(mlp)
    inner = PlainEvaluator(mlp, mlp_split, layout)
    cached = CachedEvaluator(inner)
    masks = random_masks(layout, 4, np.random.default_rng(5))
    first = cached(masks[:2])
    again = cached.evaluate_packed(np.packbits(masks[[1, 0, 2, 2]], axis=1))
    assert inner.n_candidates == 3, "only the one new mask may reach the inner evaluator"
    np.testing.assert_array_equal(again["loss"][:2], first["loss"][::-1])
    assert (cached.hits, cached.misses) == (3, 3)
    cached(masks[[2]])
    assert inner.n_candidates == 3
