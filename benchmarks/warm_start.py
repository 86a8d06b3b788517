"""Warm-started search against gradient mask learning (issue 14), LeNet-300-100, masks only.

    python benchmarks/warm_start.py                       # 3 seeds, the committed results
    python benchmarks/warm_start.py --init-epochs 3       # 3-epoch seeds -> warm_start_e3.*
    python benchmarks/warm_start.py --seeds 1 --budget 1024 --quick   # a smoke run
    python benchmarks/warm_start.py --init-method supermask-path --init-epochs 4 --no-ablation
                                        # seeds from one run along 5% -> 2% -> 1% -> warm_start_path_e4.*
    python benchmarks/warm_start.py --init-method supermask-path --init-epochs 6 \
        --init-later-epochs 2,1 --init-lr 0.02 --init-lr-schedule cosine --no-ablation \
        --val-samples 4000 --budget 12288   # annealed steps, for the seeds and the equal-time row
    python benchmarks/warm_start.py --init-method supermask-path --init-epochs 4 \
        --init-later-epochs 2,1 --init-lr 0.02 --init-lr-schedule cosine --no-ablation \
        --fitness-split train --budget 4608   # masks judged on the 55,000 training images
    python benchmarks/warm_start.py --init-method supermask-path --init-epochs 4 \
        --init-later-epochs 2,1 --init-branch-epochs 4,2,0 --init-lr 0.02 \
        --init-lr-schedule cosine --no-ablation --fitness-split train --train-samples 20000 \
        --budget 12288   # 5% and 2% masks from side branches of the path, 4 and 2 epochs longer
    python benchmarks/warm_start.py --problem lenet5_fashion --init-method supermask-path \
        --init-epochs 3 --init-branch-epochs 3,1 --init-sparsest-epochs 2 --init-lr 0.02 \
        --init-lr-schedule cosine --no-ablation --finetune 1   # the 1% seed from fresh scores

Per seed, every row starts from the same committed dense model and judges masks on the same
5,000 validation images; accuracy is on the test split, with no weight training:

- ``supermask (E ep)``: gradient mask learning (straight-through scores on frozen weights), E
  epochs per target density — the seeds of the searches below when E = ``--init-epochs``;
  with ``--init-method supermask-path`` the seeds come instead from one run along the targets,
  densest first (E epochs at 5%, then 1 at 2% and 1 at 1%, each continuing the scores);
  ``--init-sparsest-epochs K`` ends the path at 2% and learns the 1% seed by supermask from
  fresh scores, K epochs (on LeNet-5 the path's 1% mask stays below a one-shot supermask's);
  ``K2,K1`` ends it at 5% and learns the 2% seed from fresh scores too;
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

With ``--repair-steps N``, the seeded search runs once more with every mask scored after N SGD
steps on the weights it keeps (``repair_steps``: the repair-aware objective); its chosen masks
are reported on the frozen weights (masks only) and, with ``--finetune``, fine-tuned as above.

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from masksearch.front import density_slack
from masksearch.methods import Supermask, SupermaskPath, make_method
from masksearch.training import evaluate, finetune

#: supermask's own mini-batch size: the seeds' unless ``--init-batch-size`` says otherwise
DEFAULT_BATCH = Supermask.batch_size

RESULTS = Path(__file__).parent / "results"
DENSITIES = (0.05, 0.02, 0.01)
# issue 14's acceptance, masks only, mean of 3 seeds; LeNet-5's floor is the 1-epoch supermask
# row of the same run ("masks only >= supermask (1 epoch) at every density")
FLOOR = {"lenet300_fashion": {0.05: 0.875, 0.02: 0.85, 0.01: 0.82}}
GOAL = {
    "lenet300_fashion": {0.05: 0.885, 0.02: 0.865, 0.01: 0.83},
    "lenet5_fashion": {0.05: 0.89, 0.02: 0.87, 0.01: 0.84},
}


# quality.py's fine-tuning recipe, so these rows compare with its tables
OPTIMISER = {"lr": 0.01, "batch_size": 128, "optimizer": "sgd", "momentum": 0.9}


# exact evaluations per search: a LeNet-5 evaluation costs ~30x a LeNet-300-100 one on the CPU
DEFAULT_BUDGET = {"lenet300_fashion": 3072, "lenet5_fashion": 1024}
MAIN = "search from seeds, NSGA-II + gradient swaps"
HELD_OUT = MAIN + ", chosen on held-out validation"
GUARDED = HELD_OUT + ", seeds kept unless beaten by 2 SE"
# the same guard on the 0/1 error: seeds trained on another loss than the search's (label
# smoothing) can lose to its masks on held-out cross-entropy while scoring better
GUARDED_ERROR = MAIN + ", chosen on held-out error, seeds kept unless beaten by 2 SE"
# the picks made on held-out images: row, guarded, objective, how the page names the pick
HELD_OUT_ROWS = (
    (HELD_OUT, False, "loss", "held-out pick"),
    (GUARDED, True, "loss", "guarded held-out pick"),
    (GUARDED_ERROR, True, "error", "pick guarded on held-out error"),
)


def seeds_recipe(settings: dict) -> dict:
    """The seeds' (and the equal-time supermask's) options from ``warm_start.py``'s settings,
    as parsed or as a result file records them: step size and schedule, and the batch size and
    label smoothing where they were set (older result files have neither)."""
    recipe = {"lr": settings["init_lr"], "lr_schedule": settings["init_lr_schedule"]}
    if settings.get("init_batch_size", DEFAULT_BATCH) != DEFAULT_BATCH:
        recipe["batch_size"] = settings["init_batch_size"]
    if settings.get("init_label_smoothing", 0.0):
        recipe["label_smoothing"] = settings["init_label_smoothing"]
    return recipe


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


def held_out_row(
    problem,
    result,
    seeds: ms.WarmStart,
    held_out: ms.Split,
    *,
    guarded: bool = False,
    objective: str = "loss",
) -> tuple[dict, dict[str, ms.Mask]]:
    """The search's pick made on validation images the fitness never saw.

    Candidates at each density are the front's members and the seeds (which the front may have
    dropped as dominated on the fitness images); the one with the lowest ``objective`` (loss or
    0/1 error) on ``held_out`` wins. Same search, another rule for the final choice: it shows
    whether the search's gains on its fitness images hold on others. ``guarded``: the best seed
    stays unless a front member's held-out ``objective`` is lower by more than 2 standard
    errors of their paired per-image difference.
    """
    started = time.perf_counter()
    genomes = np.concatenate([result.front.genomes, seeds.genomes])
    seed_rows = range(len(result.front.genomes), len(genomes)) if guarded else None
    picks = ms.choose_held_out(
        problem, genomes, held_out, DENSITIES, objective=objective, incumbents=seed_rows
    )
    picks = {str(d): i for d, i in picks.items()}
    masks = problem.encoding.decode(genomes)
    chosen = {key: ms.Mask.from_flat(problem.layout, masks[i]) for key, i in picks.items()}
    slack = density_slack(problem.layout.n_total)
    candidates = np.flatnonzero(masks.mean(axis=1) <= max(DENSITIES) + slack)
    # picks past the front's members are seeds the front had dropped
    from_seeds = [key for key, i in picks.items() if i >= len(result.front.genomes)]
    row = {
        "selection_time": time.perf_counter() - started,
        "held_out_samples": len(held_out),
        "candidates": int(len(candidates)),
        "picked_a_seed_at": from_seeds,
        "test_accuracy": {k: score(problem, m) for k, m in chosen.items()},
    }
    return row, chosen


def supermask_row(problem, epochs: int, seed: int, recipe: dict) -> tuple[dict, dict[str, ms.Mask]]:
    started = time.perf_counter()
    method = make_method("supermask", epochs=epochs, seed=seed, **recipe)
    masks = {str(d): method.prune(problem.model, problem.train_data, d) for d in DENSITIES}
    row = {
        "wall_time": time.perf_counter() - started,
        "epochs": epochs,
        "test_accuracy": {k: score(problem, m) for k, m in masks.items()},
    }
    return row, masks


def search_row(run: ms.Run, seeds: ms.WarmStart) -> tuple[dict, dict[str, ms.Mask], ms.Result]:
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
    return row, masks, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=sorted(GOAL), default="lenet300_fashion")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="exact evaluations per search (default: 3,072 on LeNet-300-100, 1,024 on LeNet-5)",
    )
    parser.add_argument("--pop-size", type=int, default=64)
    parser.add_argument("--init-epochs", type=int, default=1)
    parser.add_argument(
        "--init-method",
        choices=("supermask", "supermask-path"),
        default="supermask",
        help="how the seeds are learned: supermask, --init-epochs at every target density; "
        "supermask-path, --init-epochs at 5%% then one at 2%% and one at 1%%, "
        "continuing the same scores",
    )
    parser.add_argument(
        "--init-later-epochs",
        type=later_epochs,
        default=1.0,
        help="supermask-path: epochs at each target after 5%% (default 1), or one number "
        "per target, 2%% then 1%% (e.g. 2,1)",
    )
    parser.add_argument(
        "--init-branch-epochs",
        type=later_epochs,
        default=0.0,
        help="supermask-path: epochs more at each target on a side branch (one number, or "
        "one per target, 5%% then 2%% then 1%%, e.g. 4,2,0); the path goes on from where "
        "each branch left it (default 0: none)",
    )
    parser.add_argument(
        "--init-sparsest-epochs",
        type=sparsest_epochs,
        default=0,
        metavar="K",
        help="supermask-path: end the path at 2%% and learn the 1%% seed by supermask from "
        "fresh scores for K epochs, same recipe (the path's later and branch epochs then "
        "cover 2%% and 5%%, 2%%); K2,K1 ends it at 5%% and learns the 2%% and 1%% seeds "
        "from fresh scores, K2 and K1 epochs (default 0: the path goes on to 1%%)",
    )
    parser.add_argument(
        "--init-lr", type=float, default=0.01, help="supermask's Adam step size (default 0.01)"
    )
    parser.add_argument(
        "--init-batch-size",
        type=int,
        default=DEFAULT_BATCH,
        metavar="N",
        help=f"supermask's mini-batch size (default {DEFAULT_BATCH}); the equal-time "
        "supermask row uses the same",
    )
    parser.add_argument(
        "--init-label-smoothing",
        type=float,
        default=0.0,
        metavar="EPS",
        help="supermask's label smoothing in [0, 1) (default 0: plain labels); the equal-time "
        "supermask row uses the same",
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=0.0,
        metavar="EPS",
        help="label smoothing of the loss the searches minimise and the held-out guard "
        "compares, in [0, 1) (default 0: the plain cross-entropy); give the seeds' "
        "--init-label-smoothing to search on the loss they learned",
    )
    parser.add_argument(
        "--init-lr-schedule",
        choices=("constant", "cosine"),
        default="constant",
        help="supermask's step size within each density: constant, or annealed to 0; the "
        "equal-time supermask row uses the same recipe",
    )
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
    parser.add_argument(
        "--repair-steps",
        type=int,
        default=0,
        metavar="N",
        help="also run the seeded search scored after N SGD steps per mask (repair-aware)",
    )
    parser.add_argument(
        "--val-samples",
        type=int,
        default=None,
        metavar="N",
        help="judge masks on the first N validation images (default: the problem's); the "
        "rest choose the held-out row's masks",
    )
    parser.add_argument(
        "--fitness-split",
        choices=("val", "train"),
        default="val",
        help="judge masks on validation images (default) or on training images; with train, "
        "every validation image is held out for the held-out rows",
    )
    parser.add_argument(
        "--train-samples",
        type=int,
        default=None,
        metavar="N",
        help="with --fitness-split train: the first N training images (default: all)",
    )
    parser.add_argument(
        "--max-density",
        type=float,
        default=None,
        metavar="D",
        help="masks denser than D are infeasible for the searches (the problem's max_density), "
        "so the population stays at the target densities (default: none, the whole front)",
    )
    parser.add_argument("--quick", action="store_true", help="suffix result files with _quick")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.init_batch_size < 1:
        parser.error(f"--init-batch-size must be >= 1, got {args.init_batch_size}")
    if not 0.0 <= args.init_label_smoothing < 1.0:
        parser.error(f"--init-label-smoothing must be in [0, 1), got {args.init_label_smoothing}")
    if not 0.0 <= args.label_smoothing < 1.0:
        parser.error(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if args.budget is None:
        args.budget = DEFAULT_BUDGET[args.problem]
    pin_dense_models()
    started_on = environment("cpu")
    # the seeds' and the equal-time supermask's options: one recipe for both
    recipe = seeds_recipe(vars(args))
    # every search runs on one problem (and evaluator), built once from these settings
    base = build(
        {
            "problem": args.problem,
            "objectives": ["loss", "density"],
            "densities": list(DENSITIES),
            "solver": "nsga2",
            "pop_size": args.pop_size,
            "budget": args.budget,
            "local_search": "gradient-swaps",
            "init": ["magnitude", args.init_method],
            "init_epochs": args.init_epochs,
            "init_options": recipe,
            **({"val_samples": args.val_samples} if args.val_samples else {}),
            "fitness_split": args.fitness_split,
            **({"train_samples": args.train_samples} if args.train_samples else {}),
            **({"label_smoothing": args.label_smoothing} if args.label_smoothing else {}),
        },
        max_density=args.max_density,
    )
    problem = base.problem
    # the validation images the fitness leaves out (LeNet-5 judges masks on the first 1,024;
    # a fitness on training images leaves them all)
    validation = ms.load("fashion-mnist").val
    used = 0 if problem.fitness_split == "train" else len(problem.data)
    held_out = None
    if used < len(validation):
        held_out = ms.Split(validation.x[used:], validation.y[used:])
    repaired_base = None
    if args.repair_steps:
        # its own problem: the same model and data, every mask scored after its repair
        repaired_base = build(
            {**base.settings, "repair_steps": args.repair_steps}, max_density=args.max_density
        )
    repaired_name = f"search from seeds, NSGA-II + gradient swaps, repair {args.repair_steps}"

    runs = []
    for seed in range(args.seeds):
        run = rerun(base, seed=seed)
        if args.init_method == "supermask-path":
            path = SupermaskPath(
                epochs=args.init_epochs,
                later_epochs=args.init_later_epochs,
                branch_epochs=args.init_branch_epochs,
                seed=seed,
                **recipe,
            )
            if args.init_sparsest_epochs:
                fresh = tuple(
                    Supermask(epochs=epochs, seed=seed, **recipe)
                    for epochs in fresh_epochs(args.init_sparsest_epochs)
                )
                seeds = path_seeds(problem, PathThenFresh(path, fresh))
            else:
                seeds = ms.warm_start(problem, ["magnitude", path])
        else:
            seeds = run.warm_start()  # magnitude, then supermask: --init-epochs per density
        n = len(DENSITIES)
        seed_masks = [ms.Mask.from_flat(problem.layout, g) for g in seeds.genomes[n:]]
        rows = {
            f"{args.init_method} ({args.init_epochs} ep)": {
                "wall_time": seeds.seconds,
                "epochs": args.init_epochs,
                "test_accuracy": {
                    str(d): score(problem, m) for d, m in zip(DENSITIES, seed_masks, strict=True)
                },
            }
        }
        seed_by_density = {str(d): m for d, m in zip(DENSITIES, seed_masks, strict=True)}
        rows[MAIN], masks, result = search_row(run, seeds)
        picked: dict[str, dict[str, ms.Mask]] = {}
        for name, guarded, objective, _ in HELD_OUT_ROWS if held_out is not None else ():
            rows[name], picked[name] = held_out_row(
                problem, result, seeds, held_out, guarded=guarded, objective=objective
            )
            rows[name]["wall_time"] = rows[MAIN]["wall_time"] + rows[name]["selection_time"]
        held_out_masks = picked.get(HELD_OUT)  # the masks fine-tuned for the held-out row
        repaired_masks = None
        if repaired_base is not None:
            rows[repaired_name], repaired_masks, _ = search_row(
                rerun(repaired_base, seed=seed), seeds
            )
        if not args.no_ablation:
            rows["search from seeds, NSGA-II"], _, _ = search_row(
                rerun(run, local_search="none"), seeds
            )
        # supermask given at least the main search's whole time (seeding included): the
        # epochs, over every target density, that fit in it, rounded up (an epoch of the
        # seeding's, per density)
        per_epoch = seeds.seconds / seeds.epochs * len(DENSITIES)
        main_time = rows[MAIN]["wall_time"]
        equal = max(1, math.ceil(main_time / per_epoch))
        rows[f"supermask, equal time ({equal} ep)"], equal_masks = supermask_row(
            problem, equal, seed, recipe
        )
        if args.finetune:
            tuned = f" + {args.finetune} ep FT"
            rows[f"{args.init_method} ({args.init_epochs} ep){tuned}"] = finetuned(
                problem, seed_by_density, args.finetune, seed
            )
            rows[MAIN + tuned] = finetuned(problem, masks, args.finetune, seed)
            if held_out_masks is not None:
                rows[HELD_OUT + tuned] = finetuned(problem, held_out_masks, args.finetune, seed)
            if repaired_masks is not None:
                rows[repaired_name + tuned] = finetuned(
                    problem, repaired_masks, args.finetune, seed
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
            masks_suffix = re.sub(r"_ft\d+|_repair\d+", "", result_suffix(args))
            save_masks(args.out, f"warm_start{masks_suffix}", masks, problem.model)

    payload = {
        # as run from the repository root, wherever it was started
        "command": " ".join(["python", "benchmarks/warm_start.py", *sys.argv[1:]]),
        "problem": args.problem,
        "objectives": ["loss", "density"],
        "fitness_split": problem.fitness_split,
        "fitness_samples": len(problem.data),
        "val_samples": len(problem.data) if problem.fitness_split == "val" else None,
        "budget": args.budget,
        "pop_size": args.pop_size,
        "init_epochs": args.init_epochs,
        "init_method": args.init_method,
        "init_later_epochs": args.init_later_epochs,
        "init_branch_epochs": args.init_branch_epochs,
        "init_sparsest_epochs": args.init_sparsest_epochs,
        "init_lr": args.init_lr,
        "init_lr_schedule": args.init_lr_schedule,
        "init_batch_size": args.init_batch_size,
        "init_label_smoothing": args.init_label_smoothing,
        "label_smoothing": args.label_smoothing,
        "finetune_epochs": args.finetune,
        "repair_steps": args.repair_steps,
        "max_density": args.max_density,
        "environment": started_on,
        "floor": FLOOR.get(args.problem),
        "goal": GOAL[args.problem],
        "runs": runs,
        "summary": summarise(runs),
    }
    write_results(args.out, f"warm_start{result_suffix(args)}", payload, markdown)
    print(markdown(payload))


def fitness_images(payload: dict) -> str:
    """What the fitness judged masks on, in words, for the result file."""
    if payload.get("fitness_split", "val") == "train":
        images = f"{payload['fitness_samples']} training images (every validation image held out)"
    else:
        images = f"{payload['val_samples']} validation images"
    if payload.get("label_smoothing", 0.0):
        images += (
            f", the loss label-smoothed by {payload['label_smoothing']:g} (as is the held-out "
            "guard's)"
        )
    return images


def later_epochs(text: str) -> float | tuple[float, ...]:
    """``--init-later-epochs``: one number for every sparser target, or one per target."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of epochs or one per sparser target (e.g. 2,1), got {text!r}"
        ) from None
    return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class PathThenFresh:
    """A supermask path over the denser targets, then supermask from fresh scores at each of
    the sparsest (``fresh``, densest first): ``--init-sparsest-epochs``'s seeding as one
    method (``prune_each``, ``epochs_for``), or as warm starts (:func:`path_seeds`)."""

    path: SupermaskPath
    fresh: tuple[Supermask, ...]

    def parts(self, densities: Sequence[float]) -> list[tuple[Any, tuple[float, ...]]]:
        """Each method with the targets it learns, densest first."""
        on_path = len(densities) - len(self.fresh)
        return [(self.path, tuple(densities[:on_path]))] + [
            (method, (density,))
            for method, density in zip(self.fresh, densities[on_path:], strict=True)
        ]

    def prune_each(self, model: Any, data: Any, densities: Sequence[float]) -> list[ms.Mask]:
        return [
            mask
            for method, targets in self.parts(densities)
            for mask in method.prune_each(model, data, targets)
        ]

    def epochs_for(self, n_densities: int) -> float:
        return self.path.epochs_for(n_densities - len(self.fresh)) + sum(
            method.epochs_for(1) for method in self.fresh
        )


def path_seeds(problem: Any, seeding: PathThenFresh) -> ms.WarmStart:
    """The magnitude masks, then each part of ``seeding``'s at its targets, densest first;
    their costs added."""
    seeds = ms.warm_start(problem, ["magnitude"])
    for method, targets in seeding.parts(DENSITIES):
        seeds = seeds + ms.warm_start(problem, [method], densities=targets)
    return seeds


def sparsest_epochs(text: str) -> int | tuple[int, ...]:
    """``--init-sparsest-epochs``: epochs of the fresh 1% seed, or of the fresh 2% and 1%
    seeds (K2,K1)."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not 1 <= len(values) < len(DENSITIES) or (min(values) < 1 and values != (0,)):
        raise argparse.ArgumentTypeError(
            f"expected the epochs of the fresh 1% seed (e.g. 2) or of the fresh 2% and 1% seeds "
            f"(e.g. 5,2), whole numbers >= 1, got {text!r}"
        )
    return values[0] if len(values) == 1 else values


def fresh_epochs(sparsest: int | Sequence[int]) -> tuple[int, ...]:
    """The epochs of each seed learned from fresh scores, densest first (none for 0)."""
    if isinstance(sparsest, int):
        return (sparsest,) if sparsest else ()
    return tuple(sparsest)


def later_label(later: float | Sequence[float]) -> str:
    """``2``, or ``2-1`` for one count per target, for file names."""
    if isinstance(later, (int, float)):
        return f"{later:g}"
    return "-".join(f"{epochs:g}" for epochs in later)


def result_suffix(args: argparse.Namespace) -> str:
    # results of other seeding epochs sit beside the default's instead of replacing them
    problem = "" if args.problem == "lenet300_fashion" else "_" + args.problem.split("_")[0]
    epochs = "" if args.init_epochs == 1 else f"_e{args.init_epochs}"
    if args.init_method == "supermask-path":
        later = "" if args.init_later_epochs == 1 else f"_l{later_label(args.init_later_epochs)}"
        epochs = "_path" + epochs + later
        if args.init_branch_epochs:
            epochs += f"_br{later_label(args.init_branch_epochs)}"
        if args.init_sparsest_epochs:
            epochs += f"_sp{later_label(args.init_sparsest_epochs)}"
    if args.init_lr_schedule != "constant":
        epochs += "_cos"
    if args.init_lr != 0.01:
        epochs += f"_lr{args.init_lr:g}"
    if args.init_batch_size != DEFAULT_BATCH:
        epochs += f"_bs{args.init_batch_size}"
    if args.init_label_smoothing:
        epochs += f"_ls{args.init_label_smoothing:g}"
    tuned = f"_b{args.budget}" if args.budget != DEFAULT_BUDGET[args.problem] else ""
    tuned += f"_val{args.val_samples}" if args.val_samples else ""
    if args.fitness_split == "train":
        tuned += f"_train{args.train_samples}" if args.train_samples else "_train"
    tuned += f"_ft{args.finetune}" if args.finetune else ""
    tuned += f"_repair{args.repair_steps}" if args.repair_steps else ""
    tuned += f"_max{args.max_density:g}" if args.max_density is not None else ""
    tuned += f"_objls{args.label_smoothing:g}" if args.label_smoothing else ""
    return problem + epochs + tuned + ("_quick" if args.quick else "")


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


def targets(payload: dict, name: str) -> dict[float, float] | None:
    # read back from JSON the densities are strings; older files name no problem
    table = payload.get(name)
    if table is None:
        return None
    if "problem" in payload and set(map(str, table)) >= {str(d) for d in DENSITIES}:
        return {d: float(table.get(d, table.get(str(d)))) for d in DENSITIES}
    return None


def compare(a: dict, b: dict) -> list[str]:
    """One line per density: a's mean minus b's, against two standard errors of the difference."""
    lines = []
    for d in DENSITIES:
        key = str(d)
        gap = a["mean"][key] - b["mean"][key]
        se = math.sqrt((a["std"][key] ** 2 + b["std"][key] ** 2) / max(a["n"], 1))
        verdict = "ahead" if gap > 2 * se else "behind" if gap < -2 * se else "within noise"
        lines.append(f"- {d:.0%}: {gap:+.2%} (2 SE {2 * se:.2%}): {verdict}")
    return lines


def seeding_text(payload: dict) -> str:
    """How the seeds were made, for the report: method, epochs, branches, step sizes."""
    init_method = payload.get("init_method", "supermask")
    fresh = fresh_epochs(payload.get("init_sparsest_epochs", 0))
    # with fresh sparsest seeds, the path ends as many targets earlier
    targets = DENSITIES[: len(DENSITIES) - len(fresh)]
    later = payload.get("init_later_epochs", 1)
    later_text = (
        f"{later:g} at " + " and at ".join(f"{density:.0%}" for density in targets[1:])
        if isinstance(later, (int, float))
        else " and ".join(
            f"{epochs:g} at {density:.0%}"
            for epochs, density in zip(later, targets[1:], strict=True)
        )
    )
    then = f", then {later_text}, one run" if len(targets) > 1 else ""
    seeding = (
        f"supermask-path, {payload['init_epochs']} epoch(s) at 5%{then}"
        if init_method == "supermask-path"
        else f"supermask, {payload['init_epochs']} epoch(s) per density"
    )
    branch = payload.get("init_branch_epochs", 0)
    if branch:
        per_target = (branch,) * len(targets) if isinstance(branch, (int, float)) else branch
        seeding += (
            "; side branches of "
            + ", ".join(
                f"{epochs:g} more at {density:.0%}"
                for epochs, density in zip(per_target, targets, strict=True)
                if epochs
            )
            + " give those targets' masks, the path going on from where each branch left"
        )
    if fresh:
        seeding += "; " + ", ".join(
            f"the {density:.0%} seed from fresh scores, supermask {epochs} epoch(s)"
            for epochs, density in zip(fresh, DENSITIES[len(targets) :], strict=True)
        )
    # older result files predate the recipe options: constant steps of 0.01
    if (
        payload.get("init_lr_schedule", "constant") != "constant"
        or payload.get("init_lr", 0.01) != 0.01
    ):
        seeding += (
            f"; Adam step {payload.get('init_lr', 0.01):g}, "
            f"{payload.get('init_lr_schedule', 'constant')} within each density (the "
            "equal-time supermask row uses the same recipe)"
        )
    if payload.get("init_batch_size", DEFAULT_BATCH) != DEFAULT_BATCH:
        seeding += f"; supermask in batches of {payload['init_batch_size']}"
    if payload.get("init_label_smoothing", 0.0):
        seeding += f"; supermask's loss with label smoothing {payload['init_label_smoothing']:g}"
    return seeding


def markdown(payload: dict) -> str:
    summary = payload["summary"]
    init_method = payload.get("init_method", "supermask")
    seeding = seeding_text(payload)
    lines = [
        f"# Warm-started search against gradient mask learning: {payload['problem']}, masks only",
        "",
        f"Command: `{payload['command']}`  ",
        f"Fitness: {payload['objectives']} on {fitness_images(payload)}; "
        f"test accuracy, mean ± std over {len(payload['runs'])} seeds; wall times include the "
        f"seeding ({seeding}). Searches: "
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
    floor = targets(payload, "floor")
    goal = targets(payload, "goal")
    seeds_row = f"{init_method} ({payload['init_epochs']} ep)"
    floor_format = ".1%"
    if (
        floor is None
        and payload["init_epochs"] == 1
        and init_method == "supermask"
        and seeds_row in summary
    ):
        floor = summary[seeds_row]["mean"]  # LeNet-5: at least the 1-epoch supermask
        floor = {d: floor[str(d)] for d in DENSITIES}
        floor_format = ".2%"
    if floor is not None:
        cells = " | ".join(f"{floor[d]:{floor_format}}" for d in DENSITIES)
        lines.append(f"| floor (issue 14) | ≤ 600 | {cells} |")
    lines.append(
        "| goal (issue 14) | ≤ 600 | " + " | ".join(f"{goal[d]:.1%}" for d in DENSITIES) + " |"
    )
    if MAIN in summary and "supermask, equal time" in summary:
        a = summary[MAIN]
        lines += [
            "",
            "Against supermask at equal wall time (difference of means; 2 SE of the difference):",
            "",
            *compare(a, summary["supermask, equal time"]),
        ]
        for picked, _, _, which in HELD_OUT_ROWS:
            if picked in summary:
                lines += ["", f"The {which} against supermask at equal wall time:", ""]
                lines += compare(summary[picked], summary["supermask, equal time"])
        seeds = summary.get(seeds_row)
        searches = [MAIN, *(row for row, _, _, _ in HELD_OUT_ROWS)]
        for searched in searches if seeds and HELD_OUT in summary else []:
            if searched not in summary:
                continue
            lines += ["", f"{searched} against its seeds ({seeds_row}):", ""]
            lines += compare(summary[searched], seeds)
        tuned = f" + {payload.get('finetune_epochs')} ep FT"
        dns = f"dns ({payload.get('finetune_epochs')} ep)"
        searches = [name for name in summary if name.startswith(MAIN) and name.endswith(tuned)]
        for searched in searches if dns in summary else []:
            what = searched.removesuffix(tuned).removeprefix(MAIN).lstrip(", ")
            whose = f"the search's ({what})" if what else "the search's"
            lines += ["", f"After fine-tuning, {whose} masks against {dns}:", ""]
            lines += compare(summary[searched], summary[dns])
        lines.append("")
        if floor is not None:
            met = [d for d in DENSITIES if a["mean"][str(d)] >= floor[d]]
            lines.append(f"Floor met at {', '.join(f'{d:.0%}' for d in met) or 'no density'}.")
        reached = [d for d in DENSITIES if a["mean"][str(d)] >= goal[d]]
        lines.append(
            f"Goal met at {', '.join(f'{d:.0%}' for d in reached) or 'no density'}; "
            f"wall time {a['wall_time']:.0f} s (limit 600 s)."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
