"""``benchmarks/quality.py``: a "+bn" row's masks are reported as its search scored them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from masksearch import PruningProblem
from masksearch import data as datasets
from masksearch.data import Split
from masksearch.mask import Layout, Mask

from .conftest import load_script


@pytest.fixture(scope="module")
def quality():
    return load_script("quality")


def _bn_convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 3),
    ).eval()


def _split(n: int, seed: int) -> Split:
    generator = torch.Generator().manual_seed(seed)
    return Split(torch.randn(n, 1, 6, 6, generator=generator), torch.randint(0, 3, (n,)))


def test_recalibrated_mask_accuracy_is_what_a_bn_row_scores(quality):
    model = _bn_convnet()
    dataset = SimpleNamespace(train=_split(300, 1), test=_split(200, 2))
    layout = Layout.of(model)
    rng = np.random.default_rng(0)
    flat = rng.random(layout.n_total) < 0.3
    mask = Mask.from_flat(layout, flat)
    found = quality.mask_accuracies(model, mask, dataset.test, dataset.train, "cpu", has_bn=True)
    # the problem a "+bn" row searches with, scoring on the test split instead of validation
    problem = PruningProblem(
        model,
        dataset.test,
        train_data=dataset.train,
        recalibrate_bn=quality.RECALIBRATE_BN,
        densities=(0.3,),
    )
    scored = problem.evaluate(flat[None, :])
    assert found["test_accuracy_bn"] == pytest.approx(1.0 - scored.metrics["error"][0], abs=1e-9)
    assert found["test_accuracy"] != found["test_accuracy_bn"]  # re-estimation changed something
    plain = quality.mask_accuracies(model, mask, dataset.test, dataset.train, "cpu", has_bn=False)
    assert plain == {"test_accuracy": found["test_accuracy"], "test_accuracy_bn": None}


@pytest.mark.skipif(
    not datasets.available("fashion-mnist"), reason="builds lenet300_fashion: needs Fashion-MNIST"
)
def test_bn_rows_are_not_in_the_default_run_and_skip_models_without_batch_norm(quality, capsys):
    # the full default runs the two LeNets, which have no batch norm to re-estimate
    defaults = quality.FULL["solvers"].split(",")
    assert defaults and not set(defaults) & set(quality.PROBLEM_SETTINGS)
    args = quality.parse_args(
        [
            "--models", "lenet300_fashion", "--densities", "0.05", "--seeds", "1",
            "--solvers", "nsga2+ls+bn", "--oneshot", "none", "--training", "none",
            "--budget", "32", "--pop-size", "16", "--train-samples", "256",
        ]
    )  # fmt: skip
    result = quality.run_model("lenet300_fashion", args, print)
    assert result["runs"] == []
    assert "nsga2+ls+bn: skipped, lenet300_fashion has no batch norm" in capsys.readouterr().out
