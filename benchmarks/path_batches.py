"""Supermask-path's batch size and step size: the seeds of the best LeNet-300-100 run, masks only.

    python benchmarks/path_batches.py                 # 9 recipes, 3 seeds (about 30 minutes)
    python benchmarks/path_batches.py --seeds 1 --quick   # a smoke run (short phases)

The best LeNet-300-100 run (``benchmarks/warm_start.py --init-method supermask-path
--init-epochs 4 --init-later-epochs 2,1 --init-branch-epochs 4,2,0 --init-lr 0.02
--init-lr-schedule cosine``) learns its seeds in mini-batches of 128 images with Adam from 0.02
annealed within each phase. Each row here learns the same path (4 epochs at 5%, 2 at 2%, 1 at 1%,
side branches of 4 and 2 more at 5% and 2%) from the committed dense model with another batch
size and step size, some with every phase twice as long: whether the 2% mask, which the search
does not improve and which misses issue 14's goal, moves with either, and what each costs.
Test accuracy of the three masks, mean ± std over seeds; the same seeds per row.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    ablation_args,
    build,
    environment,
    pin_dense_models,
    test_accuracy,
    write_results,
)

from masksearch.methods import make_method

RESULTS = Path(__file__).parent / "results"
DENSITIES = (0.05, 0.02, 0.01)
# the best run's path: epochs at 5%, then at 2% and 1%; side branches at 5%, 2%, 1%
EPOCHS, LATER, BRANCHES = 4, (2, 1), (4, 2, 0)
# (batch size, Adam step, phase length multiplier); the first is the best run's recipe
RECIPES: tuple[tuple[int, float, int], ...] = (
    (128, 0.02, 1),
    (64, 0.02, 1),
    (64, 0.01, 1),
    (128, 0.01, 1),
    (256, 0.01, 1),
    (256, 0.02, 1),
    (256, 0.04, 1),
    (256, 0.02, 2),
    (512, 0.02, 2),
)


def label(batch_size: int, lr: float, multiplier: int) -> str:
    longer = ", every phase twice as long" if multiplier == 2 else ""
    return f"batches of {batch_size}, Adam from {lr:g}{longer}"


def method_for(
    batch_size: int,
    lr: float,
    multiplier: int,
    seed: int,
    quick: bool = False,
    label_smoothing: float = 0.0,
) -> Any:
    """The path of one recipe (when ``quick``: one epoch at 5%, then a quarter epoch per
    later phase and branch, whatever the recipe's length)."""
    if quick:
        epochs, later, branches = (
            1,
            tuple(0.25 for _ in LATER),
            tuple(0.25 if e else 0 for e in BRANCHES),
        )
    else:
        epochs = EPOCHS * multiplier
        later = tuple(multiplier * e for e in LATER)
        branches = tuple(multiplier * e for e in BRANCHES)
    return make_method(
        "supermask-path",
        epochs=epochs,
        later_epochs=later,
        branch_epochs=branches,
        lr=lr,
        lr_schedule="cosine",
        batch_size=batch_size,
        label_smoothing=label_smoothing,
        seed=seed,
    )


def summarise(
    name: str, epochs: float, accuracies: list[list[float]], seconds: list[float]
) -> dict:
    """One row: per density, the accuracies of every seed, their mean and std."""
    table = np.asarray(accuracies, dtype=float).reshape(len(accuracies), len(DENSITIES))
    return {
        "recipe": name,
        "epochs": epochs,
        "test_accuracy": {f"{d:g}": table[:, i].tolist() for i, d in enumerate(DENSITIES)},
        "mean": {f"{d:g}": float(table[:, i].mean()) for i, d in enumerate(DENSITIES)},
        "std": {
            f"{d:g}": float(table[:, i].std(ddof=1)) if len(table) > 1 else 0.0
            for i, d in enumerate(DENSITIES)
        },
        "seconds": float(np.mean(seconds)),
    }


def learn_rows(
    problem: Any, seeds: int, recipes: Sequence[tuple[str, Callable[[int], Any]]]
) -> list[dict]:
    """Each recipe's path (``(name, seed -> method)``) learned from the problem's dense model
    in every seed, seed by seed: its masks' test accuracies and seconds, as :func:`summarise`
    rows in the recipes' order."""
    per_recipe: dict[str, tuple[float, list[list[float]], list[float]]] = {}
    for seed in range(seeds):
        for name, method_of in recipes:
            method = method_of(seed)
            started = time.perf_counter()
            masks = method.prune_each(problem.model, problem.train_data, DENSITIES)
            seconds = time.perf_counter() - started
            accuracies = [test_accuracy(problem.model, m, problem.test_data) for m in masks]
            _, per_seed, times = per_recipe.setdefault(
                name, (method.epochs_for(len(DENSITIES)), [], [])
            )
            per_seed.append(accuracies)
            times.append(seconds)
            shown = " / ".join(f"{a:.2%}" for a in accuracies)
            print(f"seed {seed}  {name:55s} {shown}  {seconds:.0f} s", flush=True)
    return [summarise(name, *values) for name, values in per_recipe.items()]


def run_recipes(
    script: str,
    description: str,
    recipes_of: Callable[[bool], Sequence[tuple[str, Callable[[int], Any]]]],
    markdown_of: Callable[[dict], str],
    extra: dict | None = None,
    problem_name: str = "lenet300_fashion",
) -> None:
    """A seed-path ablation's whole run: ``--seeds/--quick/--out`` parsed, the recipes
    (``recipes_of(quick)``) learned by :func:`learn_rows` on ``problem_name`` (LeNet-300-100
    unless said) from the committed dense model, and ``benchmarks/results/<script>.{json,md}``
    written (``extra`` added to the payload)."""
    args = ablation_args(description, RESULTS)
    pin_dense_models()
    started_on = environment("cpu")
    problem = build({"problem": problem_name, "objectives": ["loss", "density"]}).problem
    payload = {
        "command": f"python benchmarks/{script}.py"
        + (f" --seeds {args.seeds}" if args.seeds != 3 else "")
        + (" --quick" if args.quick else ""),
        "densities": list(DENSITIES),
        "seeds": args.seeds,
        "problem": problem_name,
        "environment": started_on,
        **(extra or {}),
        "rows": learn_rows(problem, args.seeds, recipes_of(args.quick)),
    }
    write_results(args.out, script + ("_quick" if args.quick else ""), payload, markdown_of)
    print(markdown_of(payload))


def recipe_markdown(payload: dict, title: str, setup: str) -> str:
    """A seed-path ablation's page: ``title``, the command and CPU, ``setup`` (model, path,
    steps), then :func:`markdown`'s table."""
    table = markdown(payload).split("\n", 4)[4]  # the table, without this script's header
    cpu = payload["environment"].get("cpu", {}).get("model", "CPU")
    return (
        f"# {title}\n\nCommand: `{payload['command']}`; {cpu}. {setup}; test accuracy (plain), "
        f"mean ± std over {payload['seeds']} seeds (the same seeds per row).\n\n" + table
    )


def main() -> None:
    run_recipes("path_batches", __doc__.splitlines()[0], _recipes, markdown)


def _recipes(quick: bool) -> list[tuple[str, Callable[[int], Any]]]:
    return [(label(*recipe), functools.partial(_method_of, recipe, quick)) for recipe in RECIPES]


def _method_of(recipe: tuple[int, float, int], quick: bool, seed: int) -> Any:
    return method_for(*recipe, seed=seed, quick=quick)


def markdown(payload: dict) -> str:
    cpu = payload["environment"].get("cpu", {}).get("model", "CPU")
    densities = [f"{d:g}" for d in payload["densities"]]
    lines = [
        "# supermask-path: batch size and step size of the seeds, masks only",
        "",
        f"Command: `{payload['command']}`; {cpu}. LeNet-300-100 on Fashion-MNIST; the path of "
        "4 epochs at 5%, 2 at 2% and 1 at 1% with side branches of 4 and 2 at 5% and 2% (twice "
        "each where said), Adam annealed within each phase; test accuracy, mean ± std over "
        f"{payload['seeds']} seeds (the same seeds per row).",
        "",
        "| recipe | epochs | "
        + " | ".join(f"{float(d):.0%}" for d in densities)
        + " | s per run |",
        "|---|---:|" + "---:|" * len(densities) + "---:|",
    ]
    for row in payload["rows"]:
        cells = " | ".join(f"{row['mean'][d]:.2%} ± {row['std'][d]:.2%}" for d in densities)
        lines.append(f"| {row['recipe']} | {row['epochs']:g} | {cells} | {row['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
