"""What the benchmarks share: runs built from settings, the screening recipe, a local Dask
cluster, one result writer, the environment record and the dense models they start from.

Every problem, solver, local search and parallel evaluator a benchmark searches with comes from
:mod:`masksearch.builder` (the settings of :mod:`masksearch.settings`, as the CLI takes them);
:func:`build` and :func:`rerun` add only what the settings cannot say, marked where it is done.

The scripts in ``benchmarks/`` are run as files (``python benchmarks/x.py``), so their folder is
on ``sys.path`` and they import this module as ``_common``. It imports neither torch nor
masksearch at import time: ``run_all.py`` imports it and stays lean.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from masksearch.builder import Run
    from masksearch.mask import Mask

ROOT = Path(__file__).resolve().parents[1]
# The dense zoo models the committed results start from. Training one is deterministic on one
# machine, but floating-point sums differ between instruction sets (AVX2, AVX-512) and thread
# counts, so each machine would otherwise train its own dense models and a rerun elsewhere
# would start from other weights.
DENSE_MODELS = ROOT / "benchmarks" / "results" / "dense"
CACHE_VARIABLE = "MASKSEARCH_CACHE"  # = masksearch.zoo.ENV_VAR, without importing torch here
PACKAGES = (
    "torch",
    "numpy",
    "scipy",
    "numba",
    "pymoo",
    "deap",
    "dask",
    "distributed",
    "joblib",
    "matplotlib",
)
# The fraction of each generation's offspring a screened search evaluates exactly. Chosen on
# seeds 3 and 4, which bench_screening.py's default run does not report: the screened search
# needed 0.21 (keep 0.10), 0.19 (0.15) and 0.30 (0.20) of the exact run's evaluations there
# (mean of the two seeds, budget 2,000). Probes on seeds 0-2 before that gave 0.19 ± 0.04 at
# keep 0.20, 0.28 ± 0.03 at 0.25, and at 1/3 (the ScreenedEvaluator's default) one seed did not
# reach the target within 1,500 evaluations: a smaller keep buys more generations per exact
# evaluation.
SCREEN_KEEP = 0.15


def pin_dense_models() -> Path:
    """Point the zoo at the committed dense models unless ``$MASKSEARCH_CACHE`` says otherwise.

    Call before the first zoo model is loaded. A model missing there (a new recipe) is trained
    on first use and written there, to be committed with the results it produced.
    """
    os.environ.setdefault(CACHE_VARIABLE, str(DENSE_MODELS))
    in_use = dense_models_in_use()
    if in_use != str(DENSE_MODELS.relative_to(ROOT)):
        # a relative $MASKSEARCH_CACHE follows the working directory: from benchmarks/ it
        # names an empty folder, and the models are silently trained anew there
        print(
            f"warning: dense models from {in_use} (${CACHE_VARIABLE}), not the committed "
            f"{DENSE_MODELS.relative_to(ROOT)}: the figures will not be the committed models'",
            file=sys.stderr,
        )
    return Path(os.environ[CACHE_VARIABLE])


def dense_models_in_use() -> str | None:
    """Where the zoo finds its dense models: the committed folder repository-relative, any other
    as an absolute path (``$MASKSEARCH_CACHE`` may be relative to the working directory)."""
    value = os.environ.get(CACHE_VARIABLE)
    if value is None:
        return None
    resolved = Path(value).resolve()
    if resolved == DENSE_MODELS.resolve():
        return str(DENSE_MODELS.relative_to(ROOT))
    return str(resolved)


def ablation_args(description: str, out: Path) -> argparse.Namespace:
    """``--seeds`` (default 3; below 1 refused, since no seed would leave an empty table that
    looks like a result), ``--quick`` and ``--out`` (default ``out``), parsed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: short phases, _quick files"
    )
    parser.add_argument("--out", type=Path, default=out)
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    return args


# -- runs --------------------------------------------------------------------------------------


def build(settings: Mapping[str, Any], *, max_density: float | None = None) -> Run:
    """:func:`masksearch.builder.build_run` of ``settings``, plus a density cap.

    The settings have no density constraint, so ``max_density`` (masks denser than it are
    infeasible: :class:`~masksearch.PruningProblem`'s own option) is set on the built problem.
    A benchmark's searches start from the global magnitude masks at the problem's densities:
    give ``"init": ["magnitude"]`` (the builder's default adds supermask masks).
    """
    from masksearch.builder import build_run
    from masksearch.mask import check_density

    run = build_run(settings)
    if max_density is not None:
        run.problem.max_density = check_density(max_density)
    return run


def run_on(problem: Any, settings: Mapping[str, Any]) -> Run:
    """A run of ``settings`` on a problem built elsewhere, for one the settings cannot name:
    the solver and local search built from them, the settings completed as ``build_run``
    completes them."""
    from masksearch.builder import (
        Run,
        build_local_search,
        build_solver,
        complete_settings,
        resolved_settings,
    )

    config = resolved_settings(complete_settings(settings), problem)
    return Run(config, problem, build_solver(config), build_local_search(config, problem))


def rerun(run: Run, **changes: Any) -> Run:
    """Another search on ``run``'s problem: the solver and local search built anew from its
    settings with ``changes`` (``seed``, ``solver``, ``pop_size``, ``local_search``, ``budget``…).

    The problem, and so its evaluator, is the same object: a cache the evaluator keeps carries
    over from one search to the next, as it did when the committed results were made.
    """
    return run_on(run.problem, {**run.settings, **changes})


def screen(
    problem: Any,
    anchor_densities: Sequence[float],
    *,
    keep: float = SCREEN_KEEP,
    n_samples: int = 128,
    precision: str = "float16",
    rank_by: str = "pareto",
    warmup_calls: int = 1,
) -> None:
    """Put surrogate screening in front of ``problem``'s evaluator (the recipe that
    ``bench_screening.py`` measures and ``quality.py``'s ``nsga2+screen`` row uses).

    One empirical-Fisher surrogate is anchored at the global magnitude mask of each of
    ``anchor_densities`` (each candidate predicted by the nearest anchor); of each generation's
    offspring only the best ``keep`` fraction, ranked by ``rank_by``, is evaluated exactly, the
    first ``warmup_calls`` populations (the seeded one) in full. The settings have no evaluator
    kind for this (``evaluator`` names exact evaluators only), so it wraps the built one.
    """
    from masksearch.evaluators import ScreenedEvaluator, SurrogateEvaluator

    anchors = problem.encoding.decode(problem.encoding.magnitude(tuple(anchor_densities)))
    surrogates = [
        SurrogateEvaluator(
            problem.model,
            problem.data,
            problem.layout,
            n_samples=n_samples,
            anchor=anchor,
            precision=precision,
            device=problem.device,
        )
        for anchor in anchors
    ]
    problem.evaluator = ScreenedEvaluator(
        problem.evaluator, surrogates, keep=keep, rank_by=rank_by, warmup_calls=warmup_calls
    )


def recorded_name(method: str) -> str:
    """The name results record for the pruning method ``method``: for method A and B their
    names before the rename (``method_a`` for ``large_plus_small``, ``method_b`` for
    ``small_frequency``), as the committed results have them, so that ``compare_results.py``
    matches a rerun's rows with theirs and saved runs stay reusable."""
    from masksearch.methods import METHODS

    old = getattr(METHODS[method], "old_names", ())
    return old[0] if old else method


@contextmanager
def local_cluster(n_workers: int, threads_per_worker: int = 1) -> Iterator[Any]:
    """A ``distributed.LocalCluster`` of ``n_workers`` worker processes on this machine, closed
    on exit. Its ``scheduler_address`` is the ``scheduler`` setting of a run that evaluates on
    it; ``distributed.Client(cluster)`` talks to it directly."""
    import distributed

    with distributed.LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster


def test_accuracy(model: Any, mask: Mask, split: Any, device: Any = "cpu") -> float:
    """Accuracy on ``split`` of a copy of ``model`` with ``mask`` applied (no training)."""
    import copy

    from masksearch.training import evaluate

    return evaluate(mask.apply(copy.deepcopy(model)), split, device=device).accuracy


# -- results -----------------------------------------------------------------------------------


def write_results(
    out: Path,
    stem: str,
    payload: dict[str, Any],
    markdown: str | Callable[[dict[str, Any]], str],
    *,
    plot: Callable[[Path], object] | None = None,
    device: Any = "cpu",
) -> list[str]:
    """Write ``<out>/<stem>.json`` (``payload``), ``<stem>.png`` (``plot(path)``, when given)
    and ``<stem>.md`` (``markdown``, or ``markdown(payload)``), creating ``out``.

    ``payload`` gets the environment record (versions, CPU, load, git commit, ``device``)
    unless it holds one already (taken at the start, or in the process that measured). The
    JSON is replaced atomically, so a benchmark that saves after every run never leaves half a
    file. Returns the names written, the JSON first.
    """
    out.mkdir(parents=True, exist_ok=True)
    payload.setdefault("environment", environment(str(device)))
    names = [f"{stem}.json"]
    temporary = out / f".{stem}.json.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(payload, indent=1, default=_jsonable) + "\n")
    os.replace(temporary, out / names[0])
    if plot is not None:
        plot(out / f"{stem}.png")
        names.append(f"{stem}.png")
    text = markdown if isinstance(markdown, str) else markdown(payload)
    (out / f"{stem}.md").write_text(text)
    names.append(f"{stem}.md")
    return names


def save_masks(out: Path, stem: str, masks: Mapping[Any, Mask], model: Any) -> list[str]:
    """Each mask, keyed by its density, applied to a copy of ``model`` in
    ``torch.nn.utils.prune`` form (``*.weight_orig`` + ``*.weight_mask``), as
    ``<out>/<stem>_mask_<density in ‰, 3 digits>.pt``, so anyone can re-score them."""
    import copy

    import torch

    out.mkdir(parents=True, exist_ok=True)
    names = []
    for density, mask in masks.items():
        name = f"{stem}_mask_{int(float(density) * 1000):03d}.pt"
        torch.save(mask.to_prune(copy.deepcopy(model)).state_dict(), out / name)
        names.append(name)
    return names


def _jsonable(value: object) -> object:
    if hasattr(value, "item") and callable(value.item):  # numpy and torch scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


# -- the environment record ------------------------------------------------------------------


def cpu() -> dict[str, Any]:
    """The CPU's model name and the vector extensions that change floating-point results."""
    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:  # not Linux
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "f16c")
    return {"model": model, "vector_extensions": [f for f in wanted if f in flags]}


def environment(device: str) -> dict[str, Any]:
    """Versions, machine, load and the git commit, so a result can be traced and compared.

    Imports nothing heavy: torch's thread count and GPU name are read only when the calling
    benchmark has already imported torch.
    """
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    torch = sys.modules.get("torch")
    commit, dirty = _git_state()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu(),
        "dense_models": dense_models_in_use(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "device": device,
        "torch": versions["torch"],
        "numpy": versions["numpy"],
        "numba": versions["numba"],
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "cuda": (
            torch.cuda.get_device_name(0)
            if torch is not None and torch.cuda.is_available()
            else None
        ),
        "packages": versions,
        "git_commit": commit,
        "git_dirty": dirty,
    }


def _git_state() -> tuple[str | None, bool | None]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return commit, bool(status.strip())
