"""Structured pruning: channel dependency groups (:mod:`~masksearch.structured.groups`),
measured latency (:mod:`~masksearch.structured.latency`), physically smaller models
(:mod:`~masksearch.structured.export`) and Torch-Pruning's own choices as warm starts
(:mod:`~masksearch.structured.warmstart`)."""

from __future__ import annotations

from masksearch.structured.export import load_structured, masked, save_structured, shrink
from masksearch.structured.groups import (
    SUPPORTED_LAYERS,
    ChannelGroup,
    GroupTable,
    channel_groups,
    group_layout,
    trace_groups,
)
from masksearch.structured.latency import LatencyTable, measure_latency
from masksearch.structured.warmstart import torch_pruning_genomes

__all__ = [
    "SUPPORTED_LAYERS",
    "ChannelGroup",
    "GroupTable",
    "LatencyTable",
    "channel_groups",
    "group_layout",
    "load_structured",
    "masked",
    "measure_latency",
    "save_structured",
    "shrink",
    "torch_pruning_genomes",
    "trace_groups",
]
