"""torch_pruning_genomes (masksearch.structured.warmstart; named apart from tests/test_warmstart.py,
which pytest would otherwise confuse with it): Torch-Pruning's own choices, as groups genomes."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from masksearch import models
from masksearch.encodings import GroupsEncoding, WeightsEncoding
from masksearch.structured import masked, shrink, torch_pruning_genomes


@pytest.fixture(scope="module")
def resnet():
    model = models.build("resnet20", seed=0).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a trained model's batch norms differ; fresh ones are all alike
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.1)
    return model, GroupsEncoding(model, input_shape=(3, 16, 16))


def test_genomes_are_what_torch_pruning_removes(resnet):
    import torch_pruning as tp

    model, encoding = resnet
    genome = torch_pruning_genomes(model, encoding, [0.4])[0]
    # independently: let Torch-Pruning prune a copy for real and compare the models
    pruned = copy.deepcopy(model)
    pruner = tp.pruner.MetaPruner(
        pruned,
        torch.zeros(1, 3, 16, 16),
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=0.4,
        global_pruning=True,
        ignored_layers=[pruned.fc],
    )
    pruner.step()
    ours = shrink(model, genome, encoding.input_shape)
    assert [p.shape for p in ours.parameters()] == [p.shape for p in pruned.parameters()]
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), pruned(x), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(masked(model, genome, encoding.input_shape)(x), pruned(x))


def test_ratios_order_the_genomes_and_uniform_spreads_evenly(resnet):
    model, encoding = resnet
    global_ = torch_pruning_genomes(model, encoding, [0.0, 0.2, 0.5])
    assert global_[0].all()
    densities = encoding.densities(global_)
    assert densities[0] > densities[1] > densities[2]
    uniform = torch_pruning_genomes(model, encoding, [0.5], uniform=True)[0]
    shares = [
        uniform[start:end].mean()
        for start, end in zip(encoding.table.offsets[:-1], encoding.table.offsets[1:], strict=True)
    ]
    assert max(shares) - min(shares) < 0.1
    assert not np.array_equal(uniform, global_[2])
    for importance in ("l1", "bn_scale", "lamp"):
        genome = torch_pruning_genomes(model, encoding, [0.3], importance=importance)[0]
        assert 0.3 < encoding.densities(genome)[0] < 0.9


def test_bad_input_is_refused(resnet):
    model, encoding = resnet
    with pytest.raises(ValueError, match=r"unknown importance 'taylor'"):
        torch_pruning_genomes(model, encoding, [0.3], importance="taylor")
    with pytest.raises(ValueError, match=r"fraction of channels in \[0, 1\), got 1.0"):
        torch_pruning_genomes(model, encoding, [1.0])
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(TypeError, match="GroupsEncoding"):
        torch_pruning_genomes(mlp, WeightsEncoding(mlp), [0.3])
