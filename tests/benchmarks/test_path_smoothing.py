"""``benchmarks/path_smoothing.py``: its recipes, the rows it learns and its table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from .conftest import load_script


@pytest.fixture(scope="module")
def smoothing():
    return load_script("path_smoothing")


@pytest.mark.parametrize("recipe_index", range(7))
def test_each_recipe_is_the_best_runs_path_with_its_batches_and_smoothing(
    smoothing, recipe_index: int
) -> None:
    batch_size, label_smoothing = smoothing.RECIPES[recipe_index]
    method = smoothing._method_of(smoothing.RECIPES[recipe_index], False, 5)
    assert (method.batch_size, method.label_smoothing, method.seed) == (
        batch_size,
        label_smoothing,
        5,
    )
    assert (method.lr, method.lr_schedule) == (0.02, "cosine")
    assert (method.epochs, method.later_epochs, method.branch_epochs) == (4, (2, 1), (4, 2, 0))
    quick = smoothing._method_of(smoothing.RECIPES[recipe_index], True, 5)
    assert quick.epochs_for(3) == pytest.approx(1 + 0.25 * 4)


def test_every_batch_size_has_a_plain_row_to_compare_with(smoothing) -> None:
    assert len(set(smoothing.RECIPES)) == len(smoothing.RECIPES)
    for batch_size in {batch for batch, _ in smoothing.RECIPES}:
        assert (batch_size, 0.0) in smoothing.RECIPES
    labels = {smoothing.label(*recipe) for recipe in smoothing.RECIPES}
    assert len(labels) == len(smoothing.RECIPES)
    assert smoothing.label(256, 0.0) == "batches of 256, plain labels"
    assert smoothing.label(128, 0.1) == "batches of 128, label smoothing 0.1"


def _accuracy_by_hand(model, mask, split) -> float:
    """Accuracy with each masked weight multiplied by its mask, through functional_call."""
    masked = {
        name: value.detach() * mask.tensors[name].to(value.dtype)
        if name in mask.tensors
        else value.detach()
        for name, value in model.named_parameters()
    }
    assert set(mask.tensors) <= set(masked)  # every mask met its weight
    with torch.no_grad():
        logits = torch.func.functional_call(model, masked, (split.x,))
    return int((logits.argmax(1) == split.y).sum()) / len(split.y)


def test_learn_rows_gives_each_recipe_every_seed_in_order(smoothing, digits_problem) -> None:
    recipes = [
        (smoothing.label(64, 0.0), lambda seed: smoothing._method_of((64, 0.0), True, seed)),
        (smoothing.label(64, 0.2), lambda seed: smoothing._method_of((64, 0.2), True, seed)),
    ]
    rows = load_script("path_batches").learn_rows(digits_problem, 2, recipes)
    assert [row["recipe"] for row in rows] == [name for name, _ in recipes]
    for row, (_, method_of) in zip(rows, recipes, strict=True):
        assert all(len(row["test_accuracy"][d]) == 2 for d in ("0.05", "0.02", "0.01"))
        # seed 1's accuracies, from its masks learned again and applied by hand
        masks = method_of(1).prune_each(
            digits_problem.model, digits_problem.train_data, (0.05, 0.02, 0.01)
        )
        by_hand = [
            _accuracy_by_hand(digits_problem.model, m, digits_problem.test_data) for m in masks
        ]
        found = [row["test_accuracy"][d][1] for d in ("0.05", "0.02", "0.01")]
        assert found == pytest.approx(by_hand, abs=1e-9)
        assert row["mean"]["0.02"] == pytest.approx(np.mean(row["test_accuracy"]["0.02"]))
    assert rows[0]["test_accuracy"] != rows[1]["test_accuracy"]  # the smoothing mattered


def test_the_table_names_the_recipe_and_keeps_path_batches_columns(smoothing) -> None:
    row = load_script("path_batches").summarise(
        "batches of 256, label smoothing 0.1", 13.0, [[0.885, 0.864, 0.824]], [25.0]
    )
    table = smoothing.markdown(
        {
            "command": "python benchmarks/path_smoothing.py",
            "densities": [0.05, 0.02, 0.01],
            "seeds": 1,
            "environment": {"cpu": {"model": "Some CPU"}},
            "lr": 0.02,
            "rows": [row],
        }
    )
    assert table.startswith("# supermask-path: label smoothing in the seeds' loss")
    assert "`python benchmarks/path_smoothing.py`; Some CPU" in table
    assert "Adam from 0.02 annealed" in table
    assert "| recipe | epochs | 5% | 2% | 1% | s per run |" in table
    assert (
        "| batches of 256, label smoothing 0.1 | 13 | 88.50% ± 0.00% | 86.40% ± 0.00% "
        "| 82.40% ± 0.00% | 25 |"
    ) in table
