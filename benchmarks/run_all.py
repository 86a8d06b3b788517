"""Run every masksearch benchmark and write one summary of their results.

    python benchmarks/run_all.py --quick          # ≤ 5 minutes on 2 idle CPU cores → results/quick/
    python benchmarks/run_all.py                  # the full suite → benchmarks/results/
    python benchmarks/run_all.py --device cuda    # GPU where a benchmark supports it
    python benchmarks/run_all.py --only quality,scale --seeds 2

Each benchmark runs as its own subprocess (so one failure does not stop the others, and each
gets a fresh memory peak) with the flags of the chosen mode, declared once in :data:`SUITE`. Then
``<out>/summary.md`` gathers a headline table from each benchmark's JSON, with the command
that produced it and links to its Markdown and PNG, and ``<out>/summary.json`` records the
environment (versions, CPU, load, git commit) and every command's wall time and exit status.

Quick mode writes into ``benchmarks/results/quick/`` (or ``--out``) and never touches the
committed full results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import environment, pin_dense_models, write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"


@dataclass(frozen=True)
class Entry:
    """One benchmark of the suite: its script, the flags of each mode and the files it writes.

    Every benchmark also gets ``--out`` and ``--device``; those marked ``seeds`` get ``--seeds``
    (run_all's, or 3 in full mode). ``{out}`` in a flag stands for the output folder.
    """

    name: str
    script: str
    quick: tuple[str, ...]
    full: tuple[str, ...]
    stem: str  # the output files' name in full mode
    quick_stem: str | None = None  # in quick mode, when it differs
    png: bool = True
    seeds: bool = False


# The suite, once: quick mode is the ≤ 5-minute smoke run, full mode the committed results.
SUITE = (
    Entry(
        "search_quality",
        "search_quality.py",
        quick=("--quick", "--time", "8", "--solvers", "nsga2+ls", "--pop-size", "32"),
        # a fixed budget rather than a time limit, so that a rerun reproduces the fronts;
        # NSGA-II without the local search is among quality.py's rows
        full=("--budget", "20000", "--solvers", "nsga2+ls,deap-nsga2+ls,ga+ls"),
        stem="search_quality",
        quick_stem="search_quality_quick",
    ),
    Entry(
        "engine",
        "bench_engine.py",
        quick=("--quick",),
        full=(),
        stem="engine",
        quick_stem="engine-quick",
        png=False,
    ),
    Entry(
        "methods",
        "methods.py",
        # quick: the digits MLP trains in seconds per epoch, a smoke run
        quick=(
            *("--quick", "--models", "digits_mlp_digits", "--sparsities", "0.98"),
            *("--methods", "B,magnitude+FT", "--fresh"),
        ),
        # LeNet-300-100 at issue 5's four sparsities with 2 epochs per method, rerun rather
        # than reused from the committed JSON (--fresh); the LeNet-5 grid (hours on 2 CPU
        # cores) is run by methods.py alone, and its saved runs stay in methods.json and .md
        full=(
            *("--models", "lenet300_fashion", "--sparsities", "0.9,0.95,0.98,0.99"),
            *("--epochs", "2", "--fresh"),
        ),
        stem="methods",
        png=False,
        seeds=True,
    ),
    Entry(
        "screening",
        "bench_screening.py",
        quick=("--quick", "--budget", "192", "--pop-size", "32"),
        full=(),
        stem="screening",
    ),
    Entry(
        "quality",
        "quality.py",
        quick=("--quick",),
        full=("--methods-json", "{out}/methods.json"),
        stem="quality",
        quick_stem="quality_quick",
        seeds=True,
    ),
    Entry(
        "scale",
        "scale.py",
        quick=("--quick",),
        full=(),
        stem="scale",
        quick_stem="scale_quick",
    ),
)


@dataclass
class Benchmark:
    """One benchmark script with its arguments, and the files it leaves in the output folder."""

    name: str
    script: str
    args: list[str]
    outputs: list[str]  # file names in the output folder, the JSON first

    def command(self) -> list[str]:
        return [sys.executable, str(HERE / self.script), *self.args]

    def shown(self) -> str:
        return " ".join(["python", f"benchmarks/{self.script}", *self.args])


def suite(
    quick: bool, out: Path, device: str, seeds: int | None, only: Sequence[str] | None
) -> list[Benchmark]:
    """The benchmarks of :data:`SUITE` with their flags for one mode."""
    # shown relative to the repository when inside it (the scripts run from its root)
    folder = os.path.relpath(out, ROOT) if out.is_relative_to(ROOT) else str(out)
    if seeds is None and not quick:
        seeds = 3
    benchmarks = []
    for entry in SUITE:
        flags = [flag.replace("{out}", folder) for flag in (entry.quick if quick else entry.full)]
        flags += ["--out", folder, "--device", device]
        if entry.seeds and seeds is not None:
            flags += ["--seeds", str(seeds)]
        stem = (entry.quick_stem or entry.stem) if quick else entry.stem
        extensions = ("json", "md", "png") if entry.png else ("json", "md")
        outputs = [f"{stem}.{extension}" for extension in extensions]
        benchmarks.append(Benchmark(entry.name, entry.script, flags, outputs))
    if only:
        unknown = sorted(set(only) - {b.name for b in benchmarks})
        if unknown:
            raise SystemExit(
                f"unknown benchmark {unknown[0]!r}; choose from "
                f"{', '.join(b.name for b in benchmarks)}"
            )
        benchmarks = [b for b in benchmarks if b.name in only]
    return benchmarks


# -- running -------------------------------------------------------------------------------


def run_benchmark(
    benchmark: Benchmark, out: Path, echo: Callable[[str], None], timeout: float | None
) -> dict[str, Any]:
    echo(f"== {benchmark.name}: {benchmark.shown()}")
    log_path = out / "logs" / f"{benchmark.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    child_env = {**os.environ, "PYTHONPATH": _pythonpath(), "MPLBACKEND": "Agg"}
    with open(log_path, "w") as log:
        try:
            finished = subprocess.run(
                benchmark.command(),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env,
                timeout=timeout,
            )
            returncode: int | None = finished.returncode
        except subprocess.TimeoutExpired:
            returncode = None
    seconds = time.perf_counter() - started
    missing = [name for name in benchmark.outputs if not (out / name).exists()]
    status = "ok" if returncode == 0 and not missing else "failed"
    if returncode is None:
        status = f"timed out after {timeout:.0f} s"
    echo(f"   {status} in {seconds:.0f} s (log: {log_path})")
    return {
        "name": benchmark.name,
        "command": benchmark.shown(),
        "seconds": seconds,
        "returncode": returncode,
        "status": status,
        "outputs": benchmark.outputs,
        "missing": missing,
        "log": str(log_path.relative_to(out)),
    }


def existing_result(benchmark: Benchmark, out: Path) -> dict[str, Any]:
    """A record for a benchmark that is not run now: its files as they are in ``out``."""
    missing = [name for name in benchmark.outputs if not (out / name).exists()]
    report = _load(out, benchmark.outputs[0])
    command = report.get("command") if isinstance(report, dict) else None
    if isinstance(report, dict) and command is None and isinstance(report.get("config"), dict):
        argv = report["config"].get("argv")
        if argv is not None:
            command = " ".join(["python", f"benchmarks/{benchmark.script}", *argv])
    return {
        "name": benchmark.name,
        "command": command or f"(unknown; run_all would run: {benchmark.shown()})",
        "seconds": 0.0,
        "returncode": None,
        "status": "missing" if missing else "existing results",
        "outputs": benchmark.outputs,
        "missing": missing,
        "log": "(not run)",
    }


def _pythonpath() -> str:
    # the benchmarks import the top-level `problems` package of the repository
    existing = os.environ.get("PYTHONPATH")
    return str(ROOT) if not existing else f"{ROOT}{os.pathsep}{existing}"


# -- the summary -------------------------------------------------------------------------------


def _load(out: Path, name: str) -> dict[str, Any] | None:
    path = out / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def section_quality(report: dict[str, Any]) -> list[str]:
    lines = []
    densities = report["config"]["densities"]
    for model in report["models"]:
        for table, title in (("mask", "mask only"), ("finetuned", "fine-tuned / trained")):
            rows = [r for r in report["summary"] if r["model"] == model and r["table"] == table]
            if not rows:
                continue
            lines += [
                f"**{model}, {title}** (test accuracy, mean ± std over "
                f"{report['config']['seeds']} seed(s); fine-tuning/training "
                f"{report['config']['ft_epochs']} epoch(s))",
                "",
                "| method | budget | " + " | ".join(f"{d:.0%}" for d in densities) + " |",
                "|---|---|" + "---:|" * len(densities),
            ]
            for method in dict.fromkeys(r["method"] for r in rows):
                cells = []
                budget = ""
                for density in densities:
                    row = next(
                        (r for r in rows if r["method"] == method and r["density"] == density),
                        None,
                    )
                    cells.append(f"{row['mean']:.2%} ± {row['std']:.2%}" if row else "—")
                    budget = budget or (row["budget"] if row else "")
                lines.append(f"| {method} | {budget} | " + " | ".join(cells) + " |")
            lines.append("")
    return lines


def section_search_quality(report: dict[str, Any]) -> list[str]:
    densities = list(report["magnitude"])
    lines = [
        "| method | evaluations | wall s | "
        + " | ".join(f"{float(d):.0%}" for d in densities)
        + " |",
        "|---|---:|---:|" + "---:|" * len(densities),
        "| global magnitude | – | – | "
        + " | ".join(_pct(report["magnitude"][d]["test_accuracy"]) for d in densities)
        + " |",
    ]
    for run in report["runs"]:
        lines.append(
            f"| {run['solver']} | {run['n_evals']} | {run['wall_time']:.0f} | "
            + " | ".join(_pct(run["at_density"][d]["test_accuracy"]) for d in densities)
            + " |"
        )
    return [*lines, ""]


def section_engine(report: dict[str, Any]) -> list[str]:
    lines = [
        "| model | method | P | cand/s | × naive (same process) | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        if "failed" in r:
            lines.append(f"| {r['model']} | {r['method']} | {r['population']} | failed | | |")
            continue
        method = r["method"]
        if method == "incremental":
            method = f"incremental (parents d={r['parent_density']})"
        lines.append(
            f"| {r['model']} | {method} | {r['P']} | {r['candidates_per_s']:,.1f} | "
            f"{r['speedup_vs_naive_same_process']:.1f} | {r['peak_rss_mb']:.0f} |"
        )
    return [*lines, ""]


def section_methods(report: dict[str, Any]) -> list[str]:
    lines = [
        f"Test accuracy, mean ± std over {report['config']['seeds']} seed(s), "
        f"{report['config']['epochs']} epoch(s) each.",
        "",
        "| model | method | sparsity | accuracy |",
        "|---|---|---:|---:|",
    ]
    for r in report["summary"]:
        lines.append(
            f"| {r['model']} | {r['method']} | {r['sparsity']:.0%} | "
            f"{r['mean']:.2%} ± {r['std']:.2%} |"
        )
    return [*lines, ""]


def section_screening(report: dict[str, Any]) -> list[str]:
    summary = report.get("summary")
    if isinstance(summary, dict):
        lines = ["| quantity | value |", "|---|---|"]
        for key, value in summary.items():
            lines.append(f"| {key} | {value if not isinstance(value, float) else f'{value:.4g}'} |")
        return [*lines, ""]
    return ["(see the linked Markdown)", ""]


def section_scale(report: dict[str, Any]) -> list[str]:
    lines = []
    if "size" in report:
        lines += [
            "| model | weights | data | evals | seconds | evals/s |",
            "|---|---:|---|---:|---:|---:|",
        ]
        for r in report["size"]:
            lines.append(
                f"| {r['model']} | {r['n_weights']:,} | {r['data']} | {r['n_evals']} | "
                f"{r['seconds']:.1f} | {r['evals_per_s']:.1f} |"
            )
        lines.append("")
    if "population" in report:
        lines += ["| population | evals | seconds | hypervolume |", "|---:|---:|---:|---:|"]
        for r in report["population"]:
            lines.append(
                f"| {r['pop_size']} | {r['n_evals']} | {r['seconds']:.1f} | "
                f"{r['final_hypervolume']:.4f} |"
            )
        lines.append("")
    if "dask" in report:
        dask = report["dask"]
        runs = ", ".join(f"{name} {r['seconds']:.1f} s" for name, r in dask["runs"].items())
        lines += [
            f"Dask: {runs}; identical fronts with 1 and 2 workers: "
            f"**{dask['identical_dask_1_vs_2']}** (serial vs Dask: "
            f"{dask['identical_serial_vs_dask']}).",
            "",
        ]
    return lines


SECTIONS: dict[str, tuple[str, Callable[[dict[str, Any]], list[str]]]] = {
    "quality": ("Quality: search fronts vs pruning methods (issue 7)", section_quality),
    "search_quality": ("One NSGA-II run on lenet300_fashion (issue 3)", section_search_quality),
    "methods": ("Training-time methods at equal epoch budgets (issue 5)", section_methods),
    "engine": ("Fitness engine: candidates/s and memory (issue 4)", section_engine),
    "screening": ("Surrogate screening (issue 4)", section_screening),
    "scale": ("Scale: model size, population size, Dask", section_scale),
}


def summary_markdown(
    records: list[dict[str, Any]], out: Path, mode: str, env: dict[str, Any], seconds: float
) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
    rebuilt = all(record["log"] == "(not run)" for record in records)
    produced = (
        "Rebuilt from the results already in this folder by `python benchmarks/run_all.py "
        "--summary-only` (the benchmarks were not run now; the commands below are those "
        "recorded in their JSON) on"
        if rebuilt
        else f"Produced by `python benchmarks/run_all.py{' --quick' if mode == 'quick' else ''}`"
        f" in {seconds / 60:.1f} minutes on"
    )
    lines = [
        f"# Benchmark results ({mode} mode)",
        "",
        f"{produced} {env['processor']} ({env['cpu_count']} CPU cores, "
        f"load average at start {[round(x, 2) for x in env['load_average_at_start']]}), device "
        f"{env['device']}, Python {env['python']}; {packages}; git commit "
        f"{(env['git_commit'] or '?')[:10]}{' (with local changes)' if env['git_dirty'] else ''}."
        " Environment details: [summary.json](summary.json).",
        "",
        "| benchmark | status | minutes | command |",
        "|---|---|---:|---|",
    ]
    for record in records:
        lines.append(
            f"| {record['name']} | {record['status']} | {record['seconds'] / 60:.1f} | "
            f"`{record['command']}` |"
        )
    lines.append("")
    by_name = {record["name"]: record for record in records}
    for name, (title, render) in SECTIONS.items():
        record = by_name.get(name)
        if record is None:
            continue
        links = ", ".join(f"[{o}]({o})" for o in record["outputs"] if (out / o).exists())
        lines += [f"## {title}", "", f"Command: `{record['command']}` — {links or 'no output'}", ""]
        pictures = [o for o in record["outputs"] if o.endswith(".png") and (out / o).exists()]
        report = _load(out, record["outputs"][0])
        if report is None:
            lines += [f"No results ({record['status']}; see {record['log']}).", ""]
            continue
        try:
            lines += render(report)
        except (KeyError, TypeError, ValueError) as error:  # a format changed under us
            lines += [f"(could not tabulate {record['outputs'][0]}: {error!r})", ""]
        lines += [f"![{name}]({picture})" for picture in pictures]
        if pictures:
            lines.append("")
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the smoke suite (≤ 5 minutes)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default benchmarks/results/, quick: benchmarks/results/quick/)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--seeds", type=int, default=None, help="seeds for methods and quality")
    parser.add_argument("--only", default=None, help="comma-separated benchmark names")
    parser.add_argument(
        "--summary-only",
        action="store_true",
        help="run nothing: rebuild summary.md/json from the results already in the folder",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds allowed per benchmark (default none)"
    )
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.device not in ("cpu", "cuda", "auto"):
        parser.error(f"--device must be cpu, cuda or auto, got {args.device!r}")
    if args.out is None:
        args.out = RESULTS / "quick" if args.quick else RESULTS
    args.only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    return args


def main(argv: Sequence[str] | None = None, echo: Callable[[str], None] = print) -> int:
    args = parse_args(argv)
    pin_dense_models()  # the benchmarks inherit it
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    mode = "quick" if args.quick else "full"
    benchmarks = suite(args.quick, out, args.device, args.seeds, args.only)
    env = environment(args.device)
    started = time.perf_counter()
    if args.summary_only:
        records = [existing_result(b, out) for b in benchmarks]
    else:
        records = [run_benchmark(b, out, echo, args.timeout) for b in benchmarks]
    seconds = time.perf_counter() - started
    payload = {
        "mode": mode,
        "command": " ".join(
            ["python", "benchmarks/run_all.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "seconds": seconds,
        "environment": env,
        "benchmarks": records,
    }
    write_results(out, "summary", payload, summary_markdown(records, out, mode, env, seconds))
    failed = [r["name"] for r in records if r["status"] not in ("ok", "existing results")]
    echo(f"wrote {out / 'summary.md'} in {seconds / 60:.1f} minutes")
    if failed:
        echo(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
