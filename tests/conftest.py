from __future__ import annotations

import pytest

from masksearch import catalogue


@pytest.fixture(scope="session")
def digits_problem():
    """The embedded digits problem (dense model trained once and cached)."""
    return catalogue.digits_mlp()


def small_residual_problem(recalibrate_bn: int = 0):
    """A conv net with batch norm (statistics a re-estimation changes) and a residual add, on
    random data, with the groups encoding: the structured tests' problem."""
    import torch
    from torch import nn

    from masksearch import PruningProblem
    from masksearch.data import Split

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(8)
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(8)
            self.fc = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            stream = torch.relu(self.bn1(self.conv1(x)))
            stream = torch.relu(stream + self.bn2(self.conv2(stream)))
            return self.fc(stream.mean(dim=(2, 3)))

    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Net().eval()
        for module in (model.bn1, model.bn2):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    split = Split(torch.randn(96, 1, 6, 6, generator=generator), torch.arange(96) % 3)
    train = Split(torch.randn(256, 1, 6, 6, generator=generator), torch.arange(256) % 3)
    return PruningProblem(
        model,
        split,
        encoding="groups",
        densities=(0.6,),
        test_data=split,
        train_data=train,
        recalibrate_bn=recalibrate_bn,
    )


@pytest.fixture
def residual_problem():
    """:func:`small_residual_problem`, as a factory (``residual_problem(recalibrate_bn=2)``)."""
    return small_residual_problem
