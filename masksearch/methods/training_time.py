"""Training-time pruning baselines: Han et al., Zhu & Gupta (GMP), DNS, lottery-ticket IMP.

Every method here starts from the model it is given (normally a trained dense network), spends
at most ``epochs`` passes over the train split in total, and returns the trained model with
its pruned weights exactly 0.0 together with the final mask. Budgets are counted in optimiser
steps (``epochs · ceil(n / batch_size)``), so rounds may last a fraction of an epoch; every
progress record carries ``epochs_used``.

The methods live by family — :mod:`~masksearch.methods.magnitude_schedules` (Han, GMP, IMP),
:mod:`~masksearch.methods.network_surgery` (DNS), :mod:`~masksearch.methods.oneshot_finetune` —
on the step loop of :mod:`masksearch.methods._trainer`; this module gathers them under the name
they were first imported by.
"""

from __future__ import annotations

from masksearch.methods._trainer import split_steps
from masksearch.methods.magnitude_schedules import (
    GradualMagnitude,
    IterativeMagnitude,
    LotteryTicket,
    gmp_schedule,
    gmp_sparsity,
    imp_schedule,
)
from masksearch.methods.network_surgery import (
    DynamicNetworkSurgery,
    dns_c_for_count,
    dns_thresholds,
    dns_update,
    dns_update_probability,
)
from masksearch.methods.oneshot_finetune import OneShotFinetune

__all__ = [
    "DynamicNetworkSurgery",
    "GradualMagnitude",
    "IterativeMagnitude",
    "LotteryTicket",
    "OneShotFinetune",
    "dns_c_for_count",
    "dns_thresholds",
    "dns_update",
    "dns_update_probability",
    "gmp_schedule",
    "gmp_sparsity",
    "imp_schedule",
    "split_steps",
]
