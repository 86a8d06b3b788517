"""Surrogate screening: hypervolume against the number of *exact* evaluations.

    python benchmarks/bench_screening.py                  # budget 3000 exact evaluations per run
    python benchmarks/bench_screening.py --quick          # a smoke run (< 1 minute)

The same NSGA-II search (lenet300_fashion, objectives loss and density, max density 0.1,
seeded with the magnitude masks at 5%, 2% and 1%) runs twice with the same seed: with the
problem's default exact evaluator, and with a :class:`ScreenedEvaluator` in front of that
evaluator — the empirical-Fisher surrogate, anchored at the magnitude mask at 5% density,
ranks every generation's offspring and only the best ``--keep`` fraction is evaluated
exactly. The search counts only exact evaluations (the ``"exact"`` metric), so both curves
share one x axis. The issue's target: the screened search reaches the unscreened search's
final hypervolume with at most a third of its exact evaluations.

Writes ``benchmarks/results/screening.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import problems
from masksearch.evaluators import ScreenedEvaluator, SurrogateEvaluator
from masksearch.search import search
from masksearch.solvers import make_solver

RESULTS = Path(__file__).parent / "results"
PROBLEM_OPTIONS = {
    "encoding": "weights",
    "objectives": ("loss", "density"),
    "max_density": 0.1,
    "densities": (0.05, 0.02, 0.01),
    "val_samples": 1024,
}


def run(args: argparse.Namespace, screened: bool) -> dict:
    problem = problems.lenet300_fashion(**PROBLEM_OPTIONS)  # a fresh exact evaluator per run
    label = "screened" if screened else "exact"
    build_seconds = 0.0
    if screened:
        started = time.perf_counter()
        anchors = problem.encoding.decode(problem.encoding.magnitude(args.anchor_densities))
        surrogates = [
            SurrogateEvaluator(
                problem.model, problem.data, problem.layout, n_samples=args.n_samples, anchor=a
            )
            for a in anchors
        ]
        problem.evaluator = ScreenedEvaluator(
            problem.evaluator,
            surrogates,
            keep=args.keep,
            rank_by=args.rank_by,
            warmup_calls=args.warmup_calls,
        )
        build_seconds = time.perf_counter() - started
    solver = make_solver("nsga2", pop_size=args.pop_size)
    started = time.perf_counter()

    def progress(record: dict) -> None:
        if record["generation"] % 10 == 0:
            print(
                f"  [{label}] gen {record['generation']:4d}  exact evals {record['n_evals']:6d}  "
                f"hv {record['hypervolume']:.5f}  {time.perf_counter() - started:6.1f}s",
                file=sys.stderr,
            )

    result = search(problem, solver, budget=args.budget, seed=args.seed, callbacks=(progress,))
    return {
        "label": label,
        "n_evals": result.n_evals,
        "wall_time": result.wall_time,
        "build_seconds": build_seconds,
        "generations": len(result.history),
        "candidates": int(problem.evaluator.n_candidates),
        "history": [
            {"n_evals": r["n_evals"], "hypervolume": r["hypervolume"]} for r in result.history
        ],
    }


def evals_to_reach(history: list[dict], target: float) -> int | None:
    """Exact evaluations after which the hypervolume first reaches ``target`` (None: never)."""
    for record in history:
        if record["hypervolume"] >= target - 1e-12:
            return record["n_evals"]
    return None


def summarise(runs: dict[str, dict]) -> dict:
    exact, screened = runs["exact"], runs["screened"]
    target = exact["history"][-1]["hypervolume"]
    needed = evals_to_reach(screened["history"], target)
    ratio = None if needed is None else needed / exact["n_evals"]
    # hypervolume of each run at a third of the exact run's evaluations, for the curves
    third = exact["n_evals"] / 3
    at_third = {
        name: max((r["hypervolume"] for r in run["history"] if r["n_evals"] <= third), default=0.0)
        for name, run in runs.items()
    }
    return {
        "target_hypervolume": target,
        "screened_evals_to_reach_target": needed,
        "fraction_of_exact_run": ratio,
        "meets_target": ratio is not None and ratio <= 1 / 3,
        "hypervolume_at_a_third": at_third,
        "final_hypervolume": {
            name: run["history"][-1]["hypervolume"] for name, run in runs.items()
        },
    }


def write_markdown(report: dict, path: Path) -> None:
    s = report["summary"]
    runs = report["runs"]
    setup = report["setup"]
    lines = [
        "# Surrogate screening benchmark",
        "",
        f"Command: `{report['command']}`",
        "",
        f"lenet300_fashion, objectives (loss, density), max density 0.1, NSGA-II pop "
        f"{setup['pop_size']}, seed {setup['seed']}, budget {setup['budget']} exact evaluations "
        f"per run. Screened: one surrogate (N = {setup['n_samples']}) anchored at each magnitude "
        f"mask at densities {setup['anchor_densities']}, each candidate predicted by the nearest "
        f"anchor; keep {setup['keep']:.3f} of each generation's offspring, ranked by "
        f"{setup['rank_by']}; the first {setup['warmup_calls']} population(s) (the seeded "
        f"initial one) evaluated in full. {report['machine']}.",
        "",
        "| run | exact evals | candidates proposed | generations | final hypervolume | "
        "hv at ⅓ of the exact run's evals | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, run in runs.items():
        lines.append(
            f"| {name} | {run['n_evals']} | {run['candidates']} | {run['generations']} | "
            f"{s['final_hypervolume'][name]:.5f} | {s['hypervolume_at_a_third'][name]:.5f} | "
            f"{run['wall_time'] + run['build_seconds']:.1f} |"
        )
    needed = s["screened_evals_to_reach_target"]
    reached = (
        f"after {needed} exact evaluations ({s['fraction_of_exact_run']:.2f} of the exact run's)"
        if needed is not None
        else "never within its budget"
    )
    lines += [
        "",
        f"The screened search reaches the unscreened search's final hypervolume "
        f"({s['target_hypervolume']:.5f}) {reached}. Target (≤ ⅓): "
        f"**{'met' if s['meets_target'] else 'not met'}**.",
        "",
        "![hypervolume vs exact evaluations](screening.png)",
        "",
    ]
    path.write_text("\n".join(lines))


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, run in report["runs"].items():
        x = [r["n_evals"] for r in run["history"]]
        y = [r["hypervolume"] for r in run["history"]]
        axes.plot(
            x,
            y,
            label=f"{name} (keep {report['setup']['keep']:.2f})" if name == "screened" else name,
        )
    target = report["summary"]["target_hypervolume"]
    axes.axhline(target, color="grey", linestyle=":", label="exact run's final hypervolume")
    axes.axvline(
        report["runs"]["exact"]["n_evals"] / 3,
        color="grey",
        linestyle="--",
        lw=0.8,
        label="⅓ of the exact run's evaluations",
    )
    axes.set_xlabel("exact evaluations")
    axes.set_ylabel("hypervolume (loss, density)")
    axes.set_title("lenet300_fashion, NSGA-II: surrogate screening")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=3000, help="exact evaluations per run")
    parser.add_argument("--quick", action="store_true", help="smoke run: budget 192")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pop-size", type=int, default=64)
    parser.add_argument("--keep", type=float, default=1 / 3)
    parser.add_argument("--rank-by", choices=("loss", "pareto"), default="pareto")
    parser.add_argument("--n-samples", type=int, default=128)
    parser.add_argument(
        "--anchor-densities",
        type=lambda text: tuple(float(d) for d in text.split(",")),
        default=(0.1, 0.05, 0.02, 0.01),
        help="comma-separated densities of the magnitude masks the surrogates are anchored at",
    )
    parser.add_argument(
        "--warmup-calls",
        type=int,
        default=1,
        help="populations evaluated exactly in full before screening starts (1: the seeded "
        "initial population)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.budget < 1:
        parser.error(f"--budget must be >= 1, got {args.budget}")
    if args.quick:
        args.budget = min(args.budget, 192)

    runs = {}
    for screened in (False, True):
        runs["screened" if screened else "exact"] = run(args, screened)
    report = {
        "command": "python benchmarks/bench_screening.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.processor() or platform.machine()}, "
        f"load average at end {[round(load, 2) for load in os.getloadavg()]}",
        "setup": {
            "budget": args.budget,
            "seed": args.seed,
            "pop_size": args.pop_size,
            "keep": args.keep,
            "rank_by": args.rank_by,
            "n_samples": args.n_samples,
            "anchor_densities": list(args.anchor_densities),
            "warmup_calls": args.warmup_calls,
            "quick": args.quick,
        },
        "runs": runs,
        "summary": summarise(runs),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "screening.json").write_text(json.dumps(report, indent=2))
    write_markdown(report, args.out / "screening.md")
    plot(report, args.out / "screening.png")
    print(json.dumps(report["summary"], indent=2))


if __name__ == "__main__":
    main()
