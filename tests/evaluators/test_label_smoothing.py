"""Every evaluator's label-smoothed loss against the formula computed by hand.

The loss with smoothing ε is ``(1 − ε)·(−log p_label) + ε·mean_k(−log p_k)``; the reference
below computes it in float64 from a masked copy of the model (``Mask.apply``), independently of
every evaluator's own path (torch's ``label_smoothing``, the batched sum, the compiled kernel).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from masksearch.evaluators import (
    BatchedEvaluator,
    IncrementalEvaluator,
    PlainEvaluator,
    PrefixCacheEvaluator,
    RepairedEvaluator,
    SurrogateEvaluator,
    make_evaluator,
)
from masksearch.mask import Layout, Mask

from .conftest import mutate, random_masks

SMOOTHING = 0.1


def smoothed_losses(model, split, layout, masks, smoothing):
    """Mean smoothed cross-entropy of each mask, in float64, by the formula."""
    out = []
    for flat in masks:
        masked = Mask.from_flat(layout, flat).apply(_copy(model)).double()
        with torch.no_grad():
            log_p = torch.log_softmax(masked(split.x.double()), dim=1)
        label = -log_p.gather(1, split.y.view(-1, 1)).squeeze(1)
        uniform = -log_p.mean(dim=1)
        out.append(float(((1 - smoothing) * label + smoothing * uniform).mean()))
    return np.array(out)


def _copy(model):
    import copy

    return copy.deepcopy(model)


@pytest.mark.parametrize("kind", ["plain", "batched", "prefix", "incremental"])
def test_every_exact_evaluator_scores_the_smoothed_loss(kind, lenet300, mnist_like):
    layout = Layout.of(lenet300)
    masks = random_masks(layout, 4, np.random.default_rng(0))
    evaluator = make_evaluator(lenet300, mnist_like, layout, kind=kind, label_smoothing=SMOOTHING)
    assert evaluator.label_smoothing == SMOOTHING
    result = evaluator(masks)
    expected = smoothed_losses(lenet300, mnist_like, layout, masks, SMOOTHING)
    np.testing.assert_allclose(result["loss"], expected, rtol=0, atol=2e-6)
    # smoothing changes the loss (by far more than the tolerance: the check above would catch
    # an evaluator that ignored it), not the predictions
    plain = PlainEvaluator(lenet300, mnist_like, layout)(masks)
    np.testing.assert_array_equal(result["error"], plain["error"])
    assert np.abs(result["loss"] - plain["loss"]).max() > 1e-3


def test_incremental_children_score_the_smoothed_loss(lenet300, mnist_like):
    """The compiled update of children from cached parents, not only the full pass."""
    layout = Layout.of(lenet300)
    rng = np.random.default_rng(1)
    incremental = IncrementalEvaluator(lenet300, mnist_like, layout, label_smoothing=SMOOTHING)
    population = random_masks(layout, 4, rng)
    incremental(population)
    children = np.stack([mutate(parent, 5, rng) for parent in population])
    result = incremental(children)
    assert incremental.stats["incremental"] >= len(children)
    expected = smoothed_losses(lenet300, mnist_like, layout, children, SMOOTHING)
    np.testing.assert_allclose(result["loss"], expected, rtol=0, atol=2e-6)


def test_a_restored_cache_keeps_its_smoothing(lenet300, mnist_like):
    layout = Layout.of(lenet300)
    masks = random_masks(layout, 2, np.random.default_rng(2))
    smoothed = IncrementalEvaluator(lenet300, mnist_like, layout, label_smoothing=SMOOTHING)
    smoothed(masks)
    state = smoothed.state_dict()
    with pytest.raises(ValueError, match="label_smoothing"):
        IncrementalEvaluator(lenet300, mnist_like, layout).load_state_dict(state)
    restored = IncrementalEvaluator(lenet300, mnist_like, layout, label_smoothing=SMOOTHING)
    restored.load_state_dict(state)
    np.testing.assert_array_equal(restored(masks)["loss"], smoothed(masks)["loss"])


def test_repaired_scores_smoothed_after_plain_steps(lenet300, mnist_like):
    layout = Layout.of(lenet300)
    masks = random_masks(layout, 2, np.random.default_rng(3))
    smoothed = RepairedEvaluator(
        lenet300, mnist_like, layout, mnist_like, steps=0, label_smoothing=SMOOTHING
    )
    expected = smoothed_losses(lenet300, mnist_like, layout, masks, SMOOTHING)
    np.testing.assert_allclose(smoothed(masks)["loss"], expected, rtol=0, atol=2e-6)


def test_the_surrogate_expands_the_smoothed_loss(lenet300, mnist_like):
    layout = Layout.of(lenet300)
    anchor = random_masks(layout, 1, np.random.default_rng(4))[0]
    surrogate = SurrogateEvaluator(
        lenet300, mnist_like, layout, n_samples=8, anchor=anchor, label_smoothing=SMOOTHING
    )
    expected = smoothed_losses(lenet300, mnist_like, layout, anchor[None], SMOOTHING)
    assert surrogate.base_loss == pytest.approx(expected[0], abs=2e-6)
    # at its anchor the quadratic predicts the anchor's own loss
    assert surrogate(anchor[None])["loss"][0] == pytest.approx(expected[0], abs=2e-6)


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, float("nan")])
def test_a_smoothing_outside_zero_to_one_is_refused(value, lenet300, mnist_like):
    layout = Layout.of(lenet300)
    for cls in (PlainEvaluator, BatchedEvaluator, PrefixCacheEvaluator, IncrementalEvaluator):
        with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
            cls(lenet300, mnist_like, layout, label_smoothing=value)
    with pytest.raises(TypeError, match="label_smoothing"):
        PlainEvaluator(lenet300, mnist_like, layout, label_smoothing="0.1")
