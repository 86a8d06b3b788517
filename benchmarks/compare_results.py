"""Compare two benchmark results folders: are the reruns' figures identical?

    python benchmarks/run_all.py --out /tmp/rerun              # the full suite again
    python benchmarks/compare_results.py benchmarks/results /tmp/rerun

Issue 7 asks that a rerun with the same seeds reproduce the committed fronts exactly on the CPU.
This walks the JSON files both folders hold and compares every number at the same place —
accuracies, densities, hypervolumes, losses, evaluation counts — except those that measure the
machine rather than the method (times, rates, memory, load, versions: see ``MACHINE_WORDS``).
Time-bounded searches (``search_quality.py --time``) stop after a number of evaluations that
depends on the machine's speed, so their figures are reported but not expected to match; the
budget-bound runs of ``run_all``'s full mode are compared like any other result. Records in a
list are matched by the fields that name the run (model, method, density, seed, …, see
``IDENTITY``), and places only one file has (runs of a model the rerun left out) are counted,
not compared.

Prints one Markdown table row per file and exits 1 when any compared number differs.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# words that mark a key whose value describes the machine or the clock, not the result (a key
# is split at non-letters: "build_seconds" and "evals_per_s" are skipped, "per_seed" is not)
MACHINE_WORDS = frozenset(
    [
        "second",
        "seconds",
        "ms",
        "time",
        "times",
        "wall",
        "speed",
        "speedup",
        "rss",
        "memory",
        "mib",
        "mb",
        "load",
        "environment",
        "command",
        "machine",
        "platform",
        "processor",
        "git",
        "threads",
        "version",
        "versions",
        "packages",
        "python",
        "cpu",
        "date",
        "started",
        "finished",
        "naive",
    ]
)
# how a run was invoked (the output folder differs between a run and its rerun)
PROVENANCE = frozenset(["argv", "out", "source"])
RATE = re.compile(r"(^|_)per_s$")


def is_machine_key(key: str) -> bool:
    words = re.split(r"[^a-z0-9]+", key.lower())
    return bool(MACHINE_WORDS.intersection(words)) or bool(RATE.search(key.lower()))


# time-bounded benchmarks: their evaluation counts, and so their fronts, follow the machine
TIME_BOUNDED = ("search_quality",)


def _time_bounded(report: Any) -> bool:
    # files written before search_quality.py recorded its limit came from --time runs
    return not isinstance(report, dict) or report.get("time_limit", "unrecorded") is not None


@dataclass
class Comparison:
    compared: int = 0
    differing: list[tuple[str, Any, Any]] = field(default_factory=list)
    only_in_one: list[str] = field(default_factory=list)

    @property
    def max_difference(self) -> float:
        gaps = [
            abs(a - b)
            for _, a, b in self.differing
            if isinstance(a, (int, float)) and isinstance(b, (int, float))
        ]
        return max(gaps, default=0.0)


# fields that say which run a record of a list is; lists of such records are matched by them,
# not by position, since a results file may hold runs another command added (methods.json
# keeps other models' runs when a grid is rerun)
IDENTITY = (
    "model",
    "method",
    "registered",
    "solver",
    "table",
    "kind",
    "sparsity",
    "density",
    "seed",
    "epochs",
    "label",
)


def _record_labels(items: list[Any]) -> list[str] | None:
    labels = []
    for item in items:
        if not isinstance(item, dict):
            return None
        parts = [
            f"{key}={item[key]}" for key in IDENTITY if isinstance(item.get(key), str | int | float)
        ]
        if not parts:
            return None
        labels.append(",".join(parts))
    return labels if len(set(labels)) == len(labels) else None


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if is_machine_key(str(key)) or key in PROVENANCE:
                continue
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        labels = _record_labels(value) or [str(index) for index in range(len(value))]
        for label, item in zip(labels, value, strict=True):
            yield from _leaves(item, f"{path}[{label}]")
    else:
        yield path, value


def compare(first: Any, second: Any) -> Comparison:
    """Every number or string at the same place in both documents, outside the machine keys.

    Places only one document has (e.g. runs of a model the rerun did not include) are listed
    in ``only_in_one``, not compared.
    """
    result = Comparison()
    left, right = dict(_leaves(first)), dict(_leaves(second))
    for path in sorted(left.keys() | right.keys()):
        if path not in left or path not in right:
            result.only_in_one.append(path)
            continue
        a, b = left[path], right[path]
        result.compared += 1
        same = a == b or (
            isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
        )
        if not same:
            result.differing.append((path, a, b))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path, help="a results folder, e.g. benchmarks/results")
    parser.add_argument("second", type=Path, help="the rerun's results folder")
    parser.add_argument("--show", type=int, default=3, help="differing places listed per file")
    args = parser.parse_args(argv)
    for folder in (args.first, args.second):
        if not folder.is_dir():
            parser.error(f"{folder} is not a folder of benchmark results")
    names = sorted(
        p.name
        for p in args.first.glob("*.json")
        if (args.second / p.name).exists() and p.name != "summary.json"
    )
    if not names:
        parser.error(f"{args.first} and {args.second} share no result JSON file")
    print("| file | numbers compared | differing | max difference | only in one | verdict |")
    print("|---|---:|---:|---:|---:|---|")
    mismatched = []
    notes = []
    for name in names:
        first, second = (
            json.loads((folder / name).read_text()) for folder in (args.first, args.second)
        )
        result = compare(first, second)
        bounded = name.startswith(TIME_BOUNDED) and any(map(_time_bounded, (first, second)))
        if not result.differing:
            verdict = "identical"
        elif bounded:
            verdict = "differs (time-bounded: not expected to match)"
        else:
            verdict = "**differs**"
            mismatched.append(name)
        print(
            f"| {name} | {result.compared} | {len(result.differing)} | "
            f"{result.max_difference:.3g} | {len(result.only_in_one)} | {verdict} |"
        )
        notes += [f"- {name}: `{p}`: {a!r} vs {b!r}" for p, a, b in result.differing[: args.show]]
    if notes:
        print("\nFirst differing places:\n" + "\n".join(notes))
    return 1 if mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
