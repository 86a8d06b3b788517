"""ChannelsEncoding: removing a channel zeroes its row and the next layer's inputs."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from masksearch import models
from masksearch.encodings import (
    ChannelsEncoding,
)
from masksearch.mask import Mask, MaskError


def test_channels_removed_neuron_zeroes_its_row_and_the_next_column():
    model = nn.Sequential(
        OrderedDict([("fc1", nn.Linear(4, 3)), ("relu", nn.ReLU()), ("fc2", nn.Linear(3, 2))])
    )
    encoding = ChannelsEncoding(model)
    assert encoding.n_genes == 3  # fc2's outputs are classes
    mask = Mask.from_flat(encoding.layout, encoding.decode(np.array([True, False, True]))[0])
    expected_fc1 = torch.ones(3, 4, dtype=torch.bool)
    expected_fc1[1] = False
    expected_fc2 = torch.ones(2, 3, dtype=torch.bool)
    expected_fc2[:, 1] = False
    assert torch.equal(mask.tensors["fc1.weight"], expected_fc1)
    assert torch.equal(mask.tensors["fc2.weight"], expected_fc2)


def test_channels_conv_to_linear_removes_the_flattened_block(tiny_conv):
    model = tiny_conv()
    encoding = ChannelsEncoding(model)
    assert encoding.n_genes == 4 + 6 + 7
    genome = np.ones(encoding.n_genes, dtype=bool)
    genome[1] = False  # conv1 channel 1
    genome[4 + 2] = False  # conv2 channel 2
    genome[10 + 5] = False  # fc1 neuron 5
    mask = Mask.from_flat(encoding.layout, encoding.decode(genome)[0])
    conv1, conv2 = mask.tensors["conv1.weight"], mask.tensors["conv2.weight"]
    fc1, fc2 = mask.tensors["fc1.weight"], mask.tensors["fc2.weight"]
    assert not conv1[1].any() and conv1[[0, 2, 3]].all()
    assert not conv2[:, 1].any() and not conv2[2].any()
    assert conv2[[0, 1, 3, 4, 5]][:, [0, 2, 3]].all()
    assert not fc1[:, 2 * 16 : 3 * 16].any() and not fc1[5].any()
    others = torch.ones(96, dtype=torch.bool)
    others[32:48] = False
    assert fc1[[0, 1, 2, 3, 4, 6]][:, others].all()
    assert not fc2[:, 5].any() and fc2[:, [0, 1, 2, 3, 4, 6]].all()
    assert np.isclose(encoding.densities(genome)[0], mask.density)


def test_channels_removed_channel_no_longer_affects_the_output(tiny_conv):
    model = tiny_conv()
    encoding = ChannelsEncoding(model)
    genome = np.ones(encoding.n_genes, dtype=bool)
    genome[4 + 2] = False  # conv2 channel 2
    mask = Mask.from_flat(encoding.layout, encoding.decode(genome)[0])
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    pruned = mask.apply(tiny_conv())
    reference = pruned(x)
    with torch.no_grad():  # the removed channel's bias still emits a constant: it must not matter
        pruned.conv2.bias[2] += 100.0
    assert torch.allclose(pruned(x), reference)


def test_channels_round_trip_and_densities(mlp):
    encoding = ChannelsEncoding(mlp)
    rng = np.random.default_rng(11)
    genomes = rng.random((20, encoding.n_genes)) < 0.7
    flats = encoding.decode(genomes)
    assert np.allclose(encoding.densities(genomes), flats.mean(axis=1))
    for genome, flat in zip(genomes, flats, strict=True):
        assert np.array_equal(encoding.encode(Mask.from_flat(encoding.layout, flat)), genome)


def test_channels_magnitude_and_operators(mlp):
    encoding = ChannelsEncoding(mlp)
    genomes = encoding.magnitude([0.5, 0.1])
    assert np.allclose(encoding.densities(genomes), [0.5, 0.1], rtol=0.1)
    for layer in range(2):  # every layer keeps at least one channel
        start, end = encoding._gene_offsets[layer], encoding._gene_offsets[layer + 1]
        assert genomes[:, start:end].any(axis=1).all()
    rng = np.random.default_rng(12)
    children = encoding.mutate(genomes, rng)
    assert ((children != genomes).sum(axis=1) > 0).all()
    mixed = encoding.crossover(genomes, genomes[::-1], rng)
    kept = mixed.sum(axis=1)
    assert ((kept >= genomes.sum(axis=1).min()) & (kept <= genomes.sum(axis=1).max())).all()


def test_channels_reject_models_that_do_not_chain():
    with pytest.raises(MaskError, match="run in sequence"):
        ChannelsEncoding(models.resnet20(seed=0))


def test_channels_magnitude_at_most_never_exceeds_its_target():
    encoding = ChannelsEncoding(models.digits_mlp(seed=0))
    targets = [0.52, 0.23, 0.11]
    nearest = encoding.densities(encoding.magnitude(targets))
    below = encoding.densities(encoding.magnitude(targets, at_most=True))
    assert (below <= np.array(targets) + 1e-12).all()
    assert (below <= nearest + 1e-12).all() and (nearest - below < 0.05).all()
