"""The one search loop: ask → evaluate → tell → archive → callbacks → checkpoint.

.. code-block:: text

    solver.setup(n_genes, n_obj, rng, operators=encoding, initial=magnitude genomes)
    while evaluations < budget and time < time_limit:
        genomes = solver.ask()                # the solver never sees the model
        evaluation = problem.evaluate(genomes)    # F, metrics, violation; genomes validated
        solver.tell(genomes, F, violation)
        front.update(feasible, exact members)  # archive over *all* evaluated genomes
        local_search.improve(problem, front)   # optional: archive + solver.inject(improved)
        history.append(record); callbacks(record); checkpoint (then honour a requested stop)
"""

from __future__ import annotations

import numbers
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from masksearch.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, trust
from masksearch.encodings import packed
from masksearch.encodings.packed import PackedOperators
from masksearch.front import ParetoFront, density_slack
from masksearch.local_search import LocalSearch, Proposal, check_local_search
from masksearch.problem import Evaluation, PruningProblem
from masksearch.solvers.base import Solver, check_solver, solver_done, solver_inject
from masksearch.warmstart import WarmStart, as_initial

__all__ = ["CheckpointError", "Result", "search", "search_fingerprint"]

Callback = Callable[[dict[str, Any]], object]


@dataclass
class Result:
    """What a search returns: the Pareto front, per-generation history and the budget used."""

    front: ParetoFront
    history: list[dict[str, Any]] = field(default_factory=list)
    n_evals: int = 0
    seed: int = 0
    wall_time: float = 0.0
    stopped: str = "budget"  # budget | time | solver | interrupted
    #: what the initial genomes cost (:meth:`WarmStart.summary`); None for the magnitude default
    warm_start: dict[str, Any] | None = None

    def summary(self) -> str:
        lines = [
            f"{self.n_evals} evaluations in {self.wall_time:.1f} s, "
            f"{len(self.front)} masks on the front (stopped: {self.stopped})"
        ]
        for row in self.front.rows():
            lines.append(
                "  density {density:.4f}  error {error:.4f}  loss {loss:.4f}".format(**row)
            )
        return "\n".join(lines)


def search(
    problem: PruningProblem,
    solver: Solver,
    *,
    budget: int | None = 1000,
    time_limit: float | None = None,
    seed: int = 0,
    callbacks: Sequence[Callback] = (),
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    fingerprint: dict[str, Any] | None = None,
    local_search: LocalSearch | None = None,
    initial: Any = None,
    out: str | os.PathLike[str] | None = None,
    settings: dict[str, Any] | None = None,
) -> Result:
    """Run ``solver`` on ``problem`` until ``budget`` evaluations or ``time_limit`` seconds.

    ``solver`` meets the :class:`masksearch.solvers.Solver` protocol: ``setup``, ``ask`` and
    ``tell`` are required (an object without them is refused with a TypeError before anything
    runs); ``done`` (stop when True) and ``inject`` are used only when the solver has them.

    The budget is checked between generations, so the last generation may overshoot it by
    less than one population. ``checkpoint`` names a file written atomically after every
    generation; with ``resume=True`` the search continues from it and reaches the same front
    as an uninterrupted run with the same seed (on the CPU). ``fingerprint`` (any picklable
    description of the run) must match on resume, so a checkpoint of another search is refused.

    ``local_search`` (a :class:`masksearch.local_search.LocalSearch`, e.g.
    :class:`~masksearch.local_search.GradientSwaps`, checked likewise) is called after every
    generation with the problem and the front; what it evaluates joins the archive and counts
    against the budget, and the genomes it improved go back to the solver through
    ``solver.inject`` when the solver has it.

    ``initial`` (a :class:`~masksearch.warmstart.WarmStart` from
    :func:`~masksearch.warmstart.warm_start`, Masks, or an array of genomes or flat masks) is what
    the solver starts from; by default, the global magnitude masks at the problem's densities.
    The shipped solvers evaluate every initial genome in their first generation, so the front
    is never worse than its seeds. Ignored on resume (the checkpoint has the population).

    ``out`` makes the search a run directory as ``masksearch run`` writes it (locked while the
    search runs; ``checkpoint.pkl`` there unless ``checkpoint`` says otherwise, ``log.jsonl``,
    then config, results and report): ``masksearch report/export DIR`` and ``resume=True`` work
    on it. A directory that already holds a run is continued with ``resume=True`` only.
    ``settings`` (the run's settings, e.g. :attr:`masksearch.builder.Run.settings`) go into its
    ``config.json`` beside what the problem holds.
    """
    if out is not None:
        return _search_into(
            out,
            problem,
            solver,
            settings,
            budget=budget,
            time_limit=time_limit,
            seed=seed,
            callbacks=callbacks,
            checkpoint=checkpoint,
            resume=resume,
            fingerprint=fingerprint,
            local_search=local_search,
            initial=initial,
        )
    # the plug-ins' form first: a class or a wrong object fails here, not mid-run
    check_solver(solver)
    if local_search is not None:
        check_local_search(local_search)
    if budget is None and time_limit is None:
        raise ValueError("give a budget (evaluations) or a time_limit (seconds), or both")
    if budget is not None:
        budget = _whole_number("budget", budget, "evaluations")
    if time_limit is not None and (
        isinstance(time_limit, bool)
        or not isinstance(time_limit, numbers.Real)
        or not np.isfinite(time_limit)
        or time_limit <= 0
    ):
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    seed = _whole_number("seed", seed, "", minimum=0)
    packing = genome_packing(problem, solver)
    fingerprint = {**search_fingerprint(problem, solver, seed, local_search), **(fingerprint or {})}
    path = Path(checkpoint) if checkpoint is not None else None

    if resume and path is not None and path.exists():
        # the caller built these objects, so their classes may appear in the checkpoint
        trust(type(solver), *(() if local_search is None else (type(local_search),)))
        state = load_checkpoint(path, fingerprint)
        solver, front, history = state["solver"], state["front"], state["history"]
        n_evals, elapsed = state["n_evals"], state["elapsed"]
        local_search = state.get("local_search")
        warm = state.get("warm_start")
        _restore_cache(problem, state.get("cache"))
    else:
        seeds = problem.magnitude_genomes() if initial is None else as_initial(problem, initial)
        warm = initial.summary() if isinstance(initial, WarmStart) else None
        rng = np.random.default_rng(seed)
        operators = problem.encoding if packing is None else packing
        solver.setup(
            operators.n_genes,
            problem.n_obj,
            rng,
            operators=operators,
            initial=seeds if packing is None else packing.pack(seeds),
        )
        if local_search is not None:
            local_search.setup(problem, np.random.default_rng([seed, 1]))
        front = ParetoFront(problem.objectives, problem.layout, problem.encoding.decode)
        history, n_evals, elapsed = [], 0, 0.0

    started = time.perf_counter() - elapsed
    stopped = "budget"
    reference = problem.reference_point
    try:
        while True:
            if budget is not None and n_evals >= budget:
                stopped = "budget"
                break
            if time_limit is not None and time.perf_counter() - started >= time_limit:
                stopped = "time"
                break
            if solver_done(solver):
                stopped = "solver"
                break
            asked = solver.ask()
            if packing is None:
                # validated once, in evaluate (a custom solver's wrong dtype or length fails there)
                evaluation = problem.evaluate(asked)
                genomes = (
                    evaluation.genomes
                    if evaluation.genomes is not None
                    else problem.encoding.validate(asked)  # an evaluate() that returns none
                )
            else:
                evaluation = _evaluate_packed(problem, packing, asked)
                genomes = asked  # told and archived packed
            solver.tell(genomes, evaluation.F, evaluation.violation)
            exact = np.asarray(evaluation.metrics.get("exact", np.ones(len(genomes))), dtype=bool)
            keep = exact & (evaluation.violation <= 0)
            every = bool(keep.all())  # the usual case: no copy of the population
            front.update(
                genomes if every else genomes[keep],
                evaluation.F if every else evaluation.F[keep],
                {k: v if every else v[keep] for k, v in evaluation.metrics.items()},
                packed_bits=None if packing is None else packing.n_bits,
            )
            n_evals += int(exact.sum()) if "exact" in evaluation.metrics else len(genomes)
            if local_search is not None:
                n_evals += _improve(problem, solver, front, local_search, packing)
            record = _record(len(history), n_evals, time.perf_counter() - started, front, reference)
            history.append(record)
            # callbacks (the run's log among them) come before the checkpoint, so a kill in
            # between makes a resume redo a logged generation, never skip one; a stop they ask
            # for (KeyboardInterrupt, e.g. StopOnSignal) waits until the checkpoint is written.
            # They also see the live front; the history keeps only the JSON-safe record.
            stop_requested = False
            for callback in callbacks:
                try:
                    callback({**record, "front": front})
                except KeyboardInterrupt:
                    stop_requested = True
                    break
            if path is not None:
                save_checkpoint(
                    path,
                    {
                        "solver": solver,
                        "front": front,
                        "history": history,
                        "n_evals": n_evals,
                        "elapsed": time.perf_counter() - started,
                        "cache": _cache_state(problem),
                        "local_search": local_search,
                        "warm_start": warm,
                    },
                    fingerprint,
                )
            if stop_requested:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        stopped = "interrupted"
    return Result(
        front=front,
        history=history,
        n_evals=n_evals,
        seed=seed,
        wall_time=time.perf_counter() - started,
        stopped=stopped,
        warm_start=warm,
    )


def _search_into(
    out: str | os.PathLike[str],
    problem: PruningProblem,
    solver: Solver,
    settings: dict[str, Any] | None,
    **options: Any,
) -> Result:
    from masksearch.device import resolve_device
    from masksearch.progress import LogFile
    from masksearch.report import run_config, save_results, save_seeds, write_report
    from masksearch.rundir import RunDir

    run = RunDir(out)
    with run.lock():
        resume = options["resume"]
        if not resume and run.holds_run():
            raise FileExistsError(
                f"{run.path} already holds a run: continue it with resume=True, or give another "
                "out (masksearch never deletes results it was not asked to)"
            )
        if options["checkpoint"] is None:
            options["checkpoint"] = run.checkpoint
        if resume and not Path(options["checkpoint"]).exists() and run.front.exists():
            raise FileExistsError(
                f"cannot resume {run.path}: it holds results but no checkpoint, so resuming "
                "would restart from zero and replace them; give another out"
            )
        config = run_config(problem, options["seed"], run.path, settings)
        if resume and run.config.exists():
            config = {**run.read_json("config"), **config}
        run.record_start(config, device=str(resolve_device(problem.device)), resume=resume)
        log = LogFile(
            run.log, densities=problem.densities, slack=density_slack(problem.layout.n_total)
        )
        options["callbacks"] = (log, *options["callbacks"])
        if not (resume and Path(options["checkpoint"]).exists()):
            initial = options["initial"]
            save_seeds(run, problem, problem.magnitude_genomes() if initial is None else initial)
        result = search(problem, solver, **options)
        save_results(run, result, problem)
        write_report(run, problem)
    return result


def _evaluate_packed(
    problem: PruningProblem, packing: PackedOperators, asked: np.ndarray
) -> Evaluation:
    """``problem.evaluate`` of packed genomes a chunk at a time: handed over packed where the
    evaluator reads packed masks (:meth:`PruningProblem.evaluate_packed`), else unpacked, each
    chunk's bool genomes dropped once scored (the packed rows are what the search keeps)."""
    rows = max(1, packed.UNPACKED_BYTES // packing.n_bits)
    # rows the packed operators made are valid by construction: skip evaluate's check and copy
    # (~20% of the loop's time per genome on LeNet-300-100), unless evaluate was replaced or
    # overridden
    plain = type(problem).evaluate is PruningProblem.evaluate and "evaluate" not in vars(problem)
    parts = []
    for start in range(0, len(asked), rows):
        chunk = asked[start : start + rows]
        part = problem.evaluate_packed(chunk) if plain else problem.evaluate(packing.unpack(chunk))
        parts.append((part.F, part.metrics, part.violation))
    return Evaluation(
        F=np.concatenate([F for F, _, _ in parts]),
        metrics={k: np.concatenate([metrics[k] for _, metrics, _ in parts]) for k in parts[0][1]},
        violation=np.concatenate([violation for _, _, violation in parts]),
    )


def genome_packing(problem: PruningProblem, solver: Any) -> PackedOperators | None:
    """The packed form the search hands ``solver`` (None: the encoding's own genomes).

    Shipped solvers touch genomes only through their operators (``packs_genomes``); given a
    packable encoding (weights, channels) they evolve genomes eight genes a byte, with the
    same operators drawing the same random numbers, so the search reaches the same front.
    """
    if getattr(solver, "packs_genomes", False) and getattr(problem.encoding, "packable", False):
        return PackedOperators(problem.encoding)
    return None


def search_fingerprint(
    problem: PruningProblem, solver: Any, seed: int, local_search: Any | None = None
) -> dict[str, Any]:
    """What a checkpoint must share with the search that resumes it."""
    packs = genome_packing(problem, solver) is not None
    return {
        # a solver's state holds genomes in the form it evolved them (the key only when packed,
        # so checkpoints of bool searches written before packing existed still resume)
        **({"genomes": "packed"} if packs else {}),
        "problem": problem.name,
        "n_genes": problem.n_genes,
        "objectives": problem.objectives,
        "encoding": problem.encoding.name,
        "solver": type(solver).__name__,
        "seed": seed,
        "local_search": None if local_search is None else type(local_search).__name__,
        # the groups encoding's checkpoints resume since its options (widths_only among them)
        # joined: they are part of its fingerprint from the start. The other encodings'
        # fingerprints stay as they were, so their older checkpoints still resume.
        **(
            {"encoding_options": problem.encoding.options}
            if problem.encoding.name == "groups"
            else {}
        ),
    }


def _improve(
    problem: PruningProblem,
    solver: Solver,
    front: ParetoFront,
    local_search: LocalSearch,
    packing: PackedOperators | None,
) -> int:
    """One local-search call: archive what it evaluated, inject what it improved."""
    proposal = local_search.improve(problem, front)
    if not isinstance(proposal, Proposal):
        raise TypeError(
            f"{type(local_search).__name__}.improve() returned {type(proposal).__name__}; "
            "it must return a masksearch.local_search.Proposal"
        )
    if len(proposal.genomes) == 0:
        return 0
    evaluation = proposal.evaluation
    keep = evaluation.violation <= 0
    front.update(
        proposal.genomes[keep],
        evaluation.F[keep],
        {k: v[keep] for k, v in evaluation.metrics.items()},
    )
    inject = solver_inject(solver)
    if inject is not None and len(proposal.improved):
        rows = proposal.improved
        genomes = proposal.genomes[rows]
        inject(
            genomes if packing is None else packing.pack(genomes),
            evaluation.F[rows],
            evaluation.violation[rows],
        )
    return len(proposal.genomes)


def _record(
    generation: int, n_evals: int, wall: float, front: ParetoFront, reference: np.ndarray
) -> dict[str, Any]:
    best = (
        {f"best_{o}": float(front.F[:, i].min()) for i, o in enumerate(front.objectives)}
        if len(front)
        else {}
    )
    return {
        "generation": generation,
        "n_evals": n_evals,
        "wall_time": wall,
        "front_size": len(front),
        "hypervolume": front.hypervolume(reference),
        **best,
    }


def _whole_number(name: str, value: Any, unit: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be a whole number{' of ' + unit if unit else ''}, got {value!r} "
            f"({type(value).__name__})"
        )
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}{' ' + unit if unit else ''}, got {value}")
    return int(value)


def _cache_state(problem: PruningProblem) -> Any:
    state = getattr(problem.evaluator, "state_dict", None)
    return state() if callable(state) else None


def _restore_cache(problem: PruningProblem, state: Any) -> None:
    load = getattr(problem.evaluator, "load_state_dict", None)
    if state is not None and callable(load):
        load(state)
