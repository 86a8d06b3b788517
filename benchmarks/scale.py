"""Search wall time against model size, population size and Dask workers.

Three measurements of one NSGA-II search (``weights`` encoding, objectives loss and density,
the global magnitude masks at 5/2/1% density seeded) at a fixed budget of exact evaluations:

* **model size**: LeNet-300-100, LeNet-5 and ResNet-8 (a residual CNN with batch norm; trained
  zoo models, Fashion-MNIST validation images) and ResNet-20 on random data of CIFAR shape (3×32×32, random labels, a randomly
  initialised model) when CIFAR-10 is absent — wall time, evaluations/s, seconds per
  evaluation and per million weights, the evaluator the problem chose;
* **population size**: LeNet-300-100 with populations of 16 to 256 at the same budget — wall
  time and the final hypervolume;
* **memory** (``--parts memory``, written to ``scale_memory.*``): host memory of an NSGA-II
  search (population 64) on torchvision's ResNet-18 (11.2 M weights, random init) with 8
  random images of CIFAR shape, in a process of its own: resident memory after the problem is
  built (model, data, evaluator) and the peak during the search, per generation;
* **Dask**: LeNet-300-100 with the plain evaluator run serially and on a
  ``distributed.LocalCluster`` of 1 and 2 single-threaded worker processes
  (:class:`~masksearch.evaluators.DaskEvaluator`), wall time and whether the fronts (genomes and
  objective values) are identical. Every candidate is scored independently of its chunk, so
  the Dask fronts must match each other exactly; the serial run uses this process's torch
  threads, whose float reductions may differ in the last bit, so it is reported separately.

    python benchmarks/scale.py --quick     # small budgets (1.4 min measured at load ~5)
    python benchmarks/scale.py             # full: budgets 256 (model size), 1024 (population),
                                           # 2048 (Dask)

Full mode took 2¼ minutes on the idle 2-core AVX-512 EPYC. Writes ``<out>/scale[_quick].json``, ``.md`` and ``.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import build, environment, local_cluster, pin_dense_models, run_on, write_results

from masksearch import data as datasets
from masksearch import models
from masksearch.builder import Run, parallel_evaluator
from masksearch.data import Split
from masksearch.problem import PruningProblem
from masksearch.training import resolve_device

RESULTS = Path(__file__).resolve().parent / "results"
DENSITIES = (0.05, 0.02, 0.01)
MODELS = ("lenet300", "lenet5", "resnet8", "resnet20")
# the catalogued problem of each model
PROBLEMS = {
    "lenet300": "lenet300_fashion",
    "lenet5": "lenet5_fashion",
    "resnet8": "resnet8_fashion",
    "resnet20": "resnet20_cifar10",
}

FULL = {
    "size_budget": 256,
    "size_samples": 128,
    "populations": [16, 64, 256],
    "population_budget": 1024,
    "population_samples": 512,
    # enough work per search that the cluster's per-generation overhead does not hide the
    # second worker (256 evaluations took 2.5 s with 1 worker and 2.3 s with 2)
    "dask_budget": 2048,
    "dask_samples": 1024,
    "memory_budget": 20_000,  # the figure; about 30 min on 2 cores
}
QUICK = {
    "size_budget": 32,
    "size_samples": 32,
    "populations": [16, 48],
    "population_budget": 96,
    "population_samples": 128,
    "dask_budget": 64,
    "dask_samples": 256,
    "memory_budget": 128,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets (about a minute)")
    parser.add_argument("--parts", default="size,population,dask", help="what to measure")
    parser.add_argument("--models", default=",".join(MODELS), help="for the model-size part")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pop-size", type=int, default=32, help="for the size and Dask parts")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (not for Dask)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--memory-job", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.preset = QUICK if args.quick else FULL
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    for part in args.parts:
        if part not in ("size", "population", "dask", "memory"):
            parser.error(f"unknown part {part!r}; choose from size, population, dask, memory")
    for model in args.models:
        if model not in MODELS:
            parser.error(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    if args.pop_size < 2:
        parser.error("--pop-size must be >= 2")
    return args


def settings(problem: str, n_samples: int, pop_size: int, budget: int, seed: int, **more: Any):
    """One NSGA-II search of ``problem`` (weights encoding, objectives loss and density, no local
    search) from the global magnitude masks at 5/2/1% density."""
    return {
        "problem": problem,
        "encoding": "weights",
        "objectives": ["loss", "density"],
        "densities": list(DENSITIES),
        "val_samples": n_samples,
        "solver": "nsga2",
        "pop_size": pop_size,
        "local_search": "none",
        "init": ["magnitude"],
        "budget": budget,
        "seed": seed,
        **more,
    }


def timed_search(run: Run) -> tuple[Any, float]:
    started = time.perf_counter()
    result = run.search()
    return result, time.perf_counter() - started


def size_run(model_name: str, args: argparse.Namespace, device: str) -> tuple[Run, str]:
    """The search of one model of the size series, and where its data came from."""
    n_samples = args.preset["size_samples"]
    config = settings(
        PROBLEMS[model_name],
        n_samples,
        args.pop_size,
        args.preset["size_budget"],
        args.seed,
        device=device,
    )
    if model_name != "resnet20":
        return build(config), "Fashion-MNIST validation (trained model)"
    if datasets.available("cifar10"):
        return build(config), "CIFAR-10 validation (trained model)"
    # Without CIFAR-10 the settings cannot name this problem (random data, an untrained model):
    # it is built here, the rest of the run from the settings.
    generator = torch.Generator().manual_seed(0)
    split = Split(
        torch.randn(n_samples, 3, 32, 32, generator=generator),
        torch.randint(0, 10, (n_samples,), generator=generator),
    )
    problem = PruningProblem(
        models.build("resnet20", seed=0).eval(),
        split,
        encoding="weights",
        objectives=config["objectives"],
        densities=DENSITIES,
        device=device,
        name="resnet20_random",
    )
    return run_on(problem, config), (
        "random data of CIFAR shape, random labels, random init (CIFAR-10 absent)"
    )


def measure_size(args: argparse.Namespace, echo: Callable[[str], None]) -> list[dict]:
    rows = []
    device = str(resolve_device(args.device))
    for model_name in args.models:
        run, source = size_run(model_name, args, device)
        problem = run.problem
        result, seconds = timed_search(run)
        n_weights = problem.layout.n_total
        rows.append(
            {
                "model": model_name,
                "n_weights": n_weights,
                "data": source,
                "samples": len(problem.data),
                "evaluator": type(problem.evaluator).__name__,
                "n_evals": result.n_evals,
                "seconds": seconds,
                "evals_per_s": result.n_evals / seconds,
                "ms_per_eval_per_million_weights": 1e3
                * seconds
                / result.n_evals
                / (n_weights / 1e6),
                "final_hypervolume": result.history[-1]["hypervolume"],
            }
        )
        echo(
            f"  size {model_name:9s} {n_weights:8d} weights: {result.n_evals} evals in "
            f"{seconds:.1f} s ({result.n_evals / seconds:.1f}/s, {rows[-1]['evaluator']})"
        )
    return rows


def measure_population(args: argparse.Namespace, echo: Callable[[str], None]) -> list[dict]:
    rows = []
    device = str(resolve_device(args.device))
    for pop_size in args.preset["populations"]:
        # a problem, and so an evaluator, per run: no parent cache carries over between runs
        run = build(
            settings(
                "lenet300_fashion",
                args.preset["population_samples"],
                pop_size,
                args.preset["population_budget"],
                args.seed,
                device=device,
            )
        )
        result, seconds = timed_search(run)
        rows.append(
            {
                "model": "lenet300",
                "pop_size": pop_size,
                "n_evals": result.n_evals,
                "generations": len(result.history),
                "seconds": seconds,
                "evals_per_s": result.n_evals / seconds,
                "final_hypervolume": result.history[-1]["hypervolume"],
                "front_size": len(result.front),
            }
        )
        echo(
            f"  population {pop_size:4d}: {result.n_evals} evals in {seconds:.1f} s, "
            f"hypervolume {rows[-1]['final_hypervolume']:.4f}"
        )
    return rows


def measure_dask(args: argparse.Namespace, echo: Callable[[str], None]) -> dict[str, Any]:
    budget = args.preset["dask_budget"]
    # the plain evaluator on the CPU: each candidate scored on its own, whatever its chunk
    config = settings(
        "lenet300_fashion",
        args.preset["dask_samples"],
        args.pop_size,
        budget,
        args.seed,
        evaluator="plain",
    )
    runs: dict[str, dict[str, Any]] = {}
    fronts = {}
    result, seconds = timed_search(build(config))
    runs["serial"] = {"workers": 0, "seconds": seconds, "n_evals": result.n_evals}
    fronts["serial"] = result.front
    echo(f"  dask: serial plain evaluator {seconds:.1f} s")
    for n_workers in (1, 2):
        run = build(config)
        started = time.perf_counter()
        with local_cluster(n_workers) as cluster:
            # the builder's Dask wrapping (the "scheduler" setting), once the cluster is up
            parallel_evaluator(run.problem, {"scheduler": cluster.scheduler_address})
            startup = time.perf_counter() - started
            try:
                result, seconds = timed_search(run)
            finally:
                run.problem.evaluator.close()
        name = f"dask-{n_workers}"
        runs[name] = {
            "workers": n_workers,
            "seconds": seconds,
            "cluster_startup_seconds": startup,
            "n_evals": result.n_evals,
        }
        fronts[name] = result.front
        echo(f"  dask: {n_workers} worker(s) {seconds:.1f} s (+{startup:.1f} s cluster start)")

    def same(a: Any, b: Any) -> bool:
        return bool(
            len(a) == len(b) and np.array_equal(a.genomes, b.genomes) and np.array_equal(a.F, b.F)
        )

    return {
        "budget": budget,
        "samples": args.preset["dask_samples"],
        "pop_size": args.pop_size,
        "runs": runs,
        "front_sizes": {name: len(front) for name, front in fronts.items()},
        "identical_dask_1_vs_2": same(fronts["dask-1"], fronts["dask-2"]),
        "identical_serial_vs_dask": same(fronts["serial"], fronts["dask-2"]),
        "speedup_2_vs_1_workers": runs["dask-1"]["seconds"] / runs["dask-2"]["seconds"],
    }


def _memory_mb() -> tuple[float, float]:
    """(resident, peak resident) MB of this process, from /proc (Linux)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def memory_job(budget: int, seed: int) -> dict[str, Any]:
    """The memory measurement itself, run in a fresh process (``--memory-job BUDGET``)."""
    import torchvision

    from masksearch import make_solver, search

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    generator = torch.Generator().manual_seed(0)
    split = Split(
        torch.randn(8, 3, 32, 32, generator=generator),
        torch.randint(0, 10, (8,), generator=generator),
    )
    problem = PruningProblem(
        model, split, encoding="weights", objectives=("loss", "density"), densities=DENSITIES
    )
    baseline, peak_before = _memory_mb()
    trace: list[dict[str, float]] = []

    def record(generation: dict[str, Any]) -> None:
        resident, peak = _memory_mb()
        trace.append({"n_evals": generation["n_evals"], "resident_mb": resident, "peak_mb": peak})

    started = time.perf_counter()
    result = search(
        problem, make_solver("nsga2", pop_size=64), budget=budget, seed=seed, callbacks=[record]
    )
    seconds = time.perf_counter() - started
    _, peak = _memory_mb()
    return {
        "model": "torchvision resnet18 (random init)",
        "n_weights": problem.layout.n_total,
        "evaluator": type(problem.evaluator).__name__,
        "pop_size": 64,
        "n_evals": result.n_evals,
        "seconds": seconds,
        "front_size": len(result.front),
        "baseline_mb": baseline,
        "peak_before_search_mb": peak_before,
        "peak_mb": peak,
        "growth_mb": peak - baseline,
        "bool_population_mb": 64 * problem.layout.n_total / 2**20,
        "trace": trace,
    }


def measure_memory(args: argparse.Namespace, echo: Callable[[str], None]) -> dict[str, Any]:
    import json
    import subprocess

    budget = args.preset["memory_budget"]
    command = [sys.executable, __file__, "--memory-job", str(budget), "--seed", str(args.seed)]
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    row = json.loads(finished.stdout.strip().splitlines()[-1])
    echo(
        f"  memory resnet18 {row['n_weights']:,} weights: {row['n_evals']} evals in "
        f"{row['seconds']:.0f} s, peak {row['peak_mb']:.0f} MB, {row['growth_mb']:.0f} MB over "
        f"the {row['baseline_mb']:.0f} MB after building the problem"
    )
    return row


def markdown(payload: dict[str, Any], plot_name: str) -> str:
    lines = [
        "# Scale: NSGA-II wall time vs model size, population size and Dask workers",
        "",
        f"Command: `{payload['command']}`  ",
        f"Encoding `weights`, objectives loss and density, seed {payload['seed']}; "
        f"{payload['environment']['cpu_count']} CPU cores, load average at start "
        f"{[round(x, 2) for x in payload['environment']['load_average_at_start']]}. "
        f"Plot: [{plot_name}]({plot_name}).",
        "",
    ]
    if "size" in payload:
        lines += [
            "## Model size (population "
            f"{payload['pop_size']}, {payload['preset']['size_budget']} evaluations)",
            "",
            "| model | weights | data | samples | evaluator | evals | seconds | evals/s "
            "| ms / eval / M weights |",
            "|---|---:|---|---:|---|---:|---:|---:|---:|",
        ]
        for r in payload["size"]:
            lines.append(
                f"| {r['model']} | {r['n_weights']:,} | {r['data']} | {r['samples']} | "
                f"{r['evaluator']} | {r['n_evals']} | {r['seconds']:.1f} | "
                f"{r['evals_per_s']:.1f} | {r['ms_per_eval_per_million_weights']:.1f} |"
            )
        lines.append("")
    if "population" in payload:
        lines += [
            f"## Population size (lenet300, {payload['preset']['population_budget']} evaluations)",
            "",
            "| population | generations | evals | seconds | evals/s | hypervolume | front |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in payload["population"]:
            lines.append(
                f"| {r['pop_size']} | {r['generations']} | {r['n_evals']} | {r['seconds']:.1f} | "
                f"{r['evals_per_s']:.1f} | {r['final_hypervolume']:.4f} | {r['front_size']} |"
            )
        lines.append("")
    if "memory" in payload:
        row = payload["memory"]
        growth_limit = 2048
        lines += [
            f"## Memory ({row['model']}, {row['n_weights']:,} weights, NSGA-II population "
            f"{row['pop_size']}, {row['evaluator']} on 8 random 3×32×32 images)",
            "",
            f"{row['n_evals']:,} evaluations in {row['seconds']:.0f} s; front of "
            f"{row['front_size']}. Resident memory after building the problem (model, data, "
            f"evaluator): {row['baseline_mb']:.0f} MB; peak during the search: "
            f"{row['peak_mb']:.0f} MB, i.e. **{row['growth_mb']:.0f} MB beyond the model and "
            f"data** (issue 15's limit {growth_limit:,} MB at 20,000 evaluations; "
            f"{'within' if row['growth_mb'] <= growth_limit else 'over'} it at this budget). "
            f"For scale: the population alone as bool genomes is {row['bool_population_mb']:.0f} MB.",
            "",
            "| evaluations | resident MB | peak MB |",
            "|---:|---:|---:|",
        ]
        trace = row["trace"]
        shown = trace if len(trace) <= 12 else trace[:: max(1, len(trace) // 10)] + trace[-1:]
        for point in shown:
            lines.append(
                f"| {point['n_evals']:,} | {point['resident_mb']:.0f} | {point['peak_mb']:.0f} |"
            )
        lines.append("")
    if "dask" in payload:
        dask = payload["dask"]
        lines += [
            f"## Dask (lenet300, plain evaluator, {dask['samples']} samples, population "
            f"{dask['pop_size']}, {dask['budget']} evaluations)",
            "",
            "| run | workers | seconds | cluster start s | evals | front |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, r in dask["runs"].items():
            startup = r.get("cluster_startup_seconds")
            lines.append(
                f"| {name} | {r['workers']} | {r['seconds']:.1f} | "
                f"{'—' if startup is None else f'{startup:.1f}'} | {r['n_evals']} | "
                f"{dask['front_sizes'][name]} |"
            )
        lines += [
            "",
            f"Fronts identical with 1 and 2 workers: **{dask['identical_dask_1_vs_2']}**; "
            f"serial vs Dask: {dask['identical_serial_vs_dask']}. Speed-up of 2 workers over 1: "
            f"{dask['speedup_2_vs_1_workers']:.2f}×.",
            "",
        ]
    return "\n".join(lines) + "\n"


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in ("size", "population", "memory", "dask") if p in payload]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "size":
            rows = payload["size"]
            ax.bar([r["model"] for r in rows], [r["seconds"] for r in rows], color="tab:blue")
            ax.set_ylabel("wall time (s)")
            ax.set_title(f"model size, {payload['preset']['size_budget']} evaluations")
            for i, r in enumerate(rows):
                ax.annotate(
                    f"{r['n_weights'] / 1e3:.0f}k w",
                    (i, r["seconds"]),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
        elif panel == "population":
            rows = payload["population"]
            ax.plot([r["pop_size"] for r in rows], [r["seconds"] for r in rows], "o-")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("population size")
            ax.set_ylabel("wall time (s)")
            ax.set_title(f"lenet300, {payload['preset']['population_budget']} evaluations")
        elif panel == "memory":
            trace = payload["memory"]["trace"]
            evaluations = [point["n_evals"] for point in trace]
            ax.plot(evaluations, [point["resident_mb"] for point in trace], label="resident")
            ax.plot(evaluations, [point["peak_mb"] for point in trace], label="peak")
            ax.axhline(
                payload["memory"]["baseline_mb"], color="grey", ls=":", label="problem built"
            )
            ax.set_xlabel("evaluations")
            ax.set_ylabel("MB")
            ax.set_title("resnet18 (11.2 M weights), NSGA-II, population 64")
            ax.legend(fontsize=8)
        else:
            runs = payload["dask"]["runs"]
            ax.bar(list(runs), [r["seconds"] for r in runs.values()], color="tab:green")
            ax.set_ylabel("wall time (s)")
            ax.set_title(f"Dask (identical fronts: {payload['dask']['identical_dask_1_vs_2']})")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None, echo: Callable[[str], None] = print) -> dict:
    args = parse_args(argv)
    if args.memory_job is not None:
        import json

        print(json.dumps(memory_job(args.memory_job, args.seed)))
        return {}
    pin_dense_models()
    started = time.perf_counter()
    payload: dict[str, Any] = {
        "command": " ".join(
            ["python", "benchmarks/scale.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "mode": "quick" if args.quick else "full",
        "seed": args.seed,
        "pop_size": args.pop_size,
        "preset": args.preset,
        "environment": environment(str(resolve_device(args.device))),
    }
    if "size" in args.parts:
        payload["size"] = measure_size(args, echo)
    if "population" in args.parts:
        payload["population"] = measure_population(args, echo)
    if "dask" in args.parts:
        payload["dask"] = measure_dask(args, echo)
    if "memory" in args.parts:
        payload["memory"] = measure_memory(args, echo)
    payload["seconds"] = time.perf_counter() - started
    stem = "scale_quick" if args.quick else "scale"
    if args.parts == ["memory"]:
        stem += "_memory"  # a part of its own: the other parts' results stay as they are
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
