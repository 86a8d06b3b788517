"""Top-k masks by ``torch.topk`` against a full stable sort, and what it buys supermask.

    python benchmarks/bench_topk.py            # about 2 minutes on 2 cores
    python benchmarks/bench_topk.py --quick    # the calls only, seconds (topk_quick.*)

Learned-mask methods (``supermask``, ``supermask-path``) keep the top-k of their scores at
every training step. ``masksearch.mask.top_k_keep`` finds the k-th highest score with
``torch.topk`` and settles only the ties at it by index; before, a stable sort of every score
did the same job. Both are timed here in one process, on scores of the size of LeNet-300-100
(266,200 weights) and LeNet-5 (430,500) at 5 / 2 / 1% density, and one epoch of
:class:`~masksearch.methods.Supermask` at 5% on the committed dense models with each (the
sort put back for the comparison): the same masks, so only the time differs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from unittest import mock

import torch
from _common import build, environment, pin_dense_models, write_results

from masksearch.mask import top_k_keep
from masksearch.methods import make_method
from masksearch.methods import supermask as supermask_module

RESULTS = Path(__file__).parent / "results"
SIZES = {"lenet300_fashion": 266_200, "lenet5_fashion": 430_500}
DENSITIES = (0.05, 0.02, 0.01)


def sorted_top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The previous implementation: the first ``k`` of a stable sort on ``-scores``."""
    keep = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    keep[torch.sort(-scores, stable=True).indices[:k]] = True
    return keep


def _median_ms(function, *args, repeats: int = 21) -> float:
    function(*args)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - started)
    return 1e3 * sorted(times)[len(times) // 2]


def time_calls() -> list[dict]:
    rows = []
    generator = torch.Generator().manual_seed(0)
    for problem, size in SIZES.items():
        # learned scores stay near their mean of 1: distinct values, as after training
        scores = 1.0 + 0.01 * torch.randn(size, generator=generator)
        for density in DENSITIES:
            k = round(density * size)
            same = torch.equal(top_k_keep(scores, k), sorted_top_k(scores, k))
            sort_ms = _median_ms(sorted_top_k, scores, k)
            topk_ms = _median_ms(top_k_keep, scores, k)
            rows.append(
                {
                    "problem": problem,
                    "n_scores": size,
                    "density": density,
                    "sort_ms": sort_ms,
                    "topk_ms": topk_ms,
                    "speedup": sort_ms / topk_ms,
                    "same_mask": same,
                }
            )
            print(f"{problem} {density:.0%}: sort {sort_ms:.1f} ms, topk {topk_ms:.1f} ms")
    return rows


def time_epochs(problems: list[str]) -> list[dict]:
    rows = []
    for name in problems:
        problem = build({"problem": name, "objectives": ["loss", "density"]}).problem
        seconds, masks = {}, {}
        for label, top_k in (("sort", sorted_top_k), ("topk", top_k_keep)):
            method = make_method("supermask", epochs=1, seed=0)
            with mock.patch.object(supermask_module, "top_k_keep", top_k):
                started = time.perf_counter()
                masks[label] = method.prune(problem.model, problem.train_data, 0.05)
                seconds[label] = time.perf_counter() - started
            print(f"{name} supermask epoch with {label}: {seconds[label]:.1f} s", flush=True)
        same = all(
            torch.equal(masks["sort"].tensors[n], masks["topk"].tensors[n])
            for n in masks["sort"].tensors
        )
        rows.append(
            {
                "problem": name,
                "sort_s": seconds["sort"],
                "topk_s": seconds["topk"],
                "speedup": seconds["sort"] / seconds["topk"],
                "same_mask": same,
            }
        )
    return rows


def markdown(payload: dict) -> str:
    cpu = payload["environment"].get("cpu", {}).get("model", "CPU")
    lines = [
        "# Top-k masks: torch.topk against a full stable sort",
        "",
        f"Command: `{payload['command']}`; {cpu}, {payload['environment']['torch_threads']} "
        "torch threads. One call on scores of 1 + 0.01·N(0, 1) (median of 21 calls):",
        "",
        "| scores of | scores | density | stable sort ms | topk ms | × | same mask |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in payload["calls"]:
        lines.append(
            f"| {row['problem']} | {row['n_scores']:,} | {row['density']:.0%} "
            f"| {row['sort_ms']:.1f} | {row['topk_ms']:.1f} | {row['speedup']:.1f} "
            f"| {row['same_mask']} |"
        )
    lines += [
        "",
        "One epoch of `supermask` at 5% (Adam on straight-through top-k scores, batches of "
        "128, a top-k every step), seed 0, committed dense model, the two top-k back to back:",
        "",
        "| problem | with the sort s | with topk s | × | same mask |",
        "|---|---:|---:|---:|---|",
    ]
    for row in payload["epochs"]:
        lines.append(
            f"| {row['problem']} | {row['sort_s']:.1f} | {row['topk_s']:.1f} "
            f"| {row['speedup']:.1f} | {row['same_mask']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default=",".join(SIZES), help="comma-separated")
    parser.add_argument("--quick", action="store_true", help="no supermask epochs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    pin_dense_models()
    payload = {
        "command": "python benchmarks/bench_topk.py" + (" --quick" if args.quick else ""),
        "environment": environment("cpu"),
        "calls": time_calls(),
        "epochs": [] if args.quick else time_epochs(args.problems.split(",")),
    }
    mismatches = [r for r in payload["calls"] + payload["epochs"] if not r["same_mask"]]
    write_results(args.out, "topk_quick" if args.quick else "topk", payload, markdown)
    print(markdown(payload))
    if mismatches:
        raise SystemExit(f"top_k_keep chose other weights than the sort: {mismatches}")


if __name__ == "__main__":
    main()
