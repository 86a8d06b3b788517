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
    return SurrogateEvaluator(
        mlp, mlp_split, Layout.of(mlp), n_samples=16, seed=3, precision="float32"
    )


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
        # float64 sums in another order: within 1e-10 on an AMD EPYC, 1.6e-10 relative on an
        # Intel Xeon; a wrong gene would move the loss by ~1e-3 (a single flip's effect here)
        np.testing.assert_allclose(
            surrogate.children(parent, diffs), surrogate(children)["loss"], rtol=1e-8, atol=1e-8
        )


@pytest.fixture(scope="module")
def odd_surrogate(mlp, mlp_split):
    """N = 13: rows of ``hw`` that are no whole number of SIMD lanes or cache lines."""
    return SurrogateEvaluator(
        mlp, mlp_split, Layout.of(mlp), n_samples=13, seed=4, precision="float32"
    )


def _flipped(parent, diffs):
    """The children's full masks: row ``c`` flips the genes of ``diffs[c]`` (-1 = padding)."""
    children = np.repeat(parent[None], len(diffs), axis=0)
    for child, genes in zip(children, diffs, strict=True):
        child[genes[genes >= 0]] ^= True
    return children


@pytest.fixture(scope="module")
def half(mlp, mlp_split):
    """The ``surrogate`` fixture stored in float16."""
    return SurrogateEvaluator(
        mlp, mlp_split, Layout.of(mlp), n_samples=16, seed=3, precision="float16"
    )


@pytest.fixture(scope="module")
def odd_half(mlp, mlp_split):
    """N = 13 in float16: 26-byte rows, which start mid cache line."""
    return SurrogateEvaluator(
        mlp, mlp_split, Layout.of(mlp), n_samples=13, seed=4, precision="float16"
    )


@pytest.mark.parametrize("which", ["surrogate", "odd_surrogate", "half", "odd_half"])
def test_children_equal_the_prediction_of_the_full_masks(request, which, mlp):
    evaluator = request.getfixturevalue(which)
    layout = Layout.of(mlp)
    rng = np.random.default_rng(12)
    genes = [rng.choice(layout.n_total, k, replace=False) for k in (1, 20, 200, 200, 20, 1)]
    # a gene flipped in every layer: each layer's first, then each layer's last weight
    genes.append(np.array([layout.slice(name).start for name in layout.names]))
    genes.append(np.array([layout.slice(name).stop - 1 for name in layout.names]))
    genes.append(np.array([], dtype=np.int64))  # all padding: the parent itself
    width = 203  # wider than any child, so padding also sits between genes
    diffs = np.full((len(genes), width), -1, dtype=np.int64)
    for row, chosen in zip(diffs, genes, strict=True):
        row[np.sort(rng.choice(width, len(chosen), replace=False))] = chosen
    parents = [
        random_masks(layout, 1, rng)[0],
        np.ones(layout.n_total, dtype=bool),
        np.zeros(layout.n_total, dtype=bool),
    ]
    for parent in parents:
        expected = evaluator(_flipped(parent, diffs))["loss"]
        parent_loss = evaluator(parent[None])["loss"][0]
        scale = np.abs(expected - parent_loss).max()
        assert scale > 0
        for dtype in (np.int64, np.int32):
            np.testing.assert_allclose(
                evaluator.children(parent, diffs.astype(dtype)),
                expected,
                rtol=0,
                atol=1e-5 * scale,
            )
        # no genes at all: every child is the parent; no children: an empty result
        np.testing.assert_allclose(
            evaluator.children(parent, np.empty((3, 0), dtype=np.int64)),
            np.full(3, parent_loss),
            rtol=1e-12,
        )
        assert evaluator.children(parent, np.empty((0, 5), dtype=np.int64)).shape == (0,)


def test_stored_gradients_start_on_a_cache_line(surrogate, odd_surrogate, half):
    for evaluator in (surrogate, odd_surrogate, half):
        assert evaluator.hw.ctypes.data % 64 == 0
        assert evaluator.hw.flags.c_contiguous and evaluator.hw.flags.writeable


def test_children_reject_bad_diffs(mlp, surrogate):
    layout = Layout.of(mlp)
    parent = np.ones(layout.n_total, dtype=bool)
    with pytest.raises(ValueError, match="outside"):
        surrogate.children(parent, np.array([[layout.n_total]]))
    with pytest.raises(ValueError, match="2-D integer"):
        surrogate.children(parent, np.array([1.0, 2.0]))


# -- float16 storage ----------------------------------------------------------------------

_HALF_ULP = 2.0**-11  # float16 rounds to nearest: |error| <= 2^-11·|x| for normal values
_HALF_TINY = 2.0**-25  # ... and <= 2^-25 (half the smallest subnormal) below 2^-14


def test_float16_stores_the_float32_table_scaled(surrogate, half):
    assert half.hw.dtype == np.float16 and half.hw.shape == surrogate.hw.shape
    exponent = math.log2(half.hw_scale)
    assert exponent == round(exponent) and surrogate.hw_scale == 1.0
    # the largest value sits just under float16's maximum: the scale wastes no range
    assert 2.0**15 <= np.abs(half.hw.astype(np.float64)).max() < 2.0**16
    decoded = half.hw.astype(np.float64) / half.hw_scale
    exact = surrogate.hw.astype(np.float64)
    bound = _HALF_ULP * np.abs(exact) + _HALF_TINY / half.hw_scale
    assert (np.abs(decoded - exact) <= bound).all()
    assert (decoded != exact).any()  # float16 really rounded something
    np.testing.assert_array_equal(half.gw, surrogate.gw.astype(np.float32).astype(np.float64))
    assert half.base_loss == surrogate.base_loss


def _float16_bound(exact_surrogate, half, masks):
    """Largest possible |ΔL(float16) - ΔL(float32)| per mask, from the float32 table alone.

    Each stored value moves by at most e_i = 2^-11·|hw_i| + 2^-25/hw_scale, so z_n moves by
    at most ε_n = Σ_i |δ_i|·e_{i,n}; (z+ε)² - z² ≤ 2|z|ε + ε² gives the quadratic term's bound.
    gw (rounded to float32) adds at most 2^-24 Σ_i |δ_i·gw_i|.
    """
    step = np.abs(masks.astype(np.float64) - exact_surrogate.anchor.astype(np.float64))
    hw = exact_surrogate.hw.astype(np.float64)
    z = np.abs((masks.astype(np.float64) - exact_surrogate.anchor) @ hw)
    moved = _HALF_ULP * (step @ np.abs(hw)) + step.sum(axis=1, keepdims=True) * (
        _HALF_TINY / half.hw_scale
    )
    quadratic = (z * moved + 0.5 * moved**2).sum(axis=1) / hw.shape[1]
    return quadratic + 2.0**-24 * (step @ np.abs(exact_surrogate.gw))


@pytest.mark.parametrize("anchored_at", ["dense", "mask"])
def test_float16_predictions_stay_within_the_rounding_bound(
    mlp, mlp_split, surrogate, half, anchor, anchored, anchored_at
):
    layout = Layout.of(mlp)
    if anchored_at == "dense":
        exact_surrogate, center = surrogate, np.ones(layout.n_total, dtype=bool)
    else:
        exact_surrogate, center = anchored, anchor
        half = SurrogateEvaluator(
            mlp, mlp_split, layout, n_samples=16, seed=3, anchor=anchor, precision="float16"
        )
    rng = np.random.default_rng(13)
    masks = np.concatenate(
        [
            np.stack([mutate(center, k, rng) for k in (1, 20, 20, 200)]),
            random_masks(layout, 4, rng),
            edge_masks(layout),
        ]
    )
    bound = _float16_bound(exact_surrogate, half, masks)
    difference = np.abs(half.delta_loss(masks) - exact_surrogate.delta_loss(masks))
    assert (difference <= bound + 1e-12).all()
    assert difference.max() > 0
    # children sum in float32 on top of that: the same slack as the float32 children tests
    parent = masks[0]
    diffs = np.stack([rng.choice(layout.n_total, 20, replace=False) for _ in range(16)])
    children = _flipped(parent, diffs)
    scale = np.abs(exact_surrogate(children)["loss"] - exact_surrogate(parent[None])["loss"])
    np.testing.assert_array_less(
        np.abs(half.children(parent, diffs) - exact_surrogate.children(parent, diffs)),
        _float16_bound(exact_surrogate, half, children) + 2e-5 * scale.max() + 1e-12,
    )


def test_precision_is_checked(mlp, mlp_split):
    with pytest.raises(ValueError, match="precision.*float32.*float16"):
        SurrogateEvaluator(mlp, mlp_split, Layout.of(mlp), n_samples=4, precision="float64")


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


# -- anchored expansion -------------------------------------------------------------------


@pytest.fixture(scope="module")
def anchor(mlp):
    return random_masks(Layout.of(mlp), 1, np.random.default_rng(5))[0]


@pytest.fixture(scope="module")
def anchored(mlp, mlp_split, anchor):
    return SurrogateEvaluator(
        mlp, mlp_split, Layout.of(mlp), n_samples=16, seed=3, anchor=anchor, precision="float32"
    )


def _anchored_reference(mlp, split, anchor, n_samples, seed):
    """(loss, g, per-sample g) at the anchored weights, by plain autograd on a masked copy."""
    layout = Layout.of(mlp)
    model = copy.deepcopy(mlp)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in layout.names:
            params[name].mul_(torch.from_numpy(anchor[layout.slice(name)]).view_as(params[name]))

    def flat_gradient(x, y):
        model.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        flat = torch.cat([params[n].grad.reshape(-1) for n in layout.names])
        return float(loss.detach()), flat.double().numpy()

    loss, mean = flat_gradient(split.x, split.y)
    subset = random_subset(split, n_samples, seed=seed)
    rows = [flat_gradient(subset.x[n : n + 1], subset.y[n : n + 1])[1] for n in range(n_samples)]
    return loss, mean, np.stack(rows)


def test_anchored_prediction_matches_a_direct_computation(mlp, mlp_split, anchor, anchored):
    layout = Layout.of(mlp)
    loss, mean, per_sample = _anchored_reference(mlp, mlp_split, anchor, 16, 3)
    weights = (
        torch.cat([p.detach().reshape(-1) for n, p in mlp.named_parameters() if n in layout.names])
        .double()
        .numpy()
    )
    rng = np.random.default_rng(6)
    near = np.stack([mutate(anchor, k, rng) for k in (1, 10, 100)])
    masks = np.concatenate([near, random_masks(layout, 4, rng), edge_masks(layout)])
    step = (masks.astype(np.float64) - anchor.astype(np.float64)) * weights  # δw per mask
    z = step @ per_sample.T
    expected = step @ mean + 0.5 / 16 * (z**2).sum(axis=1)
    assert anchored.base_loss == pytest.approx(loss, rel=1e-5)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(anchored.delta_loss(masks), expected, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(
        anchored(masks)["loss"], loss + expected, rtol=1e-4, atol=1e-5 * scale
    )


def test_the_anchor_itself_changes_nothing(anchor, anchored):
    assert anchored.delta_loss(anchor[None])[0] == 0.0
    padding = np.full((3, 4), -1, dtype=np.int64)
    np.testing.assert_array_equal(anchored.children(anchor, padding), anchored.base_loss)
    # a child that flips genes and flips them back through the parent is the anchor again
    rng = np.random.default_rng(7)
    genes = rng.choice(len(anchor), 5, replace=False)
    parent = anchor.copy()
    parent[genes] ^= True
    back = anchored.children(parent, genes[None].astype(np.int64))
    assert back[0] == pytest.approx(anchored.base_loss, abs=1e-7)


def test_anchored_children_agree_with_evaluate(mlp, anchor, anchored):
    layout = Layout.of(mlp)
    rng = np.random.default_rng(8)
    for parent in (anchor, mutate(anchor, 40, rng), random_masks(layout, 1, rng)[0]):
        diffs = np.stack([rng.choice(layout.n_total, 20, replace=False) for _ in range(12)])
        diffs[3, 7:] = -1
        children = np.repeat(parent[None], len(diffs), axis=0)
        for row, genes in zip(children, diffs, strict=True):
            row[genes[genes >= 0]] ^= True
        from_scratch = anchored(children)["loss"]
        scale = np.abs(from_scratch - anchored.base_loss).max()
        np.testing.assert_allclose(
            anchored.children(parent, diffs), from_scratch, rtol=0, atol=1e-5 * scale + 1e-9
        )


def test_reanchor_equals_building_at_the_anchor(mlp, mlp_split, anchor, anchored):
    moved = SurrogateEvaluator(
        mlp, mlp_split, Layout.of(mlp), n_samples=16, seed=3, precision="float32"
    )
    dense_prediction = moved.delta_loss(anchor[None])
    parent = np.ones(Layout.of(mlp).n_total, dtype=bool)
    moved.children(parent, np.array([[0, 1]]))  # fills the parent memo, which must be dropped
    moved.reanchor(anchor)
    np.testing.assert_array_equal(moved.hw, anchored.hw)
    np.testing.assert_array_equal(moved.gw, anchored.gw)
    np.testing.assert_array_equal(moved.anchor, anchor)
    assert moved.base_loss == anchored.base_loss
    np.testing.assert_array_equal(
        moved.children(parent, np.array([[0, 1]])), anchored.children(parent, np.array([[0, 1]]))
    )
    moved.reanchor(None)
    np.testing.assert_array_equal(moved.delta_loss(anchor[None]), dense_prediction)


def test_anchor_is_checked(mlp, mlp_split):
    layout = Layout.of(mlp)
    with pytest.raises(ValueError, match="shape"):
        SurrogateEvaluator(mlp, mlp_split, layout, n_samples=4, anchor=np.ones(5, dtype=bool))
    with pytest.raises(TypeError, match="bool"):
        SurrogateEvaluator(mlp, mlp_split, layout, n_samples=4, anchor=np.ones(layout.n_total))


def test_pareto_screening_keeps_the_best_fronts(mlp, mlp_split, surrogate):
    layout = Layout.of(mlp)
    plain = PlainEvaluator(mlp, mlp_split, layout)
    screened = ScreenedEvaluator(plain, surrogate, keep=0.25, rank_by="pareto")
    masks = random_masks(layout, 16, np.random.default_rng(9))
    result = screened(masks)
    predicted = surrogate(masks)["loss"]
    density = masks.mean(axis=1)
    chosen = result["exact"]
    assert chosen.sum() == 4
    # no screened-out candidate dominates a chosen one (both objectives minimised)
    for i in np.flatnonzero(chosen):
        dominates = (predicted <= predicted[i]) & (density <= density[i])
        dominates &= (predicted < predicted[i]) | (density < density[i])
        assert not dominates[~chosen].any()
    with pytest.raises(ValueError, match="rank_by"):
        ScreenedEvaluator(plain, surrogate, rank_by="error")


def test_screening_uses_the_nearest_anchor(mlp, mlp_split, surrogate, anchor, anchored):
    layout = Layout.of(mlp)
    plain = PlainEvaluator(mlp, mlp_split, layout)
    screened = ScreenedEvaluator(plain, [surrogate, anchored], keep=0.5)
    rng = np.random.default_rng(10)
    near_anchor = np.stack([mutate(anchor, 5, rng) for _ in range(3)])
    near_dense = np.stack([mutate(np.ones(layout.n_total, bool), 5, rng) for _ in range(3)])
    masks = np.concatenate([near_anchor, near_dense])
    expected = np.concatenate([anchored(near_anchor)["loss"], surrogate(near_dense)["loss"]])
    np.testing.assert_allclose(screened.predicted_loss(masks), expected, rtol=1e-12)
    np.testing.assert_allclose(screened(masks)["predicted_loss"], expected, rtol=1e-12)
    with pytest.raises(TypeError, match="SurrogateEvaluator"):
        ScreenedEvaluator(plain, [])


def test_warmup_calls_are_evaluated_in_full(mlp, mlp_split, surrogate):
    layout = Layout.of(mlp)
    plain = PlainEvaluator(mlp, mlp_split, layout)
    screened = ScreenedEvaluator(plain, surrogate, keep=0.25, warmup_calls=1)
    masks = random_masks(layout, 8, np.random.default_rng(11))
    first = screened(masks)
    assert first["exact"].all()
    np.testing.assert_array_equal(first["loss"], plain(masks)["loss"])
    assert screened(masks)["exact"].sum() == 2
    with pytest.raises(ValueError, match="warmup_calls"):
        ScreenedEvaluator(plain, surrogate, warmup_calls=-1)


def test_float16_is_the_default_storage(mlp, mlp_split):
    surrogate = SurrogateEvaluator(mlp, mlp_split, Layout.of(mlp), n_samples=4)
    assert surrogate.precision == "float16" and surrogate.hw.dtype == np.float16
