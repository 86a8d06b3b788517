"""Warm starts: the masks a search begins from, and what they cost to make.

A search starts from genomes its solver is given (``search(..., initial=...)``). By default
those are the global magnitude masks at the problem's target densities, which cost nothing.
:func:`warm_start` makes better ones from any one-shot pruning method (``"supermask"`` —
gradient mask learning, ``"wanda"``, ``"snip"``, ...), from masks a user holds, or from the
front of an earlier run directory, and records their cost (seconds, epochs over the train
split) so a search's report can state the whole price of its front.

.. code-block:: python

    seeds = ms.warm_start(problem, ["magnitude", "supermask"], epochs=1)
    result = ms.search(problem, solver, budget=3000, initial=seeds)
    result.warm_start.seconds   # what the seeds cost, reported beside the search's own time
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from masksearch.encodings import GenomeError
from masksearch.mask import Mask

__all__ = ["WarmStart", "as_initial", "warm_start"]


@dataclass(frozen=True)
class WarmStart:
    """Genomes to start a search from, one label each, and what making them cost."""

    genomes: np.ndarray
    labels: tuple[str, ...]
    seconds: float = 0.0
    epochs: float = 0.0  # passes over the train split, summed over every mask made

    def __len__(self) -> int:
        return len(self.genomes)

    def __add__(self, other: WarmStart) -> WarmStart:
        """Both warm starts' genomes (a genome in both kept once, with its first label) and
        their summed cost: seeds from sources made at different densities, e.g. a
        supermask path over the denser targets plus a one-shot supermask at the sparsest."""
        if not isinstance(other, WarmStart):
            return NotImplemented
        if self.genomes.shape[1:] != other.genomes.shape[1:]:
            raise ValueError(
                f"cannot add warm starts of genomes of {self.genomes.shape[1:]} and "
                f"{other.genomes.shape[1:]} genes: make both for the same problem"
            )
        genomes, labels = _distinct(
            np.concatenate([self.genomes, other.genomes]), [*self.labels, *other.labels]
        )
        return WarmStart(genomes, labels, self.seconds + other.seconds, self.epochs + other.epochs)

    def summary(self) -> dict[str, Any]:
        """JSON-safe description (for ``front.json`` and the report)."""
        return {
            "sources": sorted(set(label.split("@")[0] for label in self.labels)),
            "n_genomes": len(self),
            "seconds": round(self.seconds, 3),
            "epochs": self.epochs,
        }


def warm_start(
    problem: Any,
    sources: str | Iterable[Any] = ("magnitude",),
    *,
    data: Any = None,
    densities: Sequence[float] | None = None,
    epochs: int = 1,
    seed: int = 0,
    later_epochs: float | Sequence[float] | None = None,
    options: Mapping[str, Any] | None = None,
) -> WarmStart:
    """Seeds for ``problem`` from ``sources``; each one gives a mask per target density.

    ``sources`` items: the name of a one-shot method (``masksearch.methods.METHODS``: e.g.
    ``"magnitude"``, ``"supermask"``, ``"wanda"``) or one built with other options
    (``SupermaskPath(epochs=4, later_epochs=2)``: ``epochs`` and ``seed`` here do not apply
    to it), a run directory (its whole front), a
    :class:`~masksearch.mask.Mask`, or an array of flat masks or genomes. Data-driven methods
    learn from ``data`` (a Dataset or Split; default ``problem.train_data``); ``supermask``
    trains ``epochs`` epochs per density; ``supermask-path`` trains ``epochs`` at the densest
    target, then ``later_epochs`` (default 1; or one number per sparser target) at each
    sparser one, continuing the same scores. ``options`` go to every method named in
    ``sources`` that has them (``{"lr": 0.02, "lr_schedule": "cosine"}`` for the supermasks);
    one that no named method has is refused. ``densities`` default to the problem's targets.
    """
    if isinstance(sources, (str, os.PathLike, Mask, np.ndarray)) or _is_method(sources):
        sources = [sources]
    sources = list(sources)
    targets = tuple(problem.densities if densities is None else densities)
    options = dict(options or {})
    check_options(sources, options)
    parts: list[np.ndarray] = []
    labels: list[str] = []
    seconds = 0.0
    total_epochs = 0.0
    for source in sources:
        started = time.perf_counter()
        if (isinstance(source, str) and not _is_run_dir(source)) or _is_method(source):
            genomes, made, spent = _from_method(
                problem, source, data, targets, epochs, seed, later_epochs, options
            )
            total_epochs += spent
        elif isinstance(source, (str, os.PathLike)):
            genomes = _from_run_dir(problem, Path(source))
            made = [f"{Path(source).name}#{i}" for i in range(len(genomes))]
        else:
            genomes = as_initial(problem, source)
            made = [f"given#{i}" for i in range(len(genomes))]
        seconds += time.perf_counter() - started
        parts.append(genomes)
        labels.extend(made)
    if not parts:
        raise ValueError("warm_start needs at least one source (e.g. 'magnitude')")
    genomes, kept_labels = _distinct(np.concatenate(parts), labels)
    return WarmStart(genomes, kept_labels, seconds, total_epochs)


def _distinct(genomes: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """``genomes`` without repeats, in order; a mask two sources agree on is evaluated once
    and the first source keeps its label."""
    _, first = np.unique(genomes, axis=0, return_index=True)
    keep = np.sort(first)
    return genomes[keep], tuple(labels[i] for i in keep)


def _option_names(cls: type) -> set[str]:
    """The options a method class takes (its dataclass fields, not its class attributes)."""
    return {field.name for field in dataclasses.fields(cls)}


def options_for(cls: type, options: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``options`` that method class ``cls`` takes."""
    names = _option_names(cls)
    return {key: value for key, value in options.items() if key in names}


# warm_start's arguments of their own, which its options must not repeat
_OWN_ARGUMENTS = frozenset({"epochs", "seed", "later_epochs"})


def check_options(sources: list[Any], options: Mapping[str, Any]) -> None:
    """Refuse an option that no method named in ``sources`` takes: it would change nothing."""
    if not options:
        return
    from masksearch.methods import METHODS

    own = sorted(set(options) & _OWN_ARGUMENTS)
    if own:
        flag = "--init-" + own[0].replace("_", "-") if own[0] != "seed" else "--seed"
        raise ValueError(
            f"give {own[0]} as its own setting (warm_start({own[0]}=...), {flag}), not as an option"
        )
    named = [s for s in sources if isinstance(s, str) and s in METHODS and s != "magnitude"]
    fields = {field for name in named for field in _option_names(METHODS[name])}
    unused = sorted(set(options) - fields)
    if unused:
        raise ValueError(
            f"warm-start option {unused[0]!r} is taken by none of the methods named "
            f"({', '.join(named) or 'none'}); their options are "
            f"{', '.join(sorted(fields - {'scope'} - _OWN_ARGUMENTS)) or 'none'}"
        )


def as_initial(problem: Any, initial: Any) -> np.ndarray:
    """``initial`` as ``(P, n_genes)`` genomes of ``problem``'s encoding, checked.

    Accepts a :class:`WarmStart`, a Mask, a list of Masks, or an array whose rows are genomes
    (``n_genes`` columns) or flat masks (one column per prunable weight).
    """
    encoding = problem.encoding
    if isinstance(initial, WarmStart):
        return encoding.validate(initial.genomes)
    if isinstance(initial, Mask) or (
        isinstance(initial, (list, tuple)) and initial and all(isinstance(m, Mask) for m in initial)
    ):
        masks = [initial] if isinstance(initial, Mask) else list(initial)
        for mask in masks:
            _check_layout(problem, mask)
        return encoding.validate(np.stack([encoding.encode(mask) for mask in masks]))
    array = np.asarray(initial)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or len(array) == 0:
        raise GenomeError(
            f"initial must be genomes or flat masks, one per row; got an array of shape "
            f"{array.shape}"
        )
    width = array.shape[1]
    if width == problem.n_genes:
        return encoding.validate(array)
    if width == problem.layout.n_total:
        if array.dtype != bool and not np.isin(array, (0, 1)).all():
            raise GenomeError("initial flat masks must hold only 0/1 (or booleans)")
        layout = problem.layout
        return encoding.validate(
            np.stack([encoding.encode(Mask.from_flat(layout, row.astype(bool))) for row in array])
        )
    raise GenomeError(
        f"initial rows have {width} entries, but this problem's genomes have "
        f"{problem.n_genes} genes ({encoding.name} encoding) and its masks "
        f"{problem.layout.n_total} weights; pass genomes or flat masks of this model"
    )


def _check_layout(problem: Any, mask: Mask) -> None:
    layout = problem.layout
    theirs = {name: tuple(t.shape) for name, t in mask.tensors.items()}
    ours = dict(zip(layout.names, (tuple(s) for s in layout.shapes), strict=True))
    if theirs != ours:
        missing = sorted(set(ours) - set(theirs))
        extra = sorted(set(theirs) - set(ours))
        shapes = sorted(n for n in set(ours) & set(theirs) if ours[n] != theirs[n])
        raise GenomeError(
            "an initial mask does not fit this problem's model"
            + (f"; missing {missing[:3]}" if missing else "")
            + (f"; unknown {extra[:3]}" if extra else "")
            + (
                f"; shape of {shapes[0]!r} is {theirs[shapes[0]]}, the model's {ours[shapes[0]]}"
                if shapes
                else ""
            )
        )


def check_source(source: str) -> None:
    """A named warm start is a one-shot method or a run directory with results; anything else
    is a ValueError that lists the methods (the settings check it before any work)."""
    from masksearch.methods import METHODS, OneShotMethod

    if _is_run_dir(source) or (source in METHODS and issubclass(METHODS[source], OneShotMethod)):
        return
    one_shot = sorted(n for n, cls in METHODS.items() if issubclass(cls, OneShotMethod))
    raise ValueError(
        f"unknown warm start {source!r}: give a run directory with results, or one of "
        f"{', '.join(one_shot)}"
    )


def _is_run_dir(source: str) -> bool:
    return (Path(source) / "front.json").exists()


def _from_run_dir(problem: Any, path: Path) -> np.ndarray:
    from masksearch.rundir import RunDir

    if not path.is_dir():
        raise FileNotFoundError(
            f"{path} is neither a pruning method nor a run directory with results"
        )
    results = RunDir(path).read_results()
    layout = problem.layout
    if results.layout.names != layout.names or results.layout.shapes != layout.shapes:
        raise GenomeError(
            f"the masks of {path} belong to another model ({len(results.layout.names)} "
            f"tensors, {results.layout.n_total} weights; this problem has "
            f"{len(layout.names)} tensors, {layout.n_total} weights)"
        )
    if len(results.masks) == 0:
        raise ValueError(f"the front of {path} is empty: nothing to start from")
    return as_initial(problem, results.masks)


def _is_method(source: Any) -> bool:
    from masksearch.methods import OneShotMethod

    return isinstance(source, OneShotMethod)


def _from_method(
    problem: Any,
    source: Any,
    data: Any,
    densities: Sequence[float],
    epochs: int,
    seed: int,
    later_epochs: float | Sequence[float] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, list[str], float]:
    from masksearch.methods import METHODS, make_method

    if _is_method(source):
        method, name, cls = source, source.name, type(source)
    else:
        name = source
        if name == "magnitude":
            # the encoding's own magnitude genomes: exact for every encoding, no model pass
            genomes = problem.encoding.magnitude(densities)
            return genomes, [f"magnitude@{d:g}" for d in densities], 0
        check_source(name)
        cls = METHODS[name]
        options: dict[str, Any] = {}
        fields = cls.__dataclass_fields__
        if "epochs" in fields:
            options["epochs"] = epochs
        if "seed" in fields:
            options["seed"] = seed
        if "later_epochs" in fields and later_epochs is not None:
            options["later_epochs"] = (
                later_epochs if isinstance(later_epochs, (int, float)) else tuple(later_epochs)
            )
        options.update(options_for(cls, extra or {}))
        method = make_method(name, **options)
    if data is None and cls.needs_data:
        data = getattr(problem, "train_data", None)
        if data is None:
            raise ValueError(
                f"warm start {name!r} learns from data: pass data= (a Dataset or its train "
                "Split), or give the problem train_data"
            )
    masks = method.prune_each(problem.model, data, densities)
    spent = method.epochs_for(len(densities))
    return as_initial(problem, masks), [f"{name}@{d:g}" for d in densities], spent
