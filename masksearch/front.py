"""The Pareto archive of a search: every non-dominated genome evaluated so far."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from masksearch.keys import row_keys
from masksearch.mask import Mask

# One dominance test for the archive and the solvers; it lives with the solvers (no torch)
# and stays importable from here, its old home.
from masksearch.solvers.base import dominated_by, non_dominated


def hypervolume(F: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume dominated by ``F`` up to ``reference`` (exact in 2-D, pymoo's HV beyond)."""
    F = np.asarray(F, dtype=np.float64)
    F = F[np.all(reference > F, axis=1)]
    if len(F) == 0:
        return 0.0
    if F.shape[1] == 2:
        points = F[non_dominated(F)]
        points = points[np.argsort(points[:, 0])]
        widths = np.diff(np.append(points[:, 0], reference[0]))
        return float(np.sum(widths * (reference[1] - points[:, 1])))
    from pymoo.indicators.hv import HV

    return float(HV(ref_point=reference)(F))


def density_slack(n_weights: int | None) -> float:
    """Half a weight: a mask keeping ``round(target * n_weights)`` weights meets ``target``."""
    return 0.5 / n_weights if n_weights else 1e-12


def best_within(
    density: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    max_density: float,
    slack: float = 0.0,
) -> int | None:
    """Position of the lowest ``values`` entry whose density is <= ``max_density + slack``
    (None when no entry is that sparse); the first one wins a tie.

    ``slack`` is usually half a weight (``0.5 / n_weights``): a mask keeping
    ``round(max_density * n_weights)`` weights meets the target.
    """
    density, values = np.asarray(density, dtype=float), np.asarray(values, dtype=float)
    candidates = np.flatnonzero(density <= max_density + slack)
    if len(candidates) == 0:
        return None
    return int(candidates[np.argmin(values[candidates])])


class ParetoFront:
    """Non-dominated archive with each member's genome, objectives and metrics.

    Members are kept in order of the first objective, ties by the second.
    """

    def __init__(self, objectives: Sequence[str], layout, decode) -> None:
        self.objectives = tuple(objectives)
        self._layout = layout
        self._decode = decode
        # bool genomes are stored packed, eight genes a byte: the archive of an 11 M-weight
        # model holds 1.4 MB per member instead of 11 MB
        self._stored: np.ndarray | None = None
        self._n_bits: int | None = None
        self.F = np.empty((0, len(self.objectives)))
        self.metrics: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.F)

    @property
    def genomes(self) -> np.ndarray | None:
        """The members' genomes (a fresh array; None before the first member)."""
        if self._stored is None or self._n_bits is None:
            return self._stored
        return np.unpackbits(self._stored, axis=1, count=self._n_bits).view(np.bool_)

    @genomes.setter
    def genomes(self, genomes: np.ndarray | None) -> None:
        self._keys_of = None
        if genomes is None or genomes.dtype != np.bool_:
            self._stored, self._n_bits = genomes, None
        else:
            self._stored, self._n_bits = np.packbits(genomes, axis=1), genomes.shape[1]

    def genome(self, position: int) -> np.ndarray:
        """Member ``position``'s genome (a fresh array)."""
        if self._stored is None or not 0 <= position < len(self):
            raise IndexError(f"the front has {len(self)} members; no member {position}")
        row = self._stored[position : position + 1]
        if self._n_bits is None:
            return row[0].copy()
        return np.unpackbits(row, axis=1, count=self._n_bits).view(np.bool_)[0]

    def __setstate__(self, state: dict) -> None:
        # fronts pickled before genomes were stored packed hold them as an attribute
        genomes = state.pop("genomes", None) if "_stored" not in state else None
        self.__dict__.update(state)
        # keys are recomputed: a front pickled by another version may hold another hash's keys
        self._keys_of = None
        if "_stored" not in state:
            self.genomes = genomes

    def update(
        self,
        genomes: np.ndarray,
        F: np.ndarray,
        metrics: dict[str, np.ndarray],
        *,
        packed_bits: int | None = None,
    ) -> None:
        """Merge evaluated genomes into the archive (only feasible, exact ones belong here).

        A genome already in the archive, or repeated in ``genomes``, is kept once (its first
        occurrence; were one genome scored differently twice, its first occurrence that no
        member dominates). Members' keys are remembered, so each generation hashes only its
        new genomes that no member dominates, and the genomes array is built once, from the
        survivors. With
        ``packed_bits``, ``genomes`` are bool genomes of that many genes packed as
        :func:`np.packbits` packs them (what the shipped solvers evolve).
        """
        if len(genomes) == 0:
            return
        # a genome that a member dominates never enters, and neither does any genome it
        # dominates (the member dominates those too): only the others are hashed, most
        # children of a search hash nothing
        candidates = np.flatnonzero(~dominated_by(F, self.F))
        if packed_bits is None and genomes.dtype == np.bool_:
            keys = row_keys(np.packbits(genomes[candidates], axis=1))
        else:
            keys = row_keys(genomes[candidates])
        old_keys = self._member_keys()
        seen = set(old_keys)
        new_keys: list[bytes] = []
        fresh: list[int] = []
        for i, key in zip(candidates.tolist(), keys, strict=True):
            if key not in seen:
                seen.add(key)
                fresh.append(i)
                new_keys.append(key)
        n_old = len(old_keys)
        fresh_rows = np.asarray(fresh, dtype=np.intp)
        all_F = np.concatenate([self.F, F[fresh_rows]])
        if self._stored is None:  # not self.genomes, which unpacks every member
            all_metrics = {k: np.asarray(v)[fresh_rows] for k, v in metrics.items()}
        else:
            all_metrics = {
                k: np.concatenate([self.metrics[k], np.asarray(metrics[k])[fresh_rows]])
                for k in self.metrics
            }
        keep = np.flatnonzero(non_dominated(all_F))
        keep = keep[np.lexsort(all_F[keep].T[::-1])]
        # one copy of the survivors' genomes, none of the whole archive
        if self._stored is None and packed_bits is not None:
            self._stored, self._n_bits = genomes[:0], int(packed_bits)
        elif self._stored is None:
            self.genomes = genomes[:0]  # sets the storage form
        was_member = keep < n_old
        arrivals = genomes[fresh_rows[keep[~was_member] - n_old]]
        if self._n_bits is not None and packed_bits is None:
            arrivals = np.packbits(arrivals, axis=1)
        stored = np.empty((len(keep), *arrivals.shape[1:]), dtype=arrivals.dtype)
        stored[was_member] = self._stored[keep[was_member]]
        stored[~was_member] = arrivals
        self._stored = stored
        self.F = all_F[keep]
        self.metrics = {k: v[keep] for k, v in all_metrics.items()}
        all_keys = old_keys + new_keys
        self._keys = [all_keys[i] for i in keep]
        self._keys_of = self._stored

    def _member_keys(self) -> list[bytes]:
        """The members' genome keys, recomputed when the genomes were replaced from outside."""
        if self._stored is None:
            return []
        if getattr(self, "_keys_of", None) is not self._stored:
            self._keys = row_keys(self._stored)
            self._keys_of = self._stored
        return list(self._keys)

    def hypervolume(self, reference: np.ndarray) -> float:
        return hypervolume(self.F, reference)

    def index(self, *, max_density: float | None = None, objective: str | None = None) -> int:
        """Position of the member best on ``objective`` among those within ``max_density``."""
        if len(self) == 0:
            raise ValueError("the front is empty: the search evaluated no feasible genome")
        objective = objective or next(
            (o for o in ("error", "loss") if o in self.metrics), self.objectives[0]
        )
        if objective not in self.metrics:
            raise ValueError(f"unknown metric {objective!r}; the front has {sorted(self.metrics)}")
        if max_density is None:
            return int(np.argmin(self.metrics[objective]))
        position = best_within(
            self.metrics["density"],
            self.metrics[objective],
            max_density,
            density_slack(self._layout.n_total),
        )
        if position is None:
            lowest = float(self.metrics["density"].min())
            raise ValueError(
                f"no mask on the front has density <= {max_density}; the sparsest has "
                f"{lowest:.4f}. Raise max_density or search with that density as a target."
            )
        return position

    def best(self, *, max_density: float | None = None, objective: str | None = None) -> Mask:
        """The mask best on ``objective`` (default: error) with density <= ``max_density``."""
        return self.mask(self.index(max_density=max_density, objective=objective))

    def mask(self, position: int) -> Mask:
        flat = self._decode(self.genome(position)[None, :])[0]
        return Mask.from_flat(self._layout, flat)

    def rows(self) -> list[dict[str, float]]:
        """One dict of metrics per member, for tables and JSON."""
        return [{k: float(v[i]) for k, v in self.metrics.items()} for i in range(len(self))]
