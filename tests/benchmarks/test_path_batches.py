"""``benchmarks/path_batches.py``: the recipes it compares, their epochs and the summary."""

from __future__ import annotations

import statistics
import subprocess
import sys

import numpy as np
import pytest

from .conftest import BENCHMARKS, load_script


@pytest.fixture(scope="module")
def batches():
    return load_script("path_batches")


def test_the_first_recipe_is_the_best_runs_seeds(batches) -> None:
    # warm_start.py --init-epochs 4 --init-later-epochs 2,1 --init-branch-epochs 4,2,0
    # --init-lr 0.02 --init-lr-schedule cosine, with supermask's default batches of 128
    method = batches.method_for(*batches.RECIPES[0], seed=0)
    assert (method.batch_size, method.lr, method.lr_schedule) == (128, 0.02, "cosine")
    assert (method.epochs, method.later_epochs, method.branch_epochs) == (4, (2, 1), (4, 2, 0))
    assert len(set(batches.RECIPES)) == len(batches.RECIPES)


@pytest.mark.parametrize("recipe_index", range(9))
def test_each_recipe_sets_its_batches_step_and_epochs(batches, recipe_index: int) -> None:
    batch_size, lr, multiplier = batches.RECIPES[recipe_index]
    method = batches.method_for(batch_size, lr, multiplier, seed=7)
    assert (method.batch_size, method.lr, method.seed) == (batch_size, lr, 7)
    assert method.epochs_for(3) == pytest.approx(multiplier * (4 + 2 + 1 + 4 + 2))
    quick = batches.method_for(batch_size, lr, multiplier, seed=7, quick=True)
    assert quick.epochs_for(3) == pytest.approx(1 + 0.25 * 4)  # 2 later phases, 2 branches


def test_labels_name_the_recipe(batches) -> None:
    assert batches.label(256, 0.02, 1) == "batches of 256, Adam from 0.02"
    assert batches.label(512, 0.02, 2).endswith("every phase twice as long")
    assert len({batches.label(*recipe) for recipe in batches.RECIPES}) == len(batches.RECIPES)


def test_a_quick_recipe_learns_a_mask_per_density(batches, digits_problem) -> None:
    method = batches.method_for(256, 0.02, 2, seed=0, quick=True)
    masks = method.prune_each(digits_problem.model, digits_problem.train_data, batches.DENSITIES)
    for density, mask in zip(batches.DENSITIES, masks, strict=True):
        flat = mask.flat()
        assert int(np.count_nonzero(flat)) == max(1, round(density * flat.size))


def test_the_summary_and_its_table(batches) -> None:
    per_seed = [[0.886, 0.862, 0.815], [0.8875, 0.8615, 0.8135], [0.885, 0.8609, 0.8151]]
    row = batches.summarise("a recipe", 13.0, per_seed, [30.0, 32.0, 34.0])
    assert row["test_accuracy"]["0.02"] == [0.862, 0.8615, 0.8609]
    assert row["mean"]["0.05"] == pytest.approx(statistics.mean([0.886, 0.8875, 0.885]))
    assert row["std"]["0.01"] == pytest.approx(statistics.stdev([0.815, 0.8135, 0.8151]))
    assert row["seconds"] == 32.0
    assert batches.summarise("one seed", 13.0, [[0.88, 0.86, 0.81]], [1.0])["std"]["0.02"] == 0
    table = batches.markdown(
        {
            "command": "python benchmarks/path_batches.py",
            "densities": [0.05, 0.02, 0.01],
            "seeds": 3,
            "environment": {"cpu": {"model": "Some CPU"}},
            "rows": [row],
        }
    )
    assert "| recipe | epochs | 5% | 2% | 1% | s per run |" in table
    assert "| a recipe | 13 | 88.62% ± 0.13% | 86.15% ± 0.06% | 81.45% ± 0.09% | 32 |" in table
    assert "`python benchmarks/path_batches.py`; Some CPU" in table


def test_no_seeds_is_refused_before_any_training() -> None:
    finished = subprocess.run(
        [sys.executable, str(BENCHMARKS / "path_batches.py"), "--seeds", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 2
    assert "--seeds must be >= 1, got 0" in finished.stderr
