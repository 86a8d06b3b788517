from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from masksearch.evaluators import PlainEvaluator, ScreenedEvaluator, SurrogateEvaluator
from masksearch.evaluators.batched import random_subset
from masksearch.mask import Layout

from .conftest import edge_masks, mutate, random_masks


@pytest.fixture(scope="module")
def surrogate(mlp, mlp_split):
    return SurrogateEvaluator(mlp, mlp_split, Layout.of(mlp), n_samples=16, seed=3)


def _formula(surrogate, masks):
    """ΔL = gᵀδw + 1/(2N) Σ_n (g_nᵀδw)² straight from the stored arrays, in numpy."""
    pruned = (~masks).astype(np.float64)
    linear = -(pruned @ surrogate.gw)
    z = -(pruned @ surrogate.hw.astype(np.float64))
    return linear + 0.5 / surrogate.hw.shape[1] * (z**2).sum(axis=1)


def test_stored_gradients_match_autograd(mlp, mlp_split, surrogate):
    layout = Layout.of(mlp)
    model = copy.deepcopy(mlp)
    params = dict(model.named_parameters())
    weights = torch.cat([params[n].detach().reshape(-1) for n in layout.names]).double()

    def flat_gradient(x, y):
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        return torch.cat([params[n].grad.reshape(-1) for n in layout.names]).double()

    mean = flat_gradient(mlp_split.x, mlp_split.y)
    np.testing.assert_allclose(surrogate.gw, (mean * weights).numpy(), rtol=1e-4, atol=1e-7)
    subset = random_subset(mlp_split, 16, seed=3)
    for n in [0, 7, 15]:
        expected = flat_gradient(subset.x[n : n + 1], subset.y[n : n + 1]) * weights
        np.testing.assert_allclose(surrogate.hw[:, n], expected.numpy(), rtol=1e-4, atol=1e-6)
    dense_loss = F.cross_entropy(mlp(mlp_split.x), mlp_split.y).item()
    assert surrogate.base_loss == pytest.approx(dense_loss, rel=1e-5)
    assert surrogate.hw.dtype == np.float32 and surrogate.hw.shape == (layout.n_total, 16)


def test_population_matches_the_formula(mlp, surrogate):
    layout = Layout.of(mlp)
    # dense and sparse masks exercise both summation sides (kept / pruned)
    masks = np.concatenate([random_masks(layout, 6, np.random.default_rng(0)), edge_masks(layout)])
    result = surrogate(masks)
    np.testing.assert_allclose(
        result["loss"] - surrogate.base_loss, _formula(surrogate, masks), rtol=1e-9, atol=1e-9
    )
    assert np.isnan(result["error"]).all()
    assert not result["exact"].any()
    # the dense mask changes nothing
    assert result["loss"][len(masks) - len(edge_masks(layout))] == pytest.approx(
        surrogate.base_loss, abs=1e-9
    )


def test_children_match_from_scratch_evaluation(mlp, surrogate):
    layout = Layout.of(mlp)
    rng = np.random.default_rng(1)
    for parent in random_masks(layout, 2, rng):
        flips = [rng.choice(layout.n_total, k, replace=False) for k in (1, 7, 20, 0)]
        width = max(len(f) for f in flips)
        diffs = np.full((len(flips), width), -1, dtype=np.int64)
        children = np.repeat(parent[None], len(flips), axis=0)
        for row, chosen in enumerate(flips):
            diffs[row, : len(chosen)] = chosen
            children[row, chosen] ^= True
        np.testing.assert_allclose(
            surrogate.children(parent, diffs), surrogate(children)["loss"], rtol=1e-10, atol=1e-10
        )


def test_children_reject_bad_diffs(mlp, surrogate):
    layout = Layout.of(mlp)
    parent = np.ones(layout.n_total, dtype=bool)
    with pytest.raises(ValueError, match="outside"):
        surrogate.children(parent, np.array([[layout.n_total]]))
    with pytest.raises(ValueError, match="2-D integer"):
        surrogate.children(parent, np.array([1.0, 2.0]))


def test_n_samples_is_checked(mlp, mlp_split):
    with pytest.raises(ValueError, match="n_samples"):
        SurrogateEvaluator(mlp, mlp_split, Layout.of(mlp), n_samples=10_000)


def test_screening_evaluates_only_the_best_predicted(mlp, mlp_split, surrogate):
    layout = Layout.of(mlp)
    plain = PlainEvaluator(mlp, mlp_split, layout)
    screened = ScreenedEvaluator(plain, surrogate, keep=0.3)
    rng = np.random.default_rng(2)
    parent = random_masks(layout, 1, rng)[0]
    masks = np.stack([mutate(parent, 30, rng) for _ in range(10)])
    result = screened(masks)
    n_exact = math.ceil(0.3 * 10)
    assert result["exact"].sum() == n_exact == plain.n_candidates
    predicted = surrogate(masks)["loss"]
    assert set(np.flatnonzero(result["exact"])) == set(np.argsort(predicted)[:n_exact])
    exact = plain(masks)
    chosen = result["exact"]
    np.testing.assert_array_equal(result["loss"][chosen], exact["loss"][chosen])
    assert np.isinf(result["loss"][~chosen]).all() and (result["error"][~chosen] == 1.0).all()
    np.testing.assert_allclose(result["predicted_loss"], predicted)
