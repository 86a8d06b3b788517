"""Memetic local improvement: swap moves guided by the loss gradient, accepted on exact fitness.

A global search (NSGA-II, a GA) recombines masks well but proposes its swaps blindly: on a
266k-gene genome with 2% of the genes set, a random swap almost always drops a useful weight or
adds a useless one. :class:`GradientSwaps` is the local step a search calls on its best masks:
at a mask ``m`` it takes the gradient of the validation loss with respect to the mask,
``∂L/∂m_i = w_i · ∂L/∂(m⊙w)_i``, whose first-order reading is "dropping kept weight ``i``
changes the loss by ``-∂L/∂m_i``, adding dropped weight ``j`` by ``+∂L/∂m_j``". Children swap
``k`` kept weights drawn from the best-scored removals for ``k`` dropped weights drawn from the
best-scored additions (so the density is unchanged), are evaluated *exactly* by the problem's
evaluator, and the best replaces the parent only if it is better. ``k`` adapts: it doubles
after a success and shrinks after a failure; once single swaps fail, the candidate pool
doubles with each further failure (up to 256-fold), since near a local optimum the
first-order scores no longer single out the moves that help. This is the first-order Taylor step of
gradient mask learning (``masksearch.methods.supermask``) made discrete and checked by exact
fitness, so it never accepts a move the true loss does not confirm.

The search (:func:`masksearch.search.search`) calls :meth:`GradientSwaps.improve` once per
generation on the front members best at the problem's target densities; improved genomes go to
the archive and, through ``solver.inject``, back into the solver's population. Every exact
evaluation it spends counts against the search's budget.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from masksearch.evaluators.base import CPU_CONV_BATCH, convolutions_on_cpu, cpu_conv_format
from masksearch.front import ParetoFront
from masksearch.keys import genome_key
from masksearch.mask import check_density
from masksearch.problem import Evaluation, PruningProblem
from masksearch.training import resolve_device

__all__ = ["GradientSwaps", "LocalSearch", "Proposal", "check_local_search", "mask_gradient"]

_GRADIENT_BATCH = 2048  # samples per forward/backward pass (bounded memory on big splits)
_MAX_WIDENING = 8  # a stalled search draws its moves from up to 2**8 times more candidates


@dataclass
class Proposal:
    """What one :meth:`GradientSwaps.improve` call evaluated.

    ``genomes`` and ``evaluation`` cover every exactly evaluated child (they belong in the
    archive); ``improved`` indexes the rows that replaced their parent (they belong in the
    solver's population).
    """

    genomes: np.ndarray
    evaluation: Evaluation
    improved: np.ndarray


@runtime_checkable
class LocalSearch(Protocol):
    """The contract of ``search(..., local_search=...)``; :class:`GradientSwaps` meets it.

    ``setup(problem, rng)`` is called once per search (not on resume: the checkpoint holds the
    local search) with the problem and a ``numpy.random.Generator`` that must be its only
    source of randomness; it should forget any earlier search. ``improve(problem, front)`` is
    called after every generation with the search's :class:`~masksearch.front.ParetoFront` and
    returns a :class:`Proposal`: every genome it evaluated exactly (with ``problem.evaluate``;
    they count against the budget and feasible ones join the archive) and which rows improved
    on their parent (the search hands those to the solver's optional ``inject``). A local
    search must be picklable (checkpoints pickle it).
    """

    def setup(self, problem: PruningProblem, rng: np.random.Generator) -> None:
        """Take the problem and the random stream; forget any earlier search."""

    def improve(self, problem: PruningProblem, front: ParetoFront) -> Proposal:
        """Evaluate improvements of front members; see :class:`Proposal`."""


def check_local_search(local_search: object) -> LocalSearch:
    """Return ``local_search`` if it has the form of :class:`LocalSearch`, else raise TypeError
    naming the problem (a class instead of an instance, a missing method, a signature that
    cannot take the search's arguments). ``search`` calls it before it starts."""
    if isinstance(local_search, type):
        raise TypeError(
            f"local_search must be a local search object, got the class {local_search.__name__}; "
            f"pass an instance: {local_search.__name__}(...)"
        )
    name = type(local_search).__name__
    for method, wanted in (
        ("setup", "setup(problem, rng)"),
        ("improve", "improve(problem, front)"),
    ):
        bound = getattr(local_search, method, None)
        if not callable(bound):
            raise TypeError(
                f"{name} is not a local search: it has no {method}() method; a local search "
                "needs setup(problem, rng) and improve(problem, front) returning a Proposal "
                "(see masksearch.local_search.LocalSearch)"
            )
        try:
            signature = inspect.signature(bound)
        except (TypeError, ValueError):
            continue  # no introspectable signature: trust it
        try:
            signature.bind(None, None)
        except TypeError as error:
            raise TypeError(
                f"{name}.{method}{signature} cannot be called as {wanted}, which the search "
                f"does ({error})"
            ) from None
    return local_search  # type: ignore[return-value]


def mask_gradient(problem: PruningProblem, flat_mask: np.ndarray) -> np.ndarray:
    """Gradient of the mean validation loss (the problem's: smoothed by its
    ``label_smoothing``) with respect to each prunable weight's mask bit.

    ``flat_mask`` is one mask over ``problem.layout`` (bool, ``(n_total,)``). Returns float32
    ``(n_total,)``: ``∂L/∂m_i`` at ``m = flat_mask`` (defined for kept and dropped weights).
    """
    layout = problem.layout
    flat = np.asarray(flat_mask)
    if flat.shape != (layout.n_total,):
        raise ValueError(
            f"mask_gradient needs one flat mask of {layout.n_total} entries, got shape {flat.shape}"
        )
    device = resolve_device(problem.device)
    model = problem.model
    params = {name: p.detach().to(device) for name, p in model.named_parameters()}
    buffers = {name: b.to(device) for name, b in model.named_buffers()}
    mask = torch.from_numpy(flat.astype(np.float32)).to(device).requires_grad_(True)
    x, y = problem.data.x, problem.data.y
    total = len(y)
    was_training = model.training
    model.eval()
    # convolutions on the CPU run faster in small batches on channels-last weights, as the
    # evaluators run them
    batch = CPU_CONV_BATCH if convolutions_on_cpu(params.values()) else _GRADIENT_BATCH
    try:
        for start in range(0, total, batch):
            chosen = dict(params)
            for name in layout.names:
                part = mask[layout.slice(name)].view(params[name].shape)
                chosen[name] = cpu_conv_format(params[name] * part)
            logits = functional_call(
                model, {**chosen, **buffers}, (x[start : start + batch].to(device),)
            )
            batch_y = y[start : start + batch].to(device)
            # sum of per-batch means weighted by batch size = the mean over the split
            loss = (
                F.cross_entropy(
                    logits,
                    batch_y,
                    reduction="sum",
                    label_smoothing=problem.label_smoothing,
                )
                / total
            )
            loss.backward()
    finally:
        model.train(was_training)
    return mask.grad.detach().cpu().numpy().astype(np.float32, copy=False)


class GradientSwaps:
    """Gradient-guided swap local search on the ``weights`` encoding (see the module docs).

    ``steps`` improvement attempts per target per call, each with ``children`` exactly
    evaluated swap children; moves are drawn from the ``candidates · k`` best-scored removals
    and additions. ``densities`` are the targets whose best front member is improved (default:
    the problem's ``densities``); ``extra`` more front members, drawn at random, are improved
    each call so the whole front moves, not only the targets.
    """

    def __init__(
        self,
        *,
        steps: int = 2,
        children: int = 8,
        candidates: int = 8,
        densities: Sequence[float] | None = None,
        extra: int = 1,
    ) -> None:
        for name, value, low in (
            ("steps", steps, 1),
            ("children", children, 1),
            ("candidates", candidates, 1),
            ("extra", extra, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        self.steps = int(steps)
        self.children = int(children)
        self.candidates = int(candidates)
        self.densities = None if densities is None else tuple(check_density(d) for d in densities)
        self.extra = int(extra)
        self._rng: np.random.Generator | None = None
        self._step_size: dict[float, int] = {}
        self._stalls: dict[float, int] = {}
        self._gradients: dict[bytes, np.ndarray] = {}

    def setup(self, problem: PruningProblem, rng: np.random.Generator) -> None:
        """Check the problem fits, take the random stream and forget any earlier search.

        Called once per search, so one object can serve several searches: each behaves as
        if run with a fresh ``GradientSwaps`` of the same settings.
        """
        if problem.encoding.name != "weights":
            raise ValueError(
                f"GradientSwaps moves single weights, so it needs the 'weights' encoding; the "
                f"problem uses {problem.encoding.name!r}. Build the problem with "
                "encoding='weights' or search without local_search"
            )
        if problem.objectives[0] not in ("loss", "error"):
            raise ValueError(
                "GradientSwaps improves the first objective, which must be 'loss' or 'error'; "
                f"got objectives {problem.objectives}"
            )
        self._rng = rng
        targets = self.densities if self.densities is not None else problem.densities
        self._targets = tuple(sorted(set(targets)))
        # everything learnt in a previous search goes: step sizes and stalls would steer this
        # one differently, and cached gradients may belong to another problem's model
        self._step_size = {}
        self._stalls = {}
        self._gradients = {}

    def improve(self, problem: PruningProblem, front: ParetoFront) -> Proposal:
        """Improve the front members best at each target density; see :class:`Proposal`."""
        if self._rng is None:
            raise RuntimeError("call GradientSwaps.setup(problem, rng) before improve()")
        n_genes = problem.n_genes
        tried: list[np.ndarray] = []
        evaluations: list[Evaluation] = []
        improved: list[int] = []
        if len(front) == 0:
            return _proposal(tried, evaluations, improved, n_genes)
        for key, position in self._starting_points(front):
            genome = front.genome(position)
            score = _score(front.F[position], front.metrics, position)
            for _ in range(self.steps):
                children, sizes = self._children(problem, genome, key)
                if children is None:
                    break
                evaluation = problem.evaluate(children)
                tried.append(children)
                evaluations.append(evaluation)
                feasible = evaluation.violation <= 0
                scores = [
                    _score(evaluation.F[i], evaluation.metrics, i) if feasible[i] else None
                    for i in range(len(children))
                ]
                best = min(
                    (i for i in range(len(children)) if scores[i] is not None),
                    key=lambda i: scores[i],
                    default=None,
                )
                offset = sum(len(t) for t in tried) - len(children)
                if best is not None and scores[best] < score:
                    genome, score = children[best], scores[best]
                    improved.append(offset + best)
                    self._step_size[key] = max(self._step_size[key], 2 * int(sizes[best]))
                    self._stalls[key] = 0
                elif self._step_size[key] > 1:
                    self._step_size[key] = max(1, int(self._step_size[key] * 0.7))
                else:
                    # single swaps among the best-scored moves fail: the first-order scores
                    # no longer rank well this close to a local optimum, so look wider
                    self._stalls[key] = self._stalls.get(key, 0) + 1
        return _proposal(tried, evaluations, improved, n_genes)

    # -- internals --------------------------------------------------------------------
    def _starting_points(self, front: ParetoFront) -> list[tuple[float, int]]:
        points: dict[int, float] = {}
        densities = front.metrics["density"]
        for target in self._targets:
            try:
                position = front.index(max_density=target, objective=front.objectives[0])
            except ValueError:
                continue
            points.setdefault(position, target)
        others = [i for i in range(len(front)) if i not in points]
        if others and self.extra:
            chosen = self._rng.choice(others, size=min(self.extra, len(others)), replace=False)
            for position in sorted(int(i) for i in chosen):
                # step sizes of extra members are remembered per density bucket (1% wide)
                points[position] = round(float(densities[position]), 2) + 1.0
        return [(key, position) for position, key in sorted(points.items())]

    def _children(
        self, problem: PruningProblem, genome: np.ndarray, key: float
    ) -> tuple[np.ndarray | None, np.ndarray]:
        kept = np.flatnonzero(genome)
        dropped_count = len(genome) - len(kept)
        if len(kept) == 0 or dropped_count == 0:
            return None, np.zeros(0, dtype=np.int64)
        self._step_size.setdefault(key, max(4, len(kept) // 50))
        step = min(self._step_size[key], max(1, len(kept) // 4), dropped_count)
        self._step_size[key] = step
        gradient = self._gradient(problem, genome)
        pool = self.candidates * step * 2 ** min(self._stalls.get(key, 0), _MAX_WIDENING)
        # dropping kept i changes the loss by about -g_i: best removals have the largest g
        removal = kept[_top(gradient[kept], min(pool, len(kept)))]
        # adding dropped j changes it by about +g_j: best additions have the smallest g
        masked = np.where(genome, np.inf, gradient)
        addition = _top(-masked, min(pool, dropped_count))
        rng = self._rng
        sizes = rng.integers(1, step + 1, size=self.children)
        children = np.repeat(genome[None, :], self.children, axis=0)
        for row, size in enumerate(sizes):
            children[row, rng.choice(removal, size=min(size, len(removal)), replace=False)] = False
            children[row, rng.choice(addition, size=min(size, len(addition)), replace=False)] = True
        return children, sizes

    def _gradient(self, problem: PruningProblem, genome: np.ndarray) -> np.ndarray:
        key = genome_key(genome)
        if key not in self._gradients:
            if len(self._gradients) >= 4 * max(1, len(self._targets) + self.extra):
                self._gradients.pop(next(iter(self._gradients)))
            self._gradients[key] = mask_gradient(problem, problem.encoding.decode(genome[None])[0])
        return self._gradients[key]


def _top(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` largest values (ties broken by index, deterministically)."""
    if count >= len(values):
        return np.arange(len(values))
    chosen = np.argpartition(-values, count - 1)[:count]
    return np.sort(chosen)


def _score(F_row: np.ndarray, metrics: dict[str, np.ndarray], row: int) -> tuple[float, float]:
    # the first objective decides; the loss breaks ties (error moves in whole samples)
    return float(F_row[0]), float(metrics["loss"][row])


def _proposal(
    tried: list[np.ndarray], evaluations: list[Evaluation], improved: list[int], n_genes: int
) -> Proposal:
    if not tried:
        empty = np.zeros((0, n_genes), dtype=bool)
        return Proposal(
            empty,
            Evaluation(F=np.zeros((0, 0)), metrics={}, violation=np.zeros(0)),
            np.zeros(0, dtype=np.int64),
        )
    metrics = {
        k: np.concatenate([e.metrics[k] for e in evaluations]) for k in evaluations[0].metrics
    }
    evaluation = Evaluation(
        F=np.concatenate([e.F for e in evaluations]),
        metrics=metrics,
        violation=np.concatenate([e.violation for e in evaluations]),
    )
    return Proposal(np.concatenate(tried), evaluation, np.asarray(improved, dtype=np.int64))
