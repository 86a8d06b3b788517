"""masksearch: prune neural networks by searching for weight masks with metaheuristics."""

from __future__ import annotations

from masksearch.data import Dataset, DatasetCorruptError, DatasetNotFoundError, Split, load
from masksearch.mask import Layout, Mask, MaskError, prunable_parameters
from masksearch.models import build as build_model
from masksearch.training import evaluate, finetune, train
from masksearch.zoo import pretrained

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "DatasetCorruptError",
    "DatasetNotFoundError",
    "Layout",
    "Mask",
    "MaskError",
    "Split",
    "build_model",
    "evaluate",
    "finetune",
    "load",
    "prunable_parameters",
    "pretrained",
    "train",
]
