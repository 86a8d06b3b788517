"""Pruning methods behind two small interfaces, swappable by name.

>>> from masksearch import methods
>>> mask = methods.make_method("magnitude").prune(model, data, density=0.05)
>>> model, mask = methods.make_method("dns").run(model, data, 0.05, epochs=5)

One-shot criteria (:class:`OneShotMethod`): ``magnitude``, ``random``, ``snip``, ``obd``,
``wanda``, ``supermask``, ``supermask-path`` (the same along a path of densities, densest
first, one mask per density from one run) and ``large_plus_small`` (method A of docs/methods.md: the large
weights plus small ones a GA picks from a pool). Training-time methods
(:class:`TrainingMethod`): ``han``, ``gmp``, ``dns``, ``imp``, ``small_frequency`` (method B:
greedy pruning in stages by how often each weight was small during training, with swaps) and
``oneshot_finetune``. :data:`METHODS` maps every name to its class; the old names ``method_a``
and ``method_b`` (and the classes ``MethodA``, ``MethodB``) still work.
"""

from __future__ import annotations

from masksearch.methods.base import (
    METHODS,
    MethodError,
    OneShotMethod,
    Progress,
    TrainingMethod,
    make_method,
    register,
)
from masksearch.methods.large_plus_small import LargePlusSmallGA, large_plus_small_vs_magnitude
from masksearch.methods.method_a import MethodA, method_a_vs_magnitude
from masksearch.methods.method_b import MethodB
from masksearch.methods.oneshot import OBD, SNIP, Magnitude, RandomPruning, Wanda
from masksearch.methods.small_frequency import SmallFrequencyGreedy, SmallWeightStatistic
from masksearch.methods.supermask import Supermask, SupermaskPath
from masksearch.methods.training_time import (
    DynamicNetworkSurgery,
    GradualMagnitude,
    IterativeMagnitude,
    LotteryTicket,
    OneShotFinetune,
)

__all__ = [
    "METHODS",
    "OBD",
    "SNIP",
    "DynamicNetworkSurgery",
    "GradualMagnitude",
    "IterativeMagnitude",
    "LargePlusSmallGA",
    "LotteryTicket",
    "Magnitude",
    "MethodA",
    "MethodB",
    "MethodError",
    "OneShotFinetune",
    "OneShotMethod",
    "Progress",
    "RandomPruning",
    "SmallFrequencyGreedy",
    "SmallWeightStatistic",
    "Supermask",
    "SupermaskPath",
    "TrainingMethod",
    "Wanda",
    "large_plus_small_vs_magnitude",
    "make_method",
    "method_a_vs_magnitude",
    "register",
]
