"""Warm-started search against gradient mask learning (issue 14), LeNet-300-100, masks only.

    python benchmarks/warm_start.py                       # 3 seeds, the committed results
    python benchmarks/warm_start.py --init-epochs 3       # 3-epoch seeds -> warm_start_e3.*
    python benchmarks/warm_start.py --seeds 1 --budget 1024 --quick   # a smoke run

Per seed, every row starts from the same committed dense model and judges masks on the same
5,000 validation images; accuracy is on the test split, with no weight training:

- ``supermask (E ep)``: gradient mask learning (straight-through scores on frozen weights), E
  epochs per target density — the seeds of the searches below when E = ``--init-epochs``;
- ``supermask, equal time``: the same with as many epochs as the seeded search's whole wall
  time (seeding included) buys, so the comparison is at equal cost;
- ``search from seeds`` rows: NSGA-II (pymoo) started from the magnitude and supermask masks
  (``ms.warm_start``) for ``--budget`` exact evaluations, with and without the gradient-swap
  local search (the ablation of that piece).

With ``--finetune E``, the chosen masks of the seeded search, of the seeds and of the equal-time
supermask are also fine-tuned for E epochs with ``benchmarks/quality.py``'s recipe (SGD, lr
0.01, momentum 0.9, batch 128, the pruned weights pinned at zero), beside DNS trained for the
same E epochs per density from the same dense model (issue 14: "after 1 epoch of fine-tuning,
the search's masks >= DNS with 1 epoch").

Wall times include seeding. Results: mean ± std over seeds in ``warm_start.{json,md}``; the
seeded search's masks of seed 0 are saved in ``torch.nn.utils.prune`` form (committed for the
3-epoch seeds only, ``warm_start_e3_mask_*.pt``: at 2 MB each, the repository must stay small
enough to travel to the GPU machine).
"""

from __future__ import annotations

import argparse
import copy
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
from _common import (
    build,
    environment,
    pin_dense_models,
    rerun,
    save_masks,
    test_accuracy,
    write_results,
)

import masksearch as ms
from masksearch.methods import make_method
from masksearch.training import evaluate, finetune

RESULTS = Path(__file__).parent / "results"
DENSITIES = (0.05, 0.02, 0.01)
# issue 14's acceptance, LeNet-300-100, masks only, mean of 3 seeds
FLOOR = {0.05: 0.875, 0.02: 0.85, 0.01: 0.82}
GOAL = {0.05: 0.885, 0.02: 0.865, 0.01: 0.83}


# quality.py's fine-tuning recipe, so these rows compare with its tables
OPTIMISER = {"lr": 0.01, "batch_size": 128, "optimizer": "sgd", "momentum": 0.9}


def score(problem, mask: ms.Mask) -> float:
    return test_accuracy(problem.model, mask, problem.test_data, problem.device)


def finetuned(problem, masks: dict[str, ms.Mask], epochs: int, seed: int) -> dict:
    started = time.perf_counter()
    accuracy = {}
    for key, mask in masks.items():
        model = mask.apply(copy.deepcopy(problem.model))
        finetune(model, mask, problem.train_data, epochs=epochs, seed=seed, **OPTIMISER)
        accuracy[key] = evaluate(model, problem.test_data).accuracy
    return {"wall_time": time.perf_counter() - started, "test_accuracy": accuracy}


def dns_row(problem, epochs: int, seed: int) -> dict:
    started = time.perf_counter()
    data = ms.load("fashion-mnist")  # the splits the problem was built from
    accuracy = {}
    for density in DENSITIES:
        model, _ = make_method("dns", **OPTIMISER).run(
            copy.deepcopy(problem.model), data, density, epochs=epochs, seed=seed
        )
        accuracy[str(density)] = evaluate(model, problem.test_data).accuracy
    return {"wall_time": time.perf_counter() - started, "test_accuracy": accuracy}


def best_masks(result) -> dict[str, ms.Mask]:
    return {str(d): result.front.mask(result.front.index(max_density=d)) for d in DENSITIES}


def supermask_row(problem, epochs: int, seed: int) -> tuple[dict, dict[str, ms.Mask]]:
    started = time.perf_counter()
    method = make_method("supermask", epochs=epochs, seed=seed)
    masks = {str(d): method.prune(problem.model, problem.train_data, d) for d in DENSITIES}
    row = {
        "wall_time": time.perf_counter() - started,
        "epochs": epochs,
        "test_accuracy": {k: score(problem, m) for k, m in masks.items()},
    }
    return row, masks


def search_row(run: ms.Run, seeds: ms.WarmStart) -> tuple[dict, dict[str, ms.Mask]]:
    started = time.perf_counter()
    result = run.search(initial=seeds)
    masks = best_masks(result)
    row = {
        "wall_time": seeds.seconds + time.perf_counter() - started,
        "search_time": result.wall_time,
        "n_evals": result.n_evals,
        "front_size": len(result.front),
        "test_accuracy": {k: score(run.problem, m) for k, m in masks.items()},
    }
    return row, masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=3072, help="exact evaluations per search")
    parser.add_argument("--pop-size", type=int, default=64)
    parser.add_argument("--init-epochs", type=int, default=1)
    parser.add_argument(
        "--no-ablation", action="store_true", help="skip the search without the local search"
    )
    parser.add_argument(
        "--finetune",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="also fine-tune the chosen masks for EPOCHS epochs, beside DNS with EPOCHS epochs",
    )
    parser.add_argument("--quick", action="store_true", help="suffix result files with _quick")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    pin_dense_models()
    started_on = environment("cpu")
    # every search runs on one problem (and evaluator), built once from these settings
    base = build(
        {
            "problem": "lenet300_fashion",
            "objectives": ["loss", "density"],
            "densities": list(DENSITIES),
            "solver": "nsga2",
            "pop_size": args.pop_size,
            "budget": args.budget,
            "local_search": "gradient-swaps",
            "init": ["magnitude", "supermask"],
            "init_epochs": args.init_epochs,
        }
    )
    problem = base.problem

    runs = []
    for seed in range(args.seeds):
        run = rerun(base, seed=seed)
        seeds = run.warm_start()  # magnitude, then supermask masks: --init-epochs per density
        n = len(DENSITIES)
        seed_masks = [ms.Mask.from_flat(problem.layout, g) for g in seeds.genomes[n:]]
        rows = {
            f"supermask ({args.init_epochs} ep)": {
                "wall_time": seeds.seconds,
                "epochs": args.init_epochs,
                "test_accuracy": {
                    str(d): score(problem, m) for d, m in zip(DENSITIES, seed_masks, strict=True)
                },
            }
        }
        seed_by_density = {str(d): m for d, m in zip(DENSITIES, seed_masks, strict=True)}
        rows["search from seeds, NSGA-II + gradient swaps"], masks = search_row(run, seeds)
        if not args.no_ablation:
            rows["search from seeds, NSGA-II"], _ = search_row(
                rerun(run, local_search="none"), seeds
            )
        # supermask given at least the main search's whole time (seeding included): the
        # epochs, over every target density, that fit in it, rounded up
        per_epoch = seeds.seconds / args.init_epochs
        main_time = rows["search from seeds, NSGA-II + gradient swaps"]["wall_time"]
        equal = max(1, math.ceil(main_time / per_epoch))
        rows[f"supermask, equal time ({equal} ep)"], equal_masks = supermask_row(
            problem, equal, seed
        )
        if args.finetune:
            tuned = f" + {args.finetune} ep FT"
            rows[f"supermask ({args.init_epochs} ep){tuned}"] = finetuned(
                problem, seed_by_density, args.finetune, seed
            )
            rows[f"search from seeds, NSGA-II + gradient swaps{tuned}"] = finetuned(
                problem, masks, args.finetune, seed
            )
            rows[f"supermask, equal time{tuned}"] = finetuned(
                problem, equal_masks, args.finetune, seed
            )
            rows[f"dns ({args.finetune} ep)"] = dns_row(problem, args.finetune, seed)
        for name, row in rows.items():
            accuracy = " / ".join(f"{row['test_accuracy'][str(d)]:.2%}" for d in DENSITIES)
            print(f"seed {seed}  {name:48s} {row['wall_time']:7.1f} s  {accuracy}", flush=True)
        runs.append({"seed": seed, "rows": rows})
        if seed == 0:
            # named without the fine-tuning suffix: the search, and so its masks, are the same
            masks_suffix = result_suffix(args).replace(f"_ft{args.finetune}", "")
            save_masks(args.out, f"warm_start{masks_suffix}", masks, problem.model)

    payload = {
        # as run from the repository root, wherever it was started
        "command": " ".join(["python", "benchmarks/warm_start.py", *sys.argv[1:]]),
        "problem": "lenet300_fashion",
        "objectives": ["loss", "density"],
        "val_samples": len(problem.data),
        "budget": args.budget,
        "pop_size": args.pop_size,
        "init_epochs": args.init_epochs,
        "finetune_epochs": args.finetune,
        "environment": started_on,
        "floor": FLOOR,
        "goal": GOAL,
        "runs": runs,
        "summary": summarise(runs),
    }
    write_results(args.out, f"warm_start{result_suffix(args)}", payload, markdown)
    print(markdown(payload))


def result_suffix(args: argparse.Namespace) -> str:
    # results of other seeding epochs sit beside the default's instead of replacing them
    epochs = "" if args.init_epochs == 1 else f"_e{args.init_epochs}"
    tuned = f"_ft{args.finetune}" if args.finetune else ""
    return epochs + tuned + ("_quick" if args.quick else "")


def summarise(runs: list[dict]) -> dict:
    # the equal-time row's epoch count may differ between seeds: group it under one name
    def key(name: str) -> str:
        grouped_name = re.fullmatch(r"supermask, equal time \(\d+ ep\)", name)
        return "supermask, equal time" if grouped_name else name

    grouped: dict[str, dict] = {}
    for run in runs:
        for name, row in run["rows"].items():
            entry = grouped.setdefault(
                key(name), {"wall": [], "acc": {str(d): [] for d in DENSITIES}}
            )
            entry["wall"].append(row["wall_time"])
            for d in DENSITIES:
                entry["acc"][str(d)].append(row["test_accuracy"][str(d)])
    return {
        name: {
            "wall_time": float(np.mean(entry["wall"])),
            "mean": {d: float(np.mean(v)) for d, v in entry["acc"].items()},
            "std": {
                d: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for d, v in entry["acc"].items()
            },
            "n": len(entry["wall"]),
        }
        for name, entry in grouped.items()
    }


def markdown(payload: dict) -> str:
    summary = payload["summary"]
    lines = [
        "# Warm-started search against gradient mask learning: lenet300_fashion, masks only",
        "",
        f"Command: `{payload['command']}`  ",
        f"Fitness: {payload['objectives']} on {payload['val_samples']} validation images; "
        f"test accuracy, mean ± std over {len(payload['runs'])} seeds; wall times include the "
        f"seeding (supermask, {payload['init_epochs']} epoch(s) per density). Searches: "
        f"{payload['budget']} exact evaluations, population {payload['pop_size']}.",
        "",
        "| method | wall s | 5% | 2% | 1% |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in summary.items():
        cells = " | ".join(
            f"{row['mean'][str(d)]:.2%} ± {row['std'][str(d)]:.2%}" for d in DENSITIES
        )
        lines.append(f"| {name} | {row['wall_time']:.0f} | {cells} |")
    lines.append(
        "| floor (issue 14) | ≤ 600 | " + " | ".join(f"{FLOOR[d]:.1%}" for d in DENSITIES) + " |"
    )
    lines.append(
        "| goal (issue 14) | ≤ 600 | " + " | ".join(f"{GOAL[d]:.1%}" for d in DENSITIES) + " |"
    )
    main_name = "search from seeds, NSGA-II + gradient swaps"
    if main_name in summary and "supermask, equal time" in summary:
        lines += [
            "",
            "Against supermask at equal wall time (difference of means; 2 SE of the difference):",
            "",
        ]
        a, b = summary[main_name], summary["supermask, equal time"]
        for d in DENSITIES:
            key = str(d)
            gap = a["mean"][key] - b["mean"][key]
            se = math.sqrt((a["std"][key] ** 2 + b["std"][key] ** 2) / max(a["n"], 1))
            verdict = "ahead" if gap > 2 * se else "behind" if gap < -2 * se else "within noise"
            lines.append(f"- {d:.0%}: {gap:+.2%} (2 SE {2 * se:.2%}): {verdict}")
        tuned = f" + {payload.get('finetune_epochs')} ep FT"
        dns = f"dns ({payload.get('finetune_epochs')} ep)"
        if main_name + tuned in summary and dns in summary:
            lines += ["", f"After fine-tuning, the search's masks against {dns}:", ""]
            c, e = summary[main_name + tuned], summary[dns]
            for d in DENSITIES:
                key = str(d)
                gap = c["mean"][key] - e["mean"][key]
                se = math.sqrt((c["std"][key] ** 2 + e["std"][key] ** 2) / max(c["n"], 1))
                verdict = "ahead" if gap > 2 * se else "behind" if gap < -2 * se else "within noise"
                lines.append(f"- {d:.0%}: {gap:+.2%} (2 SE {2 * se:.2%}): {verdict}")
        met = [d for d in DENSITIES if a["mean"][str(d)] >= FLOOR[d]]
        lines.append("")
        lines.append(
            f"Floor met at {', '.join(f'{d:.0%}' for d in met) or 'no density'}; "
            f"wall time {a['wall_time']:.0f} s (limit 600 s)."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
