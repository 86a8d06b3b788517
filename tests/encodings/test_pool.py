"""PoolEncoding (method A): the always-kept top, the pool and the fixed cardinality."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from masksearch.encodings import (
    PoolEncoding,
)
from masksearch.mask import Layout, Mask, MaskError


def flat_abs(model: nn.Module) -> np.ndarray:
    layout = Layout.of(model)
    params = dict(model.named_parameters())
    return torch.cat([params[n].detach().abs().reshape(-1) for n in layout.names]).numpy()


def independent_order(model: nn.Module) -> np.ndarray:
    scores = torch.from_numpy(flat_abs(model)).double()
    return torch.sort(-scores, stable=True).indices.numpy()


def test_pool_sizes_follow_the_method(mlp):
    encoding = PoolEncoding(mlp, density=0.05, rho=0.8, pool_factor=4)
    n = encoding.layout.n_total
    k = round(0.05 * n)
    assert encoding.n_kept == k
    assert encoding.n_always == round(0.8 * k)
    assert encoding.n_select == k - round(0.8 * k)
    assert encoding.n_genes == encoding.pool_size == 4 * encoding.n_select
    order = independent_order(mlp)
    assert set(encoding.pool_indices) == set(
        order[encoding.n_always : encoding.n_always + encoding.pool_size]
    )
    everything = PoolEncoding(mlp, density=0.05, pool_factor=None)
    assert everything.n_genes == n - everything.n_always


def test_pool_decode_keeps_exactly_k_including_the_top(mlp):
    encoding = PoolEncoding(mlp, density=0.05)
    genomes = encoding.sample(20, np.random.default_rng(3))
    flats = encoding.decode(genomes)
    assert (flats.sum(axis=1) == encoding.n_kept).all()
    top = torch.topk(torch.from_numpy(flat_abs(mlp)), encoding.n_always).indices.numpy()
    assert flats[:, top].all()
    # every kept weight outside the top K_L lies in the pool
    outside = flats.copy()
    outside[:, top] = False
    outside[:, encoding.pool_indices] = False
    assert not outside.any()


def test_pool_magnitude_is_the_global_magnitude_mask(mlp):
    encoding = PoolEncoding(mlp, density=0.03)
    assert np.array_equal(
        encoding.decode(encoding.magnitude([0.03]))[0], Mask.magnitude(mlp, 0.03).flat()
    )
    assert np.array_equal(encoding.encode(Mask.magnitude(mlp, 0.03)), encoding.magnitude([0.03])[0])


def test_pool_operators_keep_the_cardinality(mlp):
    encoding = PoolEncoding(mlp, density=0.05, rho=0.5)
    rng = np.random.default_rng(4)
    population = encoding.sample(16, rng)
    for _ in range(50):
        mates = population[rng.permutation(len(population))]
        children = encoding.crossover(population, mates, rng)
        agree = population == mates
        assert np.array_equal(children[agree], population[agree])
        population = encoding.mutate(children, rng)
        assert (population.sum(axis=1) == encoding.n_select).all()
        assert (children.sum(axis=1) == encoding.n_select).all()


def test_pool_repair_without_rng_keeps_the_largest_magnitudes(mlp):
    encoding = PoolEncoding(mlp, density=0.05)
    magnitudes = flat_abs(mlp)[encoding.pool_indices]
    rng = np.random.default_rng(5)
    too_many = rng.random((3, encoding.n_genes)) < 0.5
    repaired = encoding.repair(too_many)
    for before, after in zip(too_many, repaired, strict=True):
        assert after.sum() == encoding.n_select and not (after & ~before).any()
        # the survivors are the largest |w| among the genes that were on
        assert magnitudes[after].min() >= magnitudes[before & ~after].max()
    too_few = np.zeros((1, encoding.n_genes), dtype=bool)
    too_few[0, -3:] = True
    repaired = encoding.repair(too_few)[0]
    assert repaired.sum() == encoding.n_select and repaired[-3:].all()
    added = repaired & ~too_few[0]
    assert magnitudes[added].min() >= magnitudes[~repaired].max()
    with_rng = encoding.repair(too_many, rng=np.random.default_rng(0))
    assert (with_rng.sum(axis=1) == encoding.n_select).all()
    assert np.array_equal(with_rng, encoding.repair(too_many, rng=np.random.default_rng(0)))


def test_pool_rejects_a_density_ladder_and_bad_options(mlp):
    with pytest.raises(ValueError, match="single budget"):
        PoolEncoding(mlp, density=(0.05, 0.02, 0.01))
    with pytest.raises(ValueError, match="rho"):
        PoolEncoding(mlp, density=0.05, rho=1.0)
    with pytest.raises(ValueError, match="pool_factor"):
        PoolEncoding(mlp, density=0.05, pool_factor=0.5)
    with pytest.raises(MaskError, match="density"):
        PoolEncoding(mlp, density=1.5)
