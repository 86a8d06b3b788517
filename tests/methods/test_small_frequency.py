from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch
from scipy.stats import rankdata
from torch import nn

from masksearch.methods import MethodError, make_method
from masksearch.methods._util import rank_normalize
from masksearch.methods.small_frequency import (
    SmallWeightStatistic,
    importance,
    sample_steps,
    stage_sparsities,
    swap_step,
)


def test_probability_statistic_equals_a_hand_count_on_a_tiny_model(small_split):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 6), nn.ReLU(), nn.Linear(6, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    names = ["1.weight", "3.weight"]
    statistic = SmallWeightStatistic(alpha=0.5)
    snapshots = []
    for _ in range(5):  # weights move between samples, as during training
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(small_split.x), small_split.y).backward()
        optimizer.step()
        current = {n: p.detach().clone() for n, p in model.named_parameters() if n in names}
        snapshots.append(current)
        statistic.observe(current)
    probability = statistic.probability()
    for name in names:
        shape = snapshots[0][name].shape
        flat_snapshots = [s[name].reshape(-1).tolist() for s in snapshots]
        counts = [0] * len(flat_snapshots[0])
        for values in flat_snapshots:
            tau = 0.5 * statistics.pstdev(values)
            for i, value in enumerate(values):
                counts[i] += abs(value) < tau
        expected = torch.tensor([c / 5 for c in counts], dtype=torch.float64).reshape(shape)
        assert torch.equal(probability[name], expected)
    assert statistic.samples == 5


def test_statistic_needs_samples_and_a_positive_alpha():
    with pytest.raises(MethodError, match="no samples"):
        SmallWeightStatistic().probability()
    with pytest.raises(MethodError, match="alpha"):
        SmallWeightStatistic(alpha=0)


@pytest.mark.parametrize(
    ("n", "every", "window"), [(10, 3, None), (10, 3, 5), (7, 10, None), (1, 1, None), (12, 1, 4)]
)
def test_sample_steps_count_back_from_the_last_step(n, every, window):
    span = n if window is None else window
    expected = [s for s in range(n) if (n - 1 - s) % every == 0 and s >= n - span]
    assert sample_steps(n, every, window) == expected


def test_rank_normalize_matches_scipy_average_ranks():
    values = torch.tensor([[3.0, 1.0, 2.0], [2.0, 5.0, 1.0]])
    expected = (rankdata(values.numpy().ravel(), method="average") - 1) / 5
    np.testing.assert_allclose(rank_normalize(values).numpy().ravel(), expected)


def test_importance_combines_rank_normalised_terms():
    torch.manual_seed(0)
    p = {"w": torch.rand(4, 5).double()}
    w = {"w": torch.randn(4, 5)}
    dl = {"w": torch.rand(4, 5)}
    scores = importance(p, w, dl, (0.5, 0.3, 0.2))["w"].numpy().ravel()

    def ranks(values):
        return (rankdata(values.ravel(), method="average") - 1) / (values.size - 1)

    expected = (
        0.5 * ranks(1 - p["w"].numpy())
        + 0.3 * ranks(np.abs(w["w"].numpy()))
        + 0.2 * ranks(dl["w"].numpy())
    )
    np.testing.assert_allclose(scores, expected)


def test_swap_step_restores_stronger_pruned_weights_only():
    scores = torch.tensor([0.1, 0.9, 0.5, 0.8, 0.2, 0.7, 0.95, 0.3])
    keep = torch.tensor([True, True, True, True, False, False, False, False])
    # r = 2: weakest kept 0.1, 0.5; strongest pruned 0.95, 0.7 -> both pairs improve
    new, swaps = swap_step(scores, keep, 0.5)
    assert swaps == 2
    assert new.tolist() == [False, True, False, True, False, True, True, False]
    assert int(new.sum()) == int(keep.sum())
    # once no pruned weight beats a kept one nothing changes
    settled, swaps = swap_step(scores, new, 0.5)
    assert swaps == 0 and torch.equal(settled, new)


def test_stages_rise_in_steps_of_010_then_005_then_smaller():
    assert stage_sparsities(0.9) == pytest.approx(
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9]
    )
    assert stage_sparsities(0.99)[-5:] == pytest.approx([0.9, 0.95, 0.97, 0.98, 0.99])
    assert stage_sparsities(0.33) == pytest.approx([0.1, 0.2, 0.3, 0.33])
    steps = np.diff([0.0, *stage_sparsities(0.99)])
    assert steps.max() <= 0.1 + 1e-9
    assert stage_sparsities(0.0) == []


def test_small_frequency_logs_rounds_and_reaches_the_target(trained, digits):
    records = []
    method = make_method("small_frequency", fisher_samples=16, stages=(0.3, 0.6))
    model, mask = method.run(trained, digits, 0.4, epochs=3, progress=records.append)
    rounds = [r for r in records if r["event"] == "round"]
    assert {r["stage"] for r in rounds} == {1, 2}
    assert all(r["changed"] == r["pruned"] + r["restored"] for r in rounds)
    first_of_stage = [r for r in rounds if r["round"] == 1]
    assert [r["density"] for r in first_of_stage] == pytest.approx([0.7, 0.4], abs=1e-3)
    for stage in (1, 2):
        stage_rounds = [r for r in rounds if r["stage"] == stage]
        # a stage ends when it settles (< 0.1% changed) or its share of the budget is spent
        assert len(stage_rounds) <= 20
    assert mask.n_kept == round(0.4 * mask.n_total)
    assert records[-1]["epochs_used"] == pytest.approx(3.0)


def test_small_frequency_last_stage_must_be_the_target(trained, digits):
    with pytest.raises(MethodError, match="last stage"):
        make_method("small_frequency", stages=(0.3, 0.5)).run(trained, digits, 0.4, epochs=2)


def test_the_old_names_still_work():
    from masksearch.methods import METHODS, MethodB, SmallFrequencyGreedy
    from masksearch.methods import method_b as old_module

    assert old_module.MethodB is MethodB is SmallFrequencyGreedy
    assert old_module.stage_sparsities is stage_sparsities
    assert METHODS.get("method_b") is SmallFrequencyGreedy
    assert "method_b" not in list(METHODS)  # listed once, under the new name
    method = make_method("method_b", stages=(0.3, 0.5))
    assert isinstance(method, SmallFrequencyGreedy) and method.name == "small_frequency"
