"""Search quality on lenet300_fashion: one NSGA-II run against magnitude, DEAP and a plain GA.

    python benchmarks/search_quality.py --budget 20000 --solvers nsga2+ls,deap-nsga2+ls,ga+ls
                                          # the committed results (run_all's full mode)
    python benchmarks/search_quality.py --time 300 --solvers nsga2+ls,nsga2   # time-bounded
    python benchmarks/search_quality.py --time 120 --quick    # a smoke run

A run stops at ``--budget`` evaluations or after ``--time`` seconds, whichever comes first
(300 s when neither is given). Only budget-bound runs are reproducible: the same seed gives the
same front on the CPU, while a time-bounded run's front depends on the machine's speed.

``--solvers`` lists runs, the first being the main one (its masks and plot are saved); a
``+ls`` suffix adds the gradient-guided swap local search (:class:`GradientSwaps`) to the run,
whose evaluations count against the same time limit. The default compares NSGA-II, DEAP's
NSGA-II and a plain GA, all with the local search; add ``nsga2`` to see NSGA-II without it.

Fitness uses the validation split only (``--val-samples`` of it); the masks chosen at 5%, 2% and
1% density are scored on the Fashion-MNIST test split with no weight training, and saved in
``torch.nn.utils.prune`` form (``*.weight_orig`` + ``*.weight_mask``) under
``benchmarks/results/`` so anyone can re-score them.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import environment, pin_dense_models

from masksearch import catalogue
from masksearch.local_search import GradientSwaps
from masksearch.mask import Mask
from masksearch.search import search
from masksearch.solvers import make_solver
from masksearch.training import evaluate, resolve_device

RESULTS = Path(__file__).parent / "results"
DENSITIES = (0.05, 0.02, 0.01)
FLOOR = {0.05: 0.85, 0.02: 0.80, 0.01: 0.70}
GOAL = {0.05: 0.87, 0.02: 0.85, 0.01: 0.78}


def test_accuracy(problem, mask: Mask) -> float:
    model = mask.apply(copy.deepcopy(problem.model))
    return evaluate(model, problem.test_data, device=problem.device).accuracy


def run_solver(problem, spec: str, args) -> dict:
    name, _, extra = spec.partition("+")
    if extra not in ("", "ls"):
        raise SystemExit(f"unknown run suffix {extra!r} in {spec!r}; use NAME or NAME+ls")
    options = {"mu": args.pop_size} if name.startswith("deap") else {"pop_size": args.pop_size}
    solver = make_solver(name, **options)
    local_search = GradientSwaps() if extra == "ls" else None
    started = time.perf_counter()

    def progress(record: dict) -> None:
        print(
            f"  [{spec}] gen {record['generation']:4d}  evals {record['n_evals']:7d}  "
            f"front {record['front_size']:3d}  hv {record['hypervolume']:.4f}  "
            f"{time.perf_counter() - started:6.1f}s",
            file=sys.stderr,
        )

    result = search(
        problem,
        solver,
        budget=args.budget,
        time_limit=args.time,
        seed=args.seed,
        callbacks=(progress,),
        local_search=local_search,
    )
    rows = {}
    for density in DENSITIES:
        index = result.front.index(max_density=density)
        mask = result.front.mask(index)
        rows[str(density)] = {
            "density": mask.density,
            "val_error": float(result.front.metrics["error"][index]),
            "test_accuracy": test_accuracy(problem, mask),
        }
    return {
        "solver": spec,
        "options": options,
        "local_search": None if local_search is None else vars_of(local_search),
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

    problem = catalogue.lenet300_fashion(
        encoding=args.encoding,
        objectives=(args.objective, "density"),
        val_samples=args.val_samples,
        max_density=args.max_density,
        densities=DENSITIES,
        device=device,
    )
    magnitude = {
        str(d): {
            "density": d,
            "test_accuracy": test_accuracy(problem, Mask.magnitude(problem.model, d)),
        }
        for d in DENSITIES
    }
    print("magnitude:", {k: round(v["test_accuracy"], 4) for k, v in magnitude.items()})
    runs = []
    for spec in args.solvers.split(","):
        run = run_solver(problem, spec, args)
        print(
            f"{spec}: {run['n_evals']} evaluations in {run['wall_time']:.0f} s;",
            {k: round(v["test_accuracy"], 4) for k, v in run["at_density"].items()},
        )
        runs.append(run)

    suffix = "_quick" if args.quick else ""
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    main_run = runs[0]
    for density in DENSITIES:
        result = main_run["_result"]
        mask = result.front.mask(result.front.index(max_density=density))
        exported = mask.to_prune(copy.deepcopy(problem.model)).state_dict()
        torch.save(exported, out / f"search_quality{suffix}_mask_{int(density * 1000):03d}.pt")
    plot(problem, main_run, magnitude, out / f"search_quality{suffix}.png")
    payload = {
        "command": " ".join(["python", *sys.argv]),
        "problem": "lenet300_fashion",
        "encoding": args.encoding,
        "objectives": [args.objective, "density"],
        "val_samples": args.val_samples,
        "seed": args.seed,
        "budget": args.budget,
        "time_limit": args.time,
        "environment": environment(problem.device),
        "magnitude": magnitude,
        "floor": FLOOR,
        "goal": GOAL,
        "runs": [{k: v for k, v in r.items() if k != "_result"} for r in runs],
    }
    (out / f"search_quality{suffix}.json").write_text(json.dumps(payload, indent=2))
    (out / f"search_quality{suffix}.md").write_text(markdown(payload))
    print(markdown(payload))


def vars_of(local_search: GradientSwaps) -> dict:
    return {
        "kind": type(local_search).__name__,
        **{k: getattr(local_search, k) for k in ("steps", "children", "candidates", "extra")},
    }


def plot(problem, run: dict, magnitude: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = run["_result"]
    densities = result.front.metrics["density"]
    chosen = np.flatnonzero(densities <= 0.1)
    chosen = chosen[:: max(1, len(chosen) // 40)]
    front_acc = [test_accuracy(problem, result.front.mask(i)) for i in chosen]
    grid = np.geomspace(0.005, 0.1, 12)
    mag_acc = [test_accuracy(problem, Mask.magnitude(problem.model, d)) for d in grid]
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
        "evaluations are included in the count and the time.",
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
