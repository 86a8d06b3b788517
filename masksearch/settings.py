"""Run settings: their names, help texts, defaults and checks, in one table.

The same names are the CLI's options (``--pop-size`` for ``pop_size``), the keys of a TOML
config file and of a run directory's ``config.json``, and what :func:`masksearch.builder.build_run`
takes from Python. :func:`validate_values` checks and normalises one source of them.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "CONFIG_KEYS",
    "DEFAULT_BUDGET",
    "DEFAULT_BUDGETS",
    "FINGERPRINT_KEYS",
    "LOCAL_SEARCHES",
    "RESUME_FIXED_KEYS",
    "RUN_FIELDS",
    "UserError",
    "load_toml",
    "validate_values",
]


class UserError(ValueError):
    """A mistake in the settings or the command line; the CLI reports it as one line, exit 2."""


# Evaluations that keep the README's main job (`masksearch run`) within ~2-3 minutes on two
# CPU cores; other problems get DEFAULT_BUDGET.
DEFAULT_BUDGETS = {"digits_mlp": 3000, "lenet300_fashion": 3000}
DEFAULT_BUDGET = 2000

# Settings that define *which* search a run directory holds: resuming may not change them.
# (budget, time, device, workers, scheduler and the output mode may change between sessions.)
FINGERPRINT_KEYS = (
    "problem",
    "solver",
    "encoding",
    "objectives",
    "densities",
    "max_density",
    "val_samples",
    "fitness_split",
    "train_samples",
    "label_smoothing",
    "pop_size",
    "seed",
    "solver_options",
    "encoding_options",
    "local_search",
)

# run settings: name -> (help text, metavar); the same names are the TOML config keys
RUN_FIELDS: dict[str, tuple[str, str | None]] = {
    "problem": (
        "problem to search: a catalogued name (see `masksearch problems`), a package's entry "
        "point, or pkg.module:function for your own function returning a PruningProblem "
        "(the current directory is searched for the module); default: lenet300_fashion when "
        "Fashion-MNIST is installed, digits_mlp otherwise",
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
    "max_density": (
        "masks keeping more than this fraction of the weights are infeasible, so the search "
        "spends its evaluations at the target densities, on sparser and so cheaper forward "
        "passes (default: none, the whole front)",
        "D",
    ),
    "val_samples": ("validation samples each mask is judged on (default: the problem's)", "N"),
    "fitness_split": (
        "the split masks are judged on: val (validation images, default) or train (training "
        "images: each evaluation costs more, but the search fits them far less than a few "
        "thousand validation images, and the whole validation split stays unseen)",
        "SPLIT",
    ),
    "train_samples": (
        "with --fitness-split train: judge masks on the first N training images (default: all)",
        "N",
    ),
    "label_smoothing": (
        "smooth the labels of the loss the search minimises and the held-out pick compares: "
        "(1 - E) x cross-entropy + E x the mean cross-entropy over all classes (default 0: "
        "plain). Give seeds learned with --init-option label_smoothing=E the same E, so the "
        "search and its seeds lower one loss",
        "E",
    ),
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
        "(gradient mask learning, --init-epochs per target density), supermask-path (one run "
        "along the targets, densest first: --init-epochs at the densest, one more at each "
        "sparser one), wanda, snip, obd, or a "
        "run directory (its front); default: magnitude,supermask-path on the weights encoding when "
        "the problem has training data, magnitude otherwise. Their cost is reported with the "
        "search's",
        "LIST",
    ),
    "init_epochs": (
        "epochs of supermask training per target density (supermask-path: at the densest "
        "target; default 1)",
        "N",
    ),
    "init_later_epochs": (
        "supermask-path: epochs at each target after the densest, one number for all or one "
        "per target, densest first (e.g. 2,1 for targets 0.05,0.02,0.01); default 1",
        "E[,E...]",
    ),
    "repair_steps": (
        "score every mask after N SGD steps on the weights it keeps (fine-tuning's recipe, "
        "the same training batches for every mask), so the front is chosen for what "
        "fine-tuning makes of it; each evaluation then costs about N training steps more "
        "(default 0: masks on the frozen dense weights)",
        "N",
    ),
    "recalibrate_bn": (
        "re-estimate batch-norm statistics on N training batches for every mask before "
        "scoring it (adaptive batch norm): what channel pruning needs to judge a candidate "
        "as fine-tuning will see it; default 0",
        "N",
    ),
}
# settings a resumed run may not change although its checkpoint does not record them
RESUME_FIXED_KEYS = (
    *FINGERPRINT_KEYS,
    "init",
    "init_epochs",
    "init_later_epochs",
    "init_options",
    "repair_steps",
    "recalibrate_bn",
)
LOCAL_SEARCHES = ("auto", "none", "gradient-swaps")
TABLE_FIELDS = ("solver_options", "encoding_options", "init_options")
CONFIG_KEYS = (*RUN_FIELDS, *TABLE_FIELDS)


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def check_integer(key: str, value: Any, where: str, minimum: int) -> int:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{where}: {key} must be a whole number >= {minimum}, got {value!r}")
    return value


def check_number(key: str, value: Any, where: str) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UserError(f"{where}: {key} must be a positive number, got {value!r}")
    return float(value)


def _smoothing(key: str, value: Any, where: str) -> float:
    """A label smoothing, in [0, 1)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise UserError(
            f"{where}: {key} must be a number in [0, 1) (0: the plain cross-entropy; 0.1 is "
            f"usual), got {value!r}"
        )
    return float(value)


def check_density_value(key: str, value: Any, where: str) -> float:
    """A fraction of weights kept, in (0, 1]."""
    density = check_number(key, value, where)
    if density > 1.0:
        raise UserError(
            f"{where}: {key} must be in (0, 1] (the fraction of weights kept), got "
            f"{density:g}; for a sparsity of s use 1 - s"
        )
    return density


def _epoch_counts(key: str, value: Any, where: str) -> float | list[float]:
    """One positive number of epochs, or a list of them (``2,1`` on the command line)."""
    parts = value if isinstance(value, (list, tuple)) else None
    if isinstance(value, str) and "," in value:
        parts = [part for part in value.replace(" ", "").split(",") if part]
    if parts is None:
        return check_number(key, value, where)
    if not parts:
        raise UserError(f"{where}: {key} must be a number or a list of numbers, got {value!r}")
    return [check_number(key, part, where) for part in parts]


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
    tomllib = _toml()

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
        if key in ("budget", "workers", "val_samples", "train_samples", "init_epochs"):
            checked[key] = check_integer(label, value, where, 1)
        elif key == "pop_size":
            checked[key] = check_integer(label, value, where, 2)
        elif key in ("seed", "repair_steps", "recalibrate_bn"):
            checked[key] = check_integer(label, value, where, 0)
        elif key == "time":
            checked[key] = check_number(label, value, where)
        elif key == "max_density":
            checked[key] = check_density_value(label, value, where)
        elif key == "label_smoothing":
            checked[key] = _smoothing(label, value, where)
        elif key == "init_later_epochs":
            checked[key] = _epoch_counts(label, value, where)
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
        elif key == "fitness_split":
            checked[key] = _text(label, value, where)
            if checked[key] not in ("val", "train"):
                raise UserError(
                    f"{where}: {label} must be val (validation images) or train (training "
                    f"images), got {value!r}"
                )
        elif key in TABLE_FIELDS:
            checked[key] = _options(label, value, where)
        else:
            checked[key] = _text(label, value, where)
    return checked


def load_toml(path: str) -> dict[str, Any]:
    """The settings of a TOML config file."""
    tomllib = _toml()
    file = Path(path)
    if file.is_dir():
        raise UserError(f"config file {path} is a directory; give the path of a TOML file")
    if not file.is_file():
        raise UserError(f"config file {path} does not exist (give a TOML file, or only options)")
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"config file {path} is not valid TOML: {error}") from None


def _toml() -> ModuleType:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the same parser, published as tomli before Python 3.11
        import tomli as tomllib
    return tomllib
