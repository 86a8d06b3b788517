from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from masksearch.data import Split
from masksearch.evaluators import (
    CachedEvaluator,
    IncrementalEvaluator,
    PlainEvaluator,
    check_masks,
    make_evaluator,
)
from masksearch.evaluators.base import check_packed_masks
from masksearch.mask import Layout

from .conftest import mutate, random_masks


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


def _evaluator(kind, model, split, layout):
    if kind == "cached":
        return CachedEvaluator(IncrementalEvaluator(model, split, layout, cache_size=8))
    return make_evaluator(model, split, layout, kind=kind)


@pytest.mark.parametrize("kind", ["plain", "batched", "incremental", "prefix", "cached"])
def test_packed_masks_score_as_the_bool_masks_do(kind, mlp, mlp_split):
    # the same sequence of populations (children of the last, so the incremental evaluator
    # updates cached parents) given bool and packed to two fresh evaluators: same bits
    layout = Layout.of(mlp)
    rng = np.random.default_rng(3)
    on_bools = _evaluator(kind, mlp, mlp_split, layout)
    on_bits = _evaluator(kind, mlp, mlp_split, layout)
    population = random_masks(layout, 5, rng)
    for generation in range(4):
        expected = on_bools(population)
        got = on_bits.evaluate_packed(np.packbits(population, axis=1))
        assert set(got) == set(expected)
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{kind} {key}")
        n_flips = [1, 7, 60, 3][generation]
        population = np.stack([mutate(parent, n_flips, rng) for parent in population])
    assert (on_bits.n_calls, on_bits.n_candidates) == (4, 20)
    if kind == "incremental":
        assert on_bits.stats == on_bools.stats and on_bits.stats["incremental"] > 0


def test_packed_masks_of_a_layout_that_ends_mid_byte_are_scored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2))
    layout = Layout.of(model)
    assert layout.n_total % 8, "the test needs padding bits"
    split = Split(torch.randn(12, 5), torch.randint(0, 2, (12,)))
    masks = random_masks(layout, 6, np.random.default_rng(0))
    evaluator = IncrementalEvaluator(model, split, layout)
    expected = PlainEvaluator(model, split, layout)(masks)
    got = evaluator.evaluate_packed(np.packbits(masks, axis=1))
    np.testing.assert_allclose(got["loss"], expected["loss"], rtol=0, atol=2e-6)
    np.testing.assert_array_equal(got["error"], expected["error"])


def test_check_packed_masks_names_the_fix():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(5, 3))
    layout = Layout.of(model)
    n_bytes = (layout.n_total + 7) // 8
    good = np.packbits(np.ones((2, layout.n_total), dtype=bool), axis=1)
    checked = check_packed_masks(np.asfortranarray(good), layout)
    assert checked.flags.c_contiguous and checked.shape == (2, n_bytes)
    with pytest.raises(TypeError, match="np.packbits"):
        check_packed_masks(np.ones((2, layout.n_total), dtype=bool), layout)
    with pytest.raises(TypeError, match="uint8"):
        check_packed_masks(good.tolist(), layout)
    with pytest.raises(ValueError, match=f"\\(P, {n_bytes}\\)"):
        check_packed_masks(good[:, :-1], layout)
    with pytest.raises(ValueError, match=f"\\(P, {n_bytes}\\)"):
        check_packed_masks(good[0], layout)
    padded = good.copy()
    padded[:, -1] = 255
    with pytest.raises(ValueError, match="past the last weight"):
        check_packed_masks(padded, layout)


def test_empty_packed_population_gives_empty_metrics(mlp, mlp_split):
    evaluator = PlainEvaluator(mlp, mlp_split, Layout.of(mlp))
    result = evaluator.evaluate_packed(np.zeros((0, evaluator.layout.n_total // 8), np.uint8))
    assert result["loss"].shape == (0,) and evaluator.n_calls == 1
