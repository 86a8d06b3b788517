"""``benchmarks/warm_start.py``: result files and the report name the seeding recipe."""

from __future__ import annotations

import argparse
import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from .conftest import load_script, refused_options


@pytest.fixture(scope="module")
def warm():
    return load_script("warm_start")


def _args(**changes) -> argparse.Namespace:
    values = {
        "problem": "lenet300_fashion",
        "init_method": "supermask-path",
        "init_epochs": 4,
        "init_later_epochs": (2.0, 1.0),
        "init_branch_epochs": 0.0,
        "init_sparsest_epochs": 0,
        "init_lr": 0.02,
        "init_lr_schedule": "cosine",
        "init_batch_size": 128,
        "init_label_smoothing": 0.0,
        "label_smoothing": 0.0,
        "budget": 12288,
        "val_samples": None,
        "fitness_split": "train",
        "train_samples": 20000,
        "finetune": 0,
        "repair_steps": 0,
        "max_density": None,
        "quick": False,
    }
    return argparse.Namespace(**{**values, **changes})


def test_branches_get_their_own_result_files(warm) -> None:
    plain = warm.result_suffix(_args())
    branched = warm.result_suffix(_args(init_branch_epochs=(4.0, 2.0, 0.0)))
    assert plain == "_path_e4_l2-1_cos_lr0.02_b12288_train20000"
    assert branched == "_path_e4_l2-1_br4-2-0_cos_lr0.02_b12288_train20000"
    capped = warm.result_suffix(_args(max_density=0.06))
    assert capped == "_path_e4_l2-1_cos_lr0.02_b12288_train20000_max0.06"
    parse = warm.later_epochs
    assert parse("4,2,0") == (4.0, 2.0, 0.0) and parse("3") == 3.0
    with pytest.raises(argparse.ArgumentTypeError, match="e.g. 2,1"):
        parse("4,x")


def test_the_report_names_each_side_branch(warm) -> None:
    payload = {
        "init_method": "supermask-path",
        "init_epochs": 4,
        "init_later_epochs": [2.0, 1.0],
        "init_branch_epochs": [4.0, 2.0, 0.0],
    }
    text = warm.seeding_text(payload)
    assert "4 epoch(s) at 5%, then 2 at 2% and 1 at 1%" in text
    assert "side branches of 4 more at 5%, 2 more at 2% give" in text
    assert "at 1%" not in text.split("side branches")[1]  # no branch there
    assert "side branches" not in warm.seeding_text({**payload, "init_branch_epochs": 0.0})
    assert "side branches" not in warm.seeding_text({**payload, "init_branch_epochs": None})


def test_a_fresh_sparsest_seed_is_named_and_ends_the_path_earlier(warm) -> None:
    args = _args(
        problem="lenet5_fashion",
        init_epochs=3,
        init_later_epochs=1.0,
        init_branch_epochs=(3.0, 1.0),
        init_sparsest_epochs=2,
    )
    assert warm.result_suffix(args) == "_lenet5_path_e3_br3-1_sp2_cos_lr0.02_b12288_train20000"
    text = warm.seeding_text(
        {
            "init_method": "supermask-path",
            "init_epochs": 3,
            "init_later_epochs": 1.0,
            "init_branch_epochs": [3.0, 1.0],
            "init_sparsest_epochs": 2,
        }
    )
    assert "3 epoch(s) at 5%, then 1 at 2%, one run" in text
    assert "side branches of 3 more at 5%, 1 more at 2% give" in text
    assert text.endswith("the 1% seed from fresh scores, supermask 2 epoch(s)")
    plain = warm.seeding_text({"init_method": "supermask-path", "init_epochs": 4})
    assert "then 1 at 2% and at 1%, one run" in plain and "fresh" not in plain


def test_fresh_2_and_1_percent_seeds_end_the_path_at_5_percent(warm) -> None:
    parse = warm.sparsest_epochs
    assert parse("2") == 2 and parse("5,2") == (5, 2) and parse("0") == 0
    for bad in ("5,2,1", "x", "0,2", "2.5", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="e.g. 5,2"):
            parse(bad)
    assert warm.fresh_epochs(0) == () and warm.fresh_epochs(2) == (2,)
    assert warm.fresh_epochs([5, 2]) == (5, 2)
    args = _args(
        problem="lenet5_fashion",
        init_epochs=3,
        init_later_epochs=1.0,
        init_branch_epochs=3.0,
        init_sparsest_epochs=(5, 2),
    )
    assert warm.result_suffix(args) == "_lenet5_path_e3_br3_sp5-2_cos_lr0.02_b12288_train20000"
    text = warm.seeding_text(
        {
            "init_method": "supermask-path",
            "init_epochs": 3,
            "init_later_epochs": 1.0,
            "init_branch_epochs": 3.0,
            "init_sparsest_epochs": [5, 2],
        }
    )
    assert text.startswith("supermask-path, 3 epoch(s) at 5%; side branches of 3 more at 5% give")
    assert text.endswith(
        "the 2% seed from fresh scores, supermask 5 epoch(s), "
        "the 1% seed from fresh scores, supermask 2 epoch(s)"
    )


def test_path_seeds_are_magnitude_then_the_path_then_each_fresh_mask(warm, digits_problem) -> None:
    options = {"lr": 0.02, "lr_schedule": "cosine", "seed": 3}
    path = warm.SupermaskPath(epochs=1, branch_epochs=0.5, **options)
    fresh = [warm.Supermask(epochs=1, **options), warm.Supermask(epochs=2, **options)]
    seeds = warm.path_seeds(digits_problem, warm.PathThenFresh(path, tuple(fresh)))
    model, data = digits_problem.model, digits_problem.train_data
    expected = [
        # the problem's own targets for magnitude (digits: denser than the benchmark's)
        *(warm.make_method("magnitude").prune(model, data, d) for d in digits_problem.densities),
        path.prune(model, data, 0.05),
        fresh[0].prune(model, data, 0.02),
        fresh[1].prune(model, data, 0.01),
    ]
    assert seeds.genomes.shape[0] == len(expected)
    for genome, mask in zip(seeds.genomes, expected, strict=True):
        np.testing.assert_array_equal(genome.astype(bool), mask.flat().astype(bool))
    assert seeds.epochs == pytest.approx(1 + 0.5 + 1 + 2)


def test_another_batch_size_gets_its_own_files_and_is_named(warm) -> None:
    assert warm.result_suffix(_args(init_batch_size=256)) == (
        "_path_e4_l2-1_cos_lr0.02_bs256_b12288_train20000"
    )
    payload = {"init_method": "supermask-path", "init_epochs": 4, "init_later_epochs": 1.0}
    assert "batches of 256" in warm.seeding_text({**payload, "init_batch_size": 256})
    # the default, and older result files without the field, say nothing of batches
    assert "batches" not in warm.seeding_text({**payload, "init_batch_size": 128})
    assert "batches" not in warm.seeding_text(payload)


def test_label_smoothing_gets_its_own_files_and_is_named(warm) -> None:
    assert warm.result_suffix(_args(init_batch_size=256, init_label_smoothing=0.1)) == (
        "_path_e4_l2-1_cos_lr0.02_bs256_ls0.1_b12288_train20000"
    )
    payload = {"init_method": "supermask-path", "init_epochs": 4, "init_later_epochs": 1.0}
    named = warm.seeding_text({**payload, "init_label_smoothing": 0.1})
    assert named.endswith("supermask's loss with label smoothing 0.1")
    # none, and older result files without the field, say nothing of it
    assert "smoothing" not in warm.seeding_text({**payload, "init_label_smoothing": 0.0})
    assert "smoothing" not in warm.seeding_text(payload)


def test_a_smoothed_objective_gets_its_own_files_and_is_named(warm) -> None:
    smoothed = _args(init_batch_size=256, init_label_smoothing=0.1, label_smoothing=0.1)
    assert warm.result_suffix(smoothed) == (
        "_path_e4_l2-1_cos_lr0.02_bs256_ls0.1_b12288_train20000_objls0.1"
    )
    payload = {"fitness_split": "train", "fitness_samples": 20000}
    assert "label-smoothed by 0.1" in warm.fitness_images({**payload, "label_smoothing": 0.1})
    # the plain objective, and older result files without the field, say nothing of it
    assert "smoothed" not in warm.fitness_images({**payload, "label_smoothing": 0.0})
    assert "smoothed" not in warm.fitness_images(payload)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--init-batch-size", "0", "--init-batch-size must be >= 1, got 0"),
        ("--init-label-smoothing", "1", "--init-label-smoothing must be in [0, 1), got 1.0"),
        ("--init-label-smoothing", "-0.1", "--init-label-smoothing must be in [0, 1), got -0.1"),
        ("--label-smoothing", "1", "--label-smoothing must be in [0, 1), got 1.0"),
    ],
)
def test_a_bad_recipe_option_is_refused_before_any_training(option, value, message) -> None:
    assert message in refused_options("warm_start", option, value)


def _error_by_hand(model, flat: np.ndarray, layout, split) -> float:
    """0/1 error of ``model`` with the flat mask applied by multiplying each weight tensor."""
    masked = copy.deepcopy(model)
    offset = 0
    with torch.no_grad():
        for name in layout.names:
            weight = masked.get_parameter(name)
            size = weight.numel()
            keep = torch.from_numpy(flat[offset : offset + size].reshape(weight.shape))
            weight.mul_(keep.to(weight.dtype))
            offset += size
        predictions = masked(split.x).argmax(1)
    return float((predictions != split.y).float().mean())


def test_held_out_rows_choose_on_the_objective_and_guard_the_seeds(warm, digits_problem) -> None:
    problem = digits_problem
    layout = problem.layout
    rng = np.random.default_rng(0)

    def masks_at(density: float, count: int) -> np.ndarray:
        kept = round(density * layout.n_total)
        rows = np.zeros((count, layout.n_total), dtype=bool)
        for row in rows:
            row[rng.choice(layout.n_total, kept, replace=False)] = True
        return rows

    front = np.concatenate([masks_at(d, 4) for d in warm.DENSITIES])
    seed_masks = np.concatenate([masks_at(d, 1) for d in warm.DENSITIES])
    result = SimpleNamespace(front=SimpleNamespace(genomes=front))
    seeds = SimpleNamespace(genomes=seed_masks)
    held_out = problem.test_data
    candidates = np.concatenate([front, seed_masks])
    errors = np.array([_error_by_hand(problem.model, m, layout, held_out) for m in candidates])
    _, chosen = warm.held_out_row(problem, result, seeds, held_out, objective="error")
    for density in warm.DENSITIES:
        eligible = np.flatnonzero(candidates.sum(1) <= round(density * layout.n_total))
        best = eligible[np.argmin(errors[eligible])]  # the first wins a tie, as documented
        assert np.array_equal(chosen[str(density)].flat(), candidates[best])
    # guarded: the best seed is kept unless a front member's error is lower by 2 SE
    _, guarded = warm.held_out_row(
        problem, result, seeds, held_out, guarded=True, objective="error"
    )
    for density in warm.DENSITIES:
        picked = guarded[str(density)].flat()
        seed_best = [
            row
            for row in range(len(front), len(candidates))
            if candidates[row].sum() <= round(density * layout.n_total)
        ]
        best_seed = min(seed_best, key=lambda row: (errors[row], row))
        if not np.array_equal(picked, candidates[best_seed]):
            # a challenger was taken: it must be strictly better on the error
            (row,) = [r for r in range(len(candidates)) if np.array_equal(candidates[r], picked)]
            assert errors[row] < errors[best_seed]
