"""LevelsEncoding (EvoPress): ladders, level switches and density budgets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from masksearch.encodings import (
    DEFAULT_LADDER,
    LevelsEncoding,
)
from masksearch.mask import Mask


def test_levels_decode_keeps_each_layers_top_at_the_ladder_density(mlp):
    encoding = LevelsEncoding(mlp)
    assert len(DEFAULT_LADDER) == encoding.ladder.size and 24 <= encoding.ladder.size <= 32
    rng = np.random.default_rng(6)
    genomes = rng.integers(0, encoding.ladder.size, size=(10, encoding.n_genes))
    flats = encoding.decode(genomes)
    params = dict(mlp.named_parameters())
    for genome, flat in zip(genomes, flats, strict=True):
        mask = Mask.from_flat(encoding.layout, flat)
        for layer, name in enumerate(encoding.layout.names):
            weight = params[name].detach().abs().reshape(-1)
            count = max(1, round(encoding.ladder[genome[layer]] * weight.numel()))
            kept = mask.tensors[name].reshape(-1)
            assert int(kept.sum()) == count
            assert kept[torch.topk(weight, count).indices].all()


def test_levels_magnitude_imitates_global_magnitude(mlp):
    encoding = LevelsEncoding(mlp)
    ladder = np.asarray(encoding.ladder)
    for density in (0.3, 0.05, 0.02):
        genome = encoding.magnitude([density])[0]
        decoded = encoding.decode(genome)[0].mean()
        assert abs(decoded - density) / density <= 0.02
        # each layer sits a few ladder steps at most from global magnitude's layer density
        for name, level in zip(encoding.layout.names, genome, strict=True):
            layer_density = Mask.magnitude(mlp, density).layer_densities()[name]
            nearest = int(np.abs(np.log(ladder) - np.log(max(layer_density, 1e-9))).argmin())
            assert abs(int(level) - nearest) <= 3


def best_switch_gap(encoding: LevelsEncoding, genome: np.ndarray) -> int:
    """Brute force: the smallest |change of the total| a level switch can make."""
    counts = encoding.level_counts
    best = None
    for driver in range(encoding.n_genes):
        for step in (-1, 1):
            level = genome[driver] + step
            if not 0 <= level < encoding.ladder.size:
                continue
            gain = counts[driver, level] - counts[driver, genome[driver]]
            for partner in range(encoding.n_genes):
                for other in range(encoding.ladder.size):
                    loss = counts[partner, other] - counts[partner, genome[partner]]
                    if partner != driver and gain * loss < 0:
                        gap = abs(int(gain + loss))
                        best = gap if best is None else min(best, gap)
    return best


@pytest.mark.parametrize("model_name", ["mlp", "conv"])
def test_level_switch_keeps_the_total_within_tolerance(mlp, tiny_conv, model_name):
    model = mlp if model_name == "mlp" else tiny_conv()
    encoding = LevelsEncoding(model)
    rng = np.random.default_rng(7)
    parents = encoding.sample(30, rng)
    for _ in range(5):
        children = encoding.level_switch(parents, rng)
        before = encoding.decode(parents).sum(axis=1)
        after = encoding.decode(children).sum(axis=1)
        changed = (children != parents).sum(axis=1)
        assert (changed == 2).all()  # one layer up, another down
        for parent, old, new in zip(parents, before, after, strict=True):
            allowed = max(encoding.switch_tolerance * old, best_switch_gap(encoding, parent))
            assert abs(int(new) - int(old)) <= allowed
        parents = children


def test_levels_with_a_density_budget_steers_to_it(mlp):
    encoding = LevelsEncoding(mlp, density=0.05)
    rng = np.random.default_rng(8)
    population = encoding.sample(10, rng)
    for _ in range(30):
        population = encoding.mutate(population, rng)
    target = round(0.05 * encoding.layout.n_total)
    kept = encoding.decode(population).sum(axis=1)
    assert (np.abs(kept - target) <= 0.02 * kept + 1).all()


def test_levels_mutation_sometimes_changes_the_density(mlp):
    encoding = LevelsEncoding(mlp)
    parents = np.repeat(encoding.magnitude([0.05]), 100, axis=0)
    children = encoding.mutate(parents, np.random.default_rng(9))
    changed = (children != parents).sum(axis=1)
    assert set(changed) <= {1, 2}  # a ±1 step or a level switch
    assert (changed == 1).any() and (changed == 2).any()
    steps = changed == 1
    assert (np.abs(children[steps] - parents[steps]).sum(axis=1) == 1).all()


def test_levels_crossover_is_uniform_per_gene(mlp):
    encoding = LevelsEncoding(mlp)
    rng = np.random.default_rng(10)
    first = rng.integers(0, 14, size=(200, encoding.n_genes))
    second = rng.integers(14, 28, size=(200, encoding.n_genes))
    children = encoding.crossover(first, second, rng)
    assert ((children == first) | (children == second)).all()
    share = (children == first).mean()
    assert 0.4 < share < 0.6


def test_levels_encode_picks_the_nearest_level(mlp):
    encoding = LevelsEncoding(mlp)
    genome = np.array([3, 10, 20])
    assert np.array_equal(
        encoding.encode(Mask.from_flat(encoding.layout, encoding.decode(genome)[0])), genome
    )


def test_levels_rejects_a_bad_ladder(mlp):
    with pytest.raises(ValueError, match="strictly decreasing"):
        LevelsEncoding(mlp, ladder=[0.1, 0.5, 1.0])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        LevelsEncoding(mlp, ladder=[1.0, 0.0])
