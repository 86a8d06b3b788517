"""RepairedEvaluator: scores after SGD steps on the kept weights, checked against torch.optim."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from masksearch import PruningProblem
from masksearch.data import Split
from masksearch.evaluators import PlainEvaluator, RepairedEvaluator
from masksearch.mask import Layout, Mask

from .conftest import random_masks, synthetic_split, tiny_convnet


def small_mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3)).eval()


@pytest.fixture
def setting():
    model = small_mlp()
    train = synthetic_split((12,), 48, classes=3, seed=1)
    val = synthetic_split((12,), 40, classes=3, seed=2)
    return model, train, val, Layout.of(model)


def test_no_steps_scores_exactly_as_the_plain_evaluator(setting):
    model, train, val, layout = setting
    masks = random_masks(layout, 5, np.random.default_rng(0))
    repaired = RepairedEvaluator(model, val, layout, train, steps=0)(masks)
    plain = PlainEvaluator(model, val, layout)(masks)
    np.testing.assert_array_equal(repaired["error"], plain["error"])
    np.testing.assert_allclose(repaired["loss"], plain["loss"], rtol=1e-12)


def test_repair_matches_torch_sgd_with_the_pruned_weights_pinned(setting):
    model, train, val, layout = setting
    mask = random_masks(layout, 1, np.random.default_rng(3))[0]
    steps, lr, momentum = 4, 0.05, 0.9
    # full-batch steps: every step sees the whole split, so the batch order cannot matter
    evaluator = RepairedEvaluator(
        model, val, layout, train, steps=steps, batch_size=len(train), lr=lr, momentum=momentum
    )
    repaired = evaluator.repaired_params(mask)

    reference = Mask.from_flat(layout, mask).apply(copy.deepcopy(model))
    keep = {n: t.to(torch.float32) for n, t in Mask.from_flat(layout, mask).tensors.items()}
    optimiser = torch.optim.SGD(reference.parameters(), lr=lr, momentum=momentum)
    for _ in range(steps):
        optimiser.zero_grad()
        nn.functional.cross_entropy(reference(train.x), train.y).backward()
        for name, param in reference.named_parameters():
            if name in keep:
                param.grad *= keep[name]
        optimiser.step()
    for name, param in reference.named_parameters():
        torch.testing.assert_close(repaired[name], param.detach(), rtol=1e-5, atol=1e-6)
        if name in keep:
            pruned = keep[name] == 0
            assert bool((repaired[name][pruned] == 0).all()), f"{name}: a pruned weight moved"
            assert not torch.equal(repaired[name][~pruned], model.state_dict()[name][~pruned])

    with torch.no_grad():
        logits = reference(val.x)
    expected_loss = float(nn.functional.cross_entropy(logits, val.y))
    expected_error = float((logits.argmax(1) != val.y).float().mean())
    scored = evaluator(mask[None])
    assert scored["loss"][0] == pytest.approx(expected_loss, rel=1e-5)
    assert scored["error"][0] == pytest.approx(expected_error)


def test_repair_lowers_the_loss_it_trains_on(setting):
    model, train, _, layout = setting
    masks = random_masks(layout, 6, np.random.default_rng(4))
    before = PlainEvaluator(model, train, layout)(masks)["loss"]
    after = RepairedEvaluator(model, train, layout, train, steps=5, batch_size=len(train), lr=0.02)(
        masks
    )["loss"]
    assert (after < before).all()


def test_a_masks_score_does_not_depend_on_its_population(setting):
    model, train, val, layout = setting
    masks = random_masks(layout, 4, np.random.default_rng(5))
    evaluator = RepairedEvaluator(model, val, layout, train, steps=3, batch_size=16, seed=7)
    together = evaluator(masks)
    alone = [evaluator(masks[i : i + 1]) for i in range(len(masks))]
    np.testing.assert_array_equal(together["loss"], [a["loss"][0] for a in alone])
    again = RepairedEvaluator(model, val, layout, train, steps=3, batch_size=16, seed=7)(masks)
    np.testing.assert_array_equal(together["loss"], again["loss"])


def test_convnet_with_batchnorm_keeps_its_running_statistics():
    model = tiny_convnet()
    layout = Layout.of(model)
    train = synthetic_split((1, 8, 8), 32, seed=1)
    val = synthetic_split((1, 8, 8), 16, seed=2)
    masks = random_masks(layout, 2, np.random.default_rng(6))
    evaluator = RepairedEvaluator(model, val, layout, train, steps=2, batch_size=8)
    before = model.bn1.running_mean.clone()
    scores = evaluator(masks)
    assert np.isfinite(scores["loss"]).all()
    torch.testing.assert_close(evaluator.repaired_params(masks[0])["bn1.running_mean"], before)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"repair_steps": -1}, "repair_steps must be a whole number >= 0"),
        ({"repair_steps": 2.5}, "repair_steps must be a whole number >= 0"),
        ({"repair_steps": 3, "train_data": None}, "pass train_data"),
        ({"repair_steps": 3, "evaluator": "incremental"}, "leave evaluator at 'auto'"),
    ],
)
def test_problem_refuses_a_repair_it_cannot_make(setting, options, message):
    model, train, val, _ = setting
    options = {"train_data": train, **options}
    with pytest.raises(ValueError, match=message):
        PruningProblem(model, val, **options)


def test_problem_with_repair_scores_with_it_and_says_so(setting):
    model, train, val, _ = setting
    problem = PruningProblem(model, val, train_data=train, repair_steps=2)
    assert isinstance(problem.evaluator, RepairedEvaluator)
    assert problem.settings()["repair_steps"] == 2
    genomes = problem.magnitude_genomes()
    direct = problem.evaluator(problem.encoding.decode(genomes))
    np.testing.assert_array_equal(problem.evaluate(genomes).metrics["loss"], direct["loss"])


def test_evaluator_refuses_bad_settings(setting):
    model, train, val, layout = setting
    with pytest.raises(ValueError, match="repair_steps must be a whole number >= 0"):
        RepairedEvaluator(model, val, layout, train, steps=-2)
    with pytest.raises(ValueError, match="lr > 0"):
        RepairedEvaluator(model, val, layout, train, lr=0.0)
    with pytest.raises(ValueError, match="training data is empty"):
        RepairedEvaluator(model, val, layout, Split(train.x[:0], train.y[:0]))


def _recalibrate(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Fresh batch-norm statistics, a plain average over ``batches``; back in eval mode."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        for x in batches:
            model(x)
    model.eval()


def test_recalibrated_batch_norm_matches_a_plain_re_estimation():
    model = tiny_convnet()
    layout = Layout.of(model)
    train = synthetic_split((1, 8, 8), 48, seed=1)
    val = synthetic_split((1, 8, 8), 24, seed=2)
    masks = random_masks(layout, 3, np.random.default_rng(8))
    evaluator = RepairedEvaluator(
        model, val, layout, train, steps=0, recalibrate_bn=3, batch_size=8, seed=4
    )
    scores = evaluator(masks)
    before = copy.deepcopy(model.state_dict())
    for row, flat in enumerate(masks):
        # independently: a masked copy, fresh statistics averaged over the same batches
        reference = Mask.from_flat(layout, flat).apply(copy.deepcopy(model))
        _recalibrate(reference, evaluator._bn_batches)
        with torch.no_grad():
            logits = reference(val.x)
        assert scores["loss"][row] == pytest.approx(
            float(nn.functional.cross_entropy(logits, val.y)), rel=1e-5
        )
        assert not torch.equal(reference.bn1.running_mean, before["bn1.running_mean"])
    # the evaluator's model is untouched: statistics, momentum and eval mode
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert model.bn1.momentum == 0.1 and not model.training


def test_problem_recalibrates_when_asked_and_refuses_what_it_cannot():
    model = tiny_convnet()
    train = synthetic_split((1, 8, 8), 16, seed=1)
    val = synthetic_split((1, 8, 8), 8, seed=2)
    problem = PruningProblem(model, val, train_data=train, recalibrate_bn=2)
    assert isinstance(problem.evaluator, RepairedEvaluator)
    assert problem.settings()["recalibrate_bn"] == 2 and problem.settings()["repair_steps"] == 0
    with pytest.raises(ValueError, match="recalibrate_bn must be a whole number >= 0"):
        PruningProblem(model, val, train_data=train, recalibrate_bn=-1)
    with pytest.raises(ValueError, match="recalibrate_bn needs training data"):
        PruningProblem(model, val, recalibrate_bn=2)
    with pytest.raises(ValueError, match="has no batch norm to recalibrate"):
        PruningProblem(
            small_mlp(),
            synthetic_split((12,), 8, classes=3),
            train_data=synthetic_split((12,), 8, classes=3),
            recalibrate_bn=2,
        )


def test_repair_steps_train_the_pruned_network_on_its_own_statistics():
    # recalibrate, then the SGD steps (eval mode), then recalibrate again: steps taken on the
    # dense network's statistics send a channel-pruned ResNet far off (issue 16)
    model = tiny_convnet()
    layout = Layout.of(model)
    train = synthetic_split((1, 8, 8), 48, seed=1)
    val = synthetic_split((1, 8, 8), 24, seed=2)
    masks = random_masks(layout, 2, np.random.default_rng(9))
    lr, momentum = 0.05, 0.9
    evaluator = RepairedEvaluator(
        model, val, layout, train, steps=3, recalibrate_bn=2, batch_size=8, lr=lr, momentum=momentum
    )
    scores = evaluator(masks)
    for row, flat in enumerate(masks):
        reference = Mask.from_flat(layout, flat).apply(copy.deepcopy(model))
        keep = {n: t.to(torch.float32) for n, t in Mask.from_flat(layout, flat).tensors.items()}
        _recalibrate(reference, evaluator._bn_batches)
        optimiser = torch.optim.SGD(reference.parameters(), lr=lr, momentum=momentum)
        for x, y in evaluator._batches:
            optimiser.zero_grad()
            nn.functional.cross_entropy(reference(x), y).backward()
            for name, param in reference.named_parameters():
                if name in keep:
                    param.grad *= keep[name]
            optimiser.step()
        _recalibrate(reference, evaluator._bn_batches)
        with torch.no_grad():
            logits = reference(val.x)
        assert scores["loss"][row] == pytest.approx(
            float(nn.functional.cross_entropy(logits, val.y)), rel=1e-4
        )
