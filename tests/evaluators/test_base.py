from __future__ import annotations

import numpy as np
import pytest
import torch

from masksearch.evaluators import PlainEvaluator, check_masks
from masksearch.mask import Layout


def test_check_masks_accepts_bool_population(mlp):
    layout = Layout.of(mlp)
    masks = np.asfortranarray(np.ones((3, layout.n_total), dtype=bool))
    checked = check_masks(masks, layout)
    assert checked.shape == (3, layout.n_total)
    assert checked.flags.c_contiguous


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.uint8])
def test_check_masks_rejects_non_bool_dtype(mlp, dtype):
    layout = Layout.of(mlp)
    with pytest.raises(TypeError, match="astype\\(bool\\)"):
        check_masks(np.ones((2, layout.n_total), dtype=dtype), layout)


def test_check_masks_rejects_wrong_shapes(mlp):
    layout = Layout.of(mlp)
    with pytest.raises(ValueError, match=f"\\(P, {layout.n_total}\\)"):
        check_masks(np.ones((2, layout.n_total + 1), dtype=bool), layout)
    with pytest.raises(ValueError, match="masks\\[None, :\\]"):
        check_masks(np.ones(layout.n_total, dtype=bool), layout)
    with pytest.raises(TypeError, match="numpy array"):
        check_masks([[True] * layout.n_total], layout)


def test_empty_population_gives_empty_metrics(mlp, mlp_split):
    evaluator = PlainEvaluator(mlp, mlp_split, Layout.of(mlp))
    result = evaluator(np.zeros((0, evaluator.layout.n_total), dtype=bool))
    assert result["loss"].shape == (0,) and result["error"].shape == (0,)
    assert result["loss"].dtype == np.float64


def test_layout_of_another_model_is_rejected(mlp, mlp_split, lenet300):
    with pytest.raises(ValueError, match="Layout.of\\(model\\)"):
        PlainEvaluator(mlp, mlp_split, Layout.of(lenet300))


def test_data_that_does_not_fit_the_model_is_rejected(mlp, mnist_like):
    with pytest.raises(ValueError, match="does not fit"):
        PlainEvaluator(mlp, mnist_like, Layout.of(mlp))


def test_split_without_tensors_is_rejected(mlp):
    with pytest.raises(TypeError, match="split"):
        PlainEvaluator(mlp, object(), Layout.of(mlp))


def test_counters_count_calls_and_candidates(mlp, mlp_split):
    evaluator = PlainEvaluator(mlp, mlp_split, Layout.of(mlp))
    evaluator(np.ones((2, evaluator.layout.n_total), dtype=bool))
    evaluator(np.ones((3, evaluator.layout.n_total), dtype=bool))
    assert (evaluator.n_calls, evaluator.n_candidates) == (2, 5)


def test_torch_bool_masks_are_accepted(mlp, mlp_split):
    evaluator = PlainEvaluator(mlp, mlp_split, Layout.of(mlp))
    masks = np.random.default_rng(0).random((2, evaluator.layout.n_total)) < 0.5
    from_numpy = evaluator(masks)
    from_torch = evaluator(torch.from_numpy(masks))
    np.testing.assert_array_equal(from_numpy["loss"], from_torch["loss"])
