from __future__ import annotations

import math

import numpy as np
import pytest

from masksearch import models
from masksearch.evaluators import BatchedEvaluator, PlainEvaluator, SuccessiveHalvingEvaluator
from masksearch.evaluators.batched import random_subset
from masksearch.mask import Layout

from .conftest import edge_masks, random_masks, synthetic_split


def _population(layout, seed=0):
    return np.concatenate(
        [random_masks(layout, 5, np.random.default_rng(seed)), edge_masks(layout)]
    )


@pytest.mark.parametrize(
    ("model_name", "split_name"),
    [("mlp", "mlp_split"), ("convnet", "conv_split"), ("lenet300", "mnist_like")],
)
def test_batched_matches_plain(model_name, split_name, request):
    model = request.getfixturevalue(model_name)
    split = request.getfixturevalue(split_name)
    layout = Layout.of(model)
    masks = _population(layout)
    expected = PlainEvaluator(model, split, layout)(masks)
    # chunks of 3 candidates: several passes, the last one partial
    result = BatchedEvaluator(model, split, layout, chunk_size=3)(masks)
    np.testing.assert_allclose(result["loss"], expected["loss"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(result["error"], expected["error"])


def test_lenet5_batched_matches_plain():
    model = models.lenet5(seed=0).eval()
    split = synthetic_split((1, 28, 28), 16, seed=7)
    layout = Layout.of(model)
    masks = random_masks(layout, 4, np.random.default_rng(2))
    expected = PlainEvaluator(model, split, layout)(masks)
    result = BatchedEvaluator(model, split, layout)(masks)
    np.testing.assert_allclose(result["loss"], expected["loss"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(result["error"], expected["error"])


def test_tiny_memory_budget_splits_samples_and_candidates(mlp, mlp_split):
    layout = Layout.of(mlp)
    evaluator = BatchedEvaluator(mlp, mlp_split, layout, memory_budget=200_000)
    assert evaluator.batch_size < len(mlp_split)
    assert evaluator.chunk_size >= 1
    masks = _population(layout, seed=3)
    expected = PlainEvaluator(mlp, mlp_split, layout)(masks)
    result = evaluator(masks)
    np.testing.assert_allclose(result["loss"], expected["loss"], rtol=1e-5, atol=1e-6)


def test_chunk_size_grows_with_the_budget(lenet300, mnist_like):
    layout = Layout.of(lenet300)
    small = BatchedEvaluator(lenet300, mnist_like, layout, memory_budget=2**24)
    large = BatchedEvaluator(lenet300, mnist_like, layout, memory_budget=2**28)
    assert small.chunk_size < large.chunk_size


@pytest.mark.parametrize("bad", [{"chunk_size": 0}, {"memory_budget": -1}, {"chunk_size": 1.5}])
def test_bad_options_are_rejected(mlp, mlp_split, bad):
    with pytest.raises((TypeError, ValueError)):
        BatchedEvaluator(mlp, mlp_split, Layout.of(mlp), **bad)


def test_random_subset_is_deterministic_and_without_repeats(mlp_split):
    first = random_subset(mlp_split, 20, seed=1)
    again = random_subset(mlp_split, 20, seed=1)
    assert len(first.y) == 20
    assert (first.x == again.x).all()
    rows = {tuple(row.flatten().tolist()) for row in first.x}
    assert len(rows) == 20
    with pytest.raises(ValueError, match="subsample"):
        random_subset(mlp_split, len(mlp_split.y) + 1)


def test_successive_halving_promotes_the_best_on_the_subsample(mlp, mlp_split):
    layout = Layout.of(mlp)
    small_split = random_subset(mlp_split, 24, seed=0)
    low = PlainEvaluator(mlp, small_split, layout)
    high = PlainEvaluator(mlp, mlp_split, layout)
    evaluator = SuccessiveHalvingEvaluator([low, high], keep=0.25)
    masks = random_masks(layout, 10, np.random.default_rng(4))
    result = evaluator(masks)
    on_low, on_high = low(masks), high(masks)
    promoted = result["fidelity"] == 1.0
    assert promoted.sum() == math.ceil(0.25 * 10)
    # the promoted ones are the best by subsample loss
    best = np.argsort(on_low["loss"], kind="stable")[: promoted.sum()]
    assert set(np.flatnonzero(promoted)) == set(best)
    np.testing.assert_allclose(result["loss"][promoted], on_high["loss"][promoted], rtol=1e-12)
    np.testing.assert_allclose(result["loss"][~promoted], on_low["loss"][~promoted], rtol=1e-12)
    np.testing.assert_allclose(result["fidelity"][~promoted], 24 / len(mlp_split.y))


def test_successive_halving_needs_growing_rungs(mlp, mlp_split):
    layout = Layout.of(mlp)
    full = PlainEvaluator(mlp, mlp_split, layout)
    small = PlainEvaluator(mlp, random_subset(mlp_split, 10), layout)
    with pytest.raises(ValueError, match="growing"):
        SuccessiveHalvingEvaluator([full, small])
    with pytest.raises(ValueError, match="two rungs"):
        SuccessiveHalvingEvaluator([full])


def test_evaluators_survive_pickling(mlp, mlp_split):
    import pickle

    layout = Layout.of(mlp)
    masks = random_masks(layout, 3, np.random.default_rng(5))
    for evaluator in (
        PlainEvaluator(mlp, mlp_split, layout),
        BatchedEvaluator(mlp, mlp_split, layout),
    ):
        clone = pickle.loads(pickle.dumps(evaluator))
        np.testing.assert_array_equal(clone(masks)["loss"], evaluator(masks)["loss"])
