"""masksearch: prune neural networks by searching for weight masks with metaheuristics.

A user defines a :class:`PruningProblem` (model, validation data, genome encoding, objectives),
runs :func:`search` with any solver (pymoo, DEAP, built-in, or their own ask/tell object) and
gets a :class:`Result` whose Pareto ``front`` trades accuracy against density.
"""

from __future__ import annotations

from masksearch.data import (
    DataRootError,
    Dataset,
    DatasetCorruptError,
    DatasetNotFoundError,
    Split,
    load,
)
from masksearch.encodings import Encoding, GenomeError, make_encoding
from masksearch.evaluators import Evaluator, make_evaluator
from masksearch.front import ParetoFront, hypervolume
from masksearch.local_search import GradientSwaps
from masksearch.mask import Layout, Mask, MaskError, prunable_parameters
from masksearch.models import build as build_model
from masksearch.problem import Evaluation, PruningProblem
from masksearch.search import CheckpointError, Result, search
from masksearch.solvers import SOLVERS, Solver, make_solver
from masksearch.training import evaluate, finetune, train
from masksearch.warmstart import WarmStart, warm_start
from masksearch.zoo import pretrained

__version__ = "0.1.0"

__all__ = [
    "SOLVERS",
    "CheckpointError",
    "Dataset",
    "DatasetCorruptError",
    "DatasetNotFoundError",
    "DataRootError",
    "Encoding",
    "Evaluation",
    "Evaluator",
    "GenomeError",
    "GradientSwaps",
    "Layout",
    "Mask",
    "MaskError",
    "ParetoFront",
    "PruningProblem",
    "Result",
    "Solver",
    "Split",
    "WarmStart",
    "build_model",
    "evaluate",
    "finetune",
    "hypervolume",
    "load",
    "make_encoding",
    "make_evaluator",
    "make_solver",
    "prunable_parameters",
    "pretrained",
    "search",
    "train",
    "warm_start",
]
