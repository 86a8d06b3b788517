from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from masksearch import data, models, training


@pytest.fixture(scope="session")
def digits() -> data.Dataset:
    return data.load("digits")


@pytest.fixture(scope="session")
def _trained_digits_mlp(digits: data.Dataset) -> nn.Module:
    model = models.digits_mlp(seed=0)
    training.train(model, digits.train, epochs=4, lr=0.05, batch_size=64, lr_schedule="cosine")
    return model


@pytest.fixture
def trained(_trained_digits_mlp: nn.Module) -> nn.Module:
    """A fresh copy of a digits MLP trained to ~97% (a cheap stand-in for a zoo model)."""
    return copy.deepcopy(_trained_digits_mlp)


@pytest.fixture
def small_split(digits: data.Dataset) -> data.Split:
    return digits.train.subset(16)


def prunable_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: param.detach() for name, param in model.named_parameters() if name.endswith("weight")
    }
