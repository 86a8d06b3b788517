"""A pruning problem: which genomes exist (the encoding), how they score (the evaluator), and
what is minimised (the objectives)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from masksearch._bits import unpack_bits
from masksearch.data import Dataset, Split
from masksearch.encodings import Encoding, GroupsEncoding, make_encoding
from masksearch.encodings.packed import range_counts
from masksearch.evaluators import Evaluator, make_evaluator
from masksearch.evaluators.base import check_fits, check_label_smoothing
from masksearch.evaluators.repaired import RepairedEvaluator
from masksearch.evaluators.repaired import check_repair_steps as check_steps
from masksearch.mask import Layout, Mask, check_density, check_finite, prunable_parameters
from masksearch.structured.latency import LatencyTable

OBJECTIVES = ("error", "loss", "density", "flops", "latency")
#: what a problem's ``data`` can be: validation images, or training images (the dense weights
#: saw them, but a mask chosen on many of them fits them less than one chosen on a few thousand)
FITNESS_SPLITS = ("val", "train")


@dataclass(frozen=True)
class Evaluation:
    """What one population scored: objective matrix, named metrics, constraint violation."""

    F: np.ndarray  # (P, n_obj), minimised
    metrics: dict[str, np.ndarray]  # each (P,)
    violation: np.ndarray  # (P,) >= 0; 0 = feasible
    #: the genomes as validated (canonical dtype, a copy): what the search archives and tells
    genomes: np.ndarray | None = None


class PruningProblem:
    """A model, the data its masks are judged on, a genome encoding and the objectives.

    ``objectives`` are minimised and chosen from ``error`` (1 - accuracy), ``loss`` (mean
    cross-entropy; with ``label_smoothing`` ε > 0 the label-smoothed one, ``(1 − ε)·CE +
    ε·mean_k(−log p_k)``, the loss of masks learned with smoothed labels), ``density`` (kept /
    prunable weights) and ``flops`` (kept / prunable multiply-accumulates of one forward pass)
    and ``latency`` (the ``groups`` encoding only:
    measured latency of the physically smaller model over the dense one's, from a per-layer
    :class:`~masksearch.structured.LatencyTable` timed on ``device`` and cached; pass
    ``latency`` to use a table built with other settings). ``max_density`` and ``min_accuracy`` are
    constraints. ``densities`` are the densities the problem targets: the magnitude masks at
    those densities seed every search, so a search never ends worse than magnitude there.
    ``repair_steps`` > 0 scores every mask after that many SGD steps on the weights it keeps
    (:class:`~masksearch.evaluators.RepairedEvaluator`, on ``train_data``): error and loss then
    say what a short fine-tuning makes of the mask, not what the frozen weights give.
    ``recalibrate_bn`` > 0 re-estimates batch-norm statistics on that many training batches
    for every mask before scoring it (after any repair steps): for channel pruning, where
    removed channels shift every later batch norm's statistics.
    ``fitness_split`` says which split ``data`` is, ``"val"`` (the default) or ``"train"``
    (for settings and reports; the catalogue's ``fitness_split="train"`` judges masks on training
    images, which leaves the whole validation split for choosing the final masks).
    ``held_out_data`` are validation images the fitness does not use, on which
    :func:`~masksearch.choose_held_out` (and ``masksearch export --pick held-out``) chooses the
    final masks; the catalogue sets them (the validation split past ``val_samples``, or all of
    it when the fitness is on training images).
    ``source`` says how to build the problem again (see :mod:`masksearch.catalogue`); the
    catalogue sets it, and a run saved without it can be reported but not exported.
    """

    def __init__(
        self,
        model: nn.Module,
        data: Split | Dataset,
        *,
        encoding: str | Encoding = "weights",
        objectives: Sequence[str] = ("error", "density"),
        max_density: float | None = None,
        min_accuracy: float | None = None,
        evaluator: str | Evaluator = "auto",
        densities: Sequence[float] = (0.05, 0.02, 0.01),
        device: str = "cpu",
        name: str = "custom",
        test_data: Split | None = None,
        encoding_options: dict | None = None,
        train_data: Split | None = None,
        source: str | None = None,
        repair_steps: int = 0,
        recalibrate_bn: int = 0,
        latency: LatencyTable | None = None,
        fitness_split: str = "val",
        held_out_data: Split | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        split = data.val if isinstance(data, Dataset) else data
        if test_data is None and isinstance(data, Dataset):
            test_data = data.test
        if train_data is None and isinstance(data, Dataset):
            train_data = data.train
        if not hasattr(split, "x") or not hasattr(split, "y"):
            raise TypeError(
                f"data must be a masksearch Dataset or Split (x, y tensors), got {type(data).__name__}"
            )
        if len(split) == 0:
            raise ValueError("the validation data is empty; masks need samples to be judged on")
        objectives = tuple(objectives)
        unknown = [o for o in objectives if o not in OBJECTIVES]
        if unknown or not objectives:
            raise ValueError(
                f"unknown objective {unknown[0] if unknown else '(none given)'!r}; "
                f"choose from {OBJECTIVES}"
            )
        if len(set(objectives)) != len(objectives):
            raise ValueError(f"objectives repeat a name: {objectives}")
        self.densities = tuple(check_density(d) for d in densities)
        self.max_density = None if max_density is None else check_density(max_density)
        if min_accuracy is not None and not 0.0 <= min_accuracy <= 1.0:
            raise ValueError(f"min_accuracy must be in [0, 1], got {min_accuracy}")
        self.min_accuracy = min_accuracy
        self.label_smoothing = check_label_smoothing(label_smoothing)
        prunable_parameters(model)  # a model with nothing to prune fails here, readably
        check_finite(model)
        # NaN or inf inputs would only surface as NaN losses, long after the cause
        check_finite_inputs(split.x, "validation inputs")
        if test_data is not None:
            check_finite_inputs(test_data.x, "test inputs")
        if held_out_data is not None:
            if not hasattr(held_out_data, "x") or not hasattr(held_out_data, "y"):
                raise TypeError(
                    "held_out_data must be a masksearch Split (x, y tensors), got "
                    f"{type(held_out_data).__name__}"
                )
            check_finite_inputs(held_out_data.x, "held-out inputs")
            if len(held_out_data) == 0:
                held_out_data = None  # no image left over: nothing to choose on
        check_fits(model, split.x, split.y)

        self.name = name
        # how to build this problem again (a catalogue name, an entry point or
        # 'pkg.module:function'), so `masksearch report/export` and --resume can
        self.source = source
        if fitness_split not in FITNESS_SPLITS:
            raise ValueError(
                f"fitness_split must be one of {FITNESS_SPLITS} (which split `data` is), "
                f"got {fitness_split!r}"
            )
        self.fitness_split = fitness_split
        self.model = model.eval()
        self.data = split
        self.test_data = test_data
        self.held_out_data = held_out_data
        # what warm starts that learn (supermask, wanda) read; never used to judge a mask
        self.train_data = train_data
        self.objectives = objectives
        self.device = device
        if isinstance(encoding, str):
            options = dict(encoding_options or {})
            if encoding == "groups":
                # tracing the channel dependencies needs one input's shape: the data's
                options.setdefault("input_shape", list(split.x.shape[1:]))
            self.encoding = make_encoding(encoding, model, **options)
        else:
            self.encoding = encoding
        self.layout: Layout = self.encoding.layout
        self.repair_steps = check_repair_steps(repair_steps, evaluator, train_data)
        self.recalibrate_bn = check_repair_steps(
            recalibrate_bn, evaluator, train_data, "recalibrate_bn"
        )
        if self.repair_steps or self.recalibrate_bn:
            self.evaluator: Evaluator = RepairedEvaluator(
                model,
                split,
                self.layout,
                train_data,
                steps=self.repair_steps,
                recalibrate_bn=self.recalibrate_bn,
                device=device,
                label_smoothing=self.label_smoothing,
            )
        elif isinstance(evaluator, str):
            self.evaluator = make_evaluator(
                model,
                split,
                self.layout,
                kind=evaluator,
                device=device,
                label_smoothing=self.label_smoothing,
            )
        else:
            given = getattr(evaluator, "label_smoothing", self.label_smoothing)
            if given != self.label_smoothing:
                raise ValueError(
                    f"the evaluator smooths its loss by {given} but the problem's "
                    f"label_smoothing is {self.label_smoothing}; build the evaluator with "
                    f"label_smoothing={self.label_smoothing}, or pass the evaluator kind"
                )
            self.evaluator = evaluator
        self.flops_per_weight = weight_flops(model, self.layout, split.x[:1])
        # summed once: 266,200 floats summed per population cost ~3 µs a genome in the loop
        self._total_flops = float(self.flops_per_weight.sum())
        self.latency = self._latency_table(latency)

    def _latency_table(self, latency: LatencyTable | None) -> LatencyTable | None:
        if latency is None and "latency" not in self.objectives:
            return None
        if not isinstance(self.encoding, GroupsEncoding):
            raise ValueError(
                f"the latency objective needs the 'groups' encoding (a {self.encoding.name!r} "
                "genome removes no whole channel, so the model does not get faster); use "
                "encoding='groups' or another objective such as 'density' or 'flops'"
            )
        if latency is None:
            return LatencyTable(
                self.model, self.encoding.table, self.encoding.input_shape, device=self.device
            )
        if latency.n_genes != self.encoding.n_genes:
            raise ValueError(
                f"the latency table has {latency.n_genes} genes but the encoding has "
                f"{self.encoding.n_genes}; build it from this problem's encoding.table"
            )
        return latency

    # -- what a solver needs -------------------------------------------------------------
    @property
    def n_genes(self) -> int:
        return self.encoding.n_genes

    @property
    def n_obj(self) -> int:
        return len(self.objectives)

    @property
    def reference_point(self) -> np.ndarray:
        """Hypervolume reference: the worst value of each (bounded) objective."""
        # a latency estimate interpolates noisy timings, so a pruned model may read above 1
        worst = {"error": 1.0, "density": 1.0, "flops": 1.0, "loss": 10.0, "latency": 1.5}
        return np.array([worst[o] for o in self.objectives])

    def settings(self) -> dict[str, Any]:
        """The run settings this problem holds, in their ``config.json`` form."""
        return {
            "encoding": self.encoding.name,
            "objectives": list(self.objectives),
            "densities": [float(d) for d in self.densities],
            "fitness_split": self.fitness_split,
            f"{self.fitness_split}_samples": len(self.data),
            "device": str(self.device),
            "repair_steps": self.repair_steps,
            "recalibrate_bn": self.recalibrate_bn,
            # only when set: run directories from before the setting keep their settings
            **({"max_density": self.max_density} if self.max_density is not None else {}),
            **({"label_smoothing": self.label_smoothing} if self.label_smoothing else {}),
        }

    def magnitude_genomes(self) -> np.ndarray:
        """Genomes of the global magnitude masks at the problem's target densities."""
        return self.encoding.magnitude(self.densities)

    # -- evaluation --------------------------------------------------------------------
    def evaluate(self, genomes: np.ndarray) -> Evaluation:
        return self.evaluate_valid(self.encoding.validate(genomes))

    def evaluate_valid(
        self, genomes: np.ndarray, *, packed: np.ndarray | None = None
    ) -> Evaluation:
        """:meth:`evaluate` of genomes the encoding already validated (or made, as the search
        unpacks them): no second check or copy. ``genomes`` must not change afterwards.

        ``packed``: the same genomes as :func:`numpy.packbits` rows, when the caller has them;
        where genomes are the masks themselves (``weights``), kept weights are counted there.
        """
        _check_not_empty(genomes)
        masks = self.encoding.decode_valid(genomes)
        metrics = self.evaluator(masks)
        if masks is genomes and packed is not None:
            # a popcount of packed rows is ~20x cheaper than counting bools
            per_layer = range_counts(packed, self.layout.offsets)
        else:
            # row by row, since count_nonzero(axis=1) is several times slower on bools
            parts = [self.layout.slice(name) for name in self.layout.names]
            per_layer = np.array(
                [[np.count_nonzero(mask[part]) for part in parts] for mask in masks]
            )
        return self._scored(metrics, per_layer, genomes)

    def evaluate_packed(self, rows: np.ndarray) -> Evaluation:
        """:meth:`evaluate_valid` of valid genomes given as :func:`numpy.packbits` rows, the
        form the search keeps them in. Where genomes are the masks (``weights``), the evaluator
        gets them packed (see :meth:`~masksearch.evaluators.Evaluator.evaluate_packed`) and no
        bool population is built; otherwise they are unpacked first. The returned
        :class:`Evaluation` then holds no genomes."""
        _check_not_empty(rows)
        evaluate_packed = getattr(self.evaluator, "evaluate_packed", None)
        if not (self.encoding.genomes_are_masks and self.latency is None and evaluate_packed):
            return self.evaluate_valid(unpack_bits(rows, self.encoding.n_genes), packed=rows)
        metrics = evaluate_packed(rows)
        return self._scored(metrics, range_counts(rows, self.layout.offsets), None)

    def _scored(
        self, metrics: dict[str, Any], per_layer: np.ndarray, genomes: np.ndarray | None
    ) -> Evaluation:
        """The :class:`Evaluation` of an evaluator's ``metrics``, given each candidate's kept
        weights per layer ``(P, n_layers)``."""
        metrics = {k: np.asarray(v, dtype=np.float64) for k, v in metrics.items()}
        kept = np.zeros(len(per_layer))
        flops = np.zeros(len(per_layer))
        for layer, name in enumerate(self.layout.names):
            # every weight of a layer costs the same FLOPs: counts per layer, no float matmul
            kept += per_layer[:, layer]
            flops += per_layer[:, layer] * self.flops_per_weight[self.layout.slice(name).start]
        metrics["density"] = kept / self.layout.n_total
        metrics["flops"] = flops / self._total_flops
        metrics["accuracy"] = 1.0 - metrics["error"]
        if self.latency is not None:
            metrics["latency"] = self.latency.relative(genomes)
        F = np.stack([metrics[o] for o in self.objectives], axis=1)
        violation = np.zeros(len(per_layer))
        if self.max_density is not None:
            violation += np.maximum(0.0, metrics["density"] - self.max_density)
        if self.min_accuracy is not None:
            violation += np.maximum(0.0, self.min_accuracy - metrics["accuracy"])
        return Evaluation(F=F, metrics=metrics, violation=violation, genomes=genomes)

    def mask(self, genome: np.ndarray) -> Mask:
        """The :class:`Mask` a genome stands for."""
        flat = self.encoding.decode(genome)[0]
        return Mask.from_flat(self.layout, flat)

    def __repr__(self) -> str:
        return (
            f"PruningProblem({self.name!r}, encoding={self.encoding.name!r}, "
            f"n_genes={self.n_genes}, objectives={self.objectives})"
        )


def _check_not_empty(genomes: np.ndarray) -> None:
    if len(genomes) == 0:
        raise ValueError("the solver asked for an empty population; ask() must return >= 1 genome")


def check_repair_steps(
    steps: Any,
    evaluator: str | Evaluator,
    train_data: Split | None,
    name: str = "repair_steps",
) -> int:
    """``repair_steps`` (or ``recalibrate_bn``, by ``name``) as an int, refused with the fix
    when the problem cannot repair."""
    steps = check_steps(steps, name)
    if steps and train_data is None:
        raise ValueError(
            f"{name} needs training data to repair each candidate on: pass train_data (or a "
            "Dataset, whose train split is used)"
        )
    if steps and not (isinstance(evaluator, str) and evaluator in ("auto", "plain")):
        kind = evaluator if isinstance(evaluator, str) else type(evaluator).__name__
        raise ValueError(
            f"{name} repairs every candidate before scoring it, with its own evaluator; "
            f"it cannot use the {kind!r} evaluator: leave evaluator at 'auto'"
        )
    return steps


def weight_flops(model: nn.Module, layout: Layout, sample: torch.Tensor) -> np.ndarray:
    """Multiply-accumulates each prunable weight costs in one forward pass of one sample."""
    params = dict(model.named_parameters())
    owners = {id(params[n]): n for n in layout.names}
    per_weight: dict[str, float] = {}
    hooks = []
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if weight is None or id(weight) not in owners:
            continue

        hooks.append(module.register_forward_hook(_flops_recorder(per_weight, owners[id(weight)])))
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            model(sample.to(device))
    finally:
        for hook in hooks:
            hook.remove()
    return np.concatenate(
        [
            np.full(size, per_weight.get(name, 1.0))
            for name, size in zip(layout.names, layout.sizes, strict=True)
        ]
    )


def _flops_recorder(per_weight: dict[str, float], name: str) -> Callable[..., None]:
    def record(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        # a conv weight is used once per output position; a linear weight once per sample
        per_weight[name] = float(output[0].numel() // output.shape[1]) if output.dim() > 2 else 1.0

    return record


def check_finite_inputs(x: torch.Tensor, what: str) -> None:
    """Raise ValueError counting the NaN and inf values of ``x`` and naming the first sample."""
    if not (x.is_floating_point() or x.is_complex()):
        return  # integer data cannot hold NaN or inf
    bad = ~torch.isfinite(x)
    if not bool(bad.any()):
        return
    n_bad, n_nan = int(bad.sum()), int(torch.isnan(x).sum())
    counts = " and ".join(
        f"{n} {kind}" for n, kind in ((n_nan, "NaN"), (n_bad - n_nan, "inf")) if n
    )
    first = int(bad.reshape(len(x), -1).any(dim=1).nonzero()[0, 0])
    raise ValueError(
        f"{what} contain {counts} value{'' if n_bad == 1 else 's'} (first at sample {first}); "
        "clean or impute the data before searching"
    )
