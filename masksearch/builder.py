"""The one place a run is built from settings: problem, encoding, evaluator and its wrappers,
solver, local search, warm start, parallel backend.

The CLI and the benchmarks go through :func:`build_run`:

>>> run = build_run({"problem": "digits_mlp", "solver": "nsga2", "budget": 600, "seed": 0})
>>> result = run.search()                # warm start, then masksearch.search
>>> run.settings["local_search"]         # every default written in, as config.json stores it
'gradient-swaps'

Settings are the names of :mod:`masksearch.settings` (the CLI's options, a TOML file's keys).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from masksearch.settings import (
    CONFIG_KEYS,
    DEFAULT_BUDGET,
    DEFAULT_BUDGETS,
    FINGERPRINT_KEYS,
    LOCAL_SEARCHES,
    UserError,
    validate_values,
)

__all__ = [
    "Run",
    "build_local_search",
    "build_problem",
    "build_run",
    "build_solver",
    "build_warm_start",
    "check_init_options",
    "complete_settings",
    "fingerprint",
    "init_choice",
    "local_search_choice",
    "parallel_evaluator",
    "resolved_settings",
]

Note = Callable[[str], object]


def complete_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` checked, with the defaults that do not need the problem built written in.

    ``problem`` must be given (a catalogue name, an entry point or ``pkg.module:function``);
    an unknown name, solver, encoding, local search or objective is a :class:`UserError`.
    """
    from masksearch import catalogue

    config = validate_values(dict(settings), "settings") if settings else {}
    if "problem" not in config:
        raise UserError("settings need a problem (a catalogued name or 'pkg.module:function')")
    source = catalogue.resolve(config["problem"])
    config.setdefault("solver", "nsga2")
    _check_solver(config["solver"])
    if config.get("local_search", "auto") not in LOCAL_SEARCHES:
        raise UserError(
            f"unknown local search {config['local_search']!r}; choose one of "
            f"{', '.join(LOCAL_SEARCHES)}"
        )
    if "encoding" in config:
        _check_encoding(config["encoding"])
    targets = config.get("densities") or getattr(source, "densities", None) or ()
    if config.get("encoding") == "pool":
        # the pool encoding searches one density: by default the first target density
        options = dict(config.get("encoding_options") or {})
        if "density" not in options:
            if not targets:
                raise UserError(
                    "the pool encoding searches one density: give densities or "
                    "encoding_options density=D (--encoding-option density=D)"
                )
            options["density"] = float(targets[0])
        config["encoding_options"] = options
    if "max_density" in config:
        cap = config["max_density"]
        above = [d for d in targets if d > cap]
        if above:
            raise UserError(
                f"max_density {cap:g} is below the target density {max(above):g}, where no "
                "mask would then be feasible; raise max_density or leave that density out"
            )
    for source in config.get("init") or ():
        _check_init(source)
    if "budget" not in config and "time" not in config:
        config["budget"] = DEFAULT_BUDGETS.get(config["problem"], DEFAULT_BUDGET)
    config.setdefault("seed", 0)
    if "workers" in config and "scheduler" in config:
        raise UserError("give either workers (local processes) or scheduler (Dask), not both")
    if "objectives" in config:
        from masksearch.problem import OBJECTIVES

        unknown = [o for o in config["objectives"] if o not in OBJECTIVES]
        if unknown:
            raise UserError(
                f"unknown objective {unknown[0]!r}; choose from {', '.join(OBJECTIVES)}"
            )
    return config


def default_out(config: Mapping[str, Any]) -> str:
    """``runs/PROBLEM-SOLVER-sSEED``, with a reference's ``:`` and ``/`` made file-safe."""
    problem = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(config["problem"]))
    return f"runs/{problem}-{config['solver']}-s{config['seed']}"


def _check_init(source: str) -> None:
    """Checked before any work, so a typo never costs the results --overwrite would replace."""
    from masksearch.warmstart import check_source

    try:
        check_source(source)
    except ValueError as error:
        raise UserError(str(error)) from None


def _check_solver(name: str) -> None:
    from masksearch.solvers import SOLVERS

    if name not in SOLVERS:
        raise UserError(f"unknown solver {name!r}; choose one of {', '.join(SOLVERS)}")


def _check_encoding(name: str) -> None:
    from masksearch.encodings import ENCODINGS

    if name not in ENCODINGS:
        raise UserError(f"unknown encoding {name!r}; choose one of {', '.join(ENCODINGS)}")


def build_problem(config: Mapping[str, Any], *, note: Note | None = None) -> Any:
    """The problem ``config`` names (a catalogued one trains its dense model on first use)."""
    from masksearch import catalogue, zoo

    source = catalogue.resolve(config["problem"])
    root = config.get("data_root")
    if (
        note is not None
        and isinstance(source, catalogue.ProblemSpec)
        and source.available(root)
        and not zoo.cache_path(source.model, source.dataset).exists()
    ):
        note(
            f"first use of {source.model} on {source.dataset}: training the dense model once "
            f"(cached in {zoo.cache_dir()})"
        )
    options: dict[str, Any] = {"root": root}
    keys = ("encoding", "objectives", "densities", "val_samples", "fitness_split", "train_samples")
    keys += ("device", "evaluator")
    for key in (*keys, "repair_steps", "recalibrate_bn", "max_density", "label_smoothing"):
        if key in config:
            options[key] = config[key]
    if config.get("encoding_options"):
        options["encoding_options"] = config["encoding_options"]
    return source.build(**options)


def resolved_settings(config: Mapping[str, Any], problem: Any) -> dict[str, Any]:
    """``config`` with the problem's defaults written in, as stored in config.json."""
    resolved = {**config, **problem.settings()}
    resolved.setdefault("solver_options", {})
    resolved.setdefault("encoding_options", {})
    resolved["local_search"] = local_search_choice(config, problem)
    resolved["init"] = init_choice(config, problem)
    resolved.setdefault("init_epochs", 1)
    return {key: resolved[key] for key in CONFIG_KEYS if key in resolved}


def build_solver(config: Mapping[str, Any]) -> Any:
    from masksearch.solvers import make_solver

    options = dict(config.get("solver_options") or {})
    if "pop_size" in config:
        options["pop_size"] = config["pop_size"]  # make_solver maps it to mu / lambda_
    return make_solver(config["solver"], **options)


def local_search_choice(config: Mapping[str, Any], problem: Any) -> str:
    """``config``'s local search with "auto" resolved for ``problem``."""
    choice = config.get("local_search", "auto")
    if choice == "auto":
        fits = problem.encoding.name == "weights" and problem.objectives[0] in ("error", "loss")
        choice = "gradient-swaps" if fits else "none"
    return choice


def init_choice(config: Mapping[str, Any], problem: Any) -> list[str]:
    """``config``'s warm starts, or the default for ``problem`` (see ``--init``)."""
    if config.get("init"):
        return list(config["init"])
    learns = problem.encoding.name == "weights" and getattr(problem, "train_data", None)
    return ["magnitude", "supermask-path"] if learns else ["magnitude"]


def build_warm_start(config: Mapping[str, Any], problem: Any) -> Any:
    """The initial genomes ``config["init"]`` names, made now (supermask trains here)."""
    from masksearch.warmstart import warm_start

    return warm_start(
        problem,
        init_choice(config, problem),
        epochs=config.get("init_epochs", 1),
        seed=config.get("seed", 0),
        later_epochs=config.get("init_later_epochs"),
        options=config.get("init_options"),
    )


def check_later_epochs(config: Mapping[str, Any]) -> None:
    """``init_later_epochs`` only with supermask-path seeds, and one count per sparser target
    when it is a list: refused before any seed is trained."""
    later = config.get("init_later_epochs")
    if later is None:
        return
    sources = list(config.get("init") or [])
    if "supermask-path" not in sources:
        raise UserError(
            "--init-later-epochs sets supermask-path's epochs after the densest target, but "
            f"--init is {','.join(sources)}: add supermask-path to --init or drop the option"
        )
    sparser = len(set(config.get("densities") or [])) - 1
    if isinstance(later, list) and len(later) != sparser:
        raise UserError(
            f"--init-later-epochs gives {len(later)} epoch counts for {sparser} target(s) after "
            "the densest: give one number for all, or one per sparser target"
        )


def check_branch_epochs(config: Mapping[str, Any]) -> None:
    """supermask-path's ``branch_epochs`` option, when a list, gives one count per target:
    refused before any seed is trained."""
    branch = dict(config.get("init_options") or {}).get("branch_epochs")
    targets = len(set(config.get("densities") or []))
    if isinstance(branch, (list, tuple)) and len(branch) != targets:
        raise UserError(
            f"--init-option branch_epochs gives {len(branch)} epoch counts for {targets} "
            "target(s): give one number for all, or one per target, densest first (0 for none)"
        )


def check_init_options(config: Mapping[str, Any]) -> None:
    """``init_options`` taken by a method named in ``init``, with values it accepts: refused
    before any seed is trained."""
    options = dict(config.get("init_options") or {})
    if not options:
        return
    from masksearch.methods import METHODS, make_method
    from masksearch.warmstart import check_options, options_for

    sources = list(config.get("init") or [])
    try:
        check_options(sources, options)
        for name in sources:
            if name in METHODS and name != "magnitude":
                make_method(name, **options_for(METHODS[name], options))
    except (ValueError, TypeError) as error:
        raise UserError(f"--init-option: {error}") from None


def build_local_search(config: Mapping[str, Any], problem: Any) -> Any:
    """The local search ``config`` names (None for none); refuses an unfit encoding."""
    if local_search_choice(config, problem) == "none":
        return None
    from masksearch.local_search import GradientSwaps

    if problem.encoding.name != "weights":
        raise UserError(
            f"--local-search gradient-swaps moves single weights and needs --encoding weights; "
            f"this run uses {problem.encoding.name!r}"
        )
    return GradientSwaps()


def parallel_evaluator(problem: Any, config: Mapping[str, Any]) -> None:
    """Wrap the problem's evaluator for ``workers`` (joblib) or ``scheduler`` (Dask)."""
    if not config.get("workers") and not config.get("scheduler"):
        return
    from masksearch import evaluators

    if config.get("workers"):
        problem.evaluator = evaluators.JoblibEvaluator(problem.evaluator, n_jobs=config["workers"])
    else:
        problem.evaluator = evaluators.DaskEvaluator(
            problem.evaluator, scheduler=config["scheduler"]
        )


# settings newer than some checkpoints: at these defaults they are left out of the
# fingerprint, so a checkpoint written before they existed still resumes
_LATER_DEFAULTS: dict[str, Any] = {
    "fitness_split": "val",
    "train_samples": None,
    "max_density": None,
    "label_smoothing": 0.0,
}


def fingerprint(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a checkpoint must share with the run that resumes it."""
    return {
        f"config.{k}": json.dumps(config.get(k), sort_keys=True)
        for k in FINGERPRINT_KEYS
        if not (k in _LATER_DEFAULTS and config.get(k) in (None, _LATER_DEFAULTS[k]))
    }


@dataclass
class Run:
    """A search ready to start: the built objects and the settings that made them."""

    settings: dict[str, Any]
    problem: Any
    solver: Any
    local_search: Any | None

    def warm_start(self) -> Any:
        """The initial masks the settings' ``init`` names (trains supermask masks if asked)."""
        return build_warm_start(self.settings, self.problem)

    def search(self, *, initial: Any = None, **options: Any) -> Any:
        """:func:`masksearch.search` with these settings; ``options`` go to it (``callbacks``,
        ``checkpoint``, ``resume``, ``out``…). Without ``initial``, makes the warm start first,
        unless the search resumes from a checkpoint (which holds its population)."""
        from pathlib import Path

        from masksearch.rundir import RunDir
        from masksearch.search import search

        out = options.get("out")
        checkpoint = options.get("checkpoint")
        if checkpoint is None and out is not None:
            checkpoint = RunDir(out).checkpoint
        resuming = bool(options.get("resume")) and checkpoint is not None
        resuming = resuming and Path(checkpoint).exists()
        if out is not None and not options.get("resume") and RunDir(out).holds_run():
            # before the warm start, which may train for minutes
            raise FileExistsError(
                f"{RunDir(out).path} already holds a run: continue it with resume=True, or "
                "give another out"
            )
        if initial is None and not resuming:
            initial = self.warm_start()
        options.setdefault("budget", self.settings.get("budget"))
        options.setdefault("time_limit", self.settings.get("time"))
        return search(
            self.problem,
            self.solver,
            seed=self.settings["seed"],
            fingerprint=fingerprint(self.settings),
            local_search=self.local_search,
            initial=initial,
            settings=self.settings,
            **options,
        )


def build_run(settings: Mapping[str, Any], *, note: Note | None = None) -> Run:
    """Build everything ``settings`` describe; a wrong setting fails before any work is done
    (apart from training a catalogued problem's dense model on its first use)."""
    config = complete_settings(settings)
    problem = build_problem(config, note=note)
    config = resolved_settings(config, problem)
    check_later_epochs(config)
    check_branch_epochs(config)
    check_init_options(config)
    solver = build_solver(config)
    local_search = build_local_search(config, problem)
    parallel_evaluator(problem, config)
    return Run(config, problem, solver, local_search)
