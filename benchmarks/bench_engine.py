"""Throughput and memory of masksearch's fitness engine.

Every configuration runs in its own subprocess, so that its peak memory (``ru_maxrss``; torch's
allocations are invisible to tracemalloc) is its own: the report gives the process peak and the
growth over the state after loading data, model and masks. Timings are wall-clock, after a
warm-up call, on 1,024 validation samples of Fashion-MNIST.

Configurations (candidates per second):

* naive — what a ``torch.nn.utils.prune`` user writes: per candidate, copy the dense weights into
  a working model, multiply by the mask, forward the split, compute loss and error;
* plain / batched — :class:`PlainEvaluator` (one ``functional_call`` per candidate) and
  :class:`BatchedEvaluator` (stacked masked weights, vmap);
* incremental — :class:`IncrementalEvaluator` on children that flip 0.05% of the genes of a
  cached parent (parents at density 0.5 and 0.05; Linear stacks only), plus its full pass;
* surrogate — :class:`SurrogateEvaluator`: masks from scratch and ``children()`` of one parent
  with 20 flipped genes; Spearman ρ of predicted against exact ΔL;
* prefix — :class:`PrefixCacheEvaluator` inside a real search of method A
  (:class:`~masksearch.methods.LargePlusSmallGA`) on LeNet-5 (its GA's children share the masks
  of the first layers), against the same search with the plain evaluator;
* joblib / dask — :class:`JoblibEvaluator` (loky) and :class:`DaskEvaluator` (LocalCluster)
  with two single-threaded workers around the plain evaluator.

``--loop`` times the search loop instead (``engine_loop.{json,md}``): :func:`masksearch.search`
with NSGA-II (pymoo and DEAP) and EvoPress on LeNet-300-100's ``weights`` encoding, the model
evaluation replaced by a free stand-in (seeded random losses), so genomes per second measure
everything around the evaluator: ask/tell, operators, validation, decoding, objectives, the
archive (the stand-in takes packed masks as they come, as the default incremental
evaluator does). Each solver runs three times, evolving packed genomes (the default), packed
genomes unpacked for a stand-in that reads bool masks only (what handing packed masks over
saves), and bool genomes (``packs_genomes = False``); all must reach the same front. A packed
row is the median of ``--loop-repeats`` searches (5; each must reach the same front), a bool row one search. The
same packed searches on a 160-gene MLP give each solver's fixed cost per genome, what no
faster operator can remove.

Unlike the other benchmarks, this one builds no run from settings (``masksearch.builder``): it
times the evaluators themselves, on samples saved by a preparation job (so that parsing the
dataset sets no memory peak in the timed process) and, in quick mode, on randomly initialised
models — neither of which run settings can name.

Usage::

    python benchmarks/bench_engine.py            # full run → benchmarks/results/engine.{json,md}
    python benchmarks/bench_engine.py --quick    # lenet300, P=64, random weights, no pools → engine-quick.*
    python benchmarks/bench_engine.py --device cuda
    python benchmarks/bench_engine.py --loop     # the search loop alone → engine_loop.{json,md}
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
from _common import environment, local_cluster, pin_dense_models, write_results

RESULTS = Path(__file__).resolve().parent / "results"
N_SAMPLES = 1024
CHILD_FRACTION = 0.0005  # genes a child flips, relative to the genome
SURROGATE_FLIPS = 20
# candidates actually timed per model for the per-candidate loops (their speed and memory do
# not depend on P); batched, incremental and surrogate always get the whole population
LOOP_CAP = {"lenet300": 256, "lenet5": 32}
# every job also times the naive loop on a few candidates right after its own run, so that its
# speed-up is measured under the same machine load (the machine may be shared)
REFERENCE_CAP = {"lenet300": 48, "lenet5": 8}
BATCHED_CAP = {"lenet300": 1024, "lenet5": 64}


# -- shared setup ---------------------------------------------------------------------------


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _setup(job: dict[str, Any]):
    import torch

    from masksearch import models, zoo
    from masksearch.data import Split
    from masksearch.mask import Layout

    torch.manual_seed(0)
    # the driver saved the samples: parsing the whole dataset here would set a memory peak
    # (ru_maxrss) that hides the evaluator's own
    saved = torch.load(job["split_file"], weights_only=True)
    split = Split(saved["x"], saved["y"])
    if job["random_weights"]:
        model = models.build(job["model"], seed=0).eval()
    else:
        model = zoo.pretrained(job["model"], "fashion-mnist").eval()
    layout = Layout.of(model)
    return model, split, layout


def _random_masks(layout, n: int, rng: np.random.Generator, low=0.05, high=0.95) -> np.ndarray:
    return _at_density(layout, n, rng.uniform(low, high, size=n), rng)


def _at_density(layout, n: int, density, rng: np.random.Generator) -> np.ndarray:
    # row by row: a (n, n_total) float64 draw would set the process's memory peak
    densities = np.broadcast_to(np.asarray(density, dtype=float), (n,))
    masks = np.empty((n, layout.n_total), dtype=bool)
    for row, value in zip(masks, densities, strict=True):
        np.less(rng.random(layout.n_total), value, out=row)
    return masks


def _children(parents: np.ndarray, n_flips: int, rng: np.random.Generator) -> np.ndarray:
    children = parents.copy()
    for row in children:
        row[rng.choice(len(row), n_flips, replace=False)] ^= True
    return children


def _timed(function, *args) -> tuple[Any, float]:
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def _naive_loop(model, split, layout, masks, device):
    """Per candidate: dense weights → working model, times the mask, forward, metrics."""
    import torch
    import torch.nn.functional as F

    from masksearch.mask import Mask

    work = copy.deepcopy(model).to(device).eval()
    params = dict(work.named_parameters())
    dense = {name: params[name].detach().clone() for name in layout.names}
    x, y = split.x.to(device), split.y.to(device)
    losses, errors = [], []
    with torch.no_grad():
        for row in masks:
            mask = Mask.from_flat(layout, row)
            for name, keep in mask.tensors.items():
                params[name].copy_(dense[name] * keep.to(device))
            logits = work(x)
            losses.append(float(F.cross_entropy(logits, y)))
            errors.append(1.0 - float((logits.argmax(dim=1) == y).float().mean()))
    return {"loss": np.array(losses), "error": np.array(errors)}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks_a = np.argsort(np.argsort(a)).astype(float)
    ranks_b = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


# -- jobs (each in its own process) ----------------------------------------------------------


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    import torch

    from masksearch import evaluators as ev

    model, split, layout = _setup(job)
    rng = np.random.default_rng(job.get("seed", 0))
    population = job["population"]
    method = job["method"]
    device = job["device"]
    out: dict[str, Any] = {
        "model": job["model"],
        "method": method,
        "P": population,
        "n_weights": layout.n_total,
    }
    if method in ("naive", "plain", "joblib", "dask"):
        timed = min(population, LOOP_CAP[job["model"]])
    elif method == "batched":
        timed = min(population, BATCHED_CAP[job["model"]])
    else:
        timed = population
    if method == "incremental":
        flips = max(1, int(CHILD_FRACTION * layout.n_total))
        parents = _at_density(layout, population, job["parent_density"], rng)
        masks = _children(parents, flips, rng)
    else:
        masks = _random_masks(layout, timed, rng)
    warm = _random_masks(layout, 2, rng)
    baseline = _maxrss_mb()
    notes = []

    if method == "naive":
        _naive_loop(model, split, layout, warm, device)
        _, seconds = _timed(_naive_loop, model, split, layout, masks, device)
    elif method in ("plain", "batched"):
        evaluator = ev.make_evaluator(model, split, layout, kind=method, device=device)
        evaluator(warm)
        _, seconds = _timed(evaluator, masks)
        if method == "batched":
            notes.append(f"chunk {evaluator.chunk_size}, batch {evaluator.batch_size}")
    elif method == "incremental":
        density = job["parent_density"]
        # the evaluator's default bounds, the same for every P: its memory must not grow with
        # the population (at P = 1,024 most parents have lost their slot by the time their
        # children come: the stats and rebuilds below say how many)
        evaluator = ev.IncrementalEvaluator(
            model,
            split,
            layout,
            # a long search reuses its cache slots; fault them in now so that the first
            # generation's timings include no page faults
            prefault=True,
            # one child per thread, as many threads as cores (the naive loop's torch uses them all)
            threads=os.cpu_count(),
        )
        # load both Numba kernels (parent search, child update) before timing
        warm_parents = _at_density(layout, 2, job["parent_density"], rng)
        evaluator(warm_parents)
        evaluator(_children(warm_parents, flips, rng))
        _, full_seconds = _timed(evaluator, parents)
        children = masks
        stats_before = dict(evaluator.stats)
        rebuilds_before = dict(evaluator.rebuilds)
        result, seconds = _timed(evaluator, children)
        # the first children's parents were scored first (at P = 1,024 they lost their slot),
        # the last ones' most recently
        check = np.unique(np.r_[np.arange(min(8, population)), np.arange(population)[-8:]])
        expected = ev.PlainEvaluator(model, split, layout)(children[check])
        out["max_abs_loss_diff_vs_plain"] = float(
            np.abs(result["loss"][check] - expected["loss"]).max()
        )
        out["max_abs_error_diff_vs_plain"] = float(
            np.abs(result["error"][check] - expected["error"]).max()
        )
        out["full_pass_candidates_per_s"] = population / full_seconds
        out["stats"] = {k: v - stats_before[k] for k, v in evaluator.stats.items()}
        out["rebuilds"] = {k: v - rebuilds_before[k] for k, v in evaluator.rebuilds.items()}
        out["cache_entry_mb"] = evaluator.entry_bytes / 2**20
        out["cache_bound_mb"] = evaluator.memory_bytes / 2**20
        notes.append(
            f"parents at density {density}, children flip {flips} genes; default bounds: "
            f"{evaluator.capacity} slots × {evaluator.entry_bytes / 2**20:.2f} MB (prefaulted) "
            f"+ {evaluator.n_records} records, {evaluator.memory_bytes / 2**20:.0f} MB in all; "
            f"{evaluator.threads} Numba threads"
        )
    elif method == "surrogate":
        (surrogate, build_seconds) = _timed(
            lambda: ev.SurrogateEvaluator(model, split, layout, n_samples=128)
        )
        surrogate(warm)
        _, seconds = _timed(surrogate, masks)
        out["build_seconds"] = build_seconds
        parent = _at_density(layout, 1, 0.05, rng)[0]
        n_children = job["surrogate_children"]
        diffs = np.stack(
            [rng.choice(layout.n_total, SURROGATE_FLIPS, replace=False) for _ in range(n_children)]
        )
        surrogate.children(parent, diffs[:100])
        best = math.inf
        for _ in range(3):
            _, child_seconds = _timed(surrogate.children, parent, diffs)
            best = min(best, child_seconds)
        out["children_per_s"] = n_children / best
        out["children_flips"] = SURROGATE_FLIPS
        notes.append(
            f"hw {surrogate.hw.nbytes / 2**20:.0f} MB; children: {SURROGATE_FLIPS} genes from a "
            f"parent at density 0.05, best of 3 × {n_children}"
        )
    elif method == "prefix":
        # a real workload: method A's GA on the same split, once with the plain evaluator and
        # once with the prefix cache, from the same seed (the masks found must be identical)
        from masksearch.methods import LargePlusSmallGA

        found = {}
        for kind in ("plain", "prefix"):
            searcher = LargePlusSmallGA(generations=job["generations"], evaluator=kind, seed=0)
            found[kind], spent = _timed(searcher.search, model, split, 0.05)
            out[f"{kind}_seconds"] = spent
        evaluations = searcher.pop_size * job["generations"]
        masks = np.empty((evaluations, 0), dtype=bool)  # only its length is used below
        seconds = out["prefix_seconds"]
        out["plain_search_candidates_per_s"] = evaluations / out["plain_seconds"]
        out["same_mask"] = bool(np.array_equal(found["plain"].flat(), found["prefix"].flat()))
        notes.append(
            f"method A (GA, population {searcher.pop_size}, {job['generations']} generations, "
            f"density 0.05): {evaluations} evaluations; plain evaluator "
            f"{out['plain_search_candidates_per_s']:.1f} cand/s in the same search; "
            f"identical mask found: {out['same_mask']}"
        )
    elif method == "joblib":
        inner = ev.PlainEvaluator(model, split, layout)
        evaluator = ev.JoblibEvaluator(inner, n_jobs=2, threads_per_worker=1)
        evaluator(warm)
        _, seconds = _timed(evaluator, masks)
        notes.append("loky, 2 workers × 1 thread; driver memory only")
    elif method == "dask":
        import distributed

        with local_cluster(2) as cluster, distributed.Client(cluster) as client:
            inner = ev.PlainEvaluator(model, split, layout)
            with ev.DaskEvaluator(inner, client) as evaluator:
                evaluator(warm)
                _, seconds = _timed(evaluator, masks)
            workers = client.run(lambda: _maxrss_mb())
            out["worker_peak_rss_mb"] = sorted(float(v) for v in workers.values())
        notes.append("LocalCluster 2 workers × 1 thread")
    else:
        raise ValueError(f"unknown method {method!r}")

    peak = _maxrss_mb()
    reference = _random_masks(layout, REFERENCE_CAP[job["model"]], rng)
    _, reference_seconds = _timed(_naive_loop, model, split, layout, reference, device)
    out["naive_same_process_per_s"] = len(reference) / reference_seconds
    out["speedup_vs_naive_same_process"] = len(masks) / seconds / out["naive_same_process_per_s"]
    out.update(
        {
            "timed": len(masks),
            "seconds": seconds,
            "candidates_per_s": len(masks) / seconds,
            "peak_rss_mb": peak,
            "rss_growth_mb": peak - baseline,
            "torch_threads": torch.get_num_threads(),
            "notes": "; ".join(notes),
        }
    )
    if method == "incremental":
        out["parent_density"] = job["parent_density"]
    return out


def run_quality(job: dict[str, Any]) -> dict[str, Any]:
    """Spearman ρ of the surrogate's ΔL against exact ΔL."""
    from masksearch import evaluators as ev
    from masksearch.mask import Mask

    model, split, layout = _setup(job)
    rng = np.random.default_rng(1)
    surrogate = ev.SurrogateEvaluator(model, split, layout, n_samples=128)
    exact = ev.make_evaluator(model, split, layout, kind="batched")
    dense = exact(np.ones((1, layout.n_total), dtype=bool))["loss"][0]
    n = job["quality_masks"]
    random_masks = _random_masks(layout, n, rng, low=0.3, high=0.99)
    parent = Mask.magnitude(model, 0.1).flat()
    children = _children(np.repeat(parent[None], n, axis=0), SURROGATE_FLIPS, rng)
    # a search's surrogate is anchored near the masks it ranks (bench_screening.py: at the
    # magnitude masks, each child predicted from the nearest); the dense anchor is measured too,
    # to show how far the quadratic carries
    at_parent = ev.SurrogateEvaluator(model, split, layout, n_samples=128, anchor=parent)
    parent_loss = exact(parent[None])["loss"][0]
    out = {"model": job["model"], "n": n, "dense_loss": float(dense)}
    for name, masks, anchored, base in (
        ("random", random_masks, surrogate, dense),
        ("children", children, at_parent, parent_loss),
        ("children_dense_anchor", children, surrogate, dense),
    ):
        predicted = anchored(masks)["loss"] - anchored.base_loss
        actual = exact(masks)["loss"] - base
        out[f"spearman_{name}"] = _spearman(predicted, actual)
        out[f"exact_delta_range_{name}"] = [float(actual.min()), float(actual.max())]
    out["description"] = (
        f"random: {n} masks at densities U(0.3, 0.99), surrogate anchored at the dense model; "
        f"children: {n} children flipping {SURROGATE_FLIPS} genes of the global magnitude mask "
        f"at density 0.1, surrogate anchored at that parent (and at the dense model)"
    )
    return out


# -- driver ---------------------------------------------------------------------------------


# -- the search loop with a free stand-in evaluator ------------------------------------------

LOOP_SOLVERS = {
    "nsga2": {"pop_size": 64},
    "deap-nsga2": {"mu": 64},
    "evopress": {"lambda_": 64},
}
LOOP_FLOOR, LOOP_GOAL = 5_000, 10_000  # genomes/s, issue 15


def run_loop_job(job: dict[str, Any]) -> dict[str, Any]:
    """One search of ``job["budget"]`` evaluations with a free stand-in evaluator."""
    import hashlib

    import torch

    import masksearch as ms
    from masksearch import models
    from masksearch.data import Split
    from masksearch.evaluators import Evaluator

    class FreeEvaluator(Evaluator):
        """Seeded random losses: costs nothing, so the loop around it is what is timed."""

        def __init__(self, layout) -> None:
            self.layout = layout
            self.rng = np.random.default_rng(0)

        def _evaluate(self, masks: np.ndarray) -> dict[str, np.ndarray]:
            loss = self.rng.random(len(masks))
            return {"loss": loss, "error": loss / 3}

        def _evaluate_packed(self, rows: np.ndarray) -> dict[str, np.ndarray]:
            # reads packed masks as they come, as the incremental evaluator (the default on
            # Linear stacks) and the cache do: the same draws as on bool masks
            return self._evaluate(rows)

    class BoolMasksEvaluator(FreeEvaluator):
        """The stand-in reading bool masks only: the search unpacks packed genomes for it."""

        _evaluate_packed = Evaluator._evaluate_packed

    torch.manual_seed(0)
    if job.get("model") == "tiny":
        # 160 genes: what is left is the solver's and the loop's cost per genome, whatever
        # the genome's size (the ceiling any operator speed-up could reach)
        model = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)
        )
        data = Split(torch.randn(64, 1, 4, 4), torch.randint(0, 4, (64,)))
    else:
        model = models.build("lenet300", seed=0)
        # the real evaluator scores the engine benchmark's number of images (random ones: its
        # cost depends on their count and the genes a child flips, not on what they show)
        n_images = N_SAMPLES if job.get("evaluator") == "incremental" else 64
        data = Split(torch.randn(n_images, 1, 28, 28), torch.randint(0, 10, (n_images,)))

    def one_search(budget: int) -> tuple[Any, float]:
        problem = ms.PruningProblem(model, data, encoding="weights", densities=(0.05, 0.02, 0.01))
        if job.get("evaluator") != "incremental":
            stand_in = BoolMasksEvaluator if job.get("bool_masks") else FreeEvaluator
            problem.evaluator = stand_in(problem.layout)
        elif job.get("bool_masks"):
            # the incremental evaluator as it was before it read packed masks: unpacked for
            # it, and packed again inside
            evaluator = problem.evaluator
            evaluator._evaluate_packed = types.MethodType(Evaluator._evaluate_packed, evaluator)
        solver = ms.make_solver(job["solver"], **LOOP_SOLVERS[job["solver"]])
        solver.packs_genomes = job["packed"]
        started = time.perf_counter()
        result = ms.search(problem, solver, budget=budget, seed=0)
        return result, time.perf_counter() - started

    one_search(256)  # compiles the Numba operators and warms the caches
    # a search of this size takes about a second: the median of a few repeats (which must reach
    # the same front) is what a noisy shared machine can time
    runs, digests = [], set()
    for _ in range(job.get("repeats", 1)):
        result, seconds = one_search(job["budget"])
        runs.append(seconds)
        digest = hashlib.sha256(
            np.packbits(result.front.genomes).tobytes() + result.front.F.tobytes()
        )
        digests.add(digest.hexdigest()[:16])
    if len(digests) != 1:
        raise RuntimeError(f"repeats of one seeded search reached different fronts: {digests}")
    seconds = statistics.median(runs)
    return {
        "solver": job["solver"],
        "packed": job["packed"],
        "bool_masks": bool(job.get("bool_masks")),
        "evaluator": job.get("evaluator", "free"),
        "model": job.get("model", "lenet300"),
        "n_genes": int(result.front.genomes.shape[1]),
        "evaluations": result.n_evals,
        "seconds": seconds,
        "seconds_per_repeat": runs,
        "genomes_per_s": result.n_evals / seconds,
        "front_size": len(result.front),
        "front_digest": digests.pop(),
        "peak_rss_mb": _maxrss_mb(),
    }


def _genomes_label(row: dict[str, Any]) -> str:
    if not row["packed"]:
        return "bool"
    return "packed, unpacked for the evaluator" if row.get("bool_masks") else "packed"


def _loop_markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        "# Search loop throughput (free stand-in evaluator)",
        "",
        f"Command: `python benchmarks/bench_engine.py --loop`; {env['cpu_count']} cores of "
        f"{(env.get('cpu') or {}).get('model', 'an unnamed CPU')}, "
        f"numpy {env['numpy']}, numba {env['numba']}, pymoo {env['packages'].get('pymoo')}, deap {env['packages'].get('deap')}; "
        f"load average at start {env['load_average_at_start']}. LeNet-300-100 `weights` "
        "encoding (266,200 genes), objectives loss and density, seed 0; the stand-in takes "
        "packed masks as they come, as the default incremental evaluator does; after a warm-up search "
        "of 256 evaluations; each row in its own process; packed rows time the median of "
        f"{report.get('repeats', 1)} searches (all reaching the same front), bool rows one.",
        "",
        "| solver | genomes | evaluations | seconds | genomes/s | × bool | front | front digest "
        "| peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    bool_speed = {
        r["solver"]: r["genomes_per_s"] for r in report["loop"] if not r.get("packed", True)
    }
    for r in report["loop"]:
        if "failed" in r:
            lines.append(
                f"| {r['solver']} | {_genomes_label(r)} | – | – | – | – | – | {r['failed']} | – |"
            )
            continue
        ratio = r["genomes_per_s"] / bool_speed[r["solver"]] if r["solver"] in bool_speed else None
        lines.append(
            f"| {r['solver']} | {_genomes_label(r)} | {r['evaluations']:,} "
            f"| {r['seconds']:.2f} | {r['genomes_per_s']:,.0f} "
            f"| {'–' if ratio is None else f'{ratio:.1f}'} | {r['front_size']} "
            f"| `{r['front_digest']}` | {r['peak_rss_mb']:.0f} |"
        )
    if report.get("evaluated"):
        lines += [
            "",
            f"The pymoo NSGA-II search with the real evaluator instead of the stand-in (the "
            f"incremental one, the default on LeNet-300-100; {N_SAMPLES:,} random images of "
            "Fashion-MNIST's shape, the model's random initial weights), median of 3 searches:",
            "",
            "| solver | genomes | evaluations | seconds | genomes/s | front digest |",
            "|---|---|---:|---:|---:|---|",
        ]
        for r in report["evaluated"]:
            if "failed" in r:
                lines.append(f"| {r['solver']} | {_genomes_label(r)} | – | – | – | {r['failed']} |")
                continue
            lines.append(
                f"| {r['solver']} | {_genomes_label(r)} | {r['evaluations']:,} "
                f"| {r['seconds']:.2f} | {r['genomes_per_s']:,.0f} | `{r['front_digest']}` |"
            )
    if report.get("overhead"):
        lines += [
            "",
            "The same searches on a 160-gene MLP (`Linear(16, 8)`, `Linear(8, 4)`): what the "
            "solver and the loop cost per genome whatever its size, the most any faster "
            "operator could reach.",
            "",
            "| solver | genes | genomes/s | µs per genome |",
            "|---|---:|---:|---:|",
        ]
        for r in report["overhead"]:
            if "failed" in r:
                lines.append(f"| {r['solver']} | – | {r['failed']} | – |")
                continue
            lines.append(
                f"| {r['solver']} | {r['n_genes']} | {r['genomes_per_s']:,.0f} "
                f"| {1e6 / r['genomes_per_s']:.0f} |"
            )
    lines += ["", "## Issue targets", ""]
    for solver in LOOP_SOLVERS:
        rows = [r for r in report["loop"] if r["solver"] == solver and "failed" not in r]
        packed = next((r for r in rows if r["packed"] and not r.get("bool_masks")), None)
        unpacked = next((r for r in rows if r.get("bool_masks")), None)
        plain = next((r for r in rows if not r["packed"]), None)
        if packed is None or plain is None:
            continue
        speed = packed["genomes_per_s"]
        repeats = [packed["evaluations"] / seconds for seconds in packed["seconds_per_repeat"]]
        verdict = (
            "goal met"
            if speed >= LOOP_GOAL
            else "floor met"
            if speed >= LOOP_FLOOR
            else "**below the floor**"
        )
        # a median at a target with a repeat under it is at the target, not safely over it
        target = LOOP_GOAL if speed >= LOOP_GOAL else LOOP_FLOOR
        verdict += ", not in every repeat" if speed >= target > min(repeats) else ""
        lines.append(
            f"- {solver}: {speed:,.0f} genomes/s packed, median of {len(repeats)} "
            f"({min(repeats):,.0f} to {max(repeats):,.0f}; "
            f"{speed / plain['genomes_per_s']:.1f}× bool genomes); floor {LOOP_FLOOR:,}, goal "
            f"{LOOP_GOAL:,}: {verdict}"
            + ("" if solver != "evopress" else " (targets are for NSGA-II; shown for scale)")
            + f". Same front packed and bool: {packed['front_digest'] == plain['front_digest']}"
            + (
                ""
                if unpacked is None
                else f"; unpacked for the evaluator {unpacked['genomes_per_s']:,.0f} genomes/s "
                f"(same front: {unpacked['front_digest'] == packed['front_digest']})"
            )
            + "."
        )
    return "\n".join(lines) + "\n"


def prepare(job: dict[str, Any]) -> dict[str, Any]:
    """Resolve the device, train/cache the zoo models, save the samples; report the machine."""
    import torch

    from masksearch import data, zoo
    from masksearch.training import resolve_device

    device = resolve_device(job["device"]).type
    for model in job["models"]:
        zoo.pretrained(model, "fashion-mnist")
    split = data.load("fashion-mnist").val.subset(N_SAMPLES)
    torch.save({"x": split.x.clone(), "y": split.y.clone()}, job["split_file"])
    return {"device": device, "environment": environment(device)}


def _spawn(job: dict[str, Any], timeout: float) -> dict[str, Any]:
    command = [sys.executable, __file__, "--job", json.dumps(job)]
    started = time.perf_counter()
    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**job, "failed": f"timed out after {timeout:.0f} s"}
    lines = [line for line in finished.stdout.splitlines() if line.startswith("{")]
    if finished.returncode != 0 or not lines:
        tail = finished.stderr.strip().splitlines()[-3:]
        return {**job, "failed": f"exit {finished.returncode}: {' | '.join(tail)}"}
    result = json.loads(lines[-1])
    result["wall_seconds"] = time.perf_counter() - started
    return result


def _jobs(
    args: argparse.Namespace, split_file: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    base = {
        "split_file": split_file,
        "device": args.device,
        "random_weights": args.random_weights,
        "surrogate_children": 20_000 if args.quick else 200_000,
    }
    jobs = []
    for model in args.models:
        for population in args.populations:
            for method in ("naive", "plain", "batched"):
                jobs.append({**base, "model": model, "population": population, "method": method})
            if model != "lenet5" and args.device == "cpu":
                for density in (0.5, 0.05):
                    jobs.append(
                        {
                            **base,
                            "model": model,
                            "population": population,
                            "method": "incremental",
                            "parent_density": density,
                        }
                    )
            jobs.append({**base, "model": model, "population": population, "method": "surrogate"})
            if model == "lenet5" and args.device == "cpu" and population == min(args.populations):
                jobs.append(
                    {
                        **base,
                        "model": model,
                        "population": 32,
                        "method": "prefix",
                        "generations": 3 if args.quick else 8,
                    }
                )
            # quick mode leaves the pools out: their start-up is most of their time, and
            # scale.py's quick run (same suite) already sends evaluations to a Dask cluster
            if args.device == "cpu" and not args.quick:
                for method in ("joblib", "dask"):
                    jobs.append(
                        {**base, "model": model, "population": population, "method": method}
                    )
    quality = [
        {**base, "model": model, "quality": True, "quality_masks": 32 if args.quick else 64}
        for model in args.models
    ]
    return jobs, quality


def _markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        "# Fitness engine benchmark",
        "",
        f"Mode: {report['mode']}; device {env['device']}; {env['cpu_count']} CPU cores, torch "
        f"{env['torch']} ({env['torch_threads']} threads), numpy {env['numpy']}, numba "
        f"{env['numba']}; load average at start {env['load_average_at_start']}. "
        f"{N_SAMPLES} Fashion-MNIST validation samples; "
        f"{'random' if report['random_weights'] else 'trained (zoo)'} weights. "
        "Peak = the job process's maximum RSS; growth = peak minus the RSS after loading data, "
        "model and masks.",
        "",
        "`× naive` divides by the naive loop's speed in its own job; `× naive (same process)` by "
        "the naive loop timed on a few candidates inside the same job right after the run, i.e. "
        "under the same machine load.",
        "",
        "| model | method | P | timed | cand/s | × naive | × naive (same process) | peak RSS MB "
        "| growth MB | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    naive = {
        (r["model"], r["P"]): r["candidates_per_s"]
        for r in report["results"]
        if r.get("method") == "naive" and "failed" not in r
    }
    for r in report["results"]:
        if "failed" in r:
            lines.append(
                f"| {r['model']} | {r['method']} | {r['population']} | – | – | – | – | – | – | "
                f"failed: {r['failed']} |"
            )
            continue
        speed = r["candidates_per_s"]
        # the prefix job runs method A's own population (32): its per-candidate baseline is
        # the naive loop of the same model, whose speed does not depend on P
        baseline = naive.get((r["model"], r["P"])) or next(
            (v for (m, _), v in sorted(naive.items()) if m == r["model"]), None
        )
        ratio = speed / baseline if baseline else math.nan
        method = r["method"]
        extra = r["notes"]
        if method == "incremental":
            method = f"incremental (children, parents d={r['parent_density']})"
            extra += (
                f"; full pass {r['full_pass_candidates_per_s']:.0f} cand/s; "
                f"max |Δloss| vs plain {r['max_abs_loss_diff_vs_plain']:.1e}; "
                f"children timed: stats {r['stats']}, parent rebuilds {r.get('rebuilds')}"
            )
        if r["method"] == "prefix":
            method = "prefix cache (method-A search)"
        if r["method"] == "surrogate":
            extra += f"; children {r['children_per_s']:,.0f}/s; build {r['build_seconds']:.1f} s"
        if r["method"] == "dask":
            extra += f"; worker peaks {r['worker_peak_rss_mb']} MB"
        lines.append(
            f"| {r['model']} | {method} | {r['P']} | {r['timed']} | {speed:,.1f} | {ratio:.1f} | "
            f"{r['speedup_vs_naive_same_process']:.1f} | {r['peak_rss_mb']:.0f} | "
            f"{r['rss_growth_mb']:.0f} | {extra} |"
        )
    lines += ["", "## Issue targets", "", *_verdicts(report["results"], naive)]
    lines += ["", "## Surrogate ranking quality (Spearman ρ of predicted vs exact ΔL)", ""]
    lines += [
        "| model | random masks | mutated children, anchor at the parent | "
        "mutated children, anchor at the dense model | notes |",
        "|---|---:|---:|---:|---|",
    ]
    for q in report["quality"]:
        if "failed" in q:
            lines.append(f"| {q['model']} | – | – | – | failed: {q['failed']} |")
            continue
        lines.append(
            f"| {q['model']} | {q['spearman_random']:.3f} | {q['spearman_children']:.3f} | "
            f"{q.get('spearman_children_dense_anchor', float('nan')):.3f} | {q['description']} |"
        )
    return "\n".join(lines) + "\n"


# lenet300_fashion and lenet5_fashion target densities of 0.05, 0.02 and 0.01, and the screening
# benchmark's search caps density at 0.1: a pruning search's parents are this sparse or sparser,
# which is what lets the incremental evaluator skip most of layer 2.
SEARCH_DENSITY = 0.1


def _verdicts(results: list[dict[str, Any]], naive: dict[tuple[str, int], float]) -> list[str]:
    """The engine issue's targets, each stated as met or not from this run's rows."""
    ok = [r for r in results if "failed" not in r]
    lines = []
    for r in ok:
        if r["method"] == "incremental" and r["model"] == "lenet300" and r["P"] == 64:
            own = r["candidates_per_s"] / naive[(r["model"], r["P"])]
            same = r["speedup_vs_naive_same_process"]
            fast = min(own, same) >= 10
            if r["parent_density"] <= SEARCH_DENSITY:
                scope, verdict = "target ≥ 10× the naive loop", "met" if fast else "not met"
            else:  # the issue names no density; pruning searches never hold such parents
                scope = f"above the densities a pruning search keeps (≤ {SEARCH_DENSITY}), shown for scale"
                verdict = "≥ 10×" if fast else "below 10×"
            lines.append(
                f"- Incremental children, parents at density {r['parent_density']} ({scope}, "
                f"fitness equal): {own:.1f}× (naive job), {same:.1f}× (naive in the same "
                f"process), max |Δloss| {r['max_abs_loss_diff_vs_plain']:.1e} — **{verdict}**."
            )
    children = [
        r["children_per_s"] for r in ok if r["method"] == "surrogate" and r["model"] == "lenet300"
    ]
    if children:
        best = max(children)
        lines.append(
            f"- Surrogate children of ≤ {SURROGATE_FLIPS} genes on lenet300, N = 128 (target "
            f"≥ 1,000,000/s): {best:,.0f}/s — **{'met' if best >= 1e6 else 'not met'}**."
        )
    growth: dict[tuple[str, str], dict[int, float]] = {}
    for r in ok:
        label = r["method"] + (f" d={r['parent_density']}" if r["method"] == "incremental" else "")
        growth.setdefault((r["model"], label), {})[r["P"]] = r["rss_growth_mb"]
    pairs = {k: v for k, v in growth.items() if 64 in v and 1024 in v and v[64] > 0}
    if pairs:
        worst_key = max(pairs, key=lambda k: pairs[k][1024] / pairs[k][64])
        worst = pairs[worst_key][1024] / pairs[worst_key][64]
        lines.append(
            f"- Evaluator memory (growth over data, model and masks) at P = 1,024 against P = 64 "
            f"(target ≤ 1.5×): worst {worst:.2f}× ({worst_key[0]} {worst_key[1]}) — "
            f"**{'met' if worst <= 1.5 else 'not met'}**."
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="lenet300, P=64, random weights, no joblib/Dask pools"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--random-weights", action="store_true", help="skip zoo training")
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--populations", nargs="+", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument(
        "--loop", action="store_true", help="time the search loop alone → engine_loop.{json,md}"
    )
    parser.add_argument(
        "--loop-budget", type=int, default=4096, help="evaluations per loop search (default 4096)"
    )
    parser.add_argument(
        "--loop-repeats",
        type=int,
        default=5,
        help="searches per packed row, timed by their median (default 5)",
    )
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    pin_dense_models()

    if args.job:
        job = json.loads(args.job)
        if job.get("prepare"):
            result = prepare(job)
        elif job.get("loop"):
            result = run_loop_job(job)
        elif job.get("quality"):
            result = run_quality(job)
        else:
            result = run_job(job)
        print(json.dumps(result))
        return

    if args.loop:
        run_loop(args)
        return
    if args.quick:
        args.random_weights = True
    args.models = args.models or (["lenet300"] if args.quick else ["lenet300", "lenet5"])
    args.populations = args.populations or ([64] if args.quick else [64, 1024])
    # This process stays lean (no torch, no dataset): Linux keeps ru_maxrss across fork + exec,
    # so a peak here would become every job's starting peak. A preparation job resolves the
    # device, trains the zoo models if needed, saves the samples and reports the environment.
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="bench_engine_"))
    split_file = workdir / "split.pt"
    prepared = _spawn(
        {
            "prepare": True,
            "device": args.device,
            "models": [] if args.random_weights else args.models,
            "split_file": str(split_file),
        },
        timeout=1800,
    )
    if "failed" in prepared:
        raise SystemExit(f"preparation failed: {prepared['failed']}")
    args.device = prepared["device"]
    report: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "random_weights": args.random_weights,
        "environment": prepared["environment"],
        "results": [],
        "quality": [],
    }
    jobs, quality = _jobs(args, str(split_file))
    for job in jobs:
        result = _spawn(job, timeout=600)
        report["results"].append(result)
        speed = result.get("candidates_per_s")
        print(
            f"{job['model']:9s} {job['method']:11s} P={job['population']:5d} "
            + (f"{speed:10.1f} cand/s" if speed else result.get("failed", "")),
            flush=True,
        )
    for job in quality:
        result = _spawn(job, timeout=900)
        report["quality"].append(result)
        print(f"{job['model']:9s} spearman {result}", flush=True)
    split_file.unlink()
    workdir.rmdir()
    out = args.out or RESULTS
    stem = "engine-quick" if args.quick else "engine"
    # the environment record is the preparation job's, which had torch loaded
    write_results(out, stem, report, _markdown)
    print(f"wrote {out / stem}.json and .md")


def run_loop(args: argparse.Namespace) -> None:
    report: dict[str, Any] = {
        "environment": environment("cpu"),
        "repeats": args.loop_repeats,
        "loop": [],
    }
    for solver in LOOP_SOLVERS:
        # packed genomes; packed genomes unpacked for a stand-in that reads bool masks only
        # (what handing packed masks over saves); bool genomes
        for packed, bool_masks in ((True, False), (True, True), (False, False)):
            job = {
                "loop": True,
                "solver": solver,
                "packed": packed,
                "bool_masks": bool_masks,
                "budget": args.loop_budget,
                # the bool rows are slow and only set the ratio: one search each
                "repeats": args.loop_repeats if packed else 1,
            }
            result = _spawn(job, timeout=1800)
            report["loop"].append({**job, **result})
            speed = result.get("genomes_per_s")
            print(
                f"{solver:11s} {_genomes_label(job):28s} "
                + (f"{speed:9.0f} genomes/s" if speed else result.get("failed", "")),
                flush=True,
            )
    # the same NSGA-II search with the real (incremental) evaluator: what handing packed
    # masks over saves where evaluation costs something
    for bool_masks in (False, True):
        job = {"loop": True, "solver": "nsga2", "packed": True, "bool_masks": bool_masks}
        job.update(evaluator="incremental", budget=args.loop_budget, repeats=3)
        result = _spawn(job, timeout=1800)
        report["evaluated"] = [*report.get("evaluated", []), {**job, **result}]
        speed = result.get("genomes_per_s")
        print(
            f"nsga2 incremental {_genomes_label(job):28s} "
            + (f"{speed:9.0f} genomes/s" if speed else result.get("failed", "")),
            flush=True,
        )
    for solver in LOOP_SOLVERS:
        job = {"loop": True, "solver": solver, "packed": True, "model": "tiny"}
        job.update(budget=args.loop_budget, repeats=args.loop_repeats)
        result = _spawn(job, timeout=1800)
        report["overhead"] = [*report.get("overhead", []), {**job, **result}]
        print(f"{solver:11s} tiny   {result.get('genomes_per_s', 0):9.0f} genomes/s", flush=True)
    out = args.out or RESULTS
    write_results(out, "engine_loop", report, _loop_markdown)
    print(f"wrote {out / 'engine_loop'}.json and .md")


if __name__ == "__main__":
    main()
