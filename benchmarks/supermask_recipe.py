"""Supermask's step-size recipe: constant against cosine-annealed Adam steps, masks only.

    python benchmarks/supermask_recipe.py                  # 5%, 4 epochs, 3 seeds
    python benchmarks/supermask_recipe.py --seeds 1 --epochs 1 --quick   # a smoke run

Per seed, :class:`~masksearch.methods.Supermask` learns a mask at ``--density`` from the
committed dense LeNet-300-100 for ``--epochs`` epochs with each recipe: Adam at 0.01 or 0.02,
held constant or annealed to 0 over the run (``lr_schedule="cosine"``). Accuracy on the test
split, no weight training; the same epochs, batches and seeds for every recipe, so the rows
differ only in the step sizes. This is the ablation behind the cosine recipe of
``benchmarks/warm_start.py --init-lr 0.02 --init-lr-schedule cosine``: whether the higher step
or its annealing is what helps.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import build, environment, pin_dense_models, test_accuracy, write_results

from masksearch.methods import make_method

RESULTS = Path(__file__).parent / "results"
RECIPES = (("constant", 0.01), ("constant", 0.02), ("cosine", 0.01), ("cosine", 0.02))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--density", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="suffix result files with _quick")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    pin_dense_models()
    started_on = environment("cpu")
    problem = build({"problem": "lenet300_fashion", "objectives": ["loss", "density"]}).problem
    rows = []
    for schedule, lr in RECIPES:
        accuracies, seconds = [], []
        for seed in range(args.seeds):
            method = make_method(
                "supermask", epochs=args.epochs, lr=lr, lr_schedule=schedule, seed=seed
            )
            started = time.perf_counter()
            mask = method.prune(problem.model, problem.train_data, args.density)
            seconds.append(time.perf_counter() - started)
            accuracies.append(test_accuracy(problem.model, mask, problem.test_data))
            print(f"{schedule:8s} lr {lr:g}  seed {seed}  {accuracies[-1]:.2%}", flush=True)
        rows.append(
            {
                "lr_schedule": schedule,
                "lr": lr,
                "test_accuracy": accuracies,
                "mean": float(np.mean(accuracies)),
                "std": float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0,
                "seconds": float(np.mean(seconds)),
            }
        )
    payload = {
        "command": "python benchmarks/supermask_recipe.py "
        f"--density {args.density:g} --epochs {args.epochs} --seeds {args.seeds}",
        "density": args.density,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "environment": started_on,
        "rows": rows,
    }
    stem = f"supermask_recipe_d{round(args.density * 1000):03d}_e{args.epochs}"
    write_results(args.out, stem + ("_quick" if args.quick else ""), payload, markdown)
    print(markdown(payload))


def markdown(payload: dict) -> str:
    environment_ = payload["environment"]
    lines = [
        f"# Supermask step-size recipes: LeNet-300-100 at {payload['density']:.0%}, "
        f"{payload['epochs']} epochs, masks only",
        "",
        f"Command: `{payload['command']}`; {environment_.get('cpu', {}).get('model', 'CPU')}. "
        "Test accuracy, mean ± std over "
        f"{payload['seeds']} seeds; the same batches per seed for every recipe.",
        "",
        "| Adam step | schedule | test accuracy | per seed | s per run |",
        "|---:|---|---:|---|---:|",
    ]
    for row in payload["rows"]:
        seeds = " / ".join(f"{a:.2%}" for a in row["test_accuracy"])
        lines.append(
            f"| {row['lr']:g} | {row['lr_schedule']} | {row['mean']:.2%} ± {row['std']:.2%} "
            f"| {seeds} | {row['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
