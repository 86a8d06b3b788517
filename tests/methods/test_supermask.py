from __future__ import annotations

import copy
import math

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


def test_supermask_path_starts_as_supermask_and_keeps_each_density(trained, digits):
    before = copy.deepcopy(trained)
    records = []
    path = make_method("supermask-path", epochs=2, seed=1)
    densities = [0.05, 0.2, 0.1]  # any order in, the same order out
    masks = path.prune_each(trained, digits, densities, progress=records.append)
    assert [m.n_kept for m in masks] == [round(d * masks[0].n_total) for d in densities]
    # the densest phase is plain supermask with the same options
    alone = make_method("supermask", epochs=2, seed=1).prune(trained, digits, 0.2)
    assert masks[1] == alone
    for (name, p), (_, q) in zip(
        trained.named_parameters(), before.named_parameters(), strict=True
    ):
        assert torch.equal(p, q), name
    # 2 epochs at 20%, then 1 epoch (half) at 10% and at 5%
    used = [r["epochs_used"] for r in records if r["event"] == "epoch"]
    assert used == [1.0, 2.0, 3.0, 4.0]
    assert path.epochs_for(3) == 4.0
    assert [r["density"] for r in records if r["event"] == "done"] == [
        pytest.approx(m.density) for m in (masks[1], masks[2], masks[0])
    ]


def test_supermask_path_sparser_masks_continue_the_denser_scores(trained, digits):
    path = make_method("supermask-path", epochs=2, later_epochs=1, seed=0)
    _, sparse = path.prune_each(trained, digits, [0.2, 0.05])
    fresh = make_method("supermask", epochs=1, seed=0).prune(trained, digits, 0.05)
    assert sparse != fresh  # not a new run at 5%: it starts from the 20% scores

    def masked_loss(mask):
        return training.evaluate(mask.apply(copy.deepcopy(trained)), digits.train).loss

    assert masked_loss(sparse) < masked_loss(Mask.magnitude(trained, 0.05))


def test_supermask_path_per_layer_and_single_density(trained, digits):
    path = make_method("supermask-path", epochs=1, later_epochs=0.5)
    (one,) = path.prune_each(trained, digits, [0.1])
    assert one == make_method("supermask", epochs=1).prune(trained, digits, 0.1)
    assert path.prune(trained, digits, 0.1) == one
    dense, sparse = path.prune_each(trained, digits, [0.3, 0.1], scope="layer")
    for name, weight in prunable_weights(trained).items():
        assert int(dense.tensors[name].sum()) == round(0.3 * weight.numel())
        assert int(sparse.tensors[name].sum()) == round(0.1 * weight.numel())
    assert path.epochs_for(2) == 1.5


def test_supermask_path_takes_one_epoch_count_per_sparser_target(trained, digits):
    # phases (1, 0.5, 1): the first two masks are those of a path whose later phases are all
    # 0.5 epochs; the last continues from them for a whole epoch
    path = make_method("supermask-path", epochs=1, later_epochs=(0.5, 1), seed=0)
    masks = path.prune_each(trained, digits, [0.1, 0.3, 0.2])
    halves = make_method("supermask-path", epochs=1, later_epochs=0.5, seed=0)
    dense, middle, sparse = halves.prune_each(trained, digits, [0.3, 0.2, 0.1])
    assert masks[1] == dense and masks[2] == middle
    assert masks[0] != sparse  # its phase at 10% ran twice as long
    assert path.epochs_for(3) == 2.5
    with pytest.raises(MethodError, match=r"2 epoch counts .* for 1 target\(s\) after"):
        path.prune_each(trained, digits, [0.3, 0.1])
    # one density needs no later phase: it is Supermask's mask, as for a number
    (single,) = path.prune_each(trained, digits, [0.2])
    assert single == make_method("supermask", epochs=1, seed=0).prune(trained, digits, 0.2)
    assert path.epochs_for(1) == 1.0


def test_supermask_path_branch_trains_a_target_longer_and_leaves_the_path_alone(trained, digits):
    records = []
    branched = make_method(
        "supermask-path", epochs=1, later_epochs=0.5, branch_epochs=(1, 0, 0), seed=0
    )
    masks = branched.prune_each(trained, digits, [0.3, 0.2, 0.1], progress=records.append)
    plain = make_method("supermask-path", epochs=1, later_epochs=0.5, seed=0)
    dense, middle, sparse = plain.prune_each(trained, digits, [0.3, 0.2, 0.1])
    # the path resumes where the branch left it: the same scores, Adam state and batches
    assert masks[1] == middle and masks[2] == sparse
    assert masks[0] != dense and masks[0].n_kept == dense.n_kept
    # the branch is the path's 30% phase trained one epoch more, at 30%
    longer = make_method("supermask-path", epochs=1, later_epochs=1, seed=0)
    _, after_branch = longer.prune_each(trained, digits, [0.3, 0.3 - 1e-9])
    assert masks[0] == after_branch
    assert branched.epochs_for(3) == 3.0  # 1 + 0.5 + 0.5 on the path, 1 on the branch
    used = [r["epochs_used"] for r in records if r["event"] == "epoch"]
    assert used == sorted(used) and used[-1] == 3.0
    # one number: a branch at every target
    assert make_method("supermask-path", epochs=1, branch_epochs=2).epochs_for(2) == 6.0
    # one target: prune() and prune_each() train the same phase and branch
    single = make_method("supermask-path", epochs=1, branch_epochs=0.5, seed=0)
    (one,) = single.prune_each(trained, digits, [0.2])
    assert single.prune(trained, digits, 0.2) == one
    assert one != make_method("supermask", epochs=1, seed=0).prune(trained, digits, 0.2)
    with pytest.raises(MethodError, match=r"2 epoch counts .* for 3 target\(s\)"):
        make_method("supermask-path", branch_epochs=(1, 0)).prune_each(
            trained, digits, [0.3, 0.2, 0.1]
        )


@pytest.mark.parametrize("branch", [-1.0, "1", True, (), [1, "2"]])
def test_supermask_path_refuses_a_bad_branch_epochs(branch):
    with pytest.raises(MethodError, match="branch_epochs must"):
        make_method("supermask-path", branch_epochs=branch)


@pytest.mark.parametrize("later", [0, -1.0, "1", True, (1, 0), (), [1, "2"]])
def test_supermask_path_refuses_a_bad_later_epochs(later):
    with pytest.raises(MethodError, match="later_epochs must"):
        make_method("supermask-path", later_epochs=later)


def test_cosine_schedule_anneals_each_call_from_lr_to_zero(trained, digits, monkeypatch):
    # the step size each Adam step used, read from the optimiser as the step runs
    used: list[float] = []
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        used.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    path = make_method("supermask-path", epochs=1, lr=0.02, lr_schedule="cosine", seed=0)
    path.prune_each(trained, digits, [0.3, 0.1])
    steps = len(used) // 2  # one epoch per density: two equal calls
    assert len(used) == 2 * steps and steps > 2
    # each density starts again at lr and ends near 0: half a cosine over its steps
    expected = [0.01 * (1 + math.cos(math.pi * step / steps)) for step in range(steps)]
    assert used[:steps] == pytest.approx(expected) and used[steps:] == pytest.approx(expected)
    assert used[0] == pytest.approx(0.02) and used[steps - 1] < 0.1 * 0.02
    used.clear()
    make_method("supermask", epochs=1, lr=0.02).prune(trained, digits, 0.2)
    assert set(used) == {0.02}  # the default holds the step size


def test_cosine_schedule_changes_the_mask_and_stays_seeded(trained, digits):
    cosine = make_method("supermask", epochs=2, lr=0.05, lr_schedule="cosine", seed=1)
    first = cosine.prune(trained, digits, 0.1)
    assert first == cosine.prune(trained, digits, 0.1)
    assert first != make_method("supermask", epochs=2, lr=0.05, seed=1).prune(trained, digits, 0.1)


@pytest.mark.parametrize("schedule", ["cos", "linear", None])
def test_supermask_refuses_an_unknown_lr_schedule(schedule):
    with pytest.raises(MethodError, match="lr_schedule must be one of constant, cosine"):
        make_method("supermask-path", lr_schedule=schedule)


def test_label_smoothing_is_the_loss_every_step_and_changes_the_mask(trained, digits, monkeypatch):
    import masksearch.methods.supermask as supermask_module

    seen: list[float] = []
    original = supermask_module.F.cross_entropy

    def cross_entropy(logits, labels, **kwargs):
        seen.append(kwargs.get("label_smoothing", 0.0))
        return original(logits, labels, **kwargs)

    monkeypatch.setattr(supermask_module.F, "cross_entropy", cross_entropy)
    smoothed = make_method("supermask", epochs=2, lr=0.05, label_smoothing=0.2, seed=1)
    first = smoothed.prune(trained, digits, 0.1)
    assert seen and set(seen) == {0.2}
    assert first == smoothed.prune(trained, digits, 0.1)  # still seeded
    seen.clear()
    plain = make_method("supermask", epochs=2, lr=0.05, seed=1).prune(trained, digits, 0.1)
    assert set(seen) == {0.0}  # the default trains on the plain labels
    assert first != plain
    assert first.n_kept == plain.n_kept


@pytest.mark.parametrize("smoothing", [-0.1, 1.0, 1.5, "0.1", True, None])
def test_supermask_refuses_label_smoothing_outside_zero_to_one(smoothing):
    with pytest.raises(MethodError, match=r"label_smoothing must be a number in \[0, 1\)"):
        make_method("supermask-path", label_smoothing=smoothing)
