"""What every encoding shares: genome validation, deterministic operators that never edit
their input, pickling without the model."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch import nn

from masksearch.encodings import (
    GenomeError,
    LevelsEncoding,
    PoolEncoding,
    WeightsEncoding,
    make_encoding,
)


def build(name: str, model: nn.Module):
    options: dict = {"density": 0.05} if name == "pool" else {}
    if name == "groups":
        options["input_shape"] = [64]  # digits_mlp reads 8×8 images, flattened
    return make_encoding(name, model, **options)


ALL = ["weights", "pool", "levels", "channels", "groups"]


def test_validate_messages(mlp):
    weights = WeightsEncoding(mlp)
    with pytest.raises(
        GenomeError,
        match=r"genome has 100 genes but the 'weights' encoding of this model has 17,024",
    ):
        weights.validate(np.zeros(100, dtype=bool))
    with pytest.raises(GenomeError, match="shape"):
        weights.validate(np.zeros((2, 2, weights.n_genes), dtype=bool))
    half = np.zeros(weights.n_genes)
    half[7] = 0.5
    with pytest.raises(GenomeError, match=r"binary \(0/1\).*gene 7.*0\.5"):
        weights.validate(half)
    half[7] = np.nan
    with pytest.raises(GenomeError, match="NaN"):
        weights.validate(half)
    levels = LevelsEncoding(mlp)
    with pytest.raises(GenomeError, match=r"outside 0\.\.27"):
        levels.validate(np.array([0, 28, 3]))
    with pytest.raises(GenomeError, match="whole numbers"):
        levels.validate(np.array([0.0, 2.5, 3.0]))
    with pytest.raises(GenomeError, match="integer level indices"):
        levels.validate(np.array([True, False, True]))
    pool = PoolEncoding(mlp, density=0.05)
    with pytest.raises(
        GenomeError, match=rf"exactly K_S={pool.n_select:,} ones; got 0 .*repair\(\)"
    ):
        pool.validate(np.zeros(pool.n_genes, dtype=bool))


def test_validate_accepts_exact_numbers_from_other_libraries(mlp):
    weights = WeightsEncoding(mlp)
    genome = weights.magnitude([0.1])[0]
    for as_number in (genome.astype(np.float64), genome.astype(np.int32)):
        converted = weights.validate(as_number)
        assert converted.dtype == bool and np.array_equal(converted[0], genome)
    levels = LevelsEncoding(mlp)
    converted = levels.validate(np.array([[1.0, 5.0, 27.0]]))
    assert converted.dtype == np.int64 and converted.tolist() == [[1, 5, 27]]


@pytest.mark.parametrize("name", ALL)
def test_operators_are_deterministic_and_never_edit_their_input(mlp, name):
    encoding = build(name, mlp)
    population = encoding.sample(8, np.random.default_rng(13))
    assert np.array_equal(population, encoding.sample(8, np.random.default_rng(13)))
    assert population.dtype == encoding.dtype and population.shape == (8, encoding.n_genes)
    assert ((population >= encoding.lower) & (population <= encoding.upper)).all()
    snapshot = population.copy()
    for operator in (
        lambda rng: encoding.mutate(population, rng),
        lambda rng: encoding.crossover(population, population[::-1], rng),
    ):
        first, second = operator(np.random.default_rng(14)), operator(np.random.default_rng(14))
        assert np.array_equal(first, second)
        assert first is not population and np.array_equal(population, snapshot)
        encoding.validate(first)
    flats = encoding.decode(population)
    assert flats.shape == (8, encoding.layout.n_total) and flats.dtype == bool
    assert np.allclose(encoding.densities(population), flats.mean(axis=1))


@pytest.mark.parametrize("name", ALL)
def test_encodings_pickle_without_the_model(mlp, name):
    encoding = build(name, mlp)
    assert not any(
        isinstance(value, (nn.Module, torch.Tensor)) for value in vars(encoding).values()
    )
    copy = pickle.loads(pickle.dumps(encoding))
    genomes = encoding.sample(3, np.random.default_rng(15))
    assert np.array_equal(copy.decode(genomes), encoding.decode(genomes))
