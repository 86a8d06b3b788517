"""Models shared by the encoding tests.

No ``__init__.py`` here: the folder would become a package named ``encodings`` and shadow (or
be shadowed by) Python's own codec package, so helpers shared across files are fixtures.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from masksearch import models


@pytest.fixture(scope="module")
def mlp() -> nn.Module:
    return models.digits_mlp(seed=0)


def tiny_conv(seed: int = 0) -> nn.Sequential:
    """8×8 grey input: conv 1→4 (3×3) → conv 4→6 (3×3) → flatten (6·4·4) → fc 96→7 → fc 7→3."""
    with torch.random.fork_rng(devices=[]):  # seeded weights, caller's RNG state untouched
        torch.manual_seed(seed)
        return nn.Sequential(
            OrderedDict(
                [
                    ("conv1", nn.Conv2d(1, 4, 3)),
                    ("relu1", nn.ReLU()),
                    ("conv2", nn.Conv2d(4, 6, 3)),
                    ("relu2", nn.ReLU()),
                    ("flatten", nn.Flatten()),
                    ("fc1", nn.Linear(96, 7)),
                    ("relu3", nn.ReLU()),
                    ("fc2", nn.Linear(7, 3)),
                ]
            )
        )


@pytest.fixture(name="tiny_conv")
def tiny_conv_builder():
    """:func:`tiny_conv` itself: tests call it for fresh, identically seeded copies."""
    return tiny_conv
