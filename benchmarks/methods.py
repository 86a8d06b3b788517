"""Pruning methods at equal epoch budgets: method B vs DNS vs GMP vs IMP vs magnitude + fine-tune.

Every run starts from the same pretrained dense model of the zoo (``masksearch.zoo``), prunes it
to the target sparsity with one method and one seed, spending exactly ``--epochs`` passes over
the train split, and is scored on the test split. Results are the mean ± std over seeds.

    python benchmarks/methods.py                 # the full grid (hours on a CPU)
    python benchmarks/methods.py --quick         # LeNet-300-100, 90/99%, 1 seed, 1 epoch
    python benchmarks/methods.py --models lenet300_fashion --sparsities 0.95 --seeds 2

Writes ``<out>/methods.json`` (every run, plus the summary) after each run, so an interrupted
benchmark resumes where it stopped (runs with the same model, method, sparsity, seed and budget
are reused; ``--fresh`` ignores them; runs of other grids saved there are kept), and ``<out>/methods.md`` (tables and the verdicts on the
papers' claims) at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _common import environment, pin_dense_models, recorded_name, write_results

from masksearch import data, training, zoo
from masksearch.methods import MethodError, make_method

RESULTS = Path(__file__).resolve().parent / "results"

# name on the command line -> (zoo model, dataset)
MODELS: dict[str, tuple[str, str]] = {
    "lenet5_fashion": ("lenet5", "fashion-mnist"),
    "lenet300_fashion": ("lenet300", "fashion-mnist"),
    "digits_mlp_digits": ("digits_mlp", "digits"),  # for smoke tests only
}

# row label -> (registered method, options); every method gets the same optimiser settings.
# Rows record the method as recorded_name() gives it (method_a, method_b for A and B).
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "B": ("small_frequency", {}),
    "DNS": ("dns", {}),
    "GMP": ("gmp", {}),
    "IMP": ("imp", {}),
    "magnitude+FT": ("oneshot_finetune", {"criterion": "magnitude"}),
    # method A (Chung): the GA picks small weights on top of the always-kept large ones, its
    # fitness judged on the validation split; "A" and "magnitude" are masks with no training,
    # "A+FT" fine-tunes A's mask with the same epochs and optimiser as every other row
    "A": ("large_plus_small", {"finetune": False}),
    "A+FT": ("large_plus_small", {"finetune": True}),
    "magnitude": ("magnitude", {"finetune": False}),
}

SPARSITIES = (0.90, 0.95, 0.98, 0.99)
EPOCHS = 4
SEEDS = 3
OPTIMISER = {"lr": 0.01, "batch_size": 128, "optimizer": "sgd", "momentum": 0.9}

# Issue 5's reference: global magnitude + 2 epochs of fine-tuning, test accuracy (%)
REFERENCE = {
    "lenet5_fashion": {0.95: 90.8, 0.98: 89.5, 0.99: 87.1},
    "lenet300_fashion": {0.95: 87.8, 0.98: 85.5, 0.99: 82.2},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run: lenet300_fashion, 90/99%%, 1 seed, 1 epoch (unless given)",
    )
    parser.add_argument("--seeds", type=int, default=None, help=f"seeds 0..N-1 (default {SEEDS})")
    parser.add_argument(
        "--models",
        default=None,
        help=f"comma-separated, from {sorted(MODELS)} (default lenet5_fashion,lenet300_fashion)",
    )
    parser.add_argument(
        "--sparsities", default=None, help="comma-separated fractions (default 0.9,0.95,0.98,0.99)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"training budget of every method, in epochs (default {EPOCHS})",
    )
    parser.add_argument("--methods", default=None, help=f"comma-separated, from {list(METHODS)}")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument(
        "--root", default=None, help="where the datasets are (see masksearch.data.load)"
    )
    parser.add_argument(
        "--out", default=str(RESULTS), help="results folder (default benchmarks/results)"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="rerun this grid instead of reusing saved runs (runs outside it stay in the file)",
    )
    parser.add_argument(
        "--only-seeds",
        default=None,
        help="comma-separated seeds of 0..N-1 to run now (to split a grid between processes, "
        "each with its own --out; join them with --reuse)",
    )
    parser.add_argument(
        "--reuse",
        action="append",
        default=[],
        type=Path,
        help="another methods.json whose runs may be reused (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else SEEDS
    if args.epochs is None:
        args.epochs = 1 if args.quick else EPOCHS
    if args.models is None:
        args.models = "lenet300_fashion" if args.quick else "lenet5_fashion,lenet300_fashion"
    if args.sparsities is None:
        args.sparsities = "0.9,0.99" if args.quick else ",".join(str(s) for s in SPARSITIES)
    args.models = _names(args.models, MODELS, "model")
    args.methods = _names(args.methods or ",".join(METHODS), METHODS, "method")
    try:
        args.sparsities = [float(s) for s in args.sparsities.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sparsities must be comma-separated numbers, got {args.sparsities!r}")
    if not args.sparsities or any(not 0 < s < 1 for s in args.sparsities):
        parser.error("--sparsities must be fractions in (0, 1), e.g. 0.9,0.95")
    if args.seeds < 1 or args.epochs < 1:
        parser.error("--seeds and --epochs must be >= 1")
    try:
        args.only_seeds = (
            list(range(args.seeds))
            if args.only_seeds is None
            else [int(s) for s in args.only_seeds.split(",") if s.strip()]
        )
    except ValueError:
        parser.error(f"--only-seeds must be comma-separated integers, got {args.only_seeds!r}")
    if not args.only_seeds or any(not 0 <= s < args.seeds for s in args.only_seeds):
        parser.error(f"--only-seeds must be seeds in 0..{args.seeds - 1}")
    missing = [str(path) for path in args.reuse if not path.is_file()]
    if missing:
        parser.error(f"--reuse: no such file {missing[0]}")
    return args


def _names(text: str, known: dict[str, Any], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise SystemExit(
            f"unknown {what} {unknown[0] if unknown else text!r}; choose from {list(known)}"
        )
    return names


def run_one(
    model_name: str,
    method_label: str,
    sparsity: float,
    seed: int,
    epochs: int,
    dataset: data.Dataset,
    device: str,
    root: str | None,
    searched: dict[tuple[str, float, int], Any] | None = None,
) -> dict[str, Any]:
    """One pruning run from the pretrained dense model; returns its result row.

    ``searched`` keeps method A's masks by (model, sparsity, seed): "A" and "A+FT" share one
    search (it is deterministic), so the fine-tuned row does not pay for it twice.
    """
    architecture, dataset_name = MODELS[model_name]
    model = zoo.pretrained(architecture, dataset_name, root=root, device=device)
    registered, options = METHODS[method_label]
    log: list[dict[str, Any]] = []
    started = time.perf_counter()
    row: dict[str, Any] = {
        "model": model_name,
        "method": method_label,
        "registered": recorded_name(registered),
        "sparsity": sparsity,
        "seed": seed,
        "epochs": epochs,
        "budget": epochs,
    }
    try:
        if "finetune" in options:  # a one-shot mask, fine-tuned or not
            key = (model_name, sparsity, seed)
            reused = searched is not None and registered == "large_plus_small" and key in searched
            model, mask = _one_shot(
                registered,
                options["finetune"],
                model,
                dataset,
                1.0 - sparsity,
                epochs,
                seed,
                device,
                log,
                searched[key] if reused else None,
            )
            if searched is not None and registered == "large_plus_small":
                searched[key] = mask
            row["mask_reused"] = reused
            row["epochs"] = epochs if options["finetune"] else 0
        else:
            method = make_method(registered, **options, **OPTIMISER)
            model, mask = method.run(
                model,
                dataset,
                1.0 - sparsity,
                epochs=epochs,
                seed=seed,
                device=device,
                progress=log.append,
            )
    except MethodError as error:  # e.g. a budget too small for the method's rounds
        return {
            **row,
            "error": str(error),
            "test_accuracy": None,
            "density": None,
            "epochs_used": None,
            "pruned_weights_zero": True,
            "seconds": time.perf_counter() - started,
        }
    seconds = time.perf_counter() - started
    test = training.evaluate(model, dataset.test, device=device)
    val = training.evaluate(model, dataset.val, device=device)
    zeros_ok = all(
        bool((param.detach()[~mask.tensors[name].to(param.device)] == 0).all())
        for name, param in model.named_parameters()
        if name in mask.tensors
    )
    return {
        **row,
        "test_accuracy": test.accuracy,
        "val_accuracy": val.accuracy,
        "density": mask.density,
        "layer_densities": mask.layer_densities(),
        "epochs_used": log[-1].get("epochs_used") if log else None,
        "rounds": sum(1 for record in log if record.get("event") in ("round", "surgery")),
        "masks_changed": sum(int(record.get("changed", 0)) for record in log),
        "pruned_weights_zero": zeros_ok,
        "seconds": seconds,
        "torch_threads": torch.get_num_threads(),
    }


def _one_shot(
    registered: str,
    tune: bool,
    model: torch.nn.Module,
    dataset: data.Dataset,
    density: float,
    epochs: int,
    seed: int,
    device: str,
    log: list[dict[str, Any]],
    mask: Any = None,
) -> tuple[torch.nn.Module, Any]:
    if mask is None:
        options = {"seed": seed} if registered == "large_plus_small" else {}
        mask = make_method(registered, **options).prune(model, dataset, density)
    model = mask.apply(model)
    used = 0
    if tune:
        training.finetune(
            model, mask, dataset.train, epochs=epochs, seed=seed, device=device, **OPTIMISER
        )
        used = epochs
    log.append({"event": "done", "epochs_used": float(used)})
    return model, mask


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, float], list[float]] = {}
    for run in runs:
        if run["test_accuracy"] is None:
            continue
        groups.setdefault((run["model"], run["method"], run["sparsity"]), []).append(
            run["test_accuracy"]
        )
    rows = []
    for (model, method, sparsity), values in sorted(groups.items()):
        rows.append(
            {
                "model": model,
                "method": method,
                "sparsity": sparsity,
                "n": len(values),
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            }
        )
    return rows


def _outcome(a: dict[str, Any], b: dict[str, Any]) -> int:
    """+1 when ``a``'s mean accuracy is above ``b``'s by more than two standard errors of the
    difference, -1 when below by as much, 0 within that noise (with one seed each there is no
    noise estimate, and any gap counts)."""
    difference = a["mean"] - b["mean"]
    noise = 2.0 * math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
    if abs(difference) <= noise:
        return 0
    return 1 if difference > 0 else -1


def _compared(
    table: dict[tuple, dict[str, Any]], first: str, second: str, points: list[tuple[str, float]]
) -> tuple[list[int], str]:
    """The outcome at each point where both methods ran, and the figures behind them."""
    pairs = [(m, s) for m, s in points if (m, first, s) in table and (m, second, s) in table]
    outcomes = [_outcome(table[(m, first, s)], table[(m, second, s)]) for m, s in pairs]
    detail = ", ".join(
        f"{m} {s:.0%}: {table[(m, first, s)]['mean']:.2%} ± {table[(m, first, s)]['std']:.2%} "
        f"vs {table[(m, second, s)]['mean']:.2%} ± {table[(m, second, s)]['std']:.2%}"
        for m, s in pairs
    )
    return outcomes, detail


def _tally(outcomes: list[int]) -> str:
    return (
        f"clearly better at {outcomes.count(1)}, within noise at {outcomes.count(0)} and clearly "
        f"worse at {outcomes.count(-1)} of {len(outcomes)} points"
    )


def _claim(outcomes: list[int]) -> str:
    if all(o == 1 for o in outcomes):
        return "holds"
    if any(o == -1 for o in outcomes):
        return "does not hold"
    return "is not shown (the gaps are within noise where it is not worse)"


def verdicts(summary: list[dict[str, Any]], datasets: list[str]) -> list[str]:
    """Plain statements on the papers' claims, from the summary. "Clearly" means by more than
    two standard errors of the difference of the means over seeds."""
    table = {(r["model"], r["method"], r["sparsity"]): r for r in summary}
    points = sorted({(m, s) for m, _, s in table})
    lines = []
    outcomes, detail = _compared(table, "B", "DNS", points)
    if outcomes:
        lines.append(
            f'- **Method B (Hu et al.) — "beats DNS at every pruning rate"**: B is '
            f"{_tally(outcomes)}, so the claim {_claim(outcomes)} on {', '.join(datasets)} at "
            f"equal epoch budgets ({detail})."
        )
    for other in ("GMP", "IMP", "magnitude+FT"):
        outcomes, _ = _compared(table, "B", other, points)
        if outcomes:
            lines.append(f"- B vs {other}: B is {_tally(outcomes)}.")
    for tuned, plain in (("A", "magnitude"), ("A+FT", "magnitude+FT")):
        outcomes, detail = _compared(table, tuned, plain, points)
        if outcomes:
            lines.append(
                f'- **Method A (Chung) — "keeping GA-chosen small weights beats magnitude at the '
                f'same rate"**, {tuned} vs {plain}: {tuned} is {_tally(outcomes)}, so the claim '
                f"{_claim(outcomes)} ({detail})."
            )
    if not lines:
        lines.append("- Not enough methods in this run to judge the papers' claims.")
    lines.append(
        "- Clearly better or worse: the means differ by more than two standard errors of their "
        "difference over the seeds (any gap counts where a cell has one seed)."
    )
    return lines


def markdown(payload: dict[str, Any]) -> str:
    summary = payload["summary"]
    config = payload["config"]
    lines = [
        "# Pruning methods at equal epoch budgets",
        "",
        f"Every method starts from the pretrained dense zoo model and spends exactly "
        f"{config['epochs']} epoch(s) of training (SGD, lr {OPTIMISER['lr']}, momentum "
        f"{OPTIMISER['momentum']}, batch {OPTIMISER['batch_size']}); test accuracy, mean ± std over "
        f"{config['seeds']} seed(s). Device: {config['device']}. Generated by "
        f"`python benchmarks/methods.py {' '.join(_grid_arguments(config['argv']))}`.",
        "",
    ]
    for model in config["models"]:
        lines.append(f"## {model} (dense {payload['dense'].get(model, float('nan')):.2%})")
        lines.append("")
        methods = [
            m
            for m in config["methods"]
            if any(r["method"] == m and r["model"] == model for r in summary)
        ]
        lines.append("| sparsity | " + " | ".join(methods) + " | reference (magnitude + 2 ep FT) |")
        lines.append("|---|" + "---|" * (len(methods) + 1))
        for sparsity in config["sparsities"]:
            cells = []
            for method in methods:
                row = next(
                    (
                        r
                        for r in summary
                        if (r["model"], r["method"], r["sparsity"]) == (model, method, sparsity)
                    ),
                    None,
                )
                cells.append(_cell(row, config["seeds"]))
            reference = REFERENCE.get(model, {}).get(sparsity)
            cells.append(f"{reference:.1f}%" if reference is not None else "—")
            lines.append(f"| {sparsity:.0%} | " + " | ".join(cells) + " |")
        lines.append("")
    datasets = sorted({MODELS[m][1] for m in config["models"]})
    lines += [
        f"## Do the papers' claims hold on {', '.join(datasets)}?",
        "",
        *verdicts(summary, datasets),
        "",
    ]
    for failed in (r for r in payload["runs"] if r["test_accuracy"] is None):
        lines.append(
            f"- {failed['model']} {failed['method']} {failed['sparsity']:.0%} seed "
            f"{failed['seed']} could not run: {failed['error']}"
        )
    bad = [r for r in payload["runs"] if not r["pruned_weights_zero"]]
    lines.append(
        f"Runs: {len(payload['runs'])}; pruned weights exactly 0.0 in "
        f"{len(payload['runs']) - len(bad)} of them."
    )
    return "\n".join(lines) + "\n"


def _shown(
    payload: dict[str, Any], kept: list[dict[str, Any]], previous_dense: dict[str, float]
) -> dict[str, Any]:
    """What methods.md shows: this grid, and the saved runs of the models outside it that have
    the same epoch budget and recorded their dense weights, so a grid run for one model (as
    run_all.py's) does not drop another model's table."""
    config = payload["config"]
    extra = [
        run
        for run in kept
        if run["model"] not in config["models"]
        and run["model"] in MODELS
        and run.get("dense_sha256") is not None
        and run.get("budget", run["epochs"]) == config["epochs"]
    ]
    runs = payload["runs"] + extra
    models = config["models"] + sorted({run["model"] for run in extra})
    return {
        **payload,
        "config": {**config, "models": models},
        "dense": {**previous_dense, **payload["dense"]},
        "runs": runs,
        "summary": summarise(runs),
    }


def _grid_arguments(argv: list[str]) -> list[str]:
    """The command line without ``--reuse`` and ``--only-seeds``: they say where runs came from
    and which ran in this process, not what the grid is, and one call without them reproduces
    every row."""
    shown, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument in ("--reuse", "--only-seeds"):
            skip = True
        elif not argument.startswith(("--reuse=", "--only-seeds=")):
            shown.append(argument)
    return shown


def _cell(row: dict[str, Any] | None, seeds: int) -> str:
    if row is None:
        return "—"
    partial = f" (n={row['n']})" if row["n"] < seeds else ""
    return f"{row['mean']:.2%} ± {row['std']:.2%}{partial}"


def main(argv: list[str] | None = None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    args = parse_args(argv)
    pin_dense_models()
    device = str(training.resolve_device(args.device))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "methods.json"
    previous: dict[tuple, dict[str, Any]] = {}
    previous_dense: dict[str, float] = {}
    saved = [json_path] if json_path.exists() else []
    for path in [*saved, *args.reuse]:
        content = json.loads(path.read_text())
        previous_dense.update(content.get("dense", {}))
        for run in content.get("runs", []):
            budget = run.get("budget", run["epochs"])
            # a run is only reused against the dense weights it started from (None: recorded
            # before the digest was, on an unknown dense model)
            dense = run.get("dense_sha256")
            key = (run["model"], run["method"], run["sparsity"], run["seed"], budget, dense)
            previous[key] = run
    config = {
        "models": args.models,
        "methods": args.methods,
        "sparsities": args.sparsities,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "optimiser": OPTIMISER,
    }
    payload: dict[str, Any] = {
        "config": config,
        "environment": environment(device),
        "dense": {},
        "dense_sha256": {},
        "runs": [],
        "summary": [],
    }
    searched: dict[tuple[str, float, int], Any] = {}
    visited: set[tuple] = set()
    for model_name in args.models:
        architecture, dataset_name = MODELS[model_name]
        dataset = data.load(dataset_name, root=args.root)
        payload["dense"][model_name] = zoo.dense_accuracy(
            architecture, dataset_name, root=args.root, device=device
        )
        dense_sha256 = zoo.dense_sha256(architecture, dataset_name, root=args.root, device=device)
        payload["dense_sha256"][model_name] = dense_sha256
        echo(
            f"{model_name}: dense test accuracy {payload['dense'][model_name]:.2%} "
            f"(weights sha256 {dense_sha256[:12]}, from {zoo.cache_dir()})"
        )
        # seeds outermost: an interrupted grid has every method and rate at the first seeds
        for seed in args.only_seeds:
            for sparsity in args.sparsities:
                for method_label in args.methods:
                    key = (model_name, method_label, sparsity, seed, args.epochs, dense_sha256)
                    visited.add(key)
                    row = None if args.fresh else previous.get(key)
                    if row is None:
                        row = {"dense_sha256": dense_sha256} | run_one(
                            model_name,
                            method_label,
                            sparsity,
                            seed,
                            args.epochs,
                            dataset,
                            device,
                            args.root,
                            searched,
                        )
                    payload["runs"].append(row)
                    payload["summary"] = summarise(payload["runs"])
                    # runs of earlier calls outside this grid stay in the file (they are the
                    # resume cache of other grids)
                    kept = [r for k, r in previous.items() if k not in visited]
                    write_results(
                        out,
                        "methods",
                        {
                            **payload,
                            "dense": {**previous_dense, **payload["dense"]},
                            "runs": payload["runs"] + kept,
                        },
                        markdown(_shown(payload, kept, previous_dense)),
                    )
                    if row["test_accuracy"] is None:
                        echo(
                            f"  {sparsity:.0%} {method_label:>13} seed {seed}: FAILED {row['error']}"
                        )
                        continue
                    echo(
                        f"  {sparsity:.0%} {method_label:>13} seed {seed}: test "
                        f"{row['test_accuracy']:.2%} density {row['density']:.4f} "
                        f"epochs {row['epochs_used']} ({row['seconds']:.1f} s)"
                    )
    kept = [r for k, r in previous.items() if k not in visited]
    (out / "methods.md").write_text(markdown(_shown(payload, kept, previous_dense)))
    echo(f"wrote {json_path} and {out / 'methods.md'}")
    return payload


if __name__ == "__main__":
    main()
