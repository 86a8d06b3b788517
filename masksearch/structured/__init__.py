"""Structured pruning: channel dependency groups (:mod:`~masksearch.structured.groups`)."""

from __future__ import annotations

from masksearch.structured.groups import (
    SUPPORTED_LAYERS,
    ChannelGroup,
    GroupTable,
    channel_groups,
    group_layout,
    trace_groups,
)

__all__ = [
    "SUPPORTED_LAYERS",
    "ChannelGroup",
    "GroupTable",
    "channel_groups",
    "group_layout",
    "trace_groups",
]
