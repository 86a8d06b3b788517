"""make_evaluator: the one entry point the search uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from masksearch.evaluators import (
    BatchedEvaluator,
    IncrementalEvaluator,
    PlainEvaluator,
    PrefixCacheEvaluator,
    SuccessiveHalvingEvaluator,
    UnsupportedModelError,
    make_evaluator,
)
from masksearch.mask import Layout

from .conftest import random_masks, tiny_convnet


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("plain", PlainEvaluator),
        ("batched", BatchedEvaluator),
        ("incremental", IncrementalEvaluator),
        ("prefix", PrefixCacheEvaluator),
    ],
)
def test_kinds_build_their_evaluator_and_agree(mlp, mlp_split, kind, cls):
    evaluator = make_evaluator(mlp, mlp_split, kind=kind)
    assert isinstance(evaluator, cls)
    assert evaluator.layout == Layout.of(mlp)
    masks = random_masks(evaluator.layout, 3, np.random.default_rng(0))
    reference = PlainEvaluator(mlp, mlp_split, evaluator.layout)(masks)
    np.testing.assert_allclose(evaluator(masks)["loss"], reference["loss"], atol=1e-5)


def test_auto_picks_incremental_for_mlps_prefix_for_sequential_convnets_on_cpu(
    mlp, mlp_split, convnet, conv_split
):
    assert isinstance(make_evaluator(mlp, mlp_split, kind="auto"), IncrementalEvaluator)
    assert isinstance(make_evaluator(convnet, conv_split), PrefixCacheEvaluator)


def test_auto_falls_back_to_plain_for_models_that_are_not_sequential(conv_split):
    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = tiny_convnet(seed=5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    assert isinstance(make_evaluator(Wrapped(), conv_split), PlainEvaluator)


def test_incremental_on_a_convnet_is_refused(convnet, conv_split):
    with pytest.raises(UnsupportedModelError):
        make_evaluator(convnet, conv_split, kind="incremental")


def test_unknown_kind_and_device_are_refused(mlp, mlp_split):
    with pytest.raises(ValueError, match="kind"):
        make_evaluator(mlp, mlp_split, kind="fast")
    with pytest.raises(ValueError, match="device"):
        make_evaluator(mlp, mlp_split, device="tpu")


def test_options_reach_the_evaluator(mlp, mlp_split):
    evaluator = make_evaluator(mlp, mlp_split, kind="plain", batch_size=7)
    assert evaluator.batch_size == 7


def test_fidelities_build_successive_halving(mlp, mlp_split):
    evaluator = make_evaluator(mlp, mlp_split, kind="plain", fidelities=(24, 48), promote=0.5)
    assert isinstance(evaluator, SuccessiveHalvingEvaluator)
    assert [rung.n_samples for rung in evaluator.rungs] == [24, 48, len(mlp_split.y)]
    result = evaluator(random_masks(evaluator.layout, 8, np.random.default_rng(1)))
    # 8 → 4 promoted to 48 samples → 2 promoted to the full split
    assert sorted(result["fidelity"].tolist()) == [0.25] * 4 + [0.5] * 2 + [1.0] * 2
    with pytest.raises(ValueError, match="fidelities"):
        make_evaluator(mlp, mlp_split, fidelities=(500,))
