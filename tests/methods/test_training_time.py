from __future__ import annotations

import copy
import math
import statistics

import pytest
import torch

from masksearch import models
from masksearch.methods import METHODS, MethodError, TrainingMethod, make_method
from masksearch.methods._trainer import StepTrainer
from masksearch.methods.training_time import (
    dns_c_for_count,
    dns_thresholds,
    dns_update,
    dns_update_probability,
    gmp_sparsity,
    imp_schedule,
    split_steps,
)

from .conftest import prunable_weights

# small, fast settings for every method (B's Fisher term over 16 samples)
FAST = {"small_frequency": {"fisher_samples": 16, "chunk_size": 16}}
TRAINING = sorted(n for n, c in METHODS.items() if issubclass(c, TrainingMethod))
STEPS_PER_EPOCH = math.ceil(1197 / 128)  # digits train split, default batch size


def _run(name, model, digits, density, *, epochs=2, seed=0, **options):
    records = []
    method = make_method(name, **{**FAST.get(name, {}), **options})
    model, mask = method.run(
        model, digits, density, epochs=epochs, seed=seed, progress=records.append
    )
    return model, mask, records


@pytest.mark.parametrize("name", TRAINING)
def test_training_methods_prune_exactly_within_budget_and_repeat(trained, digits, name):
    density = 0.2
    start = copy.deepcopy(trained)
    model, mask, records = _run(name, trained, digits, density)
    weights = prunable_weights(model)
    n_total = sum(w.numel() for w in weights.values())
    assert abs(mask.n_kept - round(density * n_total)) <= len(weights)
    for layer, weight in weights.items():
        pruned = weight[~mask.tensors[layer]]
        assert bool((pruned == 0).all()), f"{name}: pruned weights of {layer} are not zero"
        assert not bool(torch.signbit(pruned).any()), f"{name}: -0.0 left in {layer}"
    assert records[-1]["event"] == "done"
    assert records[-1]["method"] == name
    assert 0 < records[-1]["epochs_used"] <= 2
    assert all(r.get("epochs_used", 0) <= 2 for r in records)
    _, again, _ = _run(name, start, digits, density)
    assert mask == again, f"{name}: same seed gave a different mask"


# -- GMP -----------------------------------------------------------------------------------


def test_gmp_sparsity_is_the_cubic_schedule():
    for step in range(0, 60, 7):
        expected = 0.9 + (0.1 - 0.9) * (1 - min(1.0, max(0, step - 10) / 40)) ** 3
        expected = 0.1 if step < 10 else expected
        assert gmp_sparsity(
            step, initial=0.1, final=0.9, start=10, interval=8, n_steps=5
        ) == pytest.approx(expected)


def test_gmp_density_follows_the_cubic_schedule_at_each_step(trained, digits):
    _, mask, records = _run("gmp", trained, digits, 0.1, pruning_steps=4, end_fraction=0.8)
    prunes = [r for r in records if r["event"] == "prune"]
    # 2 epochs = 20 steps; t0 = 0, the window ends at step 16, so Δt = 4 and n = 4
    assert [r["step"] for r in prunes] == [0, 4, 8, 12, 16]
    sizes = {n: w.numel() for n, w in prunable_weights(trained).items()}
    for j, record in enumerate(prunes):
        sparsity = 0.9 + (0.0 - 0.9) * (1 - j / 4) ** 3
        assert record["scheduled_sparsity"] == pytest.approx(sparsity)
        assert record["epochs_used"] * STEPS_PER_EPOCH == pytest.approx(record["step"])
        for name, layer_density in record["layer_densities"].items():
            assert round(layer_density * sizes[name]) == max(1, round((1 - sparsity) * sizes[name]))
    assert mask.layer_densities() == prunes[-1]["layer_densities"]


# -- DNS -----------------------------------------------------------------------------------


def test_dns_thresholds_use_mean_and_std_of_nonzero_magnitudes():
    weight = torch.tensor([0.0, -1.0, 2.0, -3.0, 0.5])
    values = [1.0, 2.0, 3.0, 0.5]
    t = statistics.fmean(values) + 0.7 * statistics.pstdev(values)
    a, b = dns_thresholds(weight, 0.7)
    assert a == pytest.approx(0.9 * t)
    assert b == pytest.approx(1.1 * t)
    assert dns_thresholds(weight, -10.0) == (0.0, 0.0)  # t = max(μ + cσ, 0)


def test_dns_splices_a_weight_back_once_its_shadow_grows_past_b():
    a, b = 0.9, 1.1
    mask = torch.tensor([True, False, False, True])
    weight = torch.tensor([0.5, 1.0, 0.2, 2.0])
    new = dns_update(weight, mask, a, b)
    # active 0.5 <= a is pruned; pruned 1.0 in (a, b] stays pruned; active 2.0 stays
    assert new.tolist() == [False, False, False, True]
    # the shadow value of weight 1 keeps training: it comes back only once |w| > b
    current = new
    for value, expected in [
        (1.05, False),
        (1.1, False),
        (-1.0999, False),
        (-1.12, True),
        (1.0, True),
    ]:
        weight[1] = value
        current = dns_update(weight, current, a, b)
        assert bool(current[1]) is expected, value


def test_dns_c_puts_the_threshold_at_the_kth_weight():
    torch.manual_seed(0)
    weight = torch.randn(50, 20)
    for count in (10, 100, 500):
        c = dns_c_for_count(weight, count)
        magnitude = weight.abs().reshape(-1)
        mean, std = float(magnitude.mean()), float(magnitude.std(unbiased=False))
        assert int((magnitude > mean + c * std).sum()) == count


def test_dns_update_probability():
    assert dns_update_probability(0, 1e-4, 1.0) == 1.0
    assert dns_update_probability(10_000, 1e-4, 1.0) == pytest.approx(0.5)
    assert dns_update_probability(30_000, 1e-4, 2.0) == pytest.approx(1 / 16)


def test_dns_logs_changes_and_projects_to_the_target(trained, digits):
    _, mask, records = _run("dns", trained, digits, 0.1, epochs=3)
    surgery = [r for r in records if r["event"] == "surgery"]
    assert surgery and all(r["changed"] == r["pruned"] + r["spliced"] for r in surgery)
    assert sum(r["pruned"] for r in surgery) > 0
    projection = next(r for r in records if r["event"] == "projection")
    assert projection["density"] == pytest.approx(mask.density)
    thresholds = records[0]
    assert thresholds["event"] == "thresholds" and set(thresholds["c"]) == set(mask.names)


def test_shadow_training_updates_pruned_weights_but_forwards_the_masked_ones(trained, digits):
    names = list(prunable_weights(trained))
    masks = {
        n: torch.rand(p.shape, generator=torch.Generator().manual_seed(1)) < 0.5
        for n, p in prunable_weights(trained).items()
    }
    before = {n: p.clone() for n, p in prunable_weights(trained).items()}
    settings = {
        "lr": 0.1,
        "batch_size": 2000,
        "optimizer": "sgd",
        "momentum": 0.0,
        "weight_decay": 0.0,
    }
    trainer = StepTrainer(
        trained, digits.train, names, settings=settings, seed=0, device="cpu", epochs=1
    )
    masked_model = copy.deepcopy(trained)
    with torch.no_grad():
        for name, param in masked_model.named_parameters():
            if name in masks:
                param.mul_(masks[name])
    expected_loss = torch.nn.functional.cross_entropy(masked_model(digits.train.x), digits.train.y)
    loss = trainer.train(1, masks, shadow=True)
    assert loss == pytest.approx(expected_loss.item(), rel=1e-5)
    expected_loss.backward()  # gradient at W ⊙ M, applied to every weight
    for name, param in prunable_weights(trained).items():
        grad = dict(masked_model.named_parameters())[name].grad
        torch.testing.assert_close(param, before[name] - 0.1 * grad)
        assert bool((param[~masks[name]] != 0).any())


def test_split_steps_refuses_a_budget_smaller_than_the_rounds():
    assert split_steps(10, 3, what="rounds") == [4, 3, 3]
    with pytest.raises(MethodError, match="raise epochs"):
        split_steps(2, 3, what="rounds")


# -- Han -------------------------------------------------------------------------------------


def test_han_prunes_below_q_sigma_per_layer(trained, digits):
    _, mask, records = _run("han", trained, digits, 0.2, rounds=2)
    rounds = [r for r in records if r["event"] == "round"]
    assert [r["round"] for r in rounds] == [1, 2]
    assert rounds[0]["density"] == pytest.approx(0.2**0.5, abs=1e-4)
    assert rounds[1]["density"] == pytest.approx(0.2, abs=1e-4)
    assert all(r["q"] > 0 for r in rounds)


# -- IMP -------------------------------------------------------------------------------------


def test_imp_schedule_prunes_20_percent_then_lands_on_the_target():
    rounds = imp_schedule([1000, 100], 500, [0.2, 0.1])
    assert rounds[0] == [800, 90]
    assert rounds[1] == [640, 81]
    assert sum(rounds[-1]) == 500
    assert rounds[2] == [512, 73]
    assert len(rounds) == 4  # 890 -> 721 -> 585 -> 500


def test_imp_rewinds_survivors_to_their_initial_values(digits):
    model = models.digits_mlp(seed=0)
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    checked = []

    def on_progress(record):
        if record["event"] != "rewind":
            return
        current = dict(model.named_parameters())
        for name, value in initial.items():
            param = current[name].detach()
            if name.endswith("weight"):
                keep = torch.tensor(record["layer_densities"][name])  # sanity: a density
                assert 0 < float(keep) <= 1
                survivors = param != 0
                assert torch.equal(param[survivors], value[survivors])
                assert int(survivors.sum()) == round(
                    record["layer_densities"][name] * value.numel()
                )
            else:
                assert torch.equal(param, value), name
        checked.append(record["round"])

    method = make_method("imp", train_first=True)
    method.run(model, digits, 0.5, epochs=2, progress=on_progress)
    assert checked == [1, 2, 3, 4]


def test_imp_late_rewinding_uses_weights_after_k_steps(digits):
    model = models.digits_mlp(seed=0)
    reference = copy.deepcopy(model)
    # the same first 3 steps, taken by hand
    settings = {
        "lr": 0.01,
        "batch_size": 128,
        "optimizer": "sgd",
        "momentum": 0.9,
        "weight_decay": 0.0,
    }
    names = list(prunable_weights(reference))
    trainer = StepTrainer(
        reference, digits.train, names, settings=settings, seed=0, device="cpu", epochs=1
    )
    trainer.train(
        3,
        {n: torch.ones_like(p, dtype=torch.bool) for n, p in prunable_weights(reference).items()},
        shadow=False,
    )
    early = {n: p.detach().clone() for n, p in reference.named_parameters()}
    seen = []

    def on_progress(record):
        if record["event"] == "rewind" and record["round"] == 1:
            for name, param in model.named_parameters():
                survivors = param.detach() != 0
                assert torch.equal(param.detach()[survivors], early[name][survivors])
            seen.append(True)

    make_method("imp", train_first=True, rewind_step=3).run(
        model, digits, 0.6, epochs=2, progress=on_progress
    )
    assert seen == [True]


def test_method_budget_too_small_is_a_clear_error(trained, digits):
    tiny = digits.train.subset(64)  # one step per epoch
    with pytest.raises(MethodError, match="raise epochs"):
        make_method("han", rounds=5).run(trained, tiny, 0.5, epochs=2)
    with pytest.raises(MethodError, match="epochs >="):
        make_method("small_frequency").run(trained, tiny, 0.01, epochs=1)


def test_oneshot_finetune_keeps_the_criterion_mask(trained, digits):
    expected = make_method("magnitude").prune(trained, digits, 0.3)
    model, mask, records = _run("oneshot_finetune", trained, digits, 0.3, epochs=1)
    assert mask == expected
    assert [r["event"] for r in records] == ["pruned", "epoch", "done"]
    assert records[-1]["epochs_used"] == 1.0
