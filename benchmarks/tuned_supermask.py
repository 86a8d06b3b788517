"""Supermask given a search's time with its epoch count chosen on validation images (issue 14).

    python benchmarks/tuned_supermask.py benchmarks/results/epyc-avx2/<warm_start result>.json
    python benchmarks/tuned_supermask.py <result>.json --seeds 1 --quick     # a smoke run

``warm_start.py``'s "supermask, equal time" row trains as many epochs per target density as the
seeded search's whole wall time buys. Past a few epochs more training lowers supermask's 2% and
1% masks, so that rival over-trains, where a user of gradient mask learning would choose the
epoch count on validation images. This benchmark gives supermask the same budget, per seed and
per density: the equal-time row's epochs, spent on a ladder of runs from fresh scores with the
same recipe (1, 2, 4, 8… epochs, as many rungs as fit in the budget), keeping the run whose mask
has the lowest loss on the validation split. The result file must come from a search whose
fitness judged training images (``--fitness-split train``), which leaves that split unseen by
the search as well. Test accuracy, masks only, mean ± std over the result's seeds; every
rung's test accuracy is reported too.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import statistics
import time
from pathlib import Path

from _common import build, environment, pin_dense_models, test_accuracy, write_results
from warm_start import GUARDED_ERROR, compare, seeds_recipe

import masksearch as ms
from masksearch.methods import make_method
from masksearch.training import evaluate

DENSITIES = (0.05, 0.02, 0.01)
EQUAL_TIME = re.compile(r"supermask, equal time \((\d+) ep\)")
GUARDED = (
    "search from seeds, NSGA-II + gradient swaps, chosen on held-out validation, "
    "seeds kept unless beaten by 2 SE"
)


def ladder(budget: int) -> list[int]:
    """Epoch counts 1, 2, 4, … whose total stays within ``budget`` epochs."""
    rungs, epochs = [], 1
    while sum(rungs) + epochs <= budget:
        rungs.append(epochs)
        epochs *= 2
    return rungs


def chosen_rung(rungs: list[dict]) -> dict:
    """The run whose mask has the lowest validation loss (the shorter run on a tie)."""
    return min(rungs, key=lambda rung: (rung["val_loss"], rung["epochs"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path, help="a warm_start.py result (.json)")
    parser.add_argument("--seeds", type=int, default=None, help="the first N of its seeds")
    parser.add_argument("--quick", action="store_true", help="suffix result files with _quick")
    args = parser.parse_args()
    source = json.loads(args.result.read_text())
    if source.get("fitness_split") != "train":
        parser.error(
            f"{args.result} judged masks on validation images; the epochs would be chosen on "
            "images the search fitted. Use a result of warm_start.py --fitness-split train"
        )
    pin_dense_models()
    started_on = environment("cpu")
    problem = build({"problem": source["problem"], "objectives": ["loss", "density"]}).problem
    validation = ms.load("fashion-mnist").val
    recipe = seeds_recipe(source)
    runs = []
    for run in source["runs"][: args.seeds]:
        seed = run["seed"]
        (budget,) = [int(m[1]) for name in run["rows"] if (m := EQUAL_TIME.fullmatch(name))]
        started = time.perf_counter()
        rows = {}
        for density in DENSITIES:
            rungs = []
            for epochs in ladder(budget):
                method = make_method("supermask", epochs=epochs, seed=seed, **recipe)
                mask = method.prune(problem.model, problem.train_data, density)
                pruned = mask.apply(copy.deepcopy(problem.model))
                rungs.append(
                    {
                        "epochs": epochs,
                        "val_loss": evaluate(pruned, validation).loss,
                        "test_accuracy": test_accuracy(problem.model, mask, problem.test_data),
                    }
                )
            chosen = chosen_rung(rungs)
            rows[str(density)] = {"rungs": rungs, "chosen_epochs": chosen["epochs"]}
            print(
                f"seed {seed}  {density:.0%}: "
                + ", ".join(f"{r['epochs']} ep {r['test_accuracy']:.2%}" for r in rungs)
                + f"; chosen {chosen['epochs']} ep",
                flush=True,
            )
        runs.append(
            {
                "seed": seed,
                "budget_epochs": budget,
                "wall_time": time.perf_counter() - started,
                "equal_time_wall_time": next(
                    row["wall_time"]
                    for name, row in run["rows"].items()
                    if EQUAL_TIME.fullmatch(name)
                ),
                "densities": rows,
            }
        )
    payload = {
        "command": " ".join(
            ["python", "benchmarks/tuned_supermask.py", str(args.result)]
            + (["--seeds", str(args.seeds)] if args.seeds else [])
        ),
        "source": str(args.result),
        "recipe": recipe,
        "environment": started_on,
        "runs": runs,
        "summary": summarise(runs, source),
    }
    stem = args.result.stem + "_tuned_supermask" + ("_quick" if args.quick else "")
    write_results(args.result.parent, stem, payload, markdown)
    print(markdown(payload))


def summarise(runs: list[dict], source: dict) -> dict:
    """Mean and std over seeds of the chosen rungs' test accuracy, and of the source's rows."""

    def mean_std(values: list[float]) -> dict[str, float]:
        return {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        }

    seeds = {run["seed"] for run in runs}
    chosen, guarded, on_error, equal = {}, {}, {}, {}
    for density in map(str, DENSITIES):
        chosen[density] = mean_std(
            [
                next(
                    r["test_accuracy"]
                    for r in run["densities"][density]["rungs"]
                    if r["epochs"] == run["densities"][density]["chosen_epochs"]
                )
                for run in runs
            ]
        )
        rows = [run["rows"] for run in source["runs"] if run["seed"] in seeds]
        guarded[density] = mean_std([row[GUARDED]["test_accuracy"][density] for row in rows])
        if all(GUARDED_ERROR in row for row in rows):  # newer runs guard on the error too
            on_error[density] = mean_std(
                [row[GUARDED_ERROR]["test_accuracy"][density] for row in rows]
            )
        equal[density] = mean_std(
            [
                next(r for n, r in row.items() if EQUAL_TIME.fullmatch(n))["test_accuracy"][density]
                for row in rows
            ]
        )
    summary = {"tuned": chosen, "guarded": guarded, "equal_time": equal}
    return {**summary, "guarded_error": on_error} if on_error else summary


def recipe_text(recipe: dict) -> str:
    """``Adam 0.02, cosine steps``, and the batch size where the seeds' was not supermask's."""
    text = f"Adam {recipe['lr']:g}, {recipe['lr_schedule']} steps"
    text += f", batches of {recipe['batch_size']}" if "batch_size" in recipe else ""
    smoothing = recipe.get("label_smoothing", 0.0)
    return text + (f", label smoothing {smoothing:g}" if smoothing else "")


def markdown(payload: dict) -> str:
    summary = payload["summary"]
    runs = payload["runs"]
    environment_ = payload["environment"]
    lines = [
        "# Supermask with its epochs chosen on validation images, at a search's time (issue 14)",
        "",
        f"Command: `{payload['command']}`; {environment_.get('cpu', {}).get('model', 'CPU')}. "
        f"Recipe: {recipe_text(payload['recipe'])}. "
        "Per seed and density, runs of 1, 2, 4… epochs from fresh scores within the equal-time "
        "row's epochs; the mask with the lowest loss on the validation split is kept. Test "
        f"accuracy, masks only, mean ± std over {len(runs)} seeds.",
        "",
        "| method | 5% | 2% | 1% |",
        "|---|---:|---:|---:|",
    ]
    names = (
        ("search, the guarded held-out pick (the source run)", "guarded"),
        ("search, the pick guarded on held-out error (the source run)", "guarded_error"),
        ("supermask, equal time, every epoch at once (the source run)", "equal_time"),
        ("supermask, equal time, epochs chosen on validation", "tuned"),
    )
    for label, key in [(label, key) for label, key in names if key in summary]:
        cells = [
            f"{100 * summary[key][d]['mean']:.2f}% ± {100 * summary[key][d]['std']:.2f}%"
            for d in map(str, DENSITIES)
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Per seed (budget in epochs per density; test accuracy of each rung):", ""]
    for run in runs:
        lines.append(
            f"- seed {run['seed']}, budget {run['budget_epochs']} epochs, "
            f"{run['wall_time']:.0f} s (the equal-time row: {run['equal_time_wall_time']:.0f} s): "
            + "; ".join(
                f"{float(d):.0%}: "
                + ", ".join(f"{r['epochs']} ep {100 * r['test_accuracy']:.2f}%" for r in v["rungs"])
                + f" → {v['chosen_epochs']} ep"
                for d, v in run["densities"].items()
            )
        )

    def as_row(key: str) -> dict:
        """A summary row in warm_start.py's form, for its compare()."""
        return {
            "mean": {d: summary[key][d]["mean"] for d in summary[key]},
            "std": {d: summary[key][d]["std"] for d in summary[key]},
            "n": len(runs),
        }

    for key, which in (("guarded", "guarded pick"), ("guarded_error", "pick guarded on error")):
        if key in summary:
            lines += ["", f"The {which} against the tuned supermask (2 SE of the difference):", ""]
            lines += compare(as_row(key), as_row("tuned"))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
