"""Cross-method quality: search fronts against one-shot and training-time pruning methods.

On ``lenet300_fashion`` and ``lenet5_fashion`` (the cached dense zoo models), at a few target
densities and over seeds (mean ± std), this compares

* **search solvers** under one equal budget of exact evaluations per solver and seed:
  ``nsga2`` and ``deap-nsga2`` (one run gives the whole front; ``+ls`` adds the gradient-guided
  swap local search, whose evaluations count against the same budget), ``nsga2+screen`` (NSGA-II whose
  offspring are screened by the Numba surrogate, only the best third evaluated exactly; the
  budget counts exact evaluations), ``random`` (the package's random search: half fresh samples,
  half mutations of its archive) and the single-objective ``ga`` and ``evopress`` ((1+λ)-EA),
  which get the budget split evenly over the densities, one run per density;
  ``nsga2+ls+path`` is ``nsga2+ls`` warm-started from the magnitude masks and ``supermask-path``
  masks (one epoch at the densest target, one more at each sparser one: ``masksearch run``'s
  default), their epochs and seconds counted in the row; a ``+bn`` row (``nsga2+ls+bn``,
  ``nsga2+ls+path+bn``) scores every candidate after re-estimating the batch-norm statistics on
  2 batches of 128 training images (the problem's ``recalibrate_bn``), for models with batch
  norm, whose masks the dense statistics no longer fit; every mask of such a model is then also
  reported with its statistics re-estimated the same way;
* **one-shot criteria**: global ``magnitude``, ``wanda``, ``snip``;
* **mask learning on frozen weights**: ``supermask`` (``--ft-epochs`` epochs of score training)
  and ``large_plus_small`` (method A: a GA over its pool encoding, the per-density share of
  the budget);
* **training-time methods** (``dns``, ``gmp``, ``imp``, ``small_frequency``, i.e. method B): they
  change the weights, so they appear in the fine-tuned table only, with the same epoch budget as
  the fine-tuning.

Rows of method A and B are labelled ``method_a`` and ``method_b``, the names the committed
results (and ``methods.json``) use; those names are also taken on the command line.

"Mask only" scores each method's mask on the dense weights with no training; "fine-tuned" adds
``--ft-epochs`` epochs of :func:`masksearch.training.finetune` (SGD, lr 0.01, momentum 0.9,
batch 128 — the settings of ``benchmarks/methods.py``) on the train split. Fitness uses the
validation split only; every accuracy reported is on the Fashion-MNIST **test** split. The
search rows also record, per generation, the best validation accuracy at each density, from
which the time and evaluations to reach fixed accuracy levels are tabulated.

    python benchmarks/quality.py --quick      # lenet300, 2% density, 1 seed, 256 evaluations
    python benchmarks/quality.py              # full: both models, 5/2/1%, 3 seeds
    python benchmarks/quality.py --methods-json benchmarks/results/methods.json

``--methods-json`` reuses training-time rows that ``benchmarks/methods.py`` already produced
with the same model, sparsity, seed, epochs and dense weights, instead of retraining. run_all.py
passes it, but its methods grid trains for 2 epochs and this benchmark's default budget is 1, so
the full suite reuses them only when both are given the same ``--epochs``/``--ft-epochs``.

Full mode: both models, densities 5/2/1%, 3 seeds, 1,500 evaluations per solver and seed on
lenet300 (1,024 validation samples) and 600 on lenet5 (256 validation samples), fine-tuning
1 epoch of the 55,000 training images. Its wall time was **not measured** yet. The bulk is
LeNet-5's one-epoch runs: 13 masks (8 search rows, 5 one-shot or learned methods) fine-tuned and 4
training-time methods trained, at 3 densities and 3 seeds, about 150 runs; one LeNet-5 epoch took
about 22 s on one core of the AVX-512 EPYC while another job held the other, so about 45 minutes
for the whole benchmark on 2 idle cores is the estimate. Quick
mode took 2.2 minutes on a heavily shared machine (load average about 5 on 2 cores).

Writes ``<out>/quality[_quick].json``, ``.md`` and ``.png`` (accuracy vs density, every method).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import (
    build,
    environment,
    pin_dense_models,
    recorded_name,
    screen,
    test_accuracy,
    write_results,
)

from masksearch import catalogue, zoo
from masksearch import data as datasets
from masksearch.front import density_slack
from masksearch.mask import Mask
from masksearch.methods import METHODS, MethodError, make_method
from masksearch.training import evaluate, finetune, recalibrate_batch_norm, resolve_device

RESULTS = Path(__file__).resolve().parent / "results"

# catalogued problems; resnet8_fashion (a residual CNN with batch norm) is not in the full
# default: run it with --models resnet8_fashion (and sparser-than-dense densities that suit it)
PROBLEMS = ("lenet300_fashion", "lenet5_fashion", "resnet8_fashion")
# row label -> (registered solver, surrogate screening, one run per density, local search)
SOLVERS: dict[str, tuple[str, bool, bool, bool]] = {
    "nsga2+ls": ("nsga2", False, False, True),
    "nsga2": ("nsga2", False, False, False),
    "nsga2+screen": ("nsga2", True, False, False),
    "deap-nsga2+ls": ("deap-nsga2", False, False, True),
    "deap-nsga2": ("deap-nsga2", False, False, False),
    "random": ("random", False, False, False),
    "ga": ("ga", False, True, False),
    "evopress": ("evopress", False, True, False),
    "nsga2+ls+path": ("nsga2", False, False, True),
    "nsga2+ls+bn": ("nsga2", False, False, True),
    "nsga2+ls+path+bn": ("nsga2", False, False, True),
}
# warm starts per row (default: the magnitude masks); the seeds' epochs count in the row's budget
WARM_STARTS: dict[str, list[str]] = {
    "nsga2+ls+path": ["magnitude", "supermask-path"],
    "nsga2+ls+path+bn": ["magnitude", "supermask-path"],
}
# batches of 128 training images on which a "+bn" row re-estimates every batch norm's statistics
# before scoring each candidate (the problem's recalibrate_bn); models without batch norm
# refuse it
RECALIBRATE_BN = 2
PROBLEM_SETTINGS: dict[str, dict[str, Any]] = {
    "nsga2+ls+bn": {"recalibrate_bn": RECALIBRATE_BN},
    "nsga2+ls+path+bn": {"recalibrate_bn": RECALIBRATE_BN},
}
ONESHOT = ("magnitude", "wanda", "snip")
LEARNED = ("supermask", "large_plus_small")
TRAINING = ("dns", "gmp", "imp", "small_frequency")
# the fine-tuning / training settings of benchmarks/methods.py, so rows compare at equal cost
OPTIMISER = {"lr": 0.01, "batch_size": 128, "optimizer": "sgd", "momentum": 0.9}

FULL = {
    "models": ["lenet300_fashion", "lenet5_fashion"],
    "densities": [0.05, 0.02, 0.01],
    "seeds": 3,
    "budget": {"lenet300_fashion": 1500, "lenet5_fashion": 600, "resnet8_fashion": 600},
    "val_samples": {"lenet300_fashion": 1024, "lenet5_fashion": 256, "resnet8_fashion": 256},
    "train_samples": None,
    # the "+bn" rows need batch norm, which neither LeNet has: run them with --models resnet8_fashion
    "solvers": ",".join(s for s in SOLVERS if s not in PROBLEM_SETTINGS),
    "oneshot": ",".join(ONESHOT + LEARNED),
    "training": ",".join(TRAINING),
}
QUICK = {
    "models": ["lenet300_fashion"],
    "densities": [0.02],
    "seeds": 1,
    "budget": {"lenet300_fashion": 256, "lenet5_fashion": 128, "resnet8_fashion": 128},
    "val_samples": {"lenet300_fashion": 512, "lenet5_fashion": 256, "resnet8_fashion": 256},
    "train_samples": 4096,
    # a smoke run: the memetic search against plain NSGA-II and the cheap baselines
    "solvers": "nsga2+ls,nsga2",
    "oneshot": "magnitude,wanda,supermask",
    "training": "gmp",
}


def _names(text: str, known: Sequence[str], what: str) -> list[str]:
    if text.strip() == "none":
        return []
    # old method names (method_a, method_b) are taken for the new ones
    names = [METHODS.aliases.get(n.strip(), n.strip()) for n in text.split(",") if n.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown {what} {unknown[0]!r}; choose from {', '.join(known)}")
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="lenet300, 2%% density, 1 seed")
    parser.add_argument("--models", default=None, help=f"comma-separated, from {list(PROBLEMS)}")
    parser.add_argument("--densities", default=None, help="comma-separated, e.g. 0.05,0.02,0.01")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1")
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="exact evaluations per solver and seed (default: per model)",
    )
    parser.add_argument("--pop-size", type=int, default=32)
    parser.add_argument(
        "--val-samples",
        type=int,
        default=None,
        help="validation samples for fitness (default: 1024 lenet300, 256 lenet5)",
    )
    parser.add_argument(
        "--train-samples",
        type=int,
        default=None,
        help="train on the first N training images (default: all; quick: 4096)",
    )
    parser.add_argument(
        "--ft-epochs",
        type=int,
        default=1,
        help="fine-tuning budget, also the training-time methods' budget",
    )
    parser.add_argument("--solvers", default=None, help=f"from {list(SOLVERS)} (default all)")
    parser.add_argument(
        "--oneshot", default=None, help="mask methods besides the solvers ('none' for none)"
    )
    parser.add_argument("--training", default=None, help="training-time methods ('none')")
    parser.add_argument(
        "--stem",
        default=None,
        help="result file name (default quality, or quality_quick with --quick); name a "
        "partial run (e.g. one new row) so it does not overwrite the full results",
    )
    parser.add_argument(
        "--levels",
        default="0.4,0.5,0.6,0.7,0.8",
        help="validation accuracies for the time-to-reach table",
    )
    parser.add_argument(
        "--methods-json",
        type=Path,
        default=None,
        help="reuse matching training-time runs from benchmarks/methods.py",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)

    preset = QUICK if args.quick else FULL
    args.models = _names(args.models or ",".join(preset["models"]), list(PROBLEMS), "model")
    try:
        args.densities = sorted(
            (
                float(d)
                for d in (args.densities or ",".join(map(str, preset["densities"]))).split(",")
            ),
            reverse=True,
        )
        args.levels = [float(level) for level in args.levels.split(",") if level.strip()]
    except ValueError:
        parser.error("--densities and --levels must be comma-separated numbers")
    if not args.densities or any(not 0 < d < 1 for d in args.densities):
        parser.error("--densities must be fractions in (0, 1), e.g. 0.05,0.02")
    args.seeds = preset["seeds"] if args.seeds is None else args.seeds
    for option in ("seeds", "pop_size", "ft_epochs"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be >= 1")
    if args.budget is not None and args.budget < args.pop_size:
        parser.error(f"--budget ({args.budget}) must be at least --pop-size ({args.pop_size})")
    args.budgets = {m: args.budget or preset["budget"][m] for m in args.models}
    args.val = {m: args.val_samples or preset["val_samples"][m] for m in args.models}
    if args.train_samples is None:
        args.train_samples = preset["train_samples"]
    args.solvers = _names(args.solvers or preset["solvers"], list(SOLVERS), "solver")
    args.oneshot = _names(args.oneshot or preset["oneshot"], ONESHOT + LEARNED, "mask method")
    args.training = _names(args.training or preset["training"], TRAINING, "training-time method")
    return args


# -- helpers ---------------------------------------------------------------------------------


def finetuned_accuracy(
    model: torch.nn.Module, mask: Mask, dataset, epochs: int, seed: int, device: str
) -> float:
    tuned = mask.apply(copy.deepcopy(model))
    finetune(tuned, mask, dataset.train, epochs=epochs, seed=seed, device=device, **OPTIMISER)
    return evaluate(tuned, dataset.test, device=device).accuracy


def mask_accuracies(
    model: torch.nn.Module, mask: Mask, test, train, device: str, has_bn: bool
) -> dict[str, float | None]:
    """Accuracy of ``mask`` on ``test`` with the dense weights as they are and, for a model
    with batch norm, after re-estimating its statistics as a "+bn" row's candidates were scored
    (the same RECALIBRATE_BN batches of 128 images of ``train``, no gradient step)."""
    plain = test_accuracy(model, mask, test, device)
    if not has_bn:
        return {"test_accuracy": plain, "test_accuracy_bn": None}
    pruned = recalibrate_batch_norm(
        mask.apply(copy.deepcopy(model)), train, batches=RECALIBRATE_BN, device=device
    )
    recalibrated = evaluate(pruned, test, device=device).accuracy
    return {"test_accuracy": plain, "test_accuracy_bn": recalibrated}


def best_val_accuracy(front, densities: Sequence[float], n_weights: int) -> dict[str, float | None]:
    """The best validation accuracy on the live front at each density bound."""
    if len(front) == 0:
        return {str(d): None for d in densities}
    slack = density_slack(n_weights)  # as ParetoFront.index
    kept = front.metrics["density"]
    accuracy = 1.0 - front.metrics["error"]
    out: dict[str, float | None] = {}
    for density in densities:
        within = kept <= density + slack
        out[str(density)] = float(accuracy[within].max()) if within.any() else None
    return out


def run_search(
    problem_settings: dict[str, Any],
    label: str,
    densities: Sequence[float],
    budget: int,
    seed: int,
    pop_size: int,
) -> dict[str, Any]:
    """One search; returns the chosen mask per density, its validation metrics and trajectory.

    Every search builds its own problem, so that no evaluator cache carries over from an
    earlier search and a run's front does not depend on the runs before it; masks denser than
    twice the largest target are infeasible.
    """
    registered, screened, _, local = SOLVERS[label]
    run = build(
        {
            **problem_settings,
            **PROBLEM_SETTINGS.get(label, {}),
            "densities": list(densities),
            "solver": registered,
            "pop_size": pop_size,
            "local_search": "gradient-swaps" if local else "none",
            "init": WARM_STARTS.get(label, ["magnitude"]),
            "init_epochs": 1,
            "budget": budget,
            "seed": seed,
        },
        max_density=min(1.0, 2 * max(densities)),
    )
    problem = run.problem
    if screened:
        # bench_screening.py's setting, one surrogate anchored at each target density; the
        # seeded first population is evaluated in full, so the magnitude seeds always reach
        # the archive
        screen(problem, densities, n_samples=min(128, len(problem.data)))
    trajectory: list[dict[str, Any]] = []

    def record(progress: dict[str, Any]) -> None:
        trajectory.append(
            {
                "n_evals": progress["n_evals"],
                "seconds": round(progress["wall_time"], 3),
                "val_accuracy": best_val_accuracy(
                    progress["front"], densities, problem.layout.n_total
                ),
            }
        )

    result = run.search(callbacks=(record,))
    chosen = {}
    for density in densities:
        index = result.front.index(max_density=density)
        chosen[density] = {
            "mask": result.front.mask(index),
            "val_accuracy": 1.0 - float(result.front.metrics["error"][index]),
        }
    warm = result.warm_start or {}
    return {
        "chosen": chosen,
        "n_evals": result.n_evals,
        "seconds": result.wall_time + warm.get("seconds", 0.0),
        "seed_epochs": warm.get("epochs", 0.0),
        "seed_seconds": warm.get("seconds", 0.0),
        "trajectory": trajectory,
    }


def previous_training_rows(
    path: Path | None, args: argparse.Namespace, dense_sha256: str
) -> dict[tuple, dict]:
    """Training-time runs of benchmarks/methods.py that match this configuration and started
    from the same dense weights."""
    if path is None or args.train_samples is not None or not path.exists():
        return {}
    rows = {}
    for run in json.loads(path.read_text()).get("runs", []):
        if run.get("test_accuracy") is None or run.get("registered") not in {
            recorded_name(m) for m in TRAINING
        }:
            continue
        if run.get("dense_sha256") != dense_sha256:
            continue
        density = round(1.0 - float(run["sparsity"]), 6)
        key = (run["model"], run["registered"], density, int(run["seed"]), int(run["epochs"]))
        rows[key] = run
    return rows


# -- the benchmark ---------------------------------------------------------------------------


def run_model(model_name: str, args: argparse.Namespace, echo: Callable[[str], None]) -> dict:
    device = str(resolve_device(args.device))
    problem_settings = {
        "problem": model_name,
        "encoding": "weights",  # resnet8_fashion's catalogue default is channel groups
        "objectives": ["loss", "density"],
        "val_samples": args.val[model_name],
        "device": device,
    }
    reference = build({**problem_settings, "densities": list(args.densities)}).problem
    dense = reference.model
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in dense.modules())
    # re-estimated on the training images a "+bn" search scores with (the catalogue's whole
    # train split, which --train-samples does not cut)
    bn_train = reference.train_data
    spec = catalogue.CATALOGUE[model_name]
    dataset = datasets.load(spec.dataset)
    if args.train_samples is not None:
        dataset = replace(dataset, train=dataset.train.subset(args.train_samples))
    architecture = spec.model
    budget = args.budgets[model_name]
    per_density = max(args.pop_size, budget // len(args.densities))
    runs: list[dict[str, Any]] = []
    trajectories: list[dict[str, Any]] = []
    previous = previous_training_rows(
        args.methods_json, args, zoo.dense_sha256(architecture, spec.dataset, device=device)
    )

    def add(method: str, kind: str, density: float, seed: int, **fields: Any) -> None:
        runs.append(
            {
                "model": model_name,
                "method": method,
                "kind": kind,
                "density": density,
                "seed": seed,
                **fields,
            }
        )

    # Several methods often return the same mask (e.g. the magnitude mask a search was seeded
    # with); fine-tuning is deterministic for a mask and seed, so each pair is trained once.
    finetuned: dict[tuple[bytes, int], tuple[float, float]] = {}

    def maybe_finetune(mask: Mask, seed: int) -> tuple[float, float]:
        key = (hashlib.sha256(np.packbits(mask.flat())).digest() + str(mask.names).encode(), seed)
        if key not in finetuned:
            started = time.perf_counter()
            accuracy = finetuned_accuracy(dense, mask, dataset, args.ft_epochs, seed, device)
            finetuned[key] = (accuracy, time.perf_counter() - started)
        return finetuned[key]

    # one-shot criteria are deterministic: one mask per density, fine-tuned once per seed
    for method in (m for m in args.oneshot if m in ONESHOT):
        for density in args.densities:
            started = time.perf_counter()
            mask = make_method(method).prune(dense, dataset, density)
            seconds = time.perf_counter() - started
            accuracies = mask_accuracies(dense, mask, dataset.test, bn_train, device, has_bn)
            accuracy = accuracies["test_accuracy"]
            for seed in range(args.seeds):
                tuned, ft_seconds = maybe_finetune(mask, seed)
                add(
                    method,
                    "oneshot",
                    density,
                    seed,
                    achieved_density=mask.density,
                    **accuracies,
                    finetuned_accuracy=tuned,
                    evaluations=0,
                    epochs=0,
                    seconds=seconds,
                    finetune_seconds=ft_seconds,
                    budget="no search",
                )
            echo(f"  {method:>13} {density:.0%}: mask {accuracy:.2%}, fine-tuned {tuned:.2%}")

    for seed in range(args.seeds):
        for solver in args.solvers:
            if solver in PROBLEM_SETTINGS and not has_bn:
                if seed == 0:
                    echo(f"  {solver:>13}: skipped, {model_name} has no batch norm to re-estimate")
                continue
            per_run = SOLVERS[solver][2]
            groups = [[d] for d in args.densities] if per_run else [list(args.densities)]
            for densities in groups:
                run = run_search(
                    problem_settings,
                    solver,
                    densities,
                    per_density if per_run else budget,
                    seed,
                    args.pop_size,
                )
                trajectories.append(
                    {
                        "method": solver,
                        "seed": seed,
                        "densities": densities,
                        "points": run["trajectory"],
                    }
                )
                for density, chosen in run["chosen"].items():
                    tuned, ft_seconds = maybe_finetune(chosen["mask"], seed)
                    accuracies = mask_accuracies(
                        dense, chosen["mask"], dataset.test, bn_train, device, has_bn
                    )
                    add(
                        solver,
                        "search",
                        density,
                        seed,
                        achieved_density=chosen["mask"].density,
                        val_accuracy=chosen["val_accuracy"],
                        **accuracies,
                        finetuned_accuracy=tuned,
                        evaluations=run["n_evals"],
                        epochs=run["seed_epochs"],
                        seconds=run["seconds"],
                        seed_seconds=run["seed_seconds"],
                        finetune_seconds=ft_seconds,
                        budget=(
                            f"{run['n_evals']} evals at this density"
                            if per_run
                            else f"{run['n_evals']} evals for the whole front"
                        )
                        + (
                            f" from seeds of {run['seed_epochs']:g} epoch(s)"
                            if run["seed_epochs"]
                            else ""
                        )
                        + (", scored with re-estimated BN" if solver in PROBLEM_SETTINGS else ""),
                    )
                    echo(
                        f"  {solver:>13} {density:.0%} seed {seed}: mask "
                        f"{accuracies['test_accuracy']:.2%}, "
                        f"fine-tuned {tuned:.2%} ({run['n_evals']} evals, "
                        f"{run['seconds']:.0f} s)"
                    )

        for method in (m for m in args.oneshot if m in LEARNED):
            for density in args.densities:
                if method == "supermask":
                    options = {"epochs": args.ft_epochs, "seed": seed}
                    budget_text = f"{args.ft_epochs} epoch(s) of score training"
                else:
                    generations = max(1, per_density // args.pop_size)
                    options = {
                        "pop_size": args.pop_size,
                        "generations": generations,
                        "seed": seed,
                        "val_samples": args.val[model_name],
                    }
                    budget_text = f"{args.pop_size * generations} evals at this density"
                started = time.perf_counter()
                mask = make_method(method, **options).prune(dense, dataset, density)
                seconds = time.perf_counter() - started
                accuracies = mask_accuracies(dense, mask, dataset.test, bn_train, device, has_bn)
                tuned, ft_seconds = maybe_finetune(mask, seed)
                add(
                    recorded_name(method),
                    "learned",
                    density,
                    seed,
                    achieved_density=mask.density,
                    **accuracies,
                    finetuned_accuracy=tuned,
                    evaluations=options.get("pop_size", 0) * options.get("generations", 0),
                    epochs=options.get("epochs", 0),
                    seconds=seconds,
                    finetune_seconds=ft_seconds,
                    budget=budget_text,
                )
                echo(
                    f"  {method:>13} {density:.0%} seed {seed}: mask "
                    f"{accuracies['test_accuracy']:.2%}, "
                    f"fine-tuned {tuned:.2%} ({seconds:.0f} s)"
                )

        for method in args.training:
            for density in args.densities:
                key = (model_name, recorded_name(method), round(density, 6), seed, args.ft_epochs)
                if key in previous:
                    row = previous[key]
                    add(
                        recorded_name(method),
                        "training",
                        density,
                        seed,
                        achieved_density=row["density"],
                        test_accuracy=None,
                        finetuned_accuracy=row["test_accuracy"],
                        evaluations=0,
                        epochs=args.ft_epochs,
                        seconds=row.get("seconds"),
                        budget=f"{args.ft_epochs} epoch(s) of training",
                        source=str(args.methods_json),
                    )
                    continue
                model = zoo.pretrained(architecture, spec.dataset, device=device)
                started = time.perf_counter()
                try:
                    model, mask = make_method(method, **OPTIMISER).run(
                        model, dataset, density, epochs=args.ft_epochs, seed=seed, device=device
                    )
                except MethodError as error:  # e.g. too few epochs for the method's rounds
                    add(
                        recorded_name(method),
                        "training",
                        density,
                        seed,
                        error=str(error),
                        test_accuracy=None,
                        finetuned_accuracy=None,
                        budget=f"{args.ft_epochs} epoch(s)",
                    )
                    echo(f"  {method:>13} {density:.0%} seed {seed}: could not run: {error}")
                    continue
                seconds = time.perf_counter() - started
                accuracy = evaluate(model, dataset.test, device=device).accuracy
                add(
                    recorded_name(method),
                    "training",
                    density,
                    seed,
                    achieved_density=mask.density,
                    test_accuracy=None,
                    finetuned_accuracy=accuracy,
                    evaluations=0,
                    epochs=args.ft_epochs,
                    seconds=seconds,
                    budget=f"{args.ft_epochs} epoch(s) of training",
                )
                echo(
                    f"  {method:>13} {density:.0%} seed {seed}: trained {accuracy:.2%} "
                    f"({seconds:.0f} s)"
                )
    return {
        "dense_test_accuracy": evaluate(dense, dataset.test, device=device).accuracy,
        "budget": budget,
        "budget_per_density": per_density,
        "val_samples": args.val[model_name],
        "runs": runs,
        "trajectories": trajectories,
    }


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std over seeds per (model, table, method, density)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        for table, field in (
            ("mask", "test_accuracy"),
            ("mask_bn", "test_accuracy_bn"),
            ("finetuned", "finetuned_accuracy"),
        ):
            if run.get(field) is not None:
                key = (run["model"], table, run["method"], run["density"])
                groups.setdefault(key, []).append({**run, "value": run[field]})
    rows = []
    for (model, table, method, density), members in groups.items():
        values = [m["value"] for m in members]
        rows.append(
            {
                "model": model,
                "table": table,
                "method": method,
                "density": density,
                "kind": members[0]["kind"],
                "n": len(values),
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "budget": members[0]["budget"],
                "achieved_density": statistics.fmean(m["achieved_density"] for m in members),
            }
        )
    return rows


def time_to_reach(trajectories: list[dict[str, Any]], levels: Sequence[float]) -> list[dict]:
    """Per method and density: median evaluations and seconds to reach each validation level."""
    found: dict[tuple, list[tuple[float, float] | None]] = {}
    for trajectory in trajectories:
        for density in trajectory["densities"]:
            for level in levels:
                hit = next(
                    (
                        (p["n_evals"], p["seconds"])
                        for p in trajectory["points"]
                        if (p["val_accuracy"].get(str(density)) or 0.0) >= level
                    ),
                    None,
                )
                found.setdefault((trajectory["method"], density, level), []).append(hit)
    rows = []
    for (method, density, level), hits in found.items():
        reached = [h for h in hits if h is not None]
        rows.append(
            {
                "method": method,
                "density": density,
                "level": level,
                "reached": len(reached),
                "runs": len(hits),
                "median_evals": statistics.median(h[0] for h in reached) if reached else None,
                "median_seconds": statistics.median(h[1] for h in reached) if reached else None,
            }
        )
    return rows


def markdown(payload: dict[str, Any], plot_name: str) -> str:
    config = payload["config"]
    lines = [
        "# Quality: search fronts vs pruning methods (test accuracy, mean ± std over seeds)",
        "",
        f"Command: `{payload['command']}`  ",
        f"Seeds {config['seeds']}; fine-tuning and training-time budget {config['ft_epochs']} "
        f"epoch(s) on {config['train_samples'] or 'all'} training images; population "
        f"{config['pop_size']}. Wall time {payload['seconds']:.0f} s. Plot: [{plot_name}]"
        f"({plot_name}).",
        "",
    ]
    densities = config["densities"]
    header = "| method | budget | " + " | ".join(f"{d:.0%}" for d in densities) + " |"
    rule = "|---|---|" + "---:|" * len(densities)
    for model, result in payload["models"].items():
        summary = [r for r in payload["summary"] if r["model"] == model]
        lines.append(
            f"## {model} (dense {result['dense_test_accuracy']:.2%}; fitness on "
            f"{result['val_samples']} validation samples)"
        )
        for table, title in (
            ("mask", "Mask only (dense weights, no training)"),
            (
                "mask_bn",
                "Mask only, batch norm re-estimated (dense weights, statistics of "
                f"{RECALIBRATE_BN} batches of 128 training images, no gradient step)",
            ),
            ("finetuned", f"Fine-tuned / trained ({config['ft_epochs']} epoch(s))"),
        ):
            methods = list(dict.fromkeys(r["method"] for r in summary if r["table"] == table))
            if not methods:
                continue  # no batch norm: no re-estimated table
            lines += ["", f"### {title}", "", header, rule]
            for method in methods:
                cells, budget = [], ""
                for density in densities:
                    row = next(
                        (
                            r
                            for r in summary
                            if r["table"] == table
                            and r["method"] == method
                            and r["density"] == density
                        ),
                        None,
                    )
                    cells.append(f"{row['mean']:.2%} ± {row['std']:.2%}" if row else "—")
                    budget = budget or (row["budget"] if row else "")
                if table == "finetuned" and method not in {recorded_name(m) for m in TRAINING}:
                    budget = f"{budget} + {config['ft_epochs']} epoch(s) FT"
                lines.append(f"| {method} | {budget} | " + " | ".join(cells) + " |")
        errors = [r for r in result["runs"] if r.get("error")]
        for run in errors:
            lines.append(
                f"\n- {run['method']} at {run['density']:.0%} (seed {run['seed']}) "
                f"could not run: {run['error']}"
            )
        lines.append("")
    lines += [
        "## Evaluations / seconds to reach a validation accuracy (median over seeds)",
        "",
        "| model | method | density | level | reached | evals | seconds |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for model, result in payload["models"].items():
        for row in result["time_to_reach"]:
            evals = f"{row['median_evals']:.0f}" if row["median_evals"] is not None else "—"
            seconds = f"{row['median_seconds']:.1f}" if row["median_seconds"] is not None else "—"
            lines.append(
                f"| {model} | {row['method']} | {row['density']:.0%} | "
                f"{row['level']:.0%} | {row['reached']}/{row['runs']} | {evals} | "
                f"{seconds} |"
            )
    return "\n".join(lines) + "\n"


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(payload["models"])
    fig, axes = plt.subplots(len(models), 2, figsize=(12, 4.5 * len(models)), squeeze=False)
    methods = list(dict.fromkeys(r["method"] for r in payload["summary"]))
    colours = {m: plt.get_cmap("tab20")(i % 20) for i, m in enumerate(methods)}
    for row, model in enumerate(models):
        for column, (table, title) in enumerate(
            (
                ("mask", "mask only"),
                ("finetuned", f"fine-tuned / trained, {payload['config']['ft_epochs']} epoch(s)"),
            )
        ):
            ax = axes[row][column]
            for method in methods:
                rows = sorted(
                    (
                        r
                        for r in payload["summary"]
                        if r["model"] == model and r["table"] == table and r["method"] == method
                    ),
                    key=lambda r: r["density"],
                )
                if not rows:
                    continue
                style = "o-" if rows[0]["kind"] == "search" else "s--"
                ax.errorbar(
                    [r["density"] for r in rows],
                    [r["mean"] for r in rows],
                    yerr=[r["std"] for r in rows],
                    fmt=style,
                    capsize=3,
                    color=colours[method],
                    label=method,
                    markersize=4,
                )
            ax.axhline(
                payload["models"][model]["dense_test_accuracy"], color="grey", ls=":", label="dense"
            )
            ax.set_xscale("log")
            ax.set_xlabel("density (kept / prunable weights)")
            ax.set_ylabel("Fashion-MNIST test accuracy")
            ax.set_title(f"{model}: {title}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None, echo: Callable[[str], None] = print) -> dict:
    args = parse_args(argv)
    pin_dense_models()
    started = time.perf_counter()
    device = str(resolve_device(args.device))
    payload: dict[str, Any] = {
        "command": " ".join(
            ["python", "benchmarks/quality.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "mode": "quick" if args.quick else "full",
        "config": {
            "models": args.models,
            "densities": args.densities,
            "seeds": args.seeds,
            "budget": args.budgets,
            "pop_size": args.pop_size,
            "val_samples": args.val,
            "train_samples": args.train_samples,
            "ft_epochs": args.ft_epochs,
            "solvers": args.solvers,
            "oneshot": [recorded_name(m) for m in args.oneshot],
            "training": [recorded_name(m) for m in args.training],
            "levels": args.levels,
            "optimiser": OPTIMISER,
            "objectives": ["loss", "density"],
            "encoding": "weights",
        },
        "environment": environment(device),
        "models": {},
    }
    for model_name in args.models:
        echo(f"{model_name}: budget {args.budgets[model_name]} evaluations per solver and seed")
        result = run_model(model_name, args, echo)
        result["time_to_reach"] = time_to_reach(result["trajectories"], args.levels)
        payload["models"][model_name] = result
    payload["summary"] = summarise(
        [run for result in payload["models"].values() for run in result["runs"]]
    )
    payload["seconds"] = time.perf_counter() - started
    stem = args.stem or ("quality_quick" if args.quick else "quality")
    write_results(
        args.out,
        stem,
        payload,
        lambda report: markdown(report, f"{stem}.png"),
        plot=lambda path: plot(payload, path),
    )
    echo(f"wrote {args.out / stem}.json, .md and .png in {payload['seconds']:.0f} s")
    return payload


if __name__ == "__main__":
    main()
