from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from masksearch.evaluators import PlainEvaluator
from masksearch.mask import Layout, Mask
from masksearch.training import evaluate

from .conftest import edge_masks, random_masks, synthetic_split


def _independent(model, split, layout, masks):
    """Copy the model, zero the pruned weights with Mask.apply, run training.evaluate."""
    losses, errors = [], []
    for row in masks:
        pruned = Mask.from_flat(layout, row).apply(copy.deepcopy(model))
        result = evaluate(pruned, split, batch_size=37)
        losses.append(result.loss)
        errors.append(result.error)
    return np.array(losses), np.array(errors)


@pytest.mark.parametrize("which", ["mlp", "convnet"])
def test_plain_matches_mask_apply_and_training_evaluate(which, request):
    model = request.getfixturevalue(which)
    split = request.getfixturevalue("mlp_split" if which == "mlp" else "conv_split")
    layout = Layout.of(model)
    masks = np.concatenate([random_masks(layout, 4, np.random.default_rng(0)), edge_masks(layout)])
    result = PlainEvaluator(model, split, layout)(masks)
    losses, errors = _independent(model, split, layout, masks)
    np.testing.assert_allclose(result["loss"], losses, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(result["error"], errors)
    assert result["loss"].dtype == np.float64 and result["error"].dtype == np.float64


def test_batch_size_does_not_change_results(mlp, mlp_split):
    layout = Layout.of(mlp)
    masks = random_masks(layout, 3, np.random.default_rng(1))
    whole = PlainEvaluator(mlp, mlp_split, layout)(masks)
    batched = PlainEvaluator(mlp, mlp_split, layout, batch_size=10)(masks)
    np.testing.assert_allclose(whole["loss"], batched["loss"], rtol=1e-6)
    np.testing.assert_array_equal(whole["error"], batched["error"])


def test_the_users_model_is_left_alone(mlp_split):
    from masksearch import models

    model = models.digits_mlp(seed=5).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layout = Layout.of(model)
    evaluator = PlainEvaluator(model, mlp_split, layout)
    first = evaluator(np.zeros((1, layout.n_total), dtype=bool))
    assert model.training, "the caller's train/eval mode must not change"
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    # the evaluator works on a snapshot: editing the model afterwards changes nothing
    with torch.no_grad():
        model.fc3.bias.add_(5.0)
    again = evaluator(np.zeros((1, layout.n_total), dtype=bool))
    np.testing.assert_array_equal(first["loss"], again["loss"])


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_batch_size_is_rejected(mlp, mlp_split, bad):
    with pytest.raises((TypeError, ValueError), match="batch_size"):
        PlainEvaluator(mlp, mlp_split, Layout.of(mlp), batch_size=bad)


def test_masked_convolution_weights_are_channels_last_on_the_cpu(convnet, conv_split):
    # conv1 has one input channel, where NCHW and channels-last strides both count as
    # "contiguous": the weight must carry the channels-last strides for oneDNN to use them
    layout = Layout.of(convnet)
    evaluator = PlainEvaluator(convnet, conv_split, layout)
    flat = random_masks(layout, 1, np.random.default_rng(2))[0]
    params = evaluator.snapshot.masked_params(flat)
    for name in layout.names:
        weight = dict(convnet.named_parameters())[name].detach()
        expected = weight * torch.from_numpy(flat[layout.slice(name)]).view(weight.shape)
        assert torch.equal(params[name], expected), name
        if weight.dim() == 4:
            in_channels, height, width = weight.shape[1:]
            channels_last = (in_channels * height * width, 1, width * in_channels, in_channels)
            assert params[name].stride() == channels_last, name
        else:
            assert params[name].is_contiguous(), name


def test_convolutions_go_through_the_cpu_in_batches_of_256_by_default(convnet, mlp, mlp_split):
    split = synthetic_split((1, 8, 8), 600, seed=6)
    layout = Layout.of(convnet)
    masks = random_masks(layout, 3, np.random.default_rng(3))
    default = PlainEvaluator(convnet, split, layout)
    assert default.batch_size == 256
    # a model without convolutions keeps one pass over the whole split
    assert PlainEvaluator(mlp, mlp_split, Layout.of(mlp)).batch_size == len(mlp_split.y)
    result = default(masks)
    losses, errors = _independent(convnet, split, layout, masks)
    np.testing.assert_allclose(result["loss"], losses, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(result["error"], errors)
