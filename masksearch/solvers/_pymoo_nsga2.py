"""pymoo's NSGA-II with a faster survival and optimum; its own module, so that importing the adapter does
not import pymoo's algorithms (a third of a second) before a search asks for one."""

from __future__ import annotations

import numba
import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2 as _PymooNSGA2
from pymoo.operators.survival.rank_and_crowding import RankAndCrowding as _RankAndCrowding
from pymoo.util.randomized_argsort import randomized_argsort

__all__ = ["NSGA2", "RankAndCrowding"]


class RankAndCrowding(_RankAndCrowding):
    """pymoo's rank-and-crowding survival with NSGA-II's crowding distance: the same
    survivors, ranks, crowding distances and draws (tests hold it to pymoo's), without
    pymoo's attribute lookups per member and its dozen numpy calls per front (a fifth of the
    loop's cost per genome at population 64)."""

    def __init__(self) -> None:
        super().__init__(crowding_func="cd")

    def _do(self, problem, pop, *args, random_state=None, n_survive=None, **kwargs):
        F = np.array([member.F for member in pop], dtype=float)
        survivors: list[int] = []
        for rank, front in enumerate(self.nds.do(F, n_stop_if_ranked=n_survive)):
            crowding = _crowding_distance(np.ascontiguousarray(F[front]))
            chosen = front
            if len(survivors) + len(front) > n_survive:
                n_remove = len(survivors) + len(front) - n_survive
                order = randomized_argsort(
                    crowding, order="descending", method="numpy", random_state=random_state
                )
                chosen = front[order[:-n_remove]]
            for member, distance in zip(pop[front], crowding, strict=True):
                member.data["rank"] = rank
                member.data["crowding"] = distance
            survivors.extend(chosen.tolist())
        return pop[survivors]


@numba.njit(cache=True)
def _crowding_distance(F):  # pragma: no cover - compiled
    """pymoo's ``calc_crowding_distance`` (behind ``FunctionalDiversity`` without duplicate
    filtering), float for float: per objective, a stable sort, the gaps to both neighbours
    (infinite past either end) over the objective's range (a zero range gives zeros), summed
    over objectives in order and divided by their count."""
    n_points, n_obj = F.shape
    if n_points <= 2:
        return np.full(n_points, np.inf)
    total = np.zeros(n_points)
    for objective in range(n_obj):
        order = np.argsort(F[:, objective], kind="mergesort")
        column = F[order, objective]
        norm = column[n_points - 1] - column[0]
        if norm == 0.0:
            norm = np.nan
        for place in range(n_points):
            previous = column[place - 1] if place > 0 else -np.inf
            following = column[place + 1] if place < n_points - 1 else np.inf
            to_last = (column[place] - previous) / norm
            to_next = (following - column[place]) / norm
            if np.isnan(to_last):
                to_last = 0.0
            if np.isnan(to_next):
                to_next = 0.0
            total[order[place]] += to_last + to_next
    return total / n_obj


class NSGA2(_PymooNSGA2):
    """pymoo's NSGA-II, surviving by :class:`RankAndCrowding` unless given another survival.
    Without constraints every candidate is feasible, so ``_set_optimum`` keeps the first front
    from the ranks directly; pymoo's builds the population's feasibility and rank arrays
    through an attribute lookup per member, every generation."""

    def __init__(self, *args: object, survival: object = None, **kwargs: object) -> None:
        super().__init__(
            *args, survival=RankAndCrowding() if survival is None else survival, **kwargs
        )

    def _set_optimum(self, **kwargs: object) -> None:
        if self.problem.has_constraints():
            super()._set_optimum(**kwargs)
            return
        self.opt = self.pop[
            [index for index, member in enumerate(self.pop) if member.data.get("rank") == 0]
        ]
