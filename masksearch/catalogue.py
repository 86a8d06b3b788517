"""Pruning problems by name: the shipped ones declared as data, and anyone's by reference.

A problem is named in one of three ways, everywhere a name is taken (``get``, the CLI's
``--problem``, a run's ``config.json``):

- a row of :data:`CATALOGUE` (``"lenet300_fashion"``): a dense model from :mod:`masksearch.zoo`
  (trained on first use and cached), a dataset from :mod:`masksearch.data` and defaults — one
  :class:`ProblemSpec` each, all built by :func:`build`;
- an entry point of the ``masksearch.problems`` group that an installed package declares
  (``[project.entry-points."masksearch.problems"] mine = "mypkg.models:make_problem"``);
- a reference ``"pkg.module:function"`` to a function that returns a
  :class:`~masksearch.PruningProblem` (the current directory is searched for the module, as
  ``python -m`` does).

Options (``encoding``, ``densities``, ``device``…) go to the function; a user's function receives
only those its signature names, and an option it does not take is an error that says so.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from masksearch import data as datasets
from masksearch import zoo
from masksearch.problem import PruningProblem

__all__ = [
    "CATALOGUE",
    "ENTRY_POINT_GROUP",
    "ProblemError",
    "ProblemSpec",
    "UserProblem",
    "build",
    "default_problem_name",
    "digits_mlp",
    "get",
    "lenet300_fashion",
    "lenet5_fashion",
    "list_problems",
    "resnet20_cifar10",
    "resnet8_fashion",
    "resolve",
]

ENTRY_POINT_GROUP = "masksearch.problems"


class ProblemError(ValueError):
    """A problem name or reference that does not lead to a problem."""


@dataclass(frozen=True)
class ProblemSpec:
    """One shipped problem: which dense model on which dataset, and its default settings."""

    name: str
    model: str
    dataset: str
    description: str
    encoding: str = "weights"
    densities: tuple[float, ...] = (0.05, 0.02, 0.01)
    #: validation samples each mask is judged on (None: the whole validation split)
    val_samples: int | None = None
    device: str = "cpu"
    objectives: tuple[str, ...] = ("error", "density")

    def available(self, root: str | None = None) -> bool:
        """Whether the dataset is present (under ``root`` or the usual places)."""
        return datasets.available(self.dataset, root=root)

    def build(self, **options: Any) -> PruningProblem:
        return build(self, **options)


@dataclass(frozen=True)
class UserProblem:
    """A problem made by someone's function (an entry point or a ``module:function`` reference)."""

    name: str
    factory: Callable[..., PruningProblem]
    description: str = ""
    #: which option names the function takes (None: any, it has ``**options``)
    accepts: frozenset[str] | None = field(default=None)

    dataset: None = None
    model: None = None

    def available(self, root: str | None = None) -> bool:
        return True  # only the function knows; it says so when it runs

    def build(self, **options: Any) -> PruningProblem:
        """Call the function with the options it takes; an option it does not take must
        already hold in the problem it returns (a run's stored settings do), else it is an
        error that names it."""
        given = {key: value for key, value in options.items() if value is not None}
        # a function that loads no shipped dataset has no use for a data root
        if "root" not in (self.accepts or ()):
            given.pop("root", None)
        # a function with **options gets what PruningProblem takes (it most likely passes them
        # on); val_samples is checked on what it returns
        accepts = _PROBLEM_KEYWORDS if self.accepts is None else self.accepts
        passed = {key: value for key, value in given.items() if key in accepts}
        problem = self.factory(**passed)
        if not isinstance(problem, PruningProblem):
            raise ProblemError(
                f"{self.name} returned a {type(problem).__name__}, not a masksearch.PruningProblem"
            )
        for key in sorted(set(given) - set(passed)):
            held = _setting_of(problem, key)
            if held != _canonical(key, given[key]):
                parameters = ", ".join(sorted(accepts)) or "none"
                has = "" if held is _NOT_READABLE else f" and its problem has {key} {held!r}"
                raise ProblemError(
                    f"{self.name} takes no {key!r} option (its parameters: {parameters}){has}, "
                    f"not {given[key]!r}; drop that setting or add the parameter to the function"
                )
        # the name rebuilds it (masksearch report/export, --resume)
        problem.source = self.name
        return problem


# what a function declared with **options receives: PruningProblem's own keywords
_PROBLEM_KEYWORDS = frozenset(
    {
        "encoding",
        "objectives",
        "densities",
        "device",
        "evaluator",
        "encoding_options",
        "repair_steps",
        "recalibrate_bn",
        "max_density",
    }
)


def _setting_of(problem: PruningProblem, key: str) -> Any:
    """What a built problem holds for the setting ``key``, in the settings' own form."""
    return problem.settings().get(key, _NOT_READABLE)


def _canonical(key: str, value: Any) -> Any:
    if key in ("objectives", "densities") and isinstance(value, (list, tuple)):
        return [float(v) if key == "densities" else v for v in value]
    if key == "encoding_options" and not value:
        return _NOT_READABLE  # no options asked for: nothing to check
    return value


_NOT_READABLE: Any = object()


def _user_problem(name: str, factory: Any) -> UserProblem:
    if not callable(factory):
        raise ProblemError(f"{name} is a {type(factory).__name__}, not a function")
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: pass everything
        accepts = None
    else:
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            accepts = None
        else:
            accepts = frozenset(
                p.name
                for p in parameters
                if p.kind
                in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            )
    doc = inspect.getdoc(factory) or ""
    return UserProblem(name, factory, doc.split("\n\n")[0], accepts)


# The table: one row per shipped problem. Comments say why a default differs.
CATALOGUE: dict[str, ProblemSpec] = {
    spec.name: spec
    for spec in (
        ProblemSpec(
            "digits_mlp",
            "digits_mlp",
            "digits",
            "MLP 64-128-64-10 on scikit-learn's digits (embedded data: always available, seconds)",
            densities=(0.2, 0.1, 0.05),
        ),
        # all 5,000 validation images: masks chosen on 1,024 of them overfit those
        # (benchmarks/results/search_quality_val1024.md), and incremental evaluation keeps the
        # larger split affordable
        ProblemSpec(
            "lenet300_fashion",
            "lenet300",
            "fashion-mnist",
            "LeNet-300-100 on Fashion-MNIST (266,200 prunable weights)",
        ),
        # 1,024 validation images keep a conv evaluation affordable on the CPU, but a search
        # from supermask seeds fits them and loses test accuracy
        # (benchmarks/results/warm_start_lenet5_ft1.md): pick final masks on other images
        ProblemSpec(
            "lenet5_fashion",
            "lenet5",
            "fashion-mnist",
            "LeNet-5 (Caffe variant) on Fashion-MNIST (430,500 prunable weights)",
            val_samples=1024,
        ),
        # structured pruning: a gene is a channel of a dependency group (its batch norm,
        # consumers and residual partners go with it), so the kept model is really smaller;
        # 2,048 validation images keep a conv evaluation near 0.3 s on 2 cores
        ProblemSpec(
            "resnet8_fashion",
            "resnet8",
            "fashion-mnist",
            "ResNet-8 (residual, batch norm) on Fashion-MNIST, pruned by whole channels",
            encoding="groups",
            densities=(0.5, 0.35, 0.25),
            val_samples=2048,
        ),
        ProblemSpec(
            "resnet20_cifar10",
            "resnet20",
            "cifar10",
            "ResNet-20 on CIFAR-10 (needs CIFAR-10 under a data root; a GPU helps)",
            encoding="levels",
            densities=(0.5, 0.3, 0.1),
            val_samples=1024,
            device="auto",
        ),
    )
}

_UNSET: Any = object()


def build(
    spec: ProblemSpec | str,
    *,
    encoding: str | None = None,
    objectives: Any = None,
    densities: Any = None,
    val_samples: int | None = _UNSET,
    root: str | None = None,
    device: str | None = None,
    fitness_split: str = "val",
    train_samples: int | None = None,
    **options: Any,
) -> PruningProblem:
    """The one builder of shipped problems: ``spec``'s dense model and data, its defaults
    overridden by the arguments (``val_samples=None``: the whole validation split); other
    ``options`` go to :class:`~masksearch.PruningProblem` (``evaluator``, ``encoding_options``…).

    ``fitness_split="train"`` judges masks on the first ``train_samples`` training images (None:
    all of them) instead of validation images: a mask chosen on a few thousand validation
    images fits them (``benchmarks/results/warm_start_path_e4_val4000.md``), one chosen on
    55,000 training images much less, and the validation split stays unseen for choosing
    the final masks (:func:`~masksearch.choose_held_out`).
    """
    if isinstance(spec, str):
        spec = _catalogued(spec)
    loaded = datasets.load(spec.dataset, root=root)
    model = zoo.pretrained(spec.model, spec.dataset, root=root, device="cpu")
    fitness = _fitness_data(loaded, spec, fitness_split, val_samples, train_samples)
    problem = PruningProblem(
        model,
        fitness,
        fitness_split=fitness_split,
        name=spec.name,
        encoding=encoding or spec.encoding,
        objectives=tuple(objectives or spec.objectives),
        densities=tuple(densities or spec.densities),
        device=device or spec.device,
        test_data=loaded.test,
        train_data=loaded.train,
        held_out_data=_held_out(loaded.val, fitness_split, len(fitness)),
        **options,
    )
    problem.source = spec.name
    return problem


def _held_out(validation: datasets.Split, fitness_split: str, n_fitness: int) -> datasets.Split:
    """The validation images the fitness does not judge masks on: all of them when it judges
    training images, else those past the first ``n_fitness`` (``val_samples``)."""
    if fitness_split == "train":
        return validation
    return datasets.Split(validation.x[n_fitness:], validation.y[n_fitness:])


def _fitness_data(
    loaded: datasets.Dataset,
    spec: ProblemSpec,
    fitness_split: str,
    val_samples: int | None,
    train_samples: int | None,
) -> datasets.Split:
    """The split masks are judged on, cut to the samples asked for."""
    if fitness_split == "val":
        if train_samples is not None:
            raise ProblemError(
                f"train_samples={train_samples} counts training images, but masks are judged on "
                "the validation split; give val_samples, or fitness_split='train'"
            )
        samples = spec.val_samples if val_samples is _UNSET else val_samples
        return loaded.val if samples is None else loaded.val.subset(samples)
    if fitness_split == "train":
        if val_samples is not _UNSET and val_samples is not None:
            raise ProblemError(
                f"val_samples={val_samples} counts validation images, but fitness_split='train' "
                "judges masks on training images; give train_samples instead"
            )
        if len(loaded.train) == 0:
            raise ProblemError(f"{spec.name}'s dataset has no training split to judge masks on")
        if train_samples is None:
            return loaded.train
        return loaded.train.subset(train_samples)
    raise ProblemError(
        f"fitness_split must be 'val' (validation images, the default) or 'train' (training "
        f"images), got {fitness_split!r}"
    )


def _catalogued(name: str) -> ProblemSpec:
    if name not in CATALOGUE:
        raise ProblemError(
            f"no problem named {name!r}; choose one of {', '.join(CATALOGUE)} "
            "(`masksearch problems` lists them), a package's entry point, or give "
            "'pkg.module:function' for your own"
        )
    return CATALOGUE[name]


def _shipped(name: str) -> Callable[..., PruningProblem]:
    spec = CATALOGUE[name]

    def make(**options: Any) -> PruningProblem:
        return build(spec, **options)

    make.__name__ = make.__qualname__ = name
    make.__doc__ = (
        f"{spec.description}.\n\nDefaults: encoding {spec.encoding!r}, densities "
        f"{spec.densities}, val_samples {spec.val_samples}, device {spec.device!r}; every "
        "keyword of :func:`masksearch.catalogue.build` overrides them."
    )
    return make


digits_mlp = _shipped("digits_mlp")
lenet300_fashion = _shipped("lenet300_fashion")
lenet5_fashion = _shipped("lenet5_fashion")
resnet20_cifar10 = _shipped("resnet20_cifar10")
resnet8_fashion = _shipped("resnet8_fashion")


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {entry.name: entry for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _import(module_name: str, name: str) -> Any:
    """Import a reference's module from the current directory or ``sys.path``.

    ``masksearch`` is a console script: unlike ``python -m``, it does not put the current
    directory on ``sys.path``, yet ``--problem mymodels:make`` is meant for a file right there.
    Once a module is found there, the directory stays on ``sys.path`` for the whole process,
    as with ``python -m``: the problem's classes are unpickled by name in joblib's workers,
    which copy the parent's path when they start.
    """
    cwd = os.getcwd()
    try:
        return _import_module(module_name, name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        ours = module_name == missing or module_name.startswith(missing + ".")
        if not ours or cwd in sys.path or "" in sys.path:
            raise _import_error(module_name, name, error) from None
    sys.path.insert(0, cwd)
    try:
        return _import_module(module_name, name)
    except ModuleNotFoundError as error:
        sys.path.remove(cwd)
        raise _import_error(module_name, name, error) from None


def _import_module(module_name: str, name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError:
        raise
    except Exception as error:  # the user's module itself fails: say so in one line
        raise ProblemError(
            f"importing {module_name!r} for problem {name!r} failed: "
            f"{type(error).__name__}: {error} (MASKSEARCH_DEBUG=1 shows where)"
        ) from error


def _import_error(module_name: str, name: str, error: ModuleNotFoundError) -> ProblemError:
    missing = error.name or module_name
    if module_name == missing or module_name.startswith(missing + "."):
        return ProblemError(
            f"cannot import {module_name!r} for problem {name!r}: no module {missing!r} in the "
            "current directory or on PYTHONPATH (masksearch report/export: --problem REF "
            "names where it is now)"
        )
    return ProblemError(f"importing {module_name!r} for problem {name!r} failed: {error}")


def resolve(name: str) -> ProblemSpec | UserProblem:
    """What ``name`` refers to: a catalogue row, an entry point or ``pkg.module:function``."""
    if not isinstance(name, str) or not name:
        raise ProblemError(f"a problem is named by a non-empty string, got {name!r}")
    if name in CATALOGUE:
        return CATALOGUE[name]
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        if not module_name or not attribute:
            raise ProblemError(f"give a problem reference as 'pkg.module:function', got {name!r}")
        target: Any = _import(module_name, name)
        for part in attribute.split("."):
            if not hasattr(target, part):
                raise ProblemError(
                    f"module {module_name!r} has no {attribute!r} (problem {name!r})"
                )
            target = getattr(target, part)
        return _user_problem(name, target)
    entries = _entry_points()
    if name in entries:
        try:
            factory = entries[name].load()
        except Exception as error:  # the plug-in package's own import failed
            raise ProblemError(
                f"problem {name!r} is registered by an installed package, but loading "
                f"{entries[name].value} failed: {type(error).__name__}: {error}"
            ) from None
        return _user_problem(name, factory)
    return _catalogued(name)


def get(name: str, **options: Any) -> PruningProblem:
    """Build the problem ``name`` (see :func:`resolve`) with ``options``."""
    return resolve(name).build(**options)


def list_problems(*, entry_points: bool = True) -> list[ProblemSpec | UserProblem]:
    """The catalogue's problems, in order, then those installed packages register."""
    listed: list[ProblemSpec | UserProblem] = list(CATALOGUE.values())
    if entry_points:
        for name, entry in sorted(_entry_points().items()):
            if name in CATALOGUE:
                continue  # a package cannot shadow a shipped problem
            try:
                found = _user_problem(entry.value, entry.load())
                listed.append(dataclasses.replace(found, name=name))
            except Exception as error:  # one broken plug-in must not hide the others
                listed.append(UserProblem(name, _broken(error), f"cannot load: {error}"))
    return listed


def _broken(error: Exception) -> Callable[..., PruningProblem]:
    def fail(**options: Any) -> PruningProblem:
        raise ProblemError(f"the problem's package failed to load: {error}")

    return fail


def default_problem_name(root: str | None = None) -> str:
    """Fashion-MNIST's LeNet-300-100 when that data is present, the embedded digits otherwise."""
    return "lenet300_fashion" if datasets.available("fashion-mnist", root=root) else "digits_mlp"
