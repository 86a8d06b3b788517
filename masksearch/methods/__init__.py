"""Pruning methods behind two small interfaces, swappable by name.

>>> from masksearch import methods
>>> mask = methods.make_method("magnitude").prune(model, data, density=0.05)
>>> model, mask = methods.make_method("dns").run(model, data, 0.05, epochs=5)

One-shot criteria (:class:`OneShotMethod`): ``magnitude``, ``random``, ``snip``, ``obd``,
``wanda``, ``supermask``, ``method_a`` (a GA search). Training-time methods (:class:`TrainingMethod`): ``han``, ``gmp``,
``dns``, ``imp``, ``method_b``, ``oneshot_finetune``. :data:`METHODS` maps every name to its
class.
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
from masksearch.methods.method_a import MethodA, method_a_vs_magnitude
from masksearch.methods.method_b import MethodB, SmallWeightStatistic
from masksearch.methods.oneshot import OBD, SNIP, Magnitude, RandomPruning, Wanda
from masksearch.methods.supermask import Supermask
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
    "LotteryTicket",
    "Magnitude",
    "MethodA",
    "MethodB",
    "MethodError",
    "OneShotFinetune",
    "OneShotMethod",
    "Progress",
    "RandomPruning",
    "SmallWeightStatistic",
    "Supermask",
    "TrainingMethod",
    "Wanda",
    "make_method",
    "method_a_vs_magnitude",
    "register",
]
