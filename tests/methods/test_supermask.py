from __future__ import annotations

import copy

import pytest
import torch

from masksearch import training
from masksearch.mask import Mask, MaskError
from masksearch.methods import MethodError, make_method

from .conftest import prunable_weights


def test_supermask_keeps_the_density_and_leaves_weights_frozen(trained, digits):
    before = copy.deepcopy(trained)
    records = []
    mask = make_method("supermask", epochs=1).prune(trained, digits, 0.1, progress=records.append)
    assert mask.n_kept == round(0.1 * mask.n_total)
    for (name, p), (_, q) in zip(
        trained.named_parameters(), before.named_parameters(), strict=True
    ):
        assert torch.equal(p, q), name
    epochs = [r for r in records if r["event"] == "epoch"]
    assert len(epochs) == 1 and epochs[0]["changed_from_start"] > 0


def test_supermask_starts_from_magnitude_and_learns_a_better_mask(trained, digits):
    magnitude = Mask.magnitude(trained, 0.05)
    learned = make_method("supermask", epochs=3).prune(trained, digits, 0.05)
    assert learned != magnitude

    def masked_loss(mask):
        model = mask.apply(copy.deepcopy(trained))
        return training.evaluate(model, digits.train).loss

    assert masked_loss(learned) < masked_loss(magnitude)


def test_supermask_is_seeded(trained, digits):
    first = make_method("supermask", epochs=1, seed=2).prune(trained, digits, 0.2)
    again = make_method("supermask", epochs=1, seed=2).prune(trained, digits, 0.2)
    assert first == again


def test_layer_scope_holds_each_layer_count(trained, digits):
    mask = make_method("supermask", epochs=1).prune(trained, digits, 0.2, scope="layer")
    for name, weight in prunable_weights(trained).items():
        assert int(mask.tensors[name].sum()) == round(0.2 * weight.numel())


def test_refine_improves_a_random_mask_and_keeps_its_counts(trained, digits):
    start = make_method("random", seed=0).prune(trained, None, 0.2)
    method = make_method("supermask")
    refined = method.refine(trained, start, digits, epochs=2)
    assert refined.n_kept == start.n_kept
    per_layer = method.refine(trained, start, digits, epochs=1, scope="layer")
    for name in start.names:
        assert int(per_layer.tensors[name].sum()) == int(start.tensors[name].sum())

    def masked_loss(mask):
        return training.evaluate(mask.apply(copy.deepcopy(trained)), digits.train).loss

    assert masked_loss(refined) < masked_loss(start)


def test_refine_refuses_bad_input(trained, digits):
    method = make_method("supermask")
    with pytest.raises(TypeError, match="Mask"):
        method.refine(trained, {"fc1.weight": None}, digits)
    partial = Mask({"fc1.weight": torch.ones(128, 64, dtype=torch.bool)})
    with pytest.raises(MaskError, match="prunable weights"):
        method.refine(trained, partial, digits)
    with pytest.raises(MethodError, match="epochs must be >= 1"):
        method.refine(trained, Mask.magnitude(trained, 0.5), digits, epochs=0)
    with pytest.raises(MethodError, match="epochs must be >= 1"):
        make_method("supermask", epochs=0)
