"""A search's whole budget at one density: does it lift its gradient-learned seed there?

    python benchmarks/focused.py                     # 3 densities, 3 seeds (about 20 minutes)
    python benchmarks/focused.py --seeds 1 --quick   # a smoke run (a small budget)
    python benchmarks/focused.py --label-smoothing 0.1 --densities 0.02  # smoothed seeds + loss
    python benchmarks/focused.py --problem lenet5_fashion --label-smoothing 0.1 --densities 0.01 \
        --budget 4096                                # LeNet-5 at 1% (about 45 minutes)

In the front-wide runs of ``warm_start.py`` the search adds to its supermask seeds at 1% only;
at 5% and 2% its best masks are the seeds. A front-wide search spreads its evaluations over
every density, so this asks the narrower question: given all of its evaluations at one
density, does the search beat the seed there? For each target density, a single-objective
GA with the gradient-swap local search minimises the loss on the fitness images under a
density cap at the target (masks denser than it are infeasible), started from the seed and
the magnitude mask at that density. The seeds are those of the plain-label run on the
AVX-512 EPYC (the supermask path of 4 epochs at 5%, 2 at 2%, 1 at 1%, side branches of 4 and
2, Adam from 0.02 annealed within each phase, batches of 256), whose objective the search
shares; the fitness is the mean cross-entropy on the first 20,000 training images, as in the
best front-wide runs. Reported per density, mean ± std over seeds: test accuracy of the seed,
of the search's own pick (its best fitness) and of the pick made on the 5,000 validation
images the fitness never saw, the seed kept unless beaten by two standard errors of the
paired per-image loss; and the fitness and held-out loss of the seed and of the search's pick,
which say whether the search lowers its objective and whether that carries over.

``--label-smoothing E`` learns the seeds with label smoothing E and gives the search, the
held-out guard and the reported losses the same smoothed loss (``PruningProblem``'s
``label_smoothing``), so seeds and search lower one objective; ``--densities`` picks targets.

``--problem lenet5_fashion`` asks the same of LeNet-5, from its best seeds (``warm_start.py``'s
run with the 2% seed from fresh scores: a path of 3 epochs at 5% with a side branch of 3 more,
the 2% and 1% seeds learned from fresh scores for 5 and 2 epochs, Adam from 0.02 annealed,
batches of 128), each learned only at the targets asked for; its fitness is the loss on the
first 4,000 training images (a LeNet-5 evaluation costs ~30 LeNet-300-100 ones).
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import build, environment, pin_dense_models, rerun, write_results

import masksearch as ms
from masksearch.methods import Supermask, SupermaskPath
from masksearch.training import Scores, evaluate

RESULTS = Path(__file__).parent / "results"
DENSITIES = (0.05, 0.02, 0.01)
BUDGET = 8192
QUICK_BUDGET = 256
PROBLEMS = ("lenet300_fashion", "lenet5_fashion")
TRAIN_SAMPLES = {"lenet300_fashion": 20_000, "lenet5_fashion": 4_000}
# the plain-label seeds of warm_start.py's capped AVX-512 EPYC run
RECIPE = {"lr": 0.02, "lr_schedule": "cosine", "batch_size": 256}
PATH = {"epochs": 4, "later_epochs": (2, 1), "branch_epochs": (4, 2, 0)}
QUICK_PATH = {"epochs": 1, "later_epochs": (0.25, 0.25), "branch_epochs": (0.25, 0.25, 0)}
# LeNet-5's best seeds (warm_start.py --init-epochs 3 --init-branch-epochs 3
# --init-sparsest-epochs 5,2): the epochs of the 5% path and its branch, then of each fresh seed
LENET5_RECIPE = {"lr": 0.02, "lr_schedule": "cosine"}
LENET5_PATH = {"epochs": 3, "branch_epochs": 3}
LENET5_FRESH_EPOCHS = {0.02: 5, 0.01: 2}
SEEDING_TEXT = {
    "lenet300_fashion": "4 epochs at 5%, 2 at 2%, 1 at 1%, side branches of 4 and 2, Adam from "
    "0.02 annealed, batches of 256",
    "lenet5_fashion": "5%: a path of 3 epochs with a side branch of 3 more; 2% and 1% from fresh "
    "scores, 5 and 2 epochs; Adam from 0.02 annealed, batches of 128",
}
MODEL_NAME = {"lenet300_fashion": "LeNet-300-100", "lenet5_fashion": "LeNet-5"}
ROWS = ("seed", "search's own pick", "held-out pick, seed kept unless beaten")


def split_scores(
    model: Any, mask: ms.Mask, splits: list[Any], label_smoothing: float = 0.0
) -> list[Scores]:
    """:func:`~masksearch.training.evaluate` (accuracy, mean cross-entropy smoothed by
    ``label_smoothing``) of one masked copy of ``model`` on each of ``splits``."""
    masked = mask.apply(copy.deepcopy(model))
    return [
        evaluate(masked, split, device="cpu", label_smoothing=label_smoothing) for split in splits
    ]


def seed_index(seeds: ms.WarmStart, density: float) -> int:
    """The row of ``seeds`` holding the gradient-learned seed at ``density`` (the one genome
    there that is not the magnitude mask)."""
    rows = [
        i
        for i, label in enumerate(seeds.labels)
        if label.endswith(f"@{density:g}") and not label.startswith("magnitude@")
    ]
    if len(rows) != 1:
        raise ValueError(f"expected one learned seed at density {density:g}: {seeds.labels}")
    return rows[0]


def lenet5_seeds(
    problem: Any, densities: tuple[float, ...], seed: int, recipe: dict[str, Any], quick: bool
) -> ms.WarmStart:
    """LeNet-5's best seeds at ``densities`` only, after the magnitude masks there, their costs
    added: the 5% one from a short path with a side branch, the sparser ones from fresh
    scores (so each is the mask warm_start.py's run learns at that density)."""
    seeds = ms.warm_start(problem, ["magnitude"], densities=densities)
    for density in densities:
        if density == DENSITIES[0]:
            path = {"epochs": 1, "branch_epochs": 0.25} if quick else LENET5_PATH
            method: Any = SupermaskPath(seed=seed, **path, **recipe)
        else:
            epochs = 1 if quick else LENET5_FRESH_EPOCHS[density]
            method = Supermask(epochs=epochs, seed=seed, **recipe)
        seeds = seeds + ms.warm_start(problem, [method], densities=(density,))
    return seeds


def focused_search(run: ms.Run, seeds: ms.WarmStart, density: float) -> ms.Result:
    """``run``'s search (a single-objective GA) capped at ``density``, from the seeds made at it."""
    problem = run.problem
    # warm starts label each genome "<source>@<density>"
    at_target = [i for i, label in enumerate(seeds.labels) if label.endswith(f"@{density:g}")]
    if not at_target:
        raise ValueError(f"no seed at density {density:g}: {seeds.labels}")
    initial = ms.WarmStart(
        seeds.genomes[at_target],
        tuple(seeds.labels[i] for i in at_target),
        seeds.seconds,
        seeds.epochs,
    )
    problem.max_density = density
    return run.search(initial=initial)


def one_density(run: ms.Run, seeds: ms.WarmStart, density: float, held_out: Any) -> dict[str, Any]:
    """The seed at ``density`` against the focused search's picks: accuracies and losses."""
    problem = run.problem
    started = time.perf_counter()
    result = focused_search(run, seeds, density)
    seconds = time.perf_counter() - started
    seed_row = seed_index(seeds, density)
    genomes = np.concatenate([result.front.genomes, seeds.genomes[seed_row : seed_row + 1]])
    n_front = len(result.front.genomes)
    own = result.front.index(max_density=density)
    picks = ms.choose_held_out(
        problem, genomes, held_out, [density], objective="loss", incumbents=[n_front]
    )
    chosen = {"seed": n_front, "search's own pick": own, ROWS[2]: picks[density]}
    masks = problem.encoding.decode(genomes)
    row: dict[str, Any] = {
        "density": density,
        "search_seconds": seconds,
        "n_evals": result.n_evals,
        "held_out_kept_seed": bool(picks[density] == n_front),
    }
    for name, index in chosen.items():
        mask = ms.Mask.from_flat(problem.layout, masks[index])
        fitness, held, test = split_scores(
            problem.model,
            mask,
            [problem.data, held_out, problem.test_data],
            problem.label_smoothing,
        )
        row[name] = {
            "density": float(masks[index].mean()),
            "fitness_loss": fitness.loss,
            "held_out_loss": held.loss,
            "test_accuracy": test.accuracy,
        }
    return row


def summarise(
    runs: list[dict[str, Any]], densities: tuple[float, ...] = DENSITIES
) -> list[dict[str, Any]]:
    """Per density: each row's figures over seeds (mean, std, per seed)."""
    table = []
    for density in densities:
        rows = [row for run in runs for row in run["densities"] if row["density"] == density]
        entry: dict[str, Any] = {
            "density": density,
            "search_seconds": float(np.mean([r["search_seconds"] for r in rows])),
            "n_evals": float(np.mean([r["n_evals"] for r in rows])),
            "held_out_kept_seed": sum(r["held_out_kept_seed"] for r in rows),
            "n_seeds": len(rows),
        }
        for name in ROWS:
            entry[name] = {}
            for metric in ("test_accuracy", "fitness_loss", "held_out_loss"):
                values = [r[name][metric] for r in rows]
                entry[name][metric] = {
                    "values": values,
                    "mean": float(np.mean(values)),
                    "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                }
        table.append(entry)
    return table


def markdown(payload: dict[str, Any]) -> str:
    cpu = payload["environment"].get("cpu", {}).get("model", "CPU")
    smoothing = payload.get("label_smoothing", 0.0)
    labels = f"label smoothing {smoothing:g}" if smoothing else "plain labels"
    loss = f"cross-entropy label-smoothed by {smoothing:g}" if smoothing else "cross-entropy"
    problem = payload.get("problem", PROBLEMS[0])
    lines = [
        "# A search's whole budget at one density (issue 14)",
        "",
        f"Command: `{payload['command']}`; {cpu}. {MODEL_NAME[problem]} on Fashion-MNIST, masks "
        f"only. Per density, a single-objective GA with gradient swaps, {payload['budget']:,} "
        "evaluations, masks denser than the target infeasible, started from the supermask "
        f"seed and the magnitude mask at the target (seeds: {SEEDING_TEXT[problem]}, {labels}). "
        f"Fitness: mean {loss} on the first {payload['train_samples']:,} training images "
        "(the held-out loss the same); held out: the "
        f"{payload['held_out_samples']:,} validation images; test accuracy on the test split. "
        f"Mean ± std over {payload['seeds']} seeds.",
        "",
        "| density | mask | test accuracy | fitness loss | held-out loss |",
        "|---:|---|---:|---:|---:|",
    ]
    for entry in payload["table"]:
        for name in ROWS:
            figures = entry[name]
            lines.append(
                f"| {entry['density']:.0%} | {name} | "
                f"{100 * figures['test_accuracy']['mean']:.2f} ± "
                f"{100 * figures['test_accuracy']['std']:.2f} | "
                f"{figures['fitness_loss']['mean']:.4f} ± {figures['fitness_loss']['std']:.4f} | "
                f"{figures['held_out_loss']['mean']:.4f} ± "
                f"{figures['held_out_loss']['std']:.4f} |"
            )
    lines += ["", "| density | evaluations | search s | held-out pick kept the seed |"]
    lines.append("|---:|---:|---:|---|")
    for entry in payload["table"]:
        lines.append(
            f"| {entry['density']:.0%} | {entry['n_evals']:,.0f} | "
            f"{entry['search_seconds']:.0f} | {entry['held_out_kept_seed']} of "
            f"{entry['n_seeds']} seeds |"
        )
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=PROBLEMS, default=PROBLEMS[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help=f"evaluations per search (default {BUDGET:,}; {QUICK_BUDGET} with --quick)",
    )
    parser.add_argument(
        "--train-samples",
        type=int,
        default=None,
        metavar="N",
        help="the fitness's training images, the first N (default 20,000 on LeNet-300-100, "
        "4,000 on LeNet-5)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: _quick files")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=0.0,
        metavar="E",
        help="the seeds' label smoothing and the search's smoothed loss (default 0: plain)",
    )
    parser.add_argument(
        "--densities",
        default=",".join(f"{d:g}" for d in DENSITIES),
        help="comma-separated target densities, from 0.05,0.02,0.01 (default: all three)",
    )
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.budget is not None and args.budget < 1:
        parser.error(f"--budget must be >= 1, got {args.budget}")
    if args.train_samples is not None and args.train_samples < 1:
        parser.error(f"--train-samples must be >= 1, got {args.train_samples}")
    if not 0.0 <= args.label_smoothing < 1.0:
        parser.error(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    try:
        args.densities = tuple(float(part) for part in args.densities.split(","))
    except ValueError:
        parser.error(f"--densities must be numbers, got {args.densities!r}")
    unknown = [d for d in args.densities if d not in DENSITIES]
    if unknown or not args.densities:
        parser.error(f"--densities must be among {DENSITIES} (where seeds are made), got {unknown}")
    return args


def result_stem(args: argparse.Namespace) -> str:
    stem = "focused"
    if args.problem != PROBLEMS[0]:
        stem += "_lenet5"
    if args.label_smoothing:
        stem += f"_ls{args.label_smoothing:g}"
    if args.densities != DENSITIES:
        stem += "_d" + "-".join(f"{d:g}" for d in args.densities)
    if args.budget is not None:
        stem += f"_b{args.budget}"
    if args.train_samples is not None:
        stem += f"_train{args.train_samples}"
    return stem + ("_quick" if args.quick else "")


def main() -> None:
    args = parse_args()
    pin_dense_models()
    started_on = environment("cpu")
    budget = args.budget or (QUICK_BUDGET if args.quick else BUDGET)
    train_samples = args.train_samples or TRAIN_SAMPLES[args.problem]
    lenet5 = args.problem == "lenet5_fashion"
    smoothing = {"label_smoothing": args.label_smoothing} if args.label_smoothing else {}
    # the seeds learn the loss the search minimises
    recipe = {**(LENET5_RECIPE if lenet5 else RECIPE), **smoothing}
    base = build(
        {
            "problem": args.problem,
            "objectives": ["loss"],
            "densities": list(DENSITIES),
            "solver": "ga",
            "pop_size": 64,
            "budget": budget,
            "local_search": "gradient-swaps",
            "init": ["magnitude"],
            "fitness_split": "train",
            "train_samples": train_samples,
            **smoothing,
        }
    )
    problem = base.problem
    held_out = ms.load("fashion-mnist").val  # the fitness is on training images: all of it
    runs = []
    for seed in range(args.seeds):
        if lenet5:
            seeds = lenet5_seeds(problem, args.densities, seed, recipe, args.quick)
        else:
            path = SupermaskPath(seed=seed, **(QUICK_PATH if args.quick else PATH), **recipe)
            seeds = ms.warm_start(problem, ["magnitude", path])
        rows = []
        for density in args.densities:
            row = one_density(rerun(base, seed=seed), seeds, density, held_out)
            rows.append(row)
            shown = " / ".join(f"{name}: {100 * row[name]['test_accuracy']:.2f}" for name in ROWS)
            print(
                f"seed {seed}  {density:.0%}  {shown}  ({row['search_seconds']:.0f} s)", flush=True
            )
        runs.append({"seed": seed, "seeding_seconds": seeds.seconds, "densities": rows})
    payload = {
        "command": "python benchmarks/focused.py"
        + (f" --problem {args.problem}" if lenet5 else "")
        + (f" --seeds {args.seeds}" if args.seeds != 3 else "")
        + (f" --label-smoothing {args.label_smoothing:g}" if args.label_smoothing else "")
        + (
            " --densities " + ",".join(f"{d:g}" for d in args.densities)
            if args.densities != DENSITIES
            else ""
        )
        + (f" --budget {args.budget}" if args.budget is not None else "")
        + (f" --train-samples {args.train_samples}" if args.train_samples is not None else "")
        + (" --quick" if args.quick else ""),
        "problem": args.problem,
        "label_smoothing": args.label_smoothing,
        "densities": list(args.densities),
        "budget": budget,
        "train_samples": train_samples,
        "held_out_samples": len(held_out),
        "seeds": args.seeds,
        "environment": started_on,
        "runs": runs,
        "table": summarise(runs, args.densities),
    }
    write_results(args.out, result_stem(args), payload, markdown)
    print(markdown(payload))


if __name__ == "__main__":
    main()
