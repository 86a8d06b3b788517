"""masksearch: prune neural networks by searching for weight masks with metaheuristics.

A user defines a :class:`PruningProblem` (model, validation data, genome encoding, objectives),
runs :func:`search` with any solver (pymoo, DEAP, built-in, or their own ask/tell object) and
gets a :class:`Result` whose Pareto ``front`` trades accuracy against density.
:func:`get_problem` names a shipped or registered problem, :func:`build_run` builds a whole run
from settings (as the CLI does) and :func:`save_run` writes a run directory that
``masksearch report`` and ``masksearch export`` read.
"""

from __future__ import annotations

from masksearch.builder import Run, build_run
from masksearch.catalogue import get as get_problem
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
from masksearch.report import save_run
from masksearch.search import CheckpointError, Result, search
from masksearch.selection import choose_held_out
from masksearch.solvers import SOLVERS, Solver, make_solver
from masksearch.structured import (
    LatencyTable,
    load_structured,
    measure_latency,
    save_structured,
    shrink,
    torch_pruning_genomes,
)
from masksearch.training import evaluate, finetune, recalibrate_batch_norm, train
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
    "LatencyTable",
    "Layout",
    "Mask",
    "MaskError",
    "ParetoFront",
    "PruningProblem",
    "Result",
    "Run",
    "Solver",
    "Split",
    "WarmStart",
    "build_model",
    "build_run",
    "choose_held_out",
    "evaluate",
    "finetune",
    "get_problem",
    "hypervolume",
    "load",
    "load_structured",
    "make_encoding",
    "make_evaluator",
    "make_solver",
    "measure_latency",
    "prunable_parameters",
    "pretrained",
    "recalibrate_batch_norm",
    "save_run",
    "save_structured",
    "search",
    "shrink",
    "torch_pruning_genomes",
    "train",
    "warm_start",
]
