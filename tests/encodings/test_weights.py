"""WeightsEncoding: one gene per weight, sparse moves, block crossover."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from masksearch import models
from masksearch.encodings import (
    WeightsEncoding,
)
from masksearch.mask import Mask


def test_weights_round_trip_between_masks_and_genomes(mlp):
    encoding = WeightsEncoding(mlp)
    rng = np.random.default_rng(0)
    flat = rng.random(encoding.n_genes) < 0.1
    mask = Mask.from_flat(encoding.layout, flat)
    genome = encoding.encode(mask)
    assert np.array_equal(genome, flat)
    assert np.array_equal(encoding.decode(genome)[0], flat)
    assert Mask.from_flat(encoding.layout, encoding.decode(genome)[0]) == mask


@pytest.mark.parametrize("density", [0.005, 0.02, 0.05, 0.3, 1.0])
def test_weights_magnitude_equals_mask_magnitude(mlp, density):
    encoding = WeightsEncoding(mlp)
    assert np.array_equal(encoding.magnitude([density])[0], Mask.magnitude(mlp, density).flat())


def test_weights_magnitude_breaks_ties_like_mask_magnitude():
    model = models.digits_mlp(seed=1)
    with torch.no_grad():  # two significant digits: many exactly tied magnitudes
        for param in model.parameters():
            param.copy_(torch.round(param * 10) / 10)
    encoding = WeightsEncoding(model)
    genomes = encoding.magnitude([0.01, 0.1])
    for genome, density in zip(genomes, [0.01, 0.1], strict=True):
        assert np.array_equal(genome, Mask.magnitude(model, density).flat())


def test_weights_sample_spans_log_spaced_densities(mlp):
    encoding = WeightsEncoding(mlp)
    genomes = encoding.sample(12, np.random.default_rng(0))
    density = genomes.mean(axis=1)
    # swaps keep the count, so the densities are exactly the magnitude ladder's
    expected = [Mask.magnitude(mlp, d).density for d in np.geomspace(0.005, 0.5, 12)]
    assert np.allclose(density, expected)
    assert not any(
        np.array_equal(g, encoding.magnitude([d])[0])
        for g, d in zip(genomes, np.geomspace(0.005, 0.5, 12), strict=True)
    )


def test_weights_mutation_is_a_small_sparse_move(mlp):
    encoding = WeightsEncoding(mlp)
    rng = np.random.default_rng(1)
    parents = np.repeat(encoding.magnitude([0.05]), 200, axis=0)
    children = encoding.mutate(parents, rng)
    kept_parent = int(parents[0].sum())
    change = children.sum(axis=1) - kept_parent
    flips = (children != parents).sum(axis=1)
    assert (flips > 0).all()
    swaps = change == 0
    assert swaps.any() and (change > 0).any() and (change < 0).any()
    # a swap moves at most 0.05% of the genes each way; add/drop steps are 5-10% of kept
    assert flips[swaps].max() <= 2 * max(1, round(0.0005 * encoding.n_genes))
    steps = np.abs(change[~swaps])
    assert steps.min() >= round(0.05 * kept_parent) - 1
    assert steps.max() <= round(0.10 * kept_parent) + 1
    assert (flips[~swaps] == steps).all()


def test_weights_mutation_of_a_large_model_is_fast():
    encoding = WeightsEncoding(models.lenet300(seed=0))
    parents = encoding.sample(32, np.random.default_rng(0))
    start = time.perf_counter()
    encoding.mutate(parents, np.random.default_rng(1))
    encoding.crossover(parents, parents[::-1], np.random.default_rng(2))
    assert time.perf_counter() - start < 2.0  # vectorised: ~0.1 s on a laptop core


def test_weights_crossover_keeps_agreement_and_density_range(mlp):
    encoding = WeightsEncoding(mlp)
    rng = np.random.default_rng(2)
    first = encoding.sample(40, rng)
    second = encoding.mutate(encoding.sample(40, rng)[::-1], rng)
    children = encoding.crossover(first, second, rng)
    agree = first == second
    assert np.array_equal(children[agree], first[agree])
    kept = children.sum(axis=1)
    low = np.minimum(first.sum(axis=1), second.sum(axis=1))
    high = np.maximum(first.sum(axis=1), second.sum(axis=1))
    assert ((kept >= low) & (kept <= high)).all()
    # a real mix: some child takes genes from both parents
    from_first = (children & ~agree & first).any(axis=1)
    from_second = (children & ~agree & second).any(axis=1)
    assert (from_first & from_second).any()


def test_decoded_masks_are_the_validated_genomes_without_a_copy(mlp) -> None:
    import numpy as np

    from masksearch.encodings import WeightsEncoding

    encoding = WeightsEncoding(mlp)
    genomes = encoding.validate(encoding.sample(3, np.random.default_rng(0)))
    masks = encoding.decode_valid(genomes)
    assert np.shares_memory(masks, genomes)
    decoded = encoding.decode(genomes)  # the public path validates: a copy
    np.testing.assert_array_equal(masks, decoded)
    assert not np.shares_memory(decoded, genomes)


@pytest.mark.parametrize("first", [True, False])
def test_the_frontier_scan_equals_ranking_every_gene(first: bool) -> None:
    from masksearch.encodings.binary import _ranked_end

    rng = np.random.default_rng(11)
    for size, density in [(10, 0.5), (5_000, 0.02), (20_000, 0.98), (50_000, 0.3)]:
        order = rng.permutation(size)
        candidates = rng.random(size) < density
        ranked = order[candidates[order]]
        # the caller's window never exceeds the candidates
        for window in {0, min(1, ranked.size), min(7, ranked.size), ranked.size // 2, ranked.size}:
            expected = ranked[:window] if first else ranked[ranked.size - window :]
            np.testing.assert_array_equal(
                _ranked_end(order, candidates, window, first=first), expected
            )
