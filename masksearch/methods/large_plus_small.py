"""Large weights plus GA-chosen small ones: method A of docs/methods.md (Chung, 2021).

For a budget of K = density·N weights, the top K_L = ρ·K by magnitude are always kept; a GA
chooses the remaining K_S = K − K_L from a candidate pool of the next c·K_S weights by
magnitude (:class:`~masksearch.encodings.PoolEncoding`). Fitness is the validation loss of the
masked network without retraining. Defaults follow methods.md: population 32, 100 generations,
tournament of 3, elitism 2, the magnitude mask seeded into the first population (so the
result is never worse than magnitude on the validation data).

Registered as ``large_plus_small``; the old name ``method_a`` (and the old module path
:mod:`masksearch.methods.method_a` with ``MethodA``) still work.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from masksearch.encodings import PoolEncoding
from masksearch.mask import Mask
from masksearch.methods.base import MethodError, OneShotMethod, Progress, emit, register
from masksearch.problem import PruningProblem
from masksearch.search import search
from masksearch.solvers import make_solver
from masksearch.training import evaluate, finetune

__all__ = ["LargePlusSmallGA", "large_plus_small_vs_magnitude"]


@register
@dataclass
class LargePlusSmallGA(OneShotMethod):
    """GA-selected small weights on top of the always-kept large ones (global scope)."""

    name: ClassVar[str] = "large_plus_small"
    old_names: ClassVar[tuple[str, ...]] = ("method_a",)
    scopes: ClassVar[tuple[str, ...]] = ("global",)

    rho: float = 0.8
    pool_factor: int | None = 4
    pop_size: int = 32
    generations: int = 100
    tournament: int = 3
    elitism: int = 2
    objective: str = "loss"
    val_samples: int | None = 1024
    seed: int = 0
    evaluator: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.rho < 1.0:
            raise MethodError(
                f"rho (share of the budget always kept) must be in [0, 1), got {self.rho}"
            )
        if self.objective not in ("loss", "error"):
            raise MethodError(f"objective must be 'loss' or 'error', got {self.objective!r}")
        for option in ("pop_size", "generations", "tournament"):
            if int(getattr(self, option)) < 1:
                raise MethodError(f"{option} must be >= 1, got {getattr(self, option)}")

    def _prune(
        self,
        model: nn.Module,
        params: dict[str, nn.Parameter],
        split: Any,
        density: float,
        scope: str,
        progress: Progress | None,
    ) -> Mask:
        return self.search(model, split, density, progress=progress)

    def prune(self, model: nn.Module, data: Any, density: float, **kwargs: Any) -> Mask:
        # fitness is judged on held-out data: the validation split of a Dataset
        return super().prune(model, getattr(data, "val", data), density, **kwargs)

    def search(
        self, model: nn.Module, split: Any, density: float, *, progress: Progress | None = None
    ) -> Mask:
        if self.val_samples is not None and len(split) > self.val_samples:
            split = split.subset(self.val_samples)
        encoding = PoolEncoding(model, density, rho=self.rho, pool_factor=self.pool_factor)
        problem = PruningProblem(
            model,
            split,
            encoding=encoding,
            objectives=(self.objective,),
            densities=(density,),
            evaluator=self.evaluator,
            name=self.name,
        )
        solver = make_solver(
            "deap-ga",
            mu=self.pop_size,
            lambda_=self.pop_size,
            tournsize=self.tournament,
            n_elite=self.elitism,
        )

        def report(record: dict[str, Any]) -> None:
            # the live front object stays out: progress records are JSON-safe
            fields = {k: v for k, v in record.items() if k != "front"}
            emit(progress, self.name, "generation", None, **fields)

        result = search(
            problem,
            solver,
            budget=self.pop_size * self.generations,
            seed=self.seed,
            callbacks=(report,),
        )
        return result.front.best(objective=self.objective)


def large_plus_small_vs_magnitude(
    model: nn.Module,
    dataset: Any,
    density: float,
    *,
    finetune_epochs: int = 0,
    finetune_options: dict[str, Any] | None = None,
    **options: Any,
) -> dict[str, dict[str, float]]:
    """Method A against global magnitude at the identical density, on the test split.

    Both masks are fine-tuned for ``finetune_epochs`` with the same settings when asked.
    Returns ``{"large_plus_small": {...}, "magnitude": {...}}`` with accuracy, loss and density.
    """
    masks = {
        LargePlusSmallGA.name: LargePlusSmallGA(**options).prune(model, dataset, density),
        "magnitude": Mask.magnitude(model, density),
    }
    results = {}
    for name, mask in masks.items():
        pruned = mask.apply(copy.deepcopy(model))
        if finetune_epochs:
            finetune(
                pruned, mask, dataset.train, epochs=finetune_epochs, **(finetune_options or {})
            )
        scored = evaluate(pruned, dataset.test)
        results[name] = {"accuracy": scored.accuracy, "loss": scored.loss, "density": mask.density}
    return results
