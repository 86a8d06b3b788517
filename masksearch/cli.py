"""The ``masksearch`` command: list problems, run a search, report on it, export a pruned model.

.. code-block:: text

    masksearch problems [--data-root DIR] [--json]
    masksearch run [CONFIG.toml] [--problem NAME] [--solver NAME] [--encoding NAME]
                   [--budget EVALS] [--time SECONDS] [--seed S] [--out DIR] [--device DEV]
                   [--workers N | --scheduler ADDRESS] [--pop-size N] [--objectives a,b]
                   [--densities d1,d2] [--val-samples N] [--data-root DIR] [--evaluator KIND]
                   [--local-search none|gradient-swaps]
                   [--solver-option KEY=VALUE ...] [--encoding-option KEY=VALUE ...]
                   [--resume [DIR]] [--overwrite] [--quiet | --json]
    masksearch report DIR [--data-root DIR] [--device DEV]
    masksearch export DIR (--max-density D | --member I) [--finetune EPOCHS] --out model.pt

Every user error (a bad option or config value, an unknown problem, a missing dataset, a damaged
or foreign checkpoint) ends with one line ``masksearch: error: ...`` on stderr and exit code 2;
set ``MASKSEARCH_DEBUG=1`` to see the traceback instead. An interrupted run (Ctrl-C) writes its
results and exits with 130.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import inspect
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["main", "build_parser", "resolve_run_config"]

# Evaluations that keep the README's main job (`masksearch run`) within ~2-3 minutes on two
# CPU cores; other problems get DEFAULT_BUDGET.
DEFAULT_BUDGETS = {"digits_mlp": 3000, "lenet300_fashion": 3000}
DEFAULT_BUDGET = 2000
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Settings that define *which* search a run directory holds: resuming may not change them.
# (budget, time, device, workers, scheduler and the output mode may change between sessions.)
FINGERPRINT_KEYS = (
    "problem",
    "solver",
    "encoding",
    "objectives",
    "densities",
    "val_samples",
    "pop_size",
    "seed",
    "solver_options",
    "encoding_options",
    "local_search",
)

# run settings: name -> (help text, metavar); the same names are the TOML config keys
RUN_FIELDS: dict[str, tuple[str, str | None]] = {
    "problem": (
        "catalogued problem to search (see `masksearch problems`); default: lenet300_fashion "
        "when Fashion-MNIST is installed, digits_mlp otherwise",
        "NAME",
    ),
    "solver": (
        "search algorithm: nsga2 (default), ga, nsga3, smsemoa, moead, deap-nsga2, "
        "deap-ga, random, evopress",
        "NAME",
    ),
    "encoding": (
        "genome encoding: weights (one bit per weight), pool (fixed-cardinality pool "
        "around the magnitude mask), levels (per-layer density levels), channels; "
        "default: the problem's",
        "NAME",
    ),
    "budget": (
        "stop after this many evaluations (checked between generations, so the last "
        "one may overshoot by less than a population); default: "
        f"{DEFAULT_BUDGET} ({', '.join(f'{k}: {v}' for k, v in DEFAULT_BUDGETS.items())}) "
        "unless --time is given",
        "EVALS",
    ),
    "time": (
        "stop after this many seconds of search (with --budget: whichever comes first); a "
        "resumed run counts the time of its earlier sessions",
        "SECONDS",
    ),
    "seed": ("random seed; the same seed gives the same front on the CPU (default 0)", "S"),
    "out": (
        "run directory for config, checkpoint, log, front, masks and report "
        "(default runs/PROBLEM-SOLVER-sSEED)",
        "DIR",
    ),
    "device": (
        "where masks are evaluated: auto (a GPU when visible), cpu, cuda, cuda:N; "
        "default: the problem's (cpu for the small problems)",
        "DEV",
    ),
    "workers": ("evaluate each population in N local processes (joblib)", "N"),
    "scheduler": ("evaluate populations on a Dask cluster, e.g. tcp://host:8786", "ADDRESS"),
    "pop_size": ("population size of the solver (default: the solver's, 100 for nsga2)", "N"),
    "objectives": (
        "comma-separated objectives to minimise, from error, loss, density, flops "
        "(default error,density)",
        "LIST",
    ),
    "densities": (
        "comma-separated target densities: magnitude masks there seed the search and "
        "the report compares at them (default: the problem's)",
        "LIST",
    ),
    "val_samples": ("validation samples each mask is judged on (default: the problem's)", "N"),
    "data_root": ("where datasets live (else $MASKSEARCH_DATA and the system locations)", "DIR"),
    "evaluator": ("evaluator kind: auto (default), plain, batched, incremental, prefix", "KIND"),
    "local_search": (
        "local improvement after every generation: gradient-swaps (swaps of single weights "
        "guided by the loss gradient, kept only when exact fitness improves; its evaluations "
        "count against the budget), none, or auto (default: gradient-swaps on the weights "
        "encoding with an error or loss objective first, none otherwise)",
        "KIND",
    ),
    "init": (
        "comma-separated warm starts the search begins from: magnitude (free), supermask "
        "(gradient mask learning, --init-epochs per target density), wanda, snip, obd, or a "
        "run directory (its front); default: magnitude,supermask on the weights encoding when "
        "the problem has training data, magnitude otherwise. Their cost is reported with the "
        "search's",
        "LIST",
    ),
    "init_epochs": ("epochs of supermask training per target density (default 1)", "N"),
}
# settings a resumed run may not change although its checkpoint does not record them
RESUME_FIXED_KEYS = (*FINGERPRINT_KEYS, "init", "init_epochs")
LOCAL_SEARCHES = ("auto", "none", "gradient-swaps")
TABLE_FIELDS = ("solver_options", "encoding_options")
CONFIG_KEYS = (*RUN_FIELDS, *TABLE_FIELDS)


class UserError(Exception):
    """A mistake of the user's; reported as one line, exit code 2."""


class _Formatter(argparse.HelpFormatter):
    """Wraps each paragraph of a description; keeps indented lines (examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        blocks = []
        for block in text.split("\n\n"):
            if block.startswith("  ") or "\n  " in block:
                blocks.append(textwrap.indent(block, indent))
            else:
                blocks.append(
                    textwrap.fill(
                        " ".join(block.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                    )
                )
        return "\n\n".join(blocks)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one line (`masksearch: error: ...`)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"masksearch: error: {message} (see `{self.prog} --help`)\n")


# -- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``masksearch`` argument parser with its four commands."""
    formatter = _Formatter
    parser = _Parser(
        prog="masksearch",
        description="Prune neural networks by searching for weight masks with metaheuristics.",
        epilog="Run `masksearch COMMAND --help` for each command's options. Errors are one "
        "line (exit status 2); set MASKSEARCH_DEBUG=1 to see the traceback.\n\n"
        "quick start:\n  masksearch run --out runs/quickstart",
        formatter_class=formatter,
    )
    from masksearch import __version__

    parser.add_argument("--version", action="version", version=f"masksearch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    listing = commands.add_parser(
        "problems",
        formatter_class=formatter,
        help="list the catalogued problems and whether their data is available",
        description="List the catalogued pruning problems, their model and dataset, and "
        "whether the dataset is available on this machine.",
    )
    listing.add_argument("--data-root", metavar="DIR", help=RUN_FIELDS["data_root"][0])
    listing.add_argument("--json", action="store_true", help="print one JSON object per problem")

    run = commands.add_parser(
        "run",
        help="search for masks (writes a run directory)",
        description="Search for pruning masks and write a run directory (config.json, "
        "environment.json, checkpoint.pkl, log.jsonl, history.json, front.json, masks.npz, "
        "report.md with front.png and hypervolume.png).\n\n"
        "Settings come from, in increasing priority: the defaults, the run directory's "
        "config.json (with --resume), the TOML file CONFIG, and the options below. The TOML "
        "keys are the option names with '_' for '-' (problem, solver, budget, pop_size, ...), "
        "plus tables [solver_options] and [encoding_options].\n\n"
        "Ctrl-C stops after the current generation's checkpoint and still writes the results; "
        "`--resume` continues to the same front an uninterrupted run reaches.",
        epilog="examples:\n"
        "  masksearch run --out runs/quickstart\n"
        "  masksearch run --problem digits_mlp --solver ga --budget 2000 --seed 1 --out runs/ga\n"
        "  masksearch run search.toml --time 600 --workers 2\n"
        "  masksearch run --resume runs/quickstart --budget 6000",
        formatter_class=formatter,
    )
    run.add_argument(
        "config", nargs="?", metavar="CONFIG", help="TOML file with run settings (optional)"
    )
    for name, (text, metavar) in RUN_FIELDS.items():
        if name in ("workers", "scheduler"):
            continue
        run.add_argument("--" + name.replace("_", "-"), dest=name, metavar=metavar, help=text)
    parallel = run.add_mutually_exclusive_group()
    for name in ("workers", "scheduler"):
        text, metavar = RUN_FIELDS[name]
        parallel.add_argument("--" + name, dest=name, metavar=metavar, help=text)
    run.add_argument(
        "--solver-option",
        dest="solver_options",
        action="append",
        metavar="KEY=VALUE",
        help="extra solver option (repeatable), e.g. --solver-option n_offsprings=50",
    )
    run.add_argument(
        "--encoding-option",
        dest="encoding_options",
        action="append",
        metavar="KEY=VALUE",
        help="extra encoding option (repeatable), e.g. --encoding-option density=0.05",
    )
    run.add_argument(
        "--resume",
        nargs="?",
        const=True,
        metavar="DIR",
        help="continue the run in DIR (or in --out) from its last checkpoint, with the settings "
        "of DIR/config.json; options that change which search it is (problem, solver, "
        "encoding, objectives, seed, ...) are refused, budget/time/device/workers may change",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an --out directory that already holds a run (deletes its results)",
    )
    output = run.add_mutually_exclusive_group()
    output.add_argument("--quiet", action="store_true", help="print nothing but errors")
    output.add_argument(
        "--json",
        action="store_true",
        help="print one JSON line per generation and a final summary line on stdout "
        "(no progress bar)",
    )

    report = commands.add_parser(
        "report",
        formatter_class=formatter,
        help="regenerate report.md and the plots of a run directory",
        description="Rebuild report.md, report.json, front.png and hypervolume.png of a run "
        "directory from its saved files (the problem is rebuilt from config.json to score the "
        "magnitude baseline on the same data).",
    )
    report.add_argument("dir", metavar="DIR", help="run directory written by `masksearch run`")
    report.add_argument("--data-root", metavar="DIR", help="override the run's data root")
    report.add_argument("--device", metavar="DEV", help="override the run's device")

    export = commands.add_parser(
        "export",
        help="export a front member as a torch.nn.utils.prune model",
        description="Pick a mask from a run's front, optionally fine-tune the kept weights, and "
        "save the model's state_dict in torch.nn.utils.prune form (<name>_orig + <name>_mask). "
        "Load it with: model = <same architecture>; Mask.ones(model).to_prune(model); "
        "model.load_state_dict(torch.load(PATH)). Prints accuracy and density on the test split.",
        formatter_class=formatter,
        epilog="example:\n"
        "  masksearch export runs/quickstart --max-density 0.05 --finetune 2 --out model.pt",
    )
    export.add_argument("dir", metavar="DIR", help="run directory written by `masksearch run`")
    choice = export.add_mutually_exclusive_group(required=True)
    choice.add_argument(
        "--max-density",
        metavar="D",
        help="take the most accurate (lowest validation error) member with density <= D",
    )
    choice.add_argument("--member", metavar="I", help="take front member I (`index` in front.json)")
    export.add_argument("--out", required=True, metavar="PATH", help="file to write (model.pt)")
    export.add_argument(
        "--finetune",
        metavar="EPOCHS",
        default="0",
        help="fine-tune the kept weights for EPOCHS epochs on the train split (default 0)",
    )
    export.add_argument(
        "--lr", metavar="LR", default="0.01", help="fine-tuning learning rate (default 0.01)"
    )
    export.add_argument("--seed", metavar="S", default="0", help="fine-tuning seed (default 0)")
    export.add_argument("--data-root", metavar="DIR", help="override the run's data root")
    export.add_argument("--device", metavar="DEV", help="override the run's device")
    export.add_argument("--json", action="store_true", help="print the result as one JSON line")
    return parser


# -- config ------------------------------------------------------------------------------------


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _integer(key: str, value: Any, where: str, minimum: int) -> int:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{where}: {key} must be a whole number >= {minimum}, got {value!r}")
    return value


def _number(key: str, value: Any, where: str) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UserError(f"{where}: {key} must be a positive number, got {value!r}")
    return float(value)


def _text(key: str, value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: {key} must be a non-empty string, got {value!r}")
    return value.strip()


def _listing(key: str, value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [part for part in value.replace(" ", "").split(",") if part]
    if not isinstance(value, (list, tuple)) or not value:
        raise UserError(f"{where}: {key} must be a non-empty list (a,b,c), got {value!r}")
    return [str(part).strip() for part in value]


def _options(key: str, value: Any, where: str) -> dict[str, Any]:
    """A TOML table, or KEY=VALUE strings from the command line (values parsed as TOML)."""
    if isinstance(value, dict):
        return dict(value)
    if not isinstance(value, list):
        raise UserError(f"{where}: {key} must be a table of options, got {value!r}")
    import tomllib

    options: dict[str, Any] = {}
    for item in value:
        name, sep, text = str(item).partition("=")
        if not sep or not name.strip():
            raise UserError(f"{where}: {key} expects KEY=VALUE, got {item!r}")
        try:
            options[name.strip()] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            options[name.strip()] = text.strip()  # a bare word: a string
    return options


def validate_values(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Check and normalise run settings from one source (a file, the flags, config.json)."""
    unknown = sorted(set(values) - set(CONFIG_KEYS))
    if unknown:
        raise UserError(
            f"{where}: unknown setting {unknown[0]!r}; the settings are {', '.join(CONFIG_KEYS)}"
        )
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        label = _flag(key) if where == "command line" else key
        if key in ("budget", "workers", "val_samples", "init_epochs"):
            checked[key] = _integer(label, value, where, 1)
        elif key == "pop_size":
            checked[key] = _integer(label, value, where, 2)
        elif key == "seed":
            checked[key] = _integer(label, value, where, 0)
        elif key == "time":
            checked[key] = _number(label, value, where)
        elif key in ("objectives", "init"):
            checked[key] = _listing(label, value, where)
        elif key == "densities":
            parts = _listing(label, value, where)
            try:
                densities = [float(part) for part in parts]
            except ValueError:
                raise UserError(
                    f"{where}: {label} must be numbers in (0, 1], got {value!r}"
                ) from None
            bad = [d for d in densities if not 0.0 < d <= 1.0]
            if bad:
                raise UserError(
                    f"{where}: {label} must be in (0, 1] (fractions of weights kept), got {bad[0]}"
                )
            checked[key] = densities
        elif key in TABLE_FIELDS:
            checked[key] = _options(label, value, where)
        else:
            checked[key] = _text(label, value, where)
    return checked


def load_toml(path: str) -> dict[str, Any]:
    """The settings of a TOML config file."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the same parser, published as tomli before Python 3.11
        import tomli as tomllib

    file = Path(path)
    if file.is_dir():
        raise UserError(f"config file {path} is a directory; give the path of a TOML file")
    if not file.is_file():
        raise UserError(f"config file {path} does not exist (give a TOML file, or only options)")
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"config file {path} is not valid TOML: {error}") from None


def resolve_run_config(args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    """Merge defaults, config.json (resuming), the TOML file and the flags; check names.

    Returns the configuration and whether this run resumes.
    """
    from masksearch.catalogue import CATALOGUE, default_problem_name

    flags = validate_values({key: getattr(args, key, None) for key in CONFIG_KEYS}, "command line")
    from_file = validate_values(load_toml(args.config), args.config) if args.config else {}
    stored: dict[str, Any] = {}
    resume = args.resume is not None
    if resume:
        directory = args.resume if isinstance(args.resume, str) else None
        out = flags.get("out") or from_file.get("out")
        if directory is None:
            directory = out
        if directory is None:
            raise UserError("--resume needs the run directory: --resume DIR (or --out DIR)")
        if out is not None and Path(out) != Path(directory):
            raise UserError(f"--resume {directory} and --out {out} name different directories")
        from masksearch.rundir import RunDir

        run = RunDir(directory)
        if not run.config.exists():
            raise UserError(
                f"nothing to resume in {directory}: it has no config.json "
                "(start the run with `masksearch run --out DIR`)"
            )
        stored = validate_values(run.read_json("config"), f"{run.config}")
        stored["out"] = str(directory)

    config = {**stored, **from_file, **flags}
    if resume:
        # run directories older than a setting do not store it: nothing to compare then
        changed = [
            k
            for k in RESUME_FIXED_KEYS
            if k in config and config[k] != stored.get(k) and (k in FINGERPRINT_KEYS or k in stored)
        ]
        if changed:
            details = ", ".join(f"{k} {stored.get(k)!r} -> {config[k]!r}" for k in changed)
            raise UserError(
                f"cannot resume {stored['out']} with different settings ({details}); drop those "
                "options to continue it, or start a new run with another --out"
            )

    if "problem" not in config:
        config["problem"] = default_problem_name(config.get("data_root"))
        if config["problem"] != "lenet300_fashion" and not (args.quiet or args.json):
            print(
                "masksearch: Fashion-MNIST not found, so searching the embedded digits problem; "
                "for the default LeNet-300-100 problem install it (Debian/Ubuntu: apt-get "
                "install dataset-fashion-mnist) or pass --data-root DIR holding torchvision's "
                "FashionMNIST/raw/",
                file=sys.stderr,
            )
    if config["problem"] not in CATALOGUE:
        raise UserError(
            f"no problem named {config['problem']!r}; choose one of {', '.join(CATALOGUE)} "
            "(`masksearch problems` lists them)"
        )
    config.setdefault("solver", "nsga2")
    _check_solver(config["solver"])
    if config.get("local_search", "auto") not in LOCAL_SEARCHES:
        raise UserError(
            f"unknown local search {config['local_search']!r}; choose one of "
            f"{', '.join(LOCAL_SEARCHES)}"
        )
    if "encoding" in config:
        _check_encoding(config["encoding"])
    if config.get("encoding") == "pool":
        # the pool encoding searches one density: by default the first target density
        options = dict(config.get("encoding_options") or {})
        if "density" not in options:
            factory = inspect.signature(CATALOGUE[config["problem"]].factory)
            targets = config.get("densities") or factory.parameters["densities"].default
            options["density"] = float(targets[0])
        config["encoding_options"] = options
    if "budget" not in config and "time" not in config:
        config["budget"] = DEFAULT_BUDGETS.get(config["problem"], DEFAULT_BUDGET)
    config.setdefault("seed", 0)
    config.setdefault("out", f"runs/{config['problem']}-{config['solver']}-s{config['seed']}")
    if "workers" in config and "scheduler" in config:
        raise UserError("give either workers (local processes) or scheduler (Dask), not both")
    if "objectives" in config:
        from masksearch.problem import OBJECTIVES

        unknown = [o for o in config["objectives"] if o not in OBJECTIVES]
        if unknown:
            raise UserError(
                f"unknown objective {unknown[0]!r}; choose from {', '.join(OBJECTIVES)}"
            )
    return config, resume


def _check_solver(name: str) -> None:
    try:
        from masksearch.solvers import SOLVERS
    except ImportError:
        return  # make_solver will say what is wrong
    if name not in SOLVERS:
        raise UserError(f"unknown solver {name!r}; choose one of {', '.join(SOLVERS)}")


def _check_encoding(name: str) -> None:
    try:
        from masksearch import encodings
    except ImportError:
        return
    names = getattr(encodings, "ENCODINGS", None)
    if names is not None and name not in names:
        raise UserError(f"unknown encoding {name!r}; choose one of {', '.join(names)}")


# -- building a run ----------------------------------------------------------------------------


def build_problem(config: dict[str, Any], *, note: Any = None) -> Any:
    """The catalogued problem ``config`` describes (trains its dense model on first use)."""
    from masksearch import catalogue, zoo

    info = catalogue.CATALOGUE[config["problem"]]
    root = config.get("data_root")
    if (
        note is not None
        and info.available(root)
        and not zoo.cache_path(info.model, info.dataset).exists()
    ):
        note(
            f"first use of {info.model} on {info.dataset}: training the dense model once "
            f"(cached in {zoo.cache_dir()})"
        )
    options: dict[str, Any] = {"root": root}
    for key in ("encoding", "objectives", "densities", "val_samples", "device", "evaluator"):
        if key in config:
            options[key] = config[key]
    if config.get("encoding_options"):
        options["encoding_options"] = config["encoding_options"]
    return catalogue.get(config["problem"], **options)


def resolved_config(config: dict[str, Any], problem: Any) -> dict[str, Any]:
    """``config`` with the problem's defaults written in, as stored in config.json."""
    resolved = dict(config)
    resolved["encoding"] = problem.encoding.name
    resolved["objectives"] = list(problem.objectives)
    resolved["densities"] = [float(d) for d in problem.densities]
    resolved["val_samples"] = len(problem.data)
    resolved["device"] = str(problem.device)
    resolved.setdefault("solver_options", {})
    resolved.setdefault("encoding_options", {})
    resolved["local_search"] = local_search_choice(config, problem)
    resolved["init"] = init_choice(config, problem)
    resolved.setdefault("init_epochs", 1)
    return {key: resolved[key] for key in CONFIG_KEYS if key in resolved}


def build_solver(config: dict[str, Any]) -> Any:
    from masksearch.solvers import make_solver

    options = dict(config.get("solver_options") or {})
    if "pop_size" in config:
        options["pop_size"] = config["pop_size"]  # make_solver maps it to mu / lambda_
    return make_solver(config["solver"], **options)


def local_search_choice(config: dict[str, Any], problem: Any) -> str:
    """``config``'s local search with "auto" resolved for ``problem``."""
    choice = config.get("local_search", "auto")
    if choice == "auto":
        fits = problem.encoding.name == "weights" and problem.objectives[0] in ("error", "loss")
        choice = "gradient-swaps" if fits else "none"
    return choice


def init_choice(config: dict[str, Any], problem: Any) -> list[str]:
    """``config``'s warm starts, or the default for ``problem`` (see ``--init``)."""
    if config.get("init"):
        return list(config["init"])
    learns = problem.encoding.name == "weights" and getattr(problem, "train_data", None)
    return ["magnitude", "supermask"] if learns else ["magnitude"]


def build_warm_start(config: dict[str, Any], problem: Any) -> Any:
    """The initial genomes ``config["init"]`` names, made now (supermask trains here)."""
    from masksearch.warmstart import warm_start

    return warm_start(
        problem, config["init"], epochs=config.get("init_epochs", 1), seed=config["seed"]
    )


def build_local_search(config: dict[str, Any], problem: Any) -> Any:
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


def parallel_evaluator(problem: Any, config: dict[str, Any]) -> None:
    """Wrap the problem's evaluator for --workers (joblib) or --scheduler (Dask)."""
    if not config.get("workers") and not config.get("scheduler"):
        return
    from masksearch import evaluators

    if config.get("workers"):
        wrapper = getattr(evaluators, "JoblibEvaluator", None)
        if wrapper is None:
            raise UserError("--workers needs masksearch.evaluators.JoblibEvaluator, not installed")
        problem.evaluator = wrapper(problem.evaluator, n_jobs=config["workers"])
    else:
        wrapper = getattr(evaluators, "DaskEvaluator", None)
        if wrapper is None:
            raise UserError("--scheduler needs masksearch.evaluators.DaskEvaluator, not installed")
        problem.evaluator = wrapper(problem.evaluator, scheduler=config["scheduler"])


def fingerprint(config: dict[str, Any]) -> dict[str, Any]:
    """The settings a checkpoint must share with the run that resumes it."""
    return {f"config.{k}": json.dumps(config.get(k), sort_keys=True) for k in FINGERPRINT_KEYS}


# -- commands ----------------------------------------------------------------------------------


def cmd_problems(args: argparse.Namespace) -> int:
    from masksearch.catalogue import default_problem_name, list_problems

    default = default_problem_name(args.data_root)
    rows = []
    for info in list_problems():
        rows.append(
            {
                "name": info.name,
                "model": info.model,
                "dataset": info.dataset,
                "available": info.available(args.data_root),
                "default": info.name == default,
                "description": " ".join(info.description.split()),
            }
        )
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    width = max(len(r["name"]) for r in rows)
    print(f"{'problem':<{width}}  {'data':<9}  description")
    for row in rows:
        status = "available" if row["available"] else "missing"
        mark = " (default)" if row["default"] else ""
        print(f"{row['name']:<{width}}  {status:<9}  {row['description']}{mark}")
    missing = [r for r in rows if not r["available"]]
    if missing:
        print(
            "\nmissing data: set MASKSEARCH_DATA=DIR or pass --data-root DIR "
            "(Fashion-MNIST on Debian/Ubuntu: apt-get install dataset-fashion-mnist)"
        )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from masksearch.rundir import RunDir

    config, resume = resolve_run_config(args)
    run = RunDir(config["out"])
    run.check_writable()
    with run.lock():
        # temporary files of writes a kill interrupted; no one else writes here while we hold
        # the lock
        for leftover in run.path.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        return _run_locked(args, config, resume, run)


def _run_locked(args: argparse.Namespace, config: dict[str, Any], resume: bool, run: Any) -> int:
    from masksearch import progress as progress_module
    from masksearch.report import save_results, write_report
    from masksearch.rundir import RunDir, environment_info
    from masksearch.search import search

    quiet, as_json = args.quiet, args.json

    def note(message: str) -> None:
        if not quiet and not as_json:
            print(f"masksearch: {message}", file=sys.stderr, flush=True)

    if not resume and run.holds_run() and not args.overwrite:
        raise UserError(
            f"{run.path} already holds a run; continue it with `masksearch run --resume "
            f"{run.path}`, start afresh with --overwrite, or choose another --out"
        )
    if resume and not run.checkpoint.exists() and run.front.exists():
        raise UserError(
            f"cannot resume {run.path}: its checkpoint ({run.checkpoint.name}) is gone, and "
            "resuming would restart from zero and replace its results. Restore the file, or "
            f"start afresh with `masksearch run --out {run.path} --overwrite`"
        )

    note(f"preparing problem {config['problem']}")
    problem = build_problem(config, note=note)
    config = resolved_config(config, problem)
    solver = build_solver(config)
    local_search = build_local_search(config, problem)
    parallel_evaluator(problem, config)

    if not resume and run.holds_run():
        # only now that every setting has been checked: a typo must not cost the old results
        for name in RunDir.FILES:
            getattr(run, name).unlink(missing_ok=True)
    run.write_json("config", config)
    from masksearch.training import resolve_device

    device = str(resolve_device(problem.device))
    environment = environment_info(device=device, seed=config["seed"])
    if resume and run.environment.exists():
        previous = run.read_json("environment")
        previous.setdefault("resumed", []).append(environment)
        environment = previous
    run.write_json("environment", environment)
    initial = None
    if not (resume and run.checkpoint.exists()):
        if resume:
            note(f"{run.checkpoint} does not exist yet (no generation finished): starting afresh")
        note(f"warm start: {', '.join(config['init'])}")
        initial = build_warm_start(config, problem)
        note(
            f"warm start: {len(initial)} masks in {initial.seconds:.1f} s"
            + (f" ({initial.epochs:g} epochs of training)" if initial.epochs else "")
        )

    densities = problem.densities
    slack = 0.5 / problem.layout.n_total  # a target density is met to the nearest weight
    budget, time_limit = config.get("budget"), config.get("time")
    display: Any = None
    if as_json:
        display = progress_module.JsonLines(densities=densities, slack=slack)
    elif not quiet:
        display = progress_module.ProgressBar(
            budget=budget, time_limit=time_limit, densities=densities, slack=slack
        )
    note(
        f"{'resuming' if resume else 'searching'} {problem.name}: {config['solver']} on "
        f"{problem.encoding.name} ({problem.n_genes} genes), "
        + (f"budget {budget} evaluations" if budget else "")
        + (", " if budget and time_limit else "")
        + (f"time limit {time_limit:g} s" if time_limit else "")
        + f", seed {config['seed']} -> {run.path}"
    )
    callbacks: list[Any] = [progress_module.LogFile(run.log, densities=densities, slack=slack)]
    if display is not None:
        callbacks.append(display)
    try:
        with progress_module.StopOnSignal() as stopper:
            callbacks.append(stopper)  # last: it stops the search after the checkpoint
            result = search(
                problem,
                solver,
                budget=budget,
                time_limit=time_limit,
                seed=config["seed"],
                callbacks=callbacks,
                checkpoint=run.checkpoint,
                resume=resume,
                fingerprint=fingerprint(config),
                local_search=local_search,
                initial=initial,
            )
    finally:
        if isinstance(display, progress_module.ProgressBar):
            display.close()

    note("writing results and report")
    save_results(run, result, problem)
    write_report(run, problem)
    report = run.read_json("report_json")
    interrupted = result.stopped == "interrupted"
    if as_json:
        print(
            json.dumps(
                {
                    "event": "done",
                    "out": str(run.path),
                    "n_evals": result.n_evals,
                    "wall_time": result.wall_time,
                    "stopped": result.stopped,
                    "front_size": len(result.front),
                    "at_targets": report["at_targets"],
                }
            ),
            flush=True,
        )
    elif not quiet:
        print(_run_summary(run, result, report))
    return EXIT_INTERRUPTED if interrupted else 0


def _run_summary(run: Any, result: Any, report: dict[str, Any]) -> str:
    from masksearch.progress import format_duration

    lines = [
        f"{result.n_evals} evaluations in {format_duration(result.wall_time)} "
        f"(stopped: {result.stopped}); {len(result.front)} masks on the Pareto front"
    ]
    warm = result.warm_start
    if warm:
        lines[0] += (
            f"; warm start ({', '.join(warm['sources'])}) took "
            f"{format_duration(warm['seconds'])} before it"
        )
    for row in report["at_targets"]:
        member, magnitude = row["member"], row["magnitude"]
        if member is None:
            lines.append(f"  density <= {row['target']:.4g}: no mask on the front")
            continue
        text = (
            f"  density <= {row['target']:.4g}: val accuracy {member['accuracy']:.2%} "
            f"(magnitude {magnitude['accuracy']:.2%})"
        )
        if "test_accuracy" in member and magnitude and "test_accuracy" in magnitude:
            text += (
                f", test {member['test_accuracy']:.2%} (magnitude {magnitude['test_accuracy']:.2%})"
            )
        lines.append(text)
    lines.append(f"report: {run.report} (plots front.png, hypervolume.png)")
    if result.stopped == "interrupted":
        lines.append(f"interrupted: continue with `masksearch run --resume {run.path}`")
    elif report["at_targets"]:
        target = report["at_targets"][0]["target"]
        lines.append(
            f"export: masksearch export {run.path} --max-density {target:g} --finetune 2 "
            "--out model.pt"
        )
    return "\n".join(lines)


def _load_run(directory: str, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from masksearch.rundir import RunDir

    run = RunDir(directory)
    if not run.path.is_dir():
        raise UserError(f"{directory} is not a directory; give a run directory of `masksearch run`")
    config = validate_values(run.read_json("config"), str(run.config))
    if getattr(args, "data_root", None):
        config["data_root"] = args.data_root
    if getattr(args, "device", None):
        config["device"] = args.device
    return run, config


def _require_results(run: Any) -> None:
    if not run.front.exists() and (run.checkpoint.exists() or run.config.exists()):
        raise UserError(
            f"{run.path} holds a run but no results yet (it was stopped before it wrote "
            f"them); finish it with `masksearch run --resume {run.path}`"
        )


def cmd_report(args: argparse.Namespace) -> int:
    from masksearch.report import write_report

    run, config = _load_run(args.dir, args)
    _require_results(run)
    problem = build_problem(config)
    with run.lock():
        path = write_report(run, problem)
    print(
        f"wrote {path}, {run.front_plot.name}, {run.hypervolume_plot.name}, {run.report_json.name}"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from masksearch import catalogue
    from masksearch import data as datasets
    from masksearch.front import best_within
    from masksearch.io import atomic_torch_save
    from masksearch.mask import Mask
    from masksearch.report import density_slack
    from masksearch.training import evaluate, finetune

    run, config = _load_run(args.dir, args)
    _require_results(run)
    out = Path(args.out)
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file path such as {out / 'model.pt'}")
    results = run.read_results()
    members = results.members
    if not members:
        raise UserError(f"the front of {run.path} is empty: the run found no feasible mask")
    if args.member is not None:
        position = _integer("--member", args.member, "command line", 0)
        matches = [m for m in members if m["index"] == position]
        if not matches:
            raise UserError(f"the front has members 0..{len(members) - 1}; no member {position}")
        member = matches[0]
    else:
        max_density = _number("--max-density", args.max_density, "command line")
        if not 0.0 < max_density <= 1.0:
            raise UserError(
                f"--max-density must be in (0, 1] (the fraction of weights kept), got "
                f"{max_density:g}; for a sparsity of s use 1 - s"
            )
        slack = density_slack(results.document)
        position = best_within(
            [m["density"] for m in members], [m["error"] for m in members], max_density, slack
        )
        if position is None:
            sparsest = min(m["density"] for m in members)
            raise UserError(
                f"no mask on the front has density <= {max_density:g}; the sparsest has "
                f"{sparsest:.4f}. Raise --max-density or search with that target density "
                "(--densities)"
            )
        member = members[position]
    epochs = _integer("--finetune", args.finetune, "command line", 0)
    lr = _number("--lr", args.lr, "command line")
    seed = _integer("--seed", args.seed, "command line", 0)

    problem = build_problem(config)
    mask = Mask.from_flat(results.layout, results.masks[int(member["index"])])
    model = copy.deepcopy(problem.model)
    mask.validate(model)
    test = problem.test_data if problem.test_data is not None else problem.data
    if epochs:
        dataset = datasets.load(
            catalogue.CATALOGUE[config["problem"]].dataset, root=config.get("data_root")
        )
        if not args.json:
            print(f"fine-tuning member #{member['index']} for {epochs} epoch(s)", file=sys.stderr)
        finetune(model, mask, dataset.train, epochs=epochs, lr=lr, seed=seed, device=problem.device)
    model = model.to("cpu").eval()
    mask.to_prune(model)
    scores = evaluate(model, test)
    kept = sum(int(b.sum()) for n, b in model.named_buffers() if n.endswith("_mask"))
    total = sum(b.numel() for n, b in model.named_buffers() if n.endswith("_mask"))
    atomic_torch_save(model.state_dict(), args.out)
    summary = {
        "out": str(args.out),
        "member": member["index"],
        "density": kept / total,
        "search_val_accuracy": member["accuracy"],
        "finetune_epochs": epochs,
        "test_accuracy": scores.accuracy,
        "test_loss": scores.loss,
        "test_samples": scores.n,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"exported member #{member['index']} to {args.out}: density {kept / total:.4f} "
            f"({kept} of {total} weights), test accuracy {scores.accuracy:.2%} on {scores.n} "
            f"samples (search: val accuracy {member['accuracy']:.2%}"
            + (f", then {epochs} epoch(s) of fine-tuning)" if epochs else ", no fine-tuning)")
        )
        print(
            "load it: model = <same architecture>; masksearch.Mask.ones(model).to_prune(model); "
            f"model.load_state_dict(torch.load({str(args.out)!r}))"
        )
    return 0


# -- entry point -------------------------------------------------------------------------------


def _user_error_types() -> tuple[type[BaseException], ...]:
    from masksearch.rundir import RunLockedError
    from masksearch.search import CheckpointError

    return (UserError, ValueError, TypeError, OSError, CheckpointError, RunLockedError)


def one_line(error: BaseException) -> str:
    """An exception's message on one line (multi-line messages are joined)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    if isinstance(error, KeyError) or not text:
        text = f"{type(error).__name__}: {text or repr(error)}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``masksearch`` command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {
        "problems": cmd_problems,
        "run": cmd_run,
        "report": cmd_report,
        "export": cmd_export,
    }
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        print("\nmasksearch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if os.environ.get("MASKSEARCH_DEBUG") or not isinstance(error, _user_error_types()):
            raise
        message = one_line(error)
        if type(error).__name__ == "DatasetNotFoundError":
            message += " On the command line: --data-root DIR or MASKSEARCH_DATA=DIR."
        print(f"masksearch: error: {message}", file=sys.stderr)
        return EXIT_USAGE


def run_main() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    run_main()
