"""Checkpoints that cannot run code when they are loaded.

A checkpoint holds the whole search state (solver, Pareto archive, history, local search,
evaluator cache) so that a resumed search reaches the same front as an uninterrupted one. It
is a pickle, because pymoo's and DEAP's algorithm objects have no other serialised form. Plain
``pickle.load`` would call whatever a crafted file names (``os.system`` through ``__reduce__``),
and run directories get shared, so :func:`load_checkpoint` uses :class:`SafeUnpickler`: it
resolves only the classes and functions on :data:`ALLOWED` (what masksearch's own solvers,
archive and local search are made of, plus numpy's array and random-generator state), and
``getattr`` only for the encoding methods a solver or front keeps a reference to. Anything
else refuses the file with :class:`CheckpointError` before any of it is built.

A custom solver is resumed from Python by naming its classes: ``trust(MySolver)`` (or
``search(..., resume=True)``, which trusts the type of the solver and local search it is given).
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

from masksearch.io import atomic_write

__all__ = [
    "ALLOWED",
    "CheckpointError",
    "SafeUnpickler",
    "load_checkpoint",
    "save_checkpoint",
    "trust",
]

#: Format 2 is format 1 read through :class:`SafeUnpickler`; both are accepted.
CHECKPOINT_FORMAT = 2
READABLE_FORMATS = (1, 2)


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read, refers to code we do not load, or belongs to another search."""


def _names(module: str, *names: str) -> set[tuple[str, str]]:
    return {(module, name) for name in names}


#: (module, name) pairs a checkpoint may refer to: measured by loading checkpoints of every
#: shipped solver, with and without the local search, for every objective.
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    _names(
        "builtins",
        "int",
        "float",
        "complex",
        "bool",
        "str",
        "bytes",
        "bytearray",
        "list",
        "tuple",
        "dict",
        "set",
        "frozenset",
        "slice",
        "range",
        "map",
        "object",
    )
    | _names("collections", "OrderedDict", "defaultdict", "deque")
    | _names("functools", "partial")
    # deepcopy only rebuilds objects that were themselves built from this list
    | _names("copy", "deepcopy")
    | _names("numpy", "dtype", "ndarray", "sum")
    | _names("numpy.core.multiarray", "_reconstruct", "scalar")
    | _names("numpy._core.multiarray", "_reconstruct", "scalar")
    | _names("numpy.core.numeric", "_frombuffer")
    | _names("numpy._core.numeric", "_frombuffer")
    | _names(
        "numpy.random._pickle", "__bit_generator_ctor", "__generator_ctor", "__randomstate_ctor"
    )
    | _names("numpy.random._pcg64", "PCG64", "PCG64DXSM")
    | _names("numpy.random._mt19937", "MT19937")
    | _names("numpy.random._philox", "Philox")
    | _names("numpy.random._sfc64", "SFC64")
    | _names("numpy.random.bit_generator", "SeedSequence", "__pyx_unpickle_SeedSequence")
    # encodings.py became a package: checkpoints written before name the classes by the
    # package (still re-exported there), newer ones by the module that defines them
    | _names(
        "masksearch.encodings",
        "WeightsEncoding",
        "PoolEncoding",
        "LevelsEncoding",
        "ChannelsEncoding",
    )
    | _names("masksearch.encodings.weights", "WeightsEncoding")
    | _names("masksearch.encodings.pool", "PoolEncoding")
    | _names("masksearch.encodings.levels", "LevelsEncoding")
    | _names("masksearch.encodings.channels", "ChannelsEncoding")
    # the groups encoding (its __setstate__ only fills in defaults and sorts its own arrays)
    # and its channel-group table (frozen dataclasses of arrays and names)
    | _names("masksearch.encodings.groups", "GroupsEncoding")
    | _names("masksearch.structured.groups", "GroupTable", "ChannelGroup")
    | _names("masksearch.encodings.packed", "PackedOperators")
    | _names("masksearch.front", "ParetoFront")
    | _names("masksearch.local_search", "GradientSwaps")
    | _names("masksearch.mask", "Layout")
    | _names(
        "masksearch.solvers.deap_adapter",
        "DeapIndividual",
        "DeapSolver",
        "MinimisingFitness",
        "_select_nsga2",
        "_select_tournament",
    )
    | _names(
        "masksearch.solvers.pymoo_adapter",
        "PymooSolver",
        "_AskTellProblem",
        "_ForwardComparator",
        "_binary_tournament",
        "_HashDuplicateElimination",
        "_OperatorCrossover",
        "_OperatorMutation",
        "_OperatorRepair",
        "_OperatorSampling",
        "_ToldEvaluator",
    )
    # pymoo's NSGA-II with a faster survival and optimum (no __setstate__ or __reduce__ of
    # their own)
    | _names("masksearch.solvers._pymoo_nsga2", "NSGA2", "RankAndCrowding")
    | _names("masksearch.solvers.simple", "EvoPressSolver", "RandomSearch")
    | _names("deap.base", "Toolbox", "Fitness")
    | _names("pymoo.algorithms.moo.moead", "MOEAD", "ParallelMOEAD", "NeighborhoodSelection")
    | _names("pymoo.algorithms.moo.nsga2", "NSGA2", "binary_tournament", "RankAndCrowdingSurvival")
    | _names(
        "pymoo.algorithms.moo.nsga3",
        "NSGA3",
        "HyperplaneNormalization",
        "ReferenceDirectionSurvival",
    )
    | _names("pymoo.algorithms.moo.sms", "SMSEMOA", "LeastHypervolumeContributionSurvival")
    | _names("pymoo.algorithms.soo.nonconvex.ga", "GA", "FitnessSurvival")
    | _names("pymoo.core.callback", "Callback")
    | _names("pymoo.core.duplicate", "NoDuplicateElimination", "default_attr")
    | _names("pymoo.core.evaluator", "Evaluator")
    | _names("pymoo.core.individual", "Individual")
    | _names("pymoo.core.initialization", "Initialization")
    | _names("pymoo.core.mating", "Mating")
    | _names("pymoo.core.population", "Population")
    | _names("pymoo.core.problem", "ElementwiseEvaluationFunction", "LoopedElementwiseEvaluation")
    | _names("pymoo.core.termination", "NoTermination")
    | _names("pymoo.core.variable", "Real")
    | _names("pymoo.decomposition.tchebicheff", "Tchebicheff")
    | _names("pymoo.operators.selection.tournament", "TournamentSelection")
    | _names("pymoo.operators.survival.rank_and_crowding.classes", "RankAndCrowding")
    | _names(
        "pymoo.operators.survival.rank_and_crowding.metrics",
        "FunctionalDiversity",
        "calc_crowding_distance",
    )
    | _names("pymoo.util.display.column", "Column")
    | _names("pymoo.util.display.display", "Display")
    | _names("pymoo.util.display.multi", "MultiObjectiveOutput", "NumberOfNondominatedSolutions")
    | _names("pymoo.util.display.output", "NumberOfEvaluations", "NumberOfGenerations")
    | _names(
        "pymoo.util.display.single",
        "AverageConstraintViolation",
        "MinimumConstraintViolation",
        "SingleObjectiveOutput",
    )
    | _names("pymoo.util.nds.non_dominated_sorting", "NonDominatedSorting")
)

# A bound method pickles as getattr(obj, name). Arbitrary getattr reaches __globals__ and from
# there os.system, so only these public methods of masksearch encodings (and of their packed
# operators) resolve.
_ENCODING_METHODS = frozenset({"decode", "encode", "mutate", "crossover", "sample", "repair"})

_trusted: set[tuple[str, str]] = set()


class _Refused(pickle.UnpicklingError):
    """The file names something outside the allow-list (as opposed to being damaged)."""


def trust(*classes: type) -> None:
    """Let checkpoints refer to ``classes`` (a custom solver's own classes), in this process."""
    for cls in classes:
        if not isinstance(cls, type):
            raise TypeError(f"trust() takes classes, got {cls!r}")
        _trusted.add((cls.__module__, cls.__qualname__))


def _restricted_getattr(obj: Any, name: str) -> Any:
    from masksearch.encodings import Encoding
    from masksearch.encodings.packed import PackedOperators

    if isinstance(obj, (Encoding, PackedOperators)) and name in _ENCODING_METHODS:
        return getattr(obj, name)
    raise _Refused(
        f"refers to attribute {name!r} of a {type(obj).__name__}, which a checkpoint never needs"
    )


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds only :data:`ALLOWED` and :func:`trust`-ed objects."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("builtins", "getattr"):
            return _restricted_getattr
        if (module, name) in ALLOWED or (module, name) in _trusted:
            return super().find_class(module, name)
        raise _Refused(
            f"refers to {module}.{name}, which masksearch does not load from a checkpoint "
            "(loading it could run code)"
        )


def safe_loads(data: bytes) -> Any:
    return SafeUnpickler(io.BytesIO(data)).load()


def save_checkpoint(
    path: str | os.PathLike[str], state: dict[str, Any], fingerprint: dict[str, Any]
) -> None:
    """Write ``state`` (with the run's ``fingerprint``) atomically to ``path``."""
    payload = {"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, **state}
    atomic_write(
        path, lambda handle: pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
    )


def load_checkpoint(path: str | os.PathLike[str], fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The state saved at ``path``; refuses foreign code, damage and another search's file."""
    path = Path(path)
    try:
        payload = safe_loads(path.read_bytes())
    except _Refused as error:
        raise CheckpointError(
            f"checkpoint {path} was not loaded: it {error}. If you wrote it with your own solver, "
            "call masksearch.checkpoint.trust(YourClass) first; otherwise delete it and start "
            "afresh (`masksearch run --out DIR --overwrite`)"
        ) from None
    except Exception as error:  # any unreadable file is the same problem to the user
        raise CheckpointError(
            f"checkpoint {path} is damaged ({type(error).__name__}); delete it to start afresh"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") not in READABLE_FORMATS:
        raise CheckpointError(f"{path} is not a masksearch checkpoint (formats {READABLE_FORMATS})")
    theirs = payload.get("fingerprint")
    if not isinstance(theirs, dict):
        raise CheckpointError(f"{path} is damaged: it has no fingerprint of its search")
    differing = sorted(
        k for k in set(theirs) | set(fingerprint) if theirs.get(k) != fingerprint.get(k)
    )
    if differing:
        details = ", ".join(
            f"{k}: {theirs.get(k)!r} vs now {fingerprint.get(k)!r}" for k in differing
        )
        raise CheckpointError(
            f"checkpoint {path} belongs to a different search ({details}); resume with the "
            "same problem and settings, or choose a new output folder"
        )
    return payload
