"""Search quality on lenet300_fashion: one NSGA-II run against magnitude, DEAP and a plain GA.

    python benchmarks/search_quality.py --budget 20000 --solvers nsga2+ls,deap-nsga2+ls,ga+ls
                                          # the committed results (run_all's full mode)
    python benchmarks/search_quality.py --time 300 --solvers nsga2+ls,nsga2   # time-bounded
    python benchmarks/search_quality.py --time 120 --quick    # a smoke run
    python benchmarks/search_quality.py --budget 20000 --solvers nsga2+ls,nsga2 \
        --init magnitude,supermask --init-epochs 3     # warm-started -> search_quality_init_e3.*

A run stops at ``--budget`` evaluations or after ``--time`` seconds, whichever comes first
(300 s when neither is given). Only budget-bound runs are reproducible: the same seed gives the
same front on the CPU, while a time-bounded run's front depends on the machine's speed.

``--solvers`` lists runs, the first being the main one (its masks and plot are saved); a
``+ls`` suffix adds the gradient-guided swap local search (:class:`GradientSwaps`) to the run,
whose evaluations count against the same time limit. The default compares NSGA-II, DEAP's
NSGA-II and a plain GA, all with the local search; add ``nsga2`` to see NSGA-II without it.

``--init`` seeds every run with the same warm start (``ms.warm_start``: magnitude masks by
default, free; ``supermask`` trains ``--init-epochs`` per target density), made once; its cost
is reported beside the searches' and the seeds' own test accuracy is a row of the table.

Fitness uses the validation split only (``--val-samples`` of it); the masks chosen at 5%, 2% and
1% density are scored on the Fashion-MNIST test split with no weight training, and saved in
``torch.nn.utils.prune`` form (``*.weight_orig`` + ``*.weight_mask``) under
``benchmarks/results/`` so anyone can re-score them.
"""

from __future__ import annotations

import argparse
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

from masksearch.front import best_within, density_slack
from masksearch.mask import Mask
from masksearch.training import resolve_device

RESULTS = Path(__file__).parent / "results"
DENSITIES = (0.05, 0.02, 0.01)
FLOOR = {0.05: 0.85, 0.02: 0.80, 0.01: 0.70}
GOAL = {0.05: 0.87, 0.02: 0.85, 0.01: 0.78}


def run_solver(base, spec: str, initial=None) -> dict:
    """The search ``spec`` names (``NAME`` or ``NAME+ls``) on ``base``'s problem."""
    name, _, extra = spec.partition("+")
    if extra not in ("", "ls"):
        raise SystemExit(f"unknown run suffix {extra!r} in {spec!r}; use NAME or NAME+ls")
    run = rerun(base, solver=name, local_search="gradient-swaps" if extra else "none")
    # the option the solver took its population size as (DEAP's is mu), as results name it
    solver = run.solver
    options = {"mu": solver.mu} if hasattr(solver, "mu") else {"pop_size": solver.pop_size}
    started = time.perf_counter()

    def progress(record: dict) -> None:
        print(
            f"  [{spec}] gen {record['generation']:4d}  evals {record['n_evals']:7d}  "
            f"front {record['front_size']:3d}  hv {record['hypervolume']:.4f}  "
            f"{time.perf_counter() - started:6.1f}s",
            file=sys.stderr,
        )

    result = run.search(callbacks=(progress,), initial=initial)
    problem = run.problem
    rows = {}
    for density in DENSITIES:
        index = result.front.index(max_density=density)
        mask = result.front.mask(index)
        rows[str(density)] = {
            "density": mask.density,
            "val_error": float(result.front.metrics["error"][index]),
            "test_accuracy": score(problem, mask),
        }
    return {
        "solver": spec,
        "options": options,
        "local_search": None if run.local_search is None else vars_of(run.local_search),
        "n_evals": result.n_evals,
        "wall_time": result.wall_time,
        "front_size": len(result.front),
        "at_density": rows,
        "history": [{k: v for k, v in r.items()} for r in result.history],
        "_result": result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--time",
        type=float,
        default=None,
        help="seconds per solver run (default 300 unless --budget is given)",
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="evaluations per solver run; without --time the runs are not time-bounded, so a "
        "rerun with the same seed reproduces the fronts exactly",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pop-size", type=int, default=64)
    parser.add_argument(
        "--val-samples", type=int, default=5000, help="validation images fitness is judged on"
    )
    parser.add_argument("--encoding", default="weights")
    parser.add_argument("--objective", default="loss", choices=("loss", "error"))
    parser.add_argument("--max-density", type=float, default=0.1)
    parser.add_argument("--solvers", default="nsga2+ls,deap-nsga2+ls,ga+ls")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument(
        "--init",
        default="magnitude",
        help="warm starts every run begins from (comma-separated, as masksearch run --init)",
    )
    parser.add_argument(
        "--init-epochs", type=int, default=1, help="supermask epochs per target density"
    )
    parser.add_argument("--quick", action="store_true", help="suffix result files with _quick")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args()
    if args.time is None and args.budget is None:
        args.time = 300.0
    try:
        device = str(resolve_device(args.device))
    except ValueError as error:
        parser.error(str(error))
    pin_dense_models()
    started_on = environment(device)

    specs = args.solvers.split(",")
    # every search runs on one problem (and evaluator), built once from these settings
    base = build(
        {
            "problem": "lenet300_fashion",
            "encoding": args.encoding,
            "objectives": [args.objective, "density"],
            "val_samples": args.val_samples,
            "densities": list(DENSITIES),
            "device": device,
            "seed": args.seed,
            "budget": args.budget,
            "time": args.time,
            "pop_size": args.pop_size,
            "init": args.init.split(","),
            "init_epochs": args.init_epochs,
            "local_search": "none",
        },
        max_density=args.max_density,
    )
    problem = base.problem
    magnitude = {
        str(d): {
            "density": d,
            "test_accuracy": score(problem, Mask.magnitude(problem.model, d)),
        }
        for d in DENSITIES
    }
    print("magnitude:", {k: round(v["test_accuracy"], 4) for k, v in magnitude.items()})
    seeds = base.warm_start()  # made once: every run starts from the same masks
    seeded = seed_rows(problem, seeds) if args.init != "magnitude" else None
    if seeded is not None:
        print(f"seeds ({seeds.seconds:.0f} s):", seeded)
    runs = []
    for spec in specs:
        run = run_solver(base, spec, initial=seeds)
        print(
            f"{spec}: {run['n_evals']} evaluations in {run['wall_time']:.0f} s;",
            {k: round(v["test_accuracy"], 4) for k, v in run["at_density"].items()},
        )
        runs.append(run)

    stem = "search_quality"
    if args.init != "magnitude":
        stem += "_init" + ("" if args.init_epochs == 1 else f"_e{args.init_epochs}")
    stem += "_quick" if args.quick else ""
    main_run = runs[0]
    result = main_run["_result"]
    chosen = {d: result.front.mask(result.front.index(max_density=d)) for d in DENSITIES}
    save_masks(args.out, stem, chosen, problem.model)
    payload = {
        "command": " ".join(["python", *sys.argv]),
        "problem": "lenet300_fashion",
        "encoding": args.encoding,
        "objectives": [args.objective, "density"],
        "val_samples": args.val_samples,
        "seed": args.seed,
        "budget": args.budget,
        "time_limit": args.time,
        "environment": started_on,
        "magnitude": magnitude,
        "init": args.init.split(","),
        "init_epochs": args.init_epochs,
        "init_seconds": seeds.seconds,
        "seeds": seeded,
        "floor": FLOOR,
        "goal": GOAL,
        "runs": [{k: v for k, v in r.items() if k != "_result"} for r in runs],
    }
    write_results(
        args.out,
        stem,
        payload,
        markdown,
        plot=lambda path: plot(problem, main_run, magnitude, path),
    )
    print(markdown(payload))


def seed_rows(problem, seeds) -> dict:
    """Test accuracy of the best seed at or below each density (what a search starts from)."""
    evaluation = problem.evaluate(seeds.genomes)
    rows = {}
    for density in DENSITIES:
        slack = density_slack(problem.layout.n_total)
        best = best_within(evaluation.metrics["density"], evaluation.F[:, 0], density, slack)
        rows[str(density)] = {"test_accuracy": score(problem, problem.mask(seeds.genomes[best]))}
    return rows


def vars_of(local_search) -> dict:
    return {
        "kind": type(local_search).__name__,
        **{k: getattr(local_search, k) for k in ("steps", "children", "candidates", "extra")},
    }


def score(problem, mask: Mask) -> float:
    return test_accuracy(problem.model, mask, problem.test_data, problem.device)


def plot(problem, run: dict, magnitude: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = run["_result"]
    densities = result.front.metrics["density"]
    chosen = np.flatnonzero(densities <= 0.1)
    chosen = chosen[:: max(1, len(chosen) // 40)]
    front_acc = [score(problem, result.front.mask(i)) for i in chosen]
    grid = np.geomspace(0.005, 0.1, 12)
    mag_acc = [score(problem, Mask.magnitude(problem.model, d)) for d in grid]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(densities[chosen], front_acc, "o", label=f"{run['solver']} front (no retraining)")
    ax.plot(grid, mag_acc, "-", label="global magnitude")
    ax.set_xscale("log")
    ax.set_xlabel("density (kept / prunable weights)")
    ax.set_ylabel("Fashion-MNIST test accuracy")
    ax.set_title("lenet300_fashion: masks only, no weight training")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(payload: dict) -> str:
    lines = [
        "# Search quality: lenet300_fashion, masks only (no weight training)",
        "",
        f"Command: `{payload['command']}`  ",
        f"Encoding `{payload['encoding']}`, objectives {payload['objectives']}, fitness on "
        f"{payload['val_samples']} validation samples; accuracy below is on the test split. "
        "`+ls`: with the gradient-guided swap local search (`masksearch.GradientSwaps`), whose "
        "evaluations are included in the count and the time."
        + (
            f" Every run starts from the seeds below; their {payload['init_seconds']:.0f} s "
            "are not in the runs' wall times."
            if payload.get("seeds")
            else ""
        ),
        "",
        "| method | evaluations | wall s | 5% | 2% | 1% |",
        "|---|---|---|---|---|---|",
    ]
    mag = payload["magnitude"]
    lines.append(
        "| global magnitude | - | - | "
        + " | ".join(f"{mag[str(d)]['test_accuracy']:.2%}" for d in DENSITIES)
        + " |"
    )
    if payload.get("seeds"):
        lines.append(
            f"| seeds ({'+'.join(payload['init'])}, {payload['init_epochs']} ep) | - | "
            f"{payload['init_seconds']:.0f} | "
            + " | ".join(f"{payload['seeds'][str(d)]['test_accuracy']:.2%}" for d in DENSITIES)
            + " |"
        )
    for run in payload["runs"]:
        lines.append(
            f"| {run['solver']} | {run['n_evals']} | {run['wall_time']:.0f} | "
            + " | ".join(f"{run['at_density'][str(d)]['test_accuracy']:.2%}" for d in DENSITIES)
            + " |"
        )
    lines.append(
        "| floor (issue 3) | | | " + " | ".join(f"{FLOOR[d]:.0%}" for d in DENSITIES) + " |"
    )
    lines.append("| goal (issue 3) | | | " + " | ".join(f"{GOAL[d]:.0%}" for d in DENSITIES) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
