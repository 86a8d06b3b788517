from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from masksearch import catalogue, models, search
from masksearch.evaluators import (
    IncrementalEvaluator,
    PlainEvaluator,
    UnsupportedModelError,
    make_evaluator,
)
from masksearch.evaluators.incremental import (
    _cross_entropy,
    _delta_layer,
    _distinct_rows,
    _nearest,
    _pack,
    _plan_children,
    _set_bits,
)
from masksearch.mask import Layout
from masksearch.solvers import make_solver

from .conftest import edge_masks, mutate, random_masks

# largest |incremental - plain| loss measured over this file's comparisons: 4.1e-7 (float32
# rounding of losses up to ~3.3, about one float32 ulp there); the bound leaves 5x headroom
TOLERANCE = 2e-6


def _assert_matches(result, expected, n_samples):
    np.testing.assert_allclose(result["loss"], expected["loss"], rtol=0, atol=TOLERANCE)
    # a float32 near-tie between two logits may flip one argmax
    assert np.abs(result["error"] - expected["error"]).max() <= 1.0 / n_samples + 1e-12


@pytest.mark.parametrize(
    ("model_name", "split_name"),
    [("mlp", "mlp_split"), ("biased_mlp", "mlp_split"), ("lenet300", "mnist_like")],
)
def test_chains_of_mutated_children_match_plain(model_name, split_name, request):
    model = request.getfixturevalue(model_name)
    split = request.getfixturevalue(split_name)
    layout = Layout.of(model)
    rng = np.random.default_rng(0)
    plain = PlainEvaluator(model, split, layout)
    incremental = IncrementalEvaluator(model, split, layout, cache_size=32)
    population = random_masks(layout, 6, rng)
    _assert_matches(incremental(population), plain(population), len(split.y))
    for generation in range(6):
        n_flips = [1, 5, 40][generation % 3]
        population = np.stack([mutate(parent, n_flips, rng) for parent in population])
        _assert_matches(incremental(population), plain(population), len(split.y))
    assert incremental.stats["incremental"] >= 30


@pytest.mark.parametrize("model_name", ["mlp", "biased_mlp"])
def test_edge_case_children_match_plain(model_name, mlp_split, request):
    mlp = request.getfixturevalue(model_name)
    layout = Layout.of(mlp)
    plain = PlainEvaluator(mlp, mlp_split, layout)
    # parents close to the edge masks, so the edge masks are children of cached parents
    edges = edge_masks(layout)
    rng = np.random.default_rng(1)
    parents = np.stack([mutate(edge, 3, rng) for edge in edges])
    # a layer switched off by the child alone
    layer_off = parents[0].copy()
    layer_off[layout.slice(layout.names[-1])] = False
    incremental = IncrementalEvaluator(mlp, mlp_split, layout, full_ratio=10.0)
    incremental(parents)
    children = np.concatenate([edges, layer_off[None]])
    _assert_matches(incremental(children), plain(children), len(mlp_split.y))

    # children whose flips empty a layer of their parent (constant networks) go the full way
    assert incremental.stats["incremental"] >= 2
    assert incremental.stats["full"] > len(parents)
    assert incremental.stats["incremental"] + incremental.stats["full"] == len(parents) + len(
        children
    )


def test_duplicates_and_cached_masks_are_answered_from_the_cache(mlp, mlp_split):
    layout = Layout.of(mlp)
    masks = random_masks(layout, 3, np.random.default_rng(2))
    incremental = IncrementalEvaluator(mlp, mlp_split, layout)
    first = incremental(masks)
    again = incremental(masks[::-1])
    np.testing.assert_array_equal(again["loss"], first["loss"][::-1])
    assert incremental.stats["cached"] == 3


def test_a_small_cache_stays_correct(mlp, mlp_split):
    layout = Layout.of(mlp)
    rng = np.random.default_rng(3)
    plain = PlainEvaluator(mlp, mlp_split, layout)
    incremental = IncrementalEvaluator(mlp, mlp_split, layout, cache_size=2)
    assert incremental.capacity == 2
    population = random_masks(layout, 5, rng)
    incremental(population)
    for _ in range(3):
        population = np.stack([mutate(parent, 4, rng) for parent in population])
        _assert_matches(incremental(population), plain(population), len(mlp_split.y))


def test_long_chains_are_refreshed_by_full_recomputation(mlp, mlp_split):
    layout = Layout.of(mlp)
    rng = np.random.default_rng(4)
    incremental = IncrementalEvaluator(mlp, mlp_split, layout, max_depth=3)
    plain = PlainEvaluator(mlp, mlp_split, layout)
    mask = random_masks(layout, 1, rng)
    incremental(mask)
    for _ in range(8):
        mask = mutate(mask[0], 2, rng)[None]
        _assert_matches(incremental(mask), plain(mask), len(mlp_split.y))
    # generations 1-3 incremental, 4 full, 5-7 incremental, 8 full (+ the first parent)
    assert incremental.stats == {"incremental": 6, "full": 3, "cached": 0}


def test_large_changes_fall_back_to_full_recomputation(mlp, mlp_split):
    layout = Layout.of(mlp)
    rng = np.random.default_rng(5)
    incremental = IncrementalEvaluator(mlp, mlp_split, layout)
    parent = random_masks(layout, 1, rng)
    incremental(parent)
    incremental(~parent)  # every gene flipped
    assert incremental.stats["full"] == 2


def test_pickling_ships_an_empty_cache_and_the_same_results(mlp, mlp_split):
    layout = Layout.of(mlp)
    masks = random_masks(layout, 4, np.random.default_rng(6))
    incremental = IncrementalEvaluator(mlp, mlp_split, layout)
    expected = incremental(masks)
    clone = pickle.loads(pickle.dumps(incremental))
    assert not clone._valid.any()
    np.testing.assert_allclose(clone(masks)["loss"], expected["loss"], atol=1e-6)
    children = np.stack([mutate(m, 3, np.random.default_rng(7)) for m in masks])
    np.testing.assert_allclose(
        clone(children)["loss"], incremental(children)["loss"], atol=TOLERANCE
    )


def test_supports_only_linear_stacks(mlp, lenet300):
    assert IncrementalEvaluator.supports(mlp, Layout.of(mlp))
    assert IncrementalEvaluator.supports(lenet300, Layout.of(lenet300))
    lenet5 = models.lenet5(seed=0)
    assert not IncrementalEvaluator.supports(lenet5, Layout.of(lenet5))
    with_bias = Layout.of(mlp, ["fc1.weight", "fc1.bias"])
    assert not IncrementalEvaluator.supports(mlp, with_bias)


def test_unsupported_model_is_rejected_with_advice(conv_split, convnet):
    with pytest.raises(UnsupportedModelError, match="kind='batched'"):
        IncrementalEvaluator(convnet, conv_split, Layout.of(convnet))


def test_partial_layout_matches_plain(mlp, mlp_split):
    layout = Layout.of(mlp, ["fc2.weight"])  # fc1 and fc3 stay dense
    rng = np.random.default_rng(8)
    plain = PlainEvaluator(mlp, mlp_split, layout)
    incremental = IncrementalEvaluator(mlp, mlp_split, layout)
    population = random_masks(layout, 3, rng)
    incremental(population)
    children = np.stack([mutate(parent, 6, rng) for parent in population])
    _assert_matches(incremental(children), plain(children), len(mlp_split.y))
    assert incremental.stats["incremental"] == 3


def test_bit_helpers_agree_with_numpy():
    rng = np.random.default_rng(9)
    masks = rng.random((6, 1000)) < 0.5
    words = _pack(masks, n_words=16)
    child = masks[5].copy()
    child[:3] = ~child[:3]
    slot, distance = _nearest(
        words, np.arange(5), _pack(child[None], 16)[0], np.arange(0, 16, 4), 2
    )
    distances = np.count_nonzero(masks[:5] ^ child, axis=1)
    assert distance == distances.min() and distances[slot] == distance
    np.testing.assert_array_equal(
        _set_bits(words[0] ^ words[2]), np.flatnonzero(masks[0] ^ masks[2])
    )


def test_children_scored_in_parallel_equal_serial_exactly(mlp, mlp_split):
    # whole children per thread, each with its own scratch: the thread count must not change
    # a single bit of any child's result
    layout = Layout.of(mlp)
    rng = np.random.default_rng(10)
    parents = random_masks(layout, 5, rng)
    children = np.stack([mutate(parent, n, rng) for parent in parents for n in (1, 4, 30)])
    results = []
    for threads in (None, 1, 2):
        incremental = IncrementalEvaluator(mlp, mlp_split, layout, threads=threads)
        incremental(parents)
        results.append(incremental(children)["loss"])
        assert incremental.stats["incremental"] == len(children)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[2], results[1])


def test_children_plan_matches_numpy(mlp):
    layout = Layout.of(mlp)
    rng = np.random.default_rng(16)
    parents = random_masks(layout, 3, rng)
    children = np.stack([mutate(parent, 9, rng) for parent in parents])
    n_words = (layout.n_total + 63) // 64
    linears = [module for module in mlp.modules() if isinstance(module, torch.nn.Linear)]
    shapes = [tuple(linear.weight.shape) for linear in linears]
    row_start = np.cumsum([0] + [out for out, _ in shapes]).astype(np.int64)
    starts = np.array([layout.slice(name).start for name in layout.names], np.int64)
    kept_parents = np.stack(
        [
            np.concatenate(
                [
                    parent[layout.slice(layout.names[i])].reshape(shape).sum(axis=1)
                    for i, shape in enumerate(shapes)
                ]
            )
            for parent in parents
        ]
    ).astype(np.int32)
    pointers, flips, kept, cost, emptied = _plan_children(
        _pack(parents, n_words),
        np.arange(3, dtype=np.int64),
        _pack(children, n_words),
        kept_parents,
        row_start,
        np.array([n_in for _, n_in in shapes], np.int64),
        starts,
        2.0,
    )
    for child in range(3):
        np.testing.assert_array_equal(
            flips[pointers[child] : pointers[child + 1]],
            np.flatnonzero(parents[child] ^ children[child]),
        )
        expected = np.concatenate(
            [
                children[child][layout.slice(layout.names[i])].reshape(shape).sum(axis=1)
                for i, shape in enumerate(shapes)
            ]
        )
        np.testing.assert_array_equal(kept[child], expected)
    assert not emptied.any()
    assert (cost > 0).all()


def test_a_parent_with_an_empty_layer_has_exact_children(biased_mlp, mlp_split):
    # the parent's first layer is empty (its neurons are their biases): children that flip
    # genes elsewhere leave it empty, and must still match the plain pass
    layout = Layout.of(biased_mlp)
    rng = np.random.default_rng(17)
    plain = PlainEvaluator(biased_mlp, mlp_split, layout)
    incremental = IncrementalEvaluator(biased_mlp, mlp_split, layout, full_ratio=10.0)
    parent = random_masks(layout, 1, rng)[0]
    parent[layout.slice(layout.names[0])] = False
    incremental(parent[None])
    children = np.stack(
        [_flip_in(parent, layout.slice(name), 3, rng) for name in layout.names[1:]]
        + [
            _flip_in(
                _flip_in(parent, layout.slice(layout.names[1]), 1, rng),
                layout.slice(layout.names[2]),
                1,
                rng,
            )
        ]
    )
    _assert_matches(incremental(children), plain(children), len(mlp_split.y))
    assert incremental.stats["incremental"] == len(children)


def test_all_on_parent_with_one_gene_children_match_plain(mlp, mlp_split):
    layout = Layout.of(mlp)
    plain = PlainEvaluator(mlp, mlp_split, layout)
    incremental = IncrementalEvaluator(mlp, mlp_split, layout, full_ratio=10.0)
    parent = np.ones(layout.n_total, dtype=bool)
    incremental(parent[None])
    children = np.repeat(parent[None], 3, axis=0)
    for row, name in zip(children, layout.names, strict=True):
        row[layout.slice(name).start] = False  # one gene off, in each layer
    _assert_matches(incremental(children), plain(children), len(mlp_split.y))
    assert incremental.stats["incremental"] == len(children)


def _flip_in(parent: np.ndarray, genes: slice, n_flips: int, rng) -> np.ndarray:
    child = parent.copy()
    child[rng.choice(np.arange(genes.start, genes.stop), n_flips, replace=False)] ^= True
    return child


@pytest.mark.parametrize("model_name", ["mlp", "biased_mlp"])
def test_flips_confined_to_one_layer_match_plain(model_name, mlp_split, request):
    # each layer alone exercises a different path: changed rows (first layer), a parent input
    # with changed rows (middle), the recomputed output layer (last); one gene is the minimum
    model = request.getfixturevalue(model_name)
    layout = Layout.of(model)
    rng = np.random.default_rng(11)
    plain = PlainEvaluator(model, mlp_split, layout)
    incremental = IncrementalEvaluator(model, mlp_split, layout, full_ratio=10.0)
    parents = random_masks(layout, 2, rng)
    incremental(parents)
    children = [
        _flip_in(parent, layout.slice(name), n_flips, rng)
        for parent in parents
        for name in layout.names
        for n_flips in (1, 7)
    ]
    children = np.stack(children)
    _assert_matches(incremental(children), plain(children), len(mlp_split.y))
    assert incremental.stats["incremental"] == len(children)


def test_children_of_lazy_children_match_plain(mlp, mlp_split):
    layout = Layout.of(mlp)
    rng = np.random.default_rng(12)
    plain = PlainEvaluator(mlp, mlp_split, layout)
    incremental = IncrementalEvaluator(mlp, mlp_split, layout)
    parents = random_masks(layout, 3, rng)
    incremental(parents)
    children = np.stack([mutate(parent, 4, rng) for parent in parents])
    incremental(children)  # lazy: scored, not materialised
    assert (incremental._slot[incremental._valid] >= 0).sum() == len(parents)
    # two grandchildren per child: each child is materialised once, from its own parent
    grandchildren = np.stack([mutate(child, 3, rng) for child in children for _ in range(2)])
    _assert_matches(incremental(grandchildren), plain(grandchildren), len(mlp_split.y))
    assert incremental.rebuilds == {"incremental": 3, "full": 0}
    assert incremental.stats["incremental"] == 9


def test_a_lazy_parent_whose_parent_was_evicted_is_rebuilt_in_full(mlp, mlp_split):
    layout = Layout.of(mlp)
    rng = np.random.default_rng(13)
    plain = PlainEvaluator(mlp, mlp_split, layout)
    incremental = IncrementalEvaluator(mlp, mlp_split, layout, cache_size=2, records=16)
    parent = random_masks(layout, 1, rng)
    incremental(parent)
    child = mutate(parent[0], 4, rng)[None]
    incremental(child)
    # unrelated masks take both slots: the parent's activations are gone, its record stays
    incremental(random_masks(layout, 2, rng))
    parent_record = int(np.flatnonzero(incremental._loss == incremental(parent)["loss"][0])[0])
    assert incremental._slot[parent_record] < 0
    grandchildren = np.stack([mutate(child[0], 2, rng) for _ in range(2)])
    _assert_matches(incremental(grandchildren), plain(grandchildren), len(mlp_split.y))
    assert incremental.rebuilds["full"] == 1


def test_tiny_record_and_slot_bounds_stay_correct(mlp, mlp_split):
    layout = Layout.of(mlp)
    rng = np.random.default_rng(14)
    plain = PlainEvaluator(mlp, mlp_split, layout)
    incremental = IncrementalEvaluator(mlp, mlp_split, layout, cache_size=2, records=2)
    population = random_masks(layout, 5, rng)
    incremental(population)
    for _ in range(4):
        population = np.stack([mutate(parent, 3, rng) for parent in population])
        _assert_matches(incremental(population), plain(population), len(mlp_split.y))
    assert incremental._valid.sum() <= 2


def test_duplicates_within_a_population_are_scored_once(mlp, mlp_split):
    layout = Layout.of(mlp)
    masks = random_masks(layout, 2, np.random.default_rng(15))
    population = masks[[0, 1, 0, 0]]
    incremental = IncrementalEvaluator(mlp, mlp_split, layout)
    result = incremental(population)
    _assert_matches(result, PlainEvaluator(mlp, mlp_split, layout)(population), len(mlp_split.y))
    assert incremental.stats == {"incremental": 0, "full": 2, "cached": 2}


def test_memory_is_bounded_by_the_settings(lenet300, mnist_like):
    layout = Layout.of(lenet300)
    small = IncrementalEvaluator(lenet300, mnist_like, layout, cache_memory=3 * 2**20)
    assert small.capacity == 3 * 2**20 // small.entry_bytes
    assert small._z.nbytes <= (small.capacity + 1) * small.entry_bytes
    assert small.memory_bytes < 8 * 2**20
    with pytest.raises(ValueError, match="records"):
        IncrementalEvaluator(lenet300, mnist_like, layout, records=0)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0, 3000.0])
@pytest.mark.parametrize("last_relu", [False, True])
def test_float32_cross_entropy_matches_torch(scale, last_relu, smoothing):
    rng = np.random.default_rng(16)
    logits = (rng.standard_normal((10, 700)) * scale).astype(np.float32)
    labels = rng.integers(0, 10, 700)
    logits[:, :20] = logits[0, :20]  # every class tied
    logits[3, 20:60] = logits[7, 20:60] = np.abs(logits).max() + 1  # two tied maxima
    logits[:, 60] = -200.0 * scale  # exp underflows for every class but the max
    logits[2, 60] = 0.0
    reference = torch.from_numpy(logits.T.copy()).double()
    if last_relu:
        reference = torch.relu(reference)
    expected = torch.nn.functional.cross_entropy(
        reference, torch.from_numpy(labels), reduction="sum", label_smoothing=smoothing
    ).item()
    # torch's argmax takes the first of tied maxima
    expected_hits = int((reference.float().argmax(dim=1) == torch.from_numpy(labels)).sum())
    loss, hits = _cross_entropy(logits, last_relu, labels, smoothing)
    assert loss == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert hits == expected_hits


def test_float32_cross_entropy_propagates_nan():
    logits = np.zeros((4, 20), dtype=np.float32)
    logits[2, 5] = np.nan
    loss, _ = _cross_entropy(logits, False, np.zeros(20, dtype=np.int64), 0.0)
    assert np.isnan(loss)


@pytest.mark.parametrize("n_total", [3, 64, 1000, 1001])
def test_pack_and_distinct_rows_agree_with_numpy(n_total):
    rng = np.random.default_rng(17)
    masks = rng.random((12, n_total)) < 0.5
    masks[[3, 7, 11]] = masks[1]
    masks[9] = masks[4]
    n_words = ((n_total + 7) // 8 + 7) // 8 + 1  # one spare word: padding stays zero
    words = _pack(masks, n_words)
    expected = np.zeros((12, n_words * 8), dtype=np.uint8)
    expected[:, : (n_total + 7) // 8] = np.packbits(masks, axis=1)
    np.testing.assert_array_equal(words.view(np.uint8), expected)
    first, inverse = _distinct_rows(words)
    _, expected_first = np.unique(masks, axis=0, return_index=True)
    np.testing.assert_array_equal(first, np.sort(expected_first))
    np.testing.assert_array_equal(masks[first][inverse], masks)


def _remembering_evaluator(mlp, mlp_split, parents):
    incremental = IncrementalEvaluator(mlp, mlp_split, Layout.of(mlp), records=6)
    incremental(parents)
    return incremental


@pytest.mark.parametrize("n_children", [1, 3, 5])
def test_batched_remember_equals_one_by_one(mlp, mlp_split, n_children):
    # 4 of 6 records taken, 2 of them pinned parents: 3 children evict one old record, 5 would
    # evict the batch's own (handled one by one)
    layout = Layout.of(mlp)
    rng = np.random.default_rng(18)
    parents = random_masks(layout, 4, rng)
    children = np.stack([mutate(parents[i % 2], 3, rng) for i in range(n_children)])
    one_by_one = _remembering_evaluator(mlp, mlp_split, parents)
    batched = _remembering_evaluator(mlp, mlp_split, parents)
    words = _pack(children, batched._n_words)
    kept = rng.integers(0, 5, (n_children, batched._n_rows)).astype(np.int32)
    losses, errors = rng.random(n_children), rng.random(n_children)
    parent_records = np.arange(n_children) % 2
    for incremental in (one_by_one, batched):
        incremental._pinned[:2] = True
    for index in range(n_children):
        one_by_one._remember(
            words[index], losses[index], errors[index], kept[index], int(parent_records[index])
        )
    batched._remember_children(words, losses, errors, kept, parent_records)
    assert batched._clock == one_by_one._clock
    for name in IncrementalEvaluator._CACHE_ARRAYS:
        if name not in ("_z", "_rows_scratch", "_dense_scratch"):
            np.testing.assert_array_equal(getattr(batched, name), getattr(one_by_one, name))


@pytest.mark.parametrize("block", [1024, 7])
@pytest.mark.parametrize("source_relu", [False, True])
def test_layer_update_matches_numpy(block, source_relu):
    # rows with 0 to 9 weights from changed inputs (partial groups of four), an input that
    # does not move, one that moves on a few samples only, flips, and a row left without weights
    rng = np.random.default_rng(19)
    n_out, n_in, n_samples = 7, 12, 30
    z_layer = rng.standard_normal((n_out, n_samples)).astype(np.float32)
    parent_input = rng.standard_normal((n_in, n_samples)).astype(np.float32)
    changed = np.arange(1, 11, dtype=np.int64)
    changed_values = parent_input[changed] + rng.standard_normal((10, n_samples)).astype(np.float32)
    changed_values[2] = parent_input[changed[2]]
    changed_values[5] = parent_input[changed[5]]
    changed_values[5, 20:23] += 1.0
    counts = [0, 1, 3, 4, 5, 9, 2]
    pointers = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    columns = np.concatenate([rng.permutation(10)[:count] for count in counts]).astype(np.int64)
    values = rng.standard_normal(len(columns)).astype(np.float32)
    weight = rng.standard_normal((n_out, n_in)).astype(np.float32)
    child_mask = rng.random((n_out, n_in)) < 0.5
    flips = np.array([2 * n_in + 3, 2 * n_in + 7, 4 * n_in], dtype=np.int64)
    words = _pack(child_mask.reshape(1, -1), 2)[0]
    kept = np.ones(n_out, dtype=np.int32)
    kept[6] = 0
    bias = rng.standard_normal(n_out).astype(np.float32)
    out = np.empty_like(z_layer)
    _delta_layer(
        z_layer, parent_input, source_relu, changed, changed_values, pointers, columns, values,
        weight, words, 0, flips, kept, bias, out, block,
    )  # fmt: skip

    def act(x):
        return np.maximum(x, 0.0) if source_relu else x

    delta = act(changed_values.astype(np.float64)) - act(parent_input[changed].astype(np.float64))
    expected = z_layer.astype(np.float64)
    for row in range(n_out):
        for entry in range(pointers[row], pointers[row + 1]):
            expected[row] += values[entry] * delta[columns[entry]]
    for gene in flips:
        row, column = divmod(int(gene), n_in)
        sign = 1.0 if child_mask[row, column] else -1.0
        expected[row] += sign * weight[row, column] * act(parent_input[column].astype(np.float64))
    expected[6] = bias[6]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


# -- checkpoints: state_dict / load_state_dict ------------------------------------------------


def _ga_populations(layout, n_generations, size, seed, window):
    """Populations of a GA-like search, fixed in advance: children of masks of the last
    ``window`` generations (parents lazy, evicted or forgotten by the time they are picked),
    a few flips each, some far jumps (full passes) and a repeat."""
    rng = np.random.default_rng(seed)
    seen = [random_masks(layout, size, rng)]
    for _ in range(n_generations):
        pool = np.concatenate(seen[-window:])
        parents = pool[rng.integers(0, len(pool), size)]
        flips = rng.choice([1, 2, 5, 20, layout.n_total // 3], size, p=[0.3, 0.3, 0.2, 0.1, 0.1])
        children = np.stack([mutate(p, int(n), rng) for p, n in zip(parents, flips, strict=True)])
        children[-1] = pool[rng.integers(0, len(pool))]  # a mask seen before
        seen.append(children)
    return seen


def _walk_plain_data(value, path="state"):
    """Assert that ``value`` holds only what a restricted unpickler accepts: dicts (str keys),
    lists and tuples of str/int/float/bool/None and numpy arrays of numeric or bool dtype."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), f"{path}: key {key!r} is not a str"
            _walk_plain_data(item, f"{path}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _walk_plain_data(item, f"{path}[{index}]")
    elif isinstance(value, np.ndarray):
        assert value.dtype.kind in "biuf", f"{path}: dtype {value.dtype}"
    else:
        assert value is None or type(value) in (str, int, float, bool), f"{path}: {type(value)}"


@pytest.mark.parametrize(
    ("settings", "window", "snapshot_after", "forgotten"),
    [
        ({}, 8, 1, False),
        ({}, 8, 4, False),
        ({"cache_size": 4, "records": 16}, 1, 2, True),
        # few records: the recipes of some slots start from masks no record holds any more
        # (the state carries them), computed in temporaries since they hold no slot
        ({"cache_size": 6, "records": 12}, 1, 5, True),
        ({"cache_size": 6, "records": 12}, 1, 7, True),
        ({"cache_size": 3, "records": 8, "max_depth": 3}, 1, 3, False),
    ],
)
def test_a_restored_state_scores_every_later_population_bit_for_bit(
    mlp, mlp_split, settings, window, snapshot_after, forgotten
):
    layout = Layout.of(mlp)
    populations = _ga_populations(layout, 9, 12, seed=20, window=window)
    original = IncrementalEvaluator(mlp, mlp_split, layout, **settings)
    for population in populations[: snapshot_after + 1]:
        original(population)
    state = pickle.loads(pickle.dumps(original.state_dict()))
    _walk_plain_data(state)
    recipes = state["recipes"]
    assert ((recipes["copy"] >= 0).any() and (recipes["slot"] < 0).any()) == forgotten
    restored = IncrementalEvaluator(mlp, mlp_split, layout, **settings)
    restored.load_state_dict(state)
    # the replayed slots hold the very activations the original computed
    owned = np.flatnonzero(original._slot_owner[: original.capacity] >= 0)
    assert len(owned) and np.array_equal(restored._slot_owner, original._slot_owner)
    assert np.array_equal(restored._z[owned], original._z[owned])
    for population in populations[snapshot_after + 1 :]:
        expected, result = original(population), restored(population)
        assert np.array_equal(result["loss"], expected["loss"])
        assert np.array_equal(result["error"], expected["error"])
    assert restored.stats == original.stats and restored.rebuilds == original.rebuilds
    assert original.stats["incremental"] > 40 and original.rebuilds["incremental"] > 0
    # the restored evaluator's state is the original's, so a second resume is exact too
    ours, theirs = restored.state_dict(), original.state_dict()
    for key in ("records", "recipes"):
        for name, array in theirs[key].items():
            assert np.array_equal(ours[key][name], array), (key, name)


def test_successive_halving_rungs_keep_their_caches_through_a_state(mlp, mlp_split):
    layout = Layout.of(mlp)
    populations = _ga_populations(layout, 5, 12, seed=23, window=1)

    def build():
        return make_evaluator(mlp, mlp_split, layout, kind="incremental", fidelities=(32,))

    original = build()
    for population in populations[:3]:
        original(population)
    state = pickle.loads(pickle.dumps(original.state_dict()))
    _walk_plain_data(state)
    restored = build()
    restored.load_state_dict(state)
    for population in populations[3:]:
        expected, result = original(population), restored(population)
        for name in ("loss", "error", "fidelity"):
            assert np.array_equal(result[name], expected[name])


@pytest.mark.parametrize("interrupted_after", [1, 3])
def test_an_interrupted_search_resumes_to_the_uninterrupted_front(tmp_path, interrupted_after):
    # the incremental evaluator (the default for the digits MLP) decides the last bits of the
    # losses from what it caches: without its state in the checkpoint the resumed front differs
    def run(**options):
        problem = catalogue.digits_mlp(objectives=("loss", "density"))
        assert isinstance(problem.evaluator, IncrementalEvaluator)
        solver = make_solver("nsga2", pop_size=16)
        return search(problem, solver, budget=128, seed=0, **options)

    def interrupt(record):
        if record["generation"] == interrupted_after:
            raise KeyboardInterrupt

    straight = run()
    path = tmp_path / "checkpoint.pkl"
    assert run(checkpoint=path, callbacks=[interrupt]).stopped == "interrupted"
    resumed = run(checkpoint=path, resume=True)
    assert resumed.stopped == "budget" and resumed.n_evals == straight.n_evals
    assert np.array_equal(resumed.front.genomes, straight.front.genomes)
    assert np.array_equal(resumed.front.F, straight.front.F)


def test_a_state_of_other_settings_is_rejected(mlp, mlp_split):
    layout = Layout.of(mlp)
    small = IncrementalEvaluator(mlp, mlp_split, layout, cache_size=2)
    small(random_masks(layout, 2, np.random.default_rng(22)))
    with pytest.raises(ValueError, match="capacity"):
        IncrementalEvaluator(mlp, mlp_split, layout, cache_size=3).load_state_dict(
            small.state_dict()
        )
    with pytest.raises(ValueError, match="state_dict"):
        small.load_state_dict({"entries": {}})
