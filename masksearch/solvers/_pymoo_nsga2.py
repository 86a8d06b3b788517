"""pymoo's NSGA-II with one method faster; its own module, so that importing the adapter does
not import pymoo's algorithms (a third of a second) before a search asks for one."""

from __future__ import annotations

from pymoo.algorithms.moo.nsga2 import NSGA2 as _PymooNSGA2

__all__ = ["NSGA2"]


class NSGA2(_PymooNSGA2):
    """pymoo's NSGA-II. Without constraints every candidate is feasible, so ``_set_optimum``
    keeps the first front from the ranks directly; pymoo's builds the population's
    feasibility and rank arrays through an attribute lookup per member, every generation."""

    def _set_optimum(self, **kwargs: object) -> None:
        if self.problem.has_constraints():
            super()._set_optimum(**kwargs)
            return
        self.opt = self.pop[
            [index for index, member in enumerate(self.pop) if member.data.get("rank") == 0]
        ]
