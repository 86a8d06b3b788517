from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from masksearch.mask import Mask
from masksearch.methods import MethodError, make_method
from masksearch.methods.large_plus_small import LargePlusSmallGA, large_plus_small_vs_magnitude
from masksearch.training import evaluate


def test_large_plus_small_keeps_the_large_weights_and_the_exact_budget(trained, digits) -> None:
    density = 0.1
    method = LargePlusSmallGA(generations=4, pop_size=8, val_samples=None)
    mask = method.prune(trained, digits, density)
    weights = np.concatenate(
        [
            p.detach().abs().reshape(-1).numpy()
            for p in (trained.fc1.weight, trained.fc2.weight, trained.fc3.weight)
        ]
    )
    n_total = weights.size
    budget = round(density * n_total)
    assert mask.n_kept == budget
    always = np.argsort(-weights, kind="stable")[: round(0.8 * budget)]
    assert mask.flat()[always].all()  # the top rho*K by magnitude are always kept


def test_large_plus_small_is_never_worse_than_magnitude_on_validation(trained, digits) -> None:
    density = 0.08
    mask = LargePlusSmallGA(generations=5, pop_size=8, val_samples=None).prune(
        trained, digits, density
    )
    magnitude = Mask.magnitude(trained, density)
    ours = evaluate(mask.apply(copy.deepcopy(trained)), digits.val).loss
    theirs = evaluate(magnitude.apply(copy.deepcopy(trained)), digits.val).loss
    assert ours <= theirs + 1e-6


def test_same_seed_same_mask(trained, digits) -> None:
    first = LargePlusSmallGA(generations=3, pop_size=8, seed=4).prune(trained, digits, 0.1)
    second = LargePlusSmallGA(generations=3, pop_size=8, seed=4).prune(trained, digits, 0.1)
    assert first == second


def test_comparison_in_one_call_fine_tunes_both(trained, digits) -> None:
    results = large_plus_small_vs_magnitude(
        trained, digits, 0.1, finetune_epochs=1, generations=2, pop_size=8
    )
    assert set(results) == {"large_plus_small", "magnitude"}
    for row in results.values():
        assert row["density"] == pytest.approx(0.1, abs=1e-3)
        assert 0.0 <= row["accuracy"] <= 1.0


def test_registered_and_validated() -> None:
    assert isinstance(make_method("large_plus_small"), LargePlusSmallGA)
    with pytest.raises(MethodError, match="rho"):
        LargePlusSmallGA(rho=1.5)
    with pytest.raises(Exception, match="density"):
        LargePlusSmallGA().prune(torch.nn.Linear(3, 3), None, 0.0)


def test_progress_records_are_json_safe(trained, digits) -> None:
    import json

    records: list[dict] = []
    LargePlusSmallGA(generations=2, pop_size=8).prune(trained, digits, 0.1, progress=records.append)
    assert [r["event"] for r in records][-1] == "done"
    json.dumps([r for r in records if r["event"] == "generation"])


def test_the_old_names_still_work() -> None:
    from masksearch.methods import METHODS, MethodA, method_a_vs_magnitude
    from masksearch.methods import method_a as old_module

    assert old_module.MethodA is MethodA is LargePlusSmallGA
    assert old_module.method_a_vs_magnitude is method_a_vs_magnitude
    assert method_a_vs_magnitude is large_plus_small_vs_magnitude
    assert "method_a" in METHODS and METHODS["method_a"] is LargePlusSmallGA
    assert "method_a" not in list(METHODS)  # listed once, under the new name
    method = make_method("method_a", generations=2)
    assert isinstance(method, LargePlusSmallGA) and method.name == "large_plus_small"
