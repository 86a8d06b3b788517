"""Small models, synthetic splits and masks shared by the evaluator tests."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from masksearch import models
from masksearch.data import Split
from masksearch.mask import Layout


def synthetic_split(shape: tuple[int, ...], n: int, classes: int = 10, seed: int = 0) -> Split:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *shape), generator=generator)
    y = torch.randint(0, classes, (n,), generator=generator)
    return Split(x, y)


def tiny_convnet(seed: int = 0) -> nn.Sequential:
    """Conv + BatchNorm + pooling + Linear on 8×8 inputs: what vmap must batch."""
    generator = torch.Generator().manual_seed(seed)
    model = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 4, 3, padding=1)),
                ("bn1", nn.BatchNorm2d(4)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(4, 6, 3)),
                ("relu2", nn.ReLU()),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(24, 10)),
            ]
        )
    )
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
        # non-trivial running statistics, so eval-mode BatchNorm is not the identity
        model.bn1.running_mean.copy_(torch.randn(4, generator=generator) * 0.1)
        model.bn1.running_var.copy_(torch.rand(4, generator=generator) + 0.5)
    return model.eval()


def random_masks(layout: Layout, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` masks at densities spread over (0, 1)."""
    densities = rng.uniform(0.02, 0.98, size=(n, 1))
    return rng.random((n, layout.n_total)) < densities


def edge_masks(layout: Layout) -> np.ndarray:
    """All on, all off, one gene on, and each layer switched off alone."""
    rows = [np.ones(layout.n_total, bool), np.zeros(layout.n_total, bool)]
    one = np.zeros(layout.n_total, bool)
    one[layout.n_total // 2] = True
    rows.append(one)
    for name in layout.names:
        row = np.ones(layout.n_total, bool)
        row[layout.slice(name)] = False
        rows.append(row)
    return np.stack(rows)


def mutate(parent: np.ndarray, n_flips: int, rng: np.random.Generator) -> np.ndarray:
    child = parent.copy()
    child[rng.choice(len(parent), n_flips, replace=False)] ^= True
    return child


@pytest.fixture(scope="session")
def mlp() -> nn.Module:
    return models.digits_mlp(seed=0).eval()


@pytest.fixture(scope="session")
def biased_mlp() -> nn.Module:
    """digits_mlp with nonzero biases (Kaiming init leaves them at 0)."""
    model = models.digits_mlp(seed=1).eval()
    generator = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    return model


@pytest.fixture(scope="session")
def mlp_split() -> Split:
    return synthetic_split((1, 8, 8), 96, seed=1)


@pytest.fixture(scope="session")
def lenet300() -> nn.Module:
    return models.lenet300(seed=0).eval()


@pytest.fixture(scope="session")
def mnist_like() -> Split:
    return synthetic_split((1, 28, 28), 64, seed=2)


@pytest.fixture(scope="session")
def convnet() -> nn.Module:
    return tiny_convnet(seed=3)


@pytest.fixture(scope="session")
def conv_split() -> Split:
    return synthetic_split((1, 8, 8), 48, seed=4)
