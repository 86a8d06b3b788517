"""``benchmarks/tuned_supermask.py``: the epoch ladder, the choice on validation, the summary."""

from __future__ import annotations

import json
import sys

import pytest

from .conftest import load_script


@pytest.fixture(scope="module")
def tuned():
    return load_script("tuned_supermask")


def test_the_ladder_doubles_and_stays_within_the_budget(tuned) -> None:
    assert tuned.ladder(1) == [1]
    assert tuned.ladder(2) == [1]
    assert tuned.ladder(3) == [1, 2]
    assert tuned.ladder(23) == [1, 2, 4, 8]
    assert tuned.ladder(31) == [1, 2, 4, 8, 16]
    for budget in range(1, 200):
        rungs = tuned.ladder(budget)
        assert sum(rungs) <= budget < sum(rungs) + 2 * rungs[-1]


def _source(tmp_path, fitness_split: str):
    row = {"test_accuracy": {"0.05": 0.88, "0.02": 0.86, "0.01": 0.83}, "wall_time": 10.0}
    runs = [
        {
            "seed": seed,
            "rows": {tuned_name: row for tuned_name in (GUARDED, "supermask, equal time (3 ep)")},
        }
        for seed in (0, 1)
    ]
    path = tmp_path / "warm_start_x.json"
    path.write_text(
        json.dumps(
            {
                "fitness_split": fitness_split,
                "problem": "lenet300_fashion",
                "init_lr": 0.02,
                "init_lr_schedule": "cosine",
                "runs": runs,
            }
        )
    )
    return path, runs


GUARDED = (
    "search from seeds, NSGA-II + gradient swaps, chosen on held-out validation, "
    "seeds kept unless beaten by 2 SE"
)
GUARDED_ERROR = (
    "search from seeds, NSGA-II + gradient swaps, chosen on held-out error, "
    "seeds kept unless beaten by 2 SE"
)


def test_a_validation_fitness_result_is_refused(tuned, tmp_path, monkeypatch, capsys) -> None:
    path, _ = _source(tmp_path, "val")
    monkeypatch.setattr(sys, "argv", ["tuned_supermask.py", str(path)])
    with pytest.raises(SystemExit):
        tuned.main()
    assert "--fitness-split train" in capsys.readouterr().err


def test_the_summary_takes_each_seeds_chosen_rung(tuned, tmp_path) -> None:
    _, source_runs = _source(tmp_path, "train")
    source = {"runs": source_runs}

    def rungs(best: int) -> dict:
        # the rung with the lowest validation loss is the one chosen, not the most accurate
        return {
            "rungs": [
                {"epochs": e, "val_loss": 1.0 if e != best else 0.5, "test_accuracy": e / 10}
                for e in (1, 2)
            ],
            "chosen_epochs": best,
        }

    runs = [
        {"seed": 0, "densities": {d: rungs(1) for d in ("0.05", "0.02", "0.01")}},
        {"seed": 1, "densities": {d: rungs(2) for d in ("0.05", "0.02", "0.01")}},
    ]
    summary = tuned.summarise(runs, source)
    assert summary["tuned"]["0.05"]["mean"] == pytest.approx(0.15)
    assert summary["guarded"]["0.02"]["mean"] == pytest.approx(0.86)
    assert summary["equal_time"]["0.01"]["std"] == 0.0
    assert "guarded_error" not in summary  # older runs have no pick guarded on the error
    # newer runs also guard on the held-out error: summarised and shown beside the loss's
    on_error = {"test_accuracy": {"0.05": 0.89, "0.02": 0.87, "0.01": 0.84}, "wall_time": 11.0}
    newer = {
        "runs": [{**run, "rows": {**run["rows"], GUARDED_ERROR: on_error}} for run in source_runs]
    }
    summary = tuned.summarise(runs, newer)
    assert summary["guarded_error"]["0.02"]["mean"] == pytest.approx(0.87)
    assert summary["guarded"]["0.02"]["mean"] == pytest.approx(0.86)
    payload = {
        "command": "python benchmarks/tuned_supermask.py x.json",
        "environment": {"cpu": {"model": "Some CPU"}},
        "recipe": {"lr": 0.02, "lr_schedule": "cosine"},
        "runs": [
            {**run, "budget_epochs": 3, "wall_time": 9.0, "equal_time_wall_time": 10.0}
            for run in runs
        ],
        "summary": summary,
    }
    text = tuned.markdown(payload)
    assert (
        "| search, the pick guarded on held-out error (the source run) | 89.00% ± 0.00% |" in text
    )
    assert "The pick guarded on error against the tuned supermask" in text


def test_the_lowest_validation_loss_is_chosen_not_the_best_test_accuracy(tuned) -> None:
    rungs = [
        {"epochs": 1, "val_loss": 0.40, "test_accuracy": 0.80},
        {"epochs": 2, "val_loss": 0.35, "test_accuracy": 0.79},
        {"epochs": 4, "val_loss": 0.35, "test_accuracy": 0.81},
    ]
    assert tuned.chosen_rung(rungs)["epochs"] == 2


def test_the_recipe_names_the_batch_size_only_where_it_was_set(tuned) -> None:
    assert tuned.recipe_text({"lr": 0.02, "lr_schedule": "cosine"}) == "Adam 0.02, cosine steps"
    recipe = {"lr": 0.02, "lr_schedule": "cosine", "batch_size": 256}
    assert tuned.recipe_text(recipe) == "Adam 0.02, cosine steps, batches of 256"
    smoothed = {**recipe, "label_smoothing": 0.1}
    assert tuned.recipe_text(smoothed) == (
        "Adam 0.02, cosine steps, batches of 256, label smoothing 0.1"
    )


def test_the_recipe_is_the_seeds_own(tuned) -> None:
    from masksearch.methods import make_method

    older = {"init_lr": 0.02, "init_lr_schedule": "cosine"}
    assert tuned.seeds_recipe(older) == {"lr": 0.02, "lr_schedule": "cosine"}
    assert tuned.seeds_recipe({**older, "init_batch_size": 128}) == tuned.seeds_recipe(older)
    source = {**older, "init_batch_size": 256, "init_label_smoothing": 0.1}
    recipe = tuned.seeds_recipe(source)
    method = make_method("supermask", epochs=1, **recipe)
    assert (method.lr, method.lr_schedule, method.batch_size, method.label_smoothing) == (
        0.02,
        "cosine",
        256,
        0.1,
    )
