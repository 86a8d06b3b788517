"""``benchmarks/path_lenet5.py``: its recipes, the seeding it composes and its table."""

from __future__ import annotations

import numpy as np
import pytest

from masksearch.methods import Supermask, SupermaskPath

from .conftest import load_script

DENSITIES = (0.05, 0.02, 0.01)


@pytest.fixture(scope="module")
def lenet5():
    return load_script("path_lenet5")


def test_the_first_recipe_is_the_best_lenet5_runs_seeding(lenet5) -> None:
    # warm_start.py --problem lenet5_fashion --init-method supermask-path --init-epochs 3
    # --init-branch-epochs 3,1 --init-sparsest-epochs 2 --init-lr 0.02 --init-lr-schedule cosine
    method = lenet5.method_for(lenet5.RECIPES[0], seed=4)
    path, (fresh,) = method.path, method.fresh
    assert (path.epochs, path.later_epochs, path.branch_epochs) == (3, 1.0, (3.0, 1.0))
    assert (path.lr, path.lr_schedule, path.batch_size, path.label_smoothing) == (
        0.02,
        "cosine",
        128,
        0.0,
    )
    assert (fresh.epochs, fresh.lr, fresh.lr_schedule, fresh.batch_size) == (
        2,
        0.02,
        "cosine",
        128,
    )
    assert path.seed == fresh.seed == 4
    assert method.epochs_for(3) == pytest.approx(3 + 1 + 3 + 1 + 2)


@pytest.mark.parametrize("recipe_index", range(4))
def test_each_recipe_gives_every_run_its_batches_and_loss(lenet5, recipe_index: int) -> None:
    recipe = lenet5.RECIPES[recipe_index]
    method = lenet5._method_of(recipe, False, 2)
    for part in (method.path, *method.fresh):
        assert (part.batch_size, part.label_smoothing, part.seed) == (
            recipe.batch_size,
            recipe.label_smoothing,
            2,
        )
    if recipe.fresh_epochs_at_2:
        # the path ends at 5%: its phase and branch there, then two fresh runs
        assert [m.epochs for m in method.fresh] == [recipe.fresh_epochs_at_2, 2]
        expected = 3 + recipe.branch_epochs[0] + recipe.fresh_epochs_at_2 + 2
        quick = 1 + 0.25 + 1 + 1
    else:
        assert [m.epochs for m in method.fresh] == [recipe.sparsest_epochs]
        expected = (
            3
            + recipe.later_epochs
            + recipe.branch_epochs[0]
            + recipe.branch_epochs[1]
            + recipe.sparsest_epochs
        )
        quick = 1 + 0.25 * 3 + 1
    assert method.epochs_for(3) == pytest.approx(expected)
    assert lenet5._method_of(recipe, True, 2).epochs_for(3) == pytest.approx(quick)


def test_labels_are_distinct_and_name_what_changed(lenet5) -> None:
    labels = [recipe.label() for recipe in lenet5.RECIPES]
    assert len(set(labels)) == len(labels) == len(set(lenet5.RECIPES))
    assert labels[0] == "batches of 128, plain labels"
    assert labels[2] == "batches of 256, label smoothing 0.1"
    assert labels[3].endswith("2% from fresh scores (5 epochs)")
    longer = lenet5.Recipe(later_epochs=2.0, branch_epochs=(3.0, 2.0), sparsest_epochs=3)
    assert longer.label().endswith("2% for 2+2 epochs, 1% for 3")


def test_the_seeding_is_a_path_then_a_fresh_sparsest_mask(lenet5, digits_problem) -> None:
    recipe = lenet5.Recipe(label_smoothing=0.1)
    masks = lenet5.method_for(recipe, seed=1, quick=True).prune_each(
        digits_problem.model, digits_problem.train_data, DENSITIES
    )
    options = {"lr": 0.02, "lr_schedule": "cosine", "label_smoothing": 0.1, "seed": 1}
    path = SupermaskPath(epochs=1, later_epochs=0.25, branch_epochs=(0.25, 0.25), **options)
    expected = path.prune_each(digits_problem.model, digits_problem.train_data, DENSITIES[:2]) + [
        Supermask(epochs=1, **options).prune(digits_problem.model, digits_problem.train_data, 0.01)
    ]
    for density, mask, by_hand in zip(DENSITIES, masks, expected, strict=True):
        flat = mask.flat()
        assert int(np.count_nonzero(flat)) == max(1, round(density * flat.size))
        np.testing.assert_array_equal(flat, by_hand.flat())


def test_a_fresh_2_percent_mask_leaves_the_5_and_1_percent_masks_alone(
    lenet5, digits_problem
) -> None:
    # what lets the table read each density's change on its own
    on_path, fresh = (
        lenet5.method_for(recipe, seed=0, quick=True).prune_each(
            digits_problem.model, digits_problem.train_data, DENSITIES
        )
        for recipe in (lenet5.RECIPES[1], lenet5.RECIPES[3])
    )
    np.testing.assert_array_equal(on_path[0].flat(), fresh[0].flat())
    np.testing.assert_array_equal(on_path[2].flat(), fresh[2].flat())
    assert not np.array_equal(on_path[1].flat(), fresh[1].flat())
    by_hand = Supermask(epochs=1, lr=0.02, lr_schedule="cosine", label_smoothing=0.1, seed=0).prune(
        digits_problem.model, digits_problem.train_data, 0.02
    )
    np.testing.assert_array_equal(fresh[1].flat(), by_hand.flat())


def test_the_table_names_lenet5_and_keeps_path_batches_columns(lenet5) -> None:
    row = load_script("path_batches").summarise(
        "batches of 128, label smoothing 0.1", 10.0, [[0.897, 0.861, 0.821]], [140.0]
    )
    table = lenet5.markdown(
        {
            "command": "python benchmarks/path_lenet5.py",
            "densities": list(DENSITIES),
            "seeds": 1,
            "problem": "lenet5_fashion",
            "environment": {"cpu": {"model": "Some CPU"}},
            "lr": 0.02,
            "rows": [row],
        }
    )
    assert table.startswith("# supermask-path on LeNet-5")
    assert "`python benchmarks/path_lenet5.py`; Some CPU. LeNet-5 on Fashion-MNIST" in table
    assert "| recipe | epochs | 5% | 2% | 1% | s per run |" in table
    assert (
        "| batches of 128, label smoothing 0.1 | 10 | 89.70% ± 0.00% | 86.10% ± 0.00% "
        "| 82.10% ± 0.00% | 140 |"
    ) in table
