"""Ready-made pruning problems (``problems.get(name)``, ``problems.list_problems()``)."""

from __future__ import annotations

from problems.catalogue import (
    CATALOGUE,
    ProblemInfo,
    default_problem_name,
    digits_mlp,
    get,
    lenet5_fashion,
    lenet300_fashion,
    list_problems,
    resnet20_cifar10,
)

__all__ = [
    "CATALOGUE",
    "ProblemInfo",
    "default_problem_name",
    "digits_mlp",
    "get",
    "lenet300_fashion",
    "lenet5_fashion",
    "list_problems",
    "resnet20_cifar10",
]
