"""``benchmarks/warm_start.py``: result files and the report name the seeding recipe."""

from __future__ import annotations

import argparse

import pytest

from .conftest import load_script


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


def test_another_batch_size_gets_its_own_files_and_is_named(warm) -> None:
    assert warm.result_suffix(_args(init_batch_size=256)) == (
        "_path_e4_l2-1_cos_lr0.02_bs256_b12288_train20000"
    )
    payload = {"init_method": "supermask-path", "init_epochs": 4, "init_later_epochs": 1.0}
    assert "batches of 256" in warm.seeding_text({**payload, "init_batch_size": 256})
    # the default, and older result files without the field, say nothing of batches
    assert "batches" not in warm.seeding_text({**payload, "init_batch_size": 128})
    assert "batches" not in warm.seeding_text(payload)


def test_a_batch_size_below_one_is_refused_before_any_training() -> None:
    import subprocess
    import sys

    from .conftest import BENCHMARKS

    finished = subprocess.run(
        [sys.executable, str(BENCHMARKS / "warm_start.py"), "--init-batch-size", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 2
    assert "--init-batch-size must be >= 1, got 0" in finished.stderr
