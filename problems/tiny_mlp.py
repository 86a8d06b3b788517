"""A user's own problem: a small MLP on scikit-learn's digits, trained here in a second.

Search it from the repository root with::

    masksearch run --problem problems.tiny_mlp:make_problem --budget 400 --out runs/tiny

``masksearch report`` and ``masksearch export`` on that run directory rebuild it the same way.
A package makes its problems known by name with an entry point instead::

    [project.entry-points."masksearch.problems"]
    tiny_mlp = "mypkg.problems:make_problem"
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

import masksearch as ms


def make_problem(densities: Sequence[float] = (0.2, 0.1), device: str = "cpu") -> ms.PruningProblem:
    """MLP 64-32-10 on scikit-learn's digits, trained for 20 epochs (seed 0)."""
    digits = ms.load("digits")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    ms.train(model, digits.train, epochs=20, lr=0.05, seed=0)
    return ms.PruningProblem(model, digits, densities=densities, device=device, name="tiny_mlp")
