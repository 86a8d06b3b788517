"""Genome encodings: how the genomes a solver evolves map to weight masks.

An :class:`Encoding` is built once from a model: it reads the prunable weights' magnitudes and
keeps only numpy arrays (no model reference), so it pickles cheaply to worker processes. It
then serves two roles:

* the *map* between genomes and flat masks (``decode`` / ``encode`` / ``magnitude``), the
  currency every evaluator understands: a ``(P, layout.n_total)`` bool array in
  :class:`~masksearch.mask.Layout` order;
* the *operators* a solver may use (``sample`` / ``mutate`` / ``crossover`` / ``repair``),
  which know the genome's structure (sparsity, fixed cardinality, level ladders) where generic
  bit-flip operators would destroy good masks.

A population is a 2-D numpy array ``(P, n_genes)``: ``bool`` for the binary encodings
(``weights``, ``pool``, ``channels``, ``groups``), ``int64`` for ``levels``. Every method accepts a single
1-D genome as a population of one, and never modifies its input.

One module per encoding: :mod:`~masksearch.encodings.base` (the interface, :class:`GenomeError`
and shared helpers), :mod:`~masksearch.encodings.binary` (the bool-genome bases),
:mod:`~masksearch.encodings.weights`, :mod:`~masksearch.encodings.pool`,
:mod:`~masksearch.encodings.levels`, :mod:`~masksearch.encodings.channels` and
:mod:`~masksearch.encodings.groups` (channel dependency groups). This package
re-exports them all and holds the registry (:data:`ENCODINGS`, :func:`make_encoding`);
checkpoints written before the split name the classes ``masksearch.encodings.<Class>``, which
still resolve here.
"""

from __future__ import annotations

import inspect

from torch import nn

from masksearch.encodings.base import Encoding, GenomeError
from masksearch.encodings.channels import ChannelsEncoding
from masksearch.encodings.groups import GroupsEncoding
from masksearch.encodings.levels import DEFAULT_LADDER, LevelsEncoding
from masksearch.encodings.pool import PoolEncoding
from masksearch.encodings.weights import WeightsEncoding
from masksearch.mask import Layout

__all__ = [
    "DEFAULT_LADDER",
    "ENCODINGS",
    "ChannelsEncoding",
    "Encoding",
    "GenomeError",
    "GroupsEncoding",
    "LevelsEncoding",
    "PoolEncoding",
    "WeightsEncoding",
    "make_encoding",
]


ENCODINGS: dict[str, type[Encoding]] = {
    "weights": WeightsEncoding,
    "pool": PoolEncoding,
    "levels": LevelsEncoding,
    "channels": ChannelsEncoding,
    "groups": GroupsEncoding,
}


def make_encoding(
    name: str, model: nn.Module, *, layout: Layout | None = None, **options: object
) -> Encoding:
    """Build the encoding registered as ``name`` ("weights", "pool", "levels", "channels",
    "groups")."""
    if name not in ENCODINGS:
        raise ValueError(f"unknown encoding {name!r}; choose one of {sorted(ENCODINGS)}")
    cls = ENCODINGS[name]
    parameters = {
        key: p
        for key, p in inspect.signature(cls).parameters.items()
        if key not in ("model", "layout")
    }
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        raise TypeError(
            f"the {name!r} encoding has no option {unknown[0]!r}; its options are "
            f"{sorted(parameters) or 'none'}"
        )
    missing = [
        key
        for key, p in parameters.items()
        if p.default is inspect.Parameter.empty and key not in options
    ]
    if missing:
        # say exactly how to pass it from each place a user builds an encoding
        key = missing[0]
        value = "0.05" if key == "density" else "VALUE"
        meaning = (
            " (the fraction of prunable weights kept; the search explores masks of this one "
            "density)"
            if key == "density"
            else ""
        )
        cli_default = (
            " (masksearch run uses the first of --densities when it is not given)"
            if (name, key) == ("pool", "density")
            else ""
        )
        raise TypeError(
            f"the {name!r} encoding needs the option {key!r}{meaning}. In Python: "
            f"PruningProblem(model, data, encoding={name!r}, encoding_options={{{key!r}: "
            f"{value}}}) or make_encoding({name!r}, model, {key}={value}). On the command "
            f"line: --encoding {name} --encoding-option {key}={value}, or in a TOML config "
            f'encoding = "{name}" with {key} = {value} under [encoding_options]{cli_default}'
        )
    return cls(model, layout=layout, **options)
