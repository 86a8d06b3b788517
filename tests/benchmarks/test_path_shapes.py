"""``benchmarks/path_shapes.py``: the shapes it compares, their epochs and the summary."""

from __future__ import annotations

import statistics
import subprocess
import sys

import numpy as np
import pytest

from .conftest import load_script


@pytest.fixture(scope="module")
def shapes():
    return load_script("path_shapes")


def test_every_shape_walks_down_to_the_target(shapes) -> None:
    for label, densities, options in shapes.SHAPES:
        assert densities[-1] == shapes.TARGET, label
        assert list(densities) == sorted(densities, reverse=True), label
        assert len(options["later_epochs"]) == len(densities) - 1, label
        assert len(options["branch_epochs"]) == len(densities), label


def test_the_first_shape_is_the_best_runs_2_percent_seed(shapes) -> None:
    # warm_start.py --init-epochs 4 --init-later-epochs 2,1 --init-branch-epochs 4,2,0: the 2%
    # mask is 4 epochs at 5%, 2 at 2% and a branch of 2 (the 5% branch does not reach it)
    _, densities, options = shapes.SHAPES[0]
    assert densities == (0.05, 0.02)
    assert options == {"epochs": 4, "later_epochs": (2,), "branch_epochs": (0, 2)}


@pytest.mark.parametrize("quick", [False, True])
def test_methods_count_the_epochs_of_each_shape(shapes, quick: bool) -> None:
    made = shapes.methods(seed=3, quick=quick)
    assert [label for label, _, _ in made] == [label for label, _, _ in shapes.SHAPES]
    for (_, densities, method), (_, _, options) in zip(made, shapes.SHAPES, strict=True):
        assert method.seed == 3 and method.lr == 0.02 and method.lr_schedule == "cosine"
        if quick:
            expected = 1 + 0.25 * sum(
                1 for e in (*options["later_epochs"], *options["branch_epochs"]) if e
            )
        else:
            expected = (
                options["epochs"] + sum(options["later_epochs"]) + sum(options["branch_epochs"])
            )
        assert method.epochs_for(len(densities)) == pytest.approx(expected)


def test_a_quick_shape_learns_a_mask_at_the_target(shapes, digits_problem) -> None:
    _, densities, method = shapes.methods(seed=0, quick=True)[2]  # the one with a 3% step
    masks = method.prune_each(digits_problem.model, digits_problem.train_data, densities)
    assert len(masks) == len(densities)
    for density, mask in zip(densities, masks, strict=True):
        flat = mask.flat()
        kept, total = int(np.count_nonzero(flat)), flat.size
        assert kept == max(1, round(density * total))  # supermask's global top-k


def test_the_summary_and_its_table(shapes) -> None:
    row = shapes.summarise("a path", 8.0, [0.861, 0.8635, 0.859], [30.0, 32.0])
    assert row["mean"] == pytest.approx(statistics.mean([0.861, 0.8635, 0.859]))
    assert row["std"] == pytest.approx(statistics.stdev([0.861, 0.8635, 0.859]))
    assert row["seconds"] == 31.0
    assert shapes.summarise("one seed", 8.0, [0.86], [1.0])["std"] == 0.0
    table = shapes.markdown(
        {
            "command": "python benchmarks/path_shapes.py",
            "density": 0.02,
            "seeds": 3,
            "environment": {"cpu": {"model": "Some CPU"}},
            "rows": [row],
        }
    )
    assert "| a path | 8 | 86.12% ± 0.23% | 86.10% / 86.35% / 85.90% | 31 |" in table
    assert "`python benchmarks/path_shapes.py`; Some CPU" in table


def test_no_seeds_is_refused_before_any_training() -> None:
    from .conftest import BENCHMARKS

    finished = subprocess.run(
        [sys.executable, str(BENCHMARKS / "path_shapes.py"), "--seeds", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 2
    assert "--seeds must be >= 1, got 0" in finished.stderr
