"""Parallel evaluation: split the population into chunks evaluated by workers.

:class:`JoblibEvaluator` runs chunks in joblib workers (``"loky"`` processes by default;
``backend="dask"`` runs them on a Dask cluster through joblib's Dask backend when a
``distributed.Client`` exists). :class:`DaskEvaluator` scatters the evaluator to every worker of
a Dask cluster once and submits chunks to it.

The evaluator (model + data) is serialised once, when the wrapper is built; each worker
deserialises it once and keeps it (per process and thread) for later calls, so stateful
evaluators such as :class:`~masksearch.evaluators.incremental.IncrementalEvaluator` keep their
parent cache between calls. Masks travel bit-packed (8× smaller than bool arrays). Results are
those of the serial evaluator: every candidate is scored independently of its chunk.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from masksearch.evaluators.base import Evaluator, Metrics
from masksearch.mask import Layout

__all__ = ["DaskEvaluator", "JoblibEvaluator"]

# (token, process id, thread id) -> the evaluator this worker thread deserialised
_WORKER_EVALUATORS: dict[tuple[str, int, int], Evaluator] = {}
_WORKER_LIMIT = 8
_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _dumps(obj: object) -> bytes:
    try:
        import cloudpickle  # handles lambdas and local factories; comes with loky and dask
    except ImportError:  # pragma: no cover - plain pickle still handles evaluators
        import pickle

        return pickle.dumps(obj)
    return cloudpickle.dumps(obj)


def _worker_evaluator(token: str, payload: bytes, is_factory: bool) -> Evaluator:
    import pickle

    key = (token, os.getpid(), threading.get_ident())
    evaluator = _WORKER_EVALUATORS.get(key)
    if evaluator is None:
        source = pickle.loads(payload)
        evaluator = source() if is_factory else source
        if len(_WORKER_EVALUATORS) >= _WORKER_LIMIT:
            _WORKER_EVALUATORS.pop(next(iter(_WORKER_EVALUATORS)))
        _WORKER_EVALUATORS[key] = evaluator
    return evaluator


def _run_chunk(
    token: str,
    payload: bytes,
    is_factory: bool,
    packed: np.ndarray,
    n_total: int,
    threads: int | None,
    caller: int,
) -> Metrics:
    """Evaluate one bit-packed chunk in a joblib worker."""
    evaluator = _worker_evaluator(token, payload, is_factory)
    masks = np.unpackbits(packed, axis=1, count=n_total).astype(bool)
    # joblib's threading and sequential backends run this in the caller's process, where
    # torch's thread count is the caller's to keep: every later float sum there depends on it
    if threads is not None and os.getpid() != caller:
        import torch

        torch.set_num_threads(threads)
    return evaluator(masks)


def _run_scattered(evaluator: Evaluator, packed: np.ndarray, n_total: int) -> Metrics:
    """Evaluate one bit-packed chunk with the evaluator scattered to this Dask worker."""
    masks = np.unpackbits(packed, axis=1, count=n_total).astype(bool)
    # a worker with several threads shares one scattered object: evaluate one chunk at a time
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(id(evaluator), threading.Lock())
    with lock:
        return evaluator(masks)


def _chunk_bounds(n: int, n_chunks: int) -> list[tuple[int, int]]:
    n_chunks = max(1, min(n, n_chunks))
    edges = np.linspace(0, n, n_chunks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _concatenate(parts: list[Metrics]) -> Metrics:
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


class JoblibEvaluator(Evaluator):
    """Evaluate population chunks in parallel joblib workers.

    ``inner`` is an evaluator, or a picklable zero-argument factory that builds one in each
    worker (then pass ``layout``, or the factory is called once here to learn it). ``n_jobs``
    workers get ``n_chunks`` (default ``n_jobs``) contiguous chunks. ``threads_per_worker``
    sets torch's thread count in the workers (default: ``cpu_count // n_jobs``, at least 1),
    so workers do not oversubscribe the CPU.
    """

    def __init__(
        self,
        inner: Evaluator | Callable[[], Evaluator],
        n_jobs: int = 2,
        backend: str = "loky",
        n_chunks: int | None = None,
        threads_per_worker: int | None = None,
        layout: Layout | None = None,
    ) -> None:
        is_factory = not isinstance(inner, Evaluator)
        if is_factory and not callable(inner):
            raise TypeError(
                f"inner must be an Evaluator or a zero-argument factory returning one, got "
                f"{type(inner).__name__}"
            )
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
            raise ValueError(f"n_jobs must be an int >= 1, got {n_jobs!r}")
        if layout is None:
            layout = inner().layout if is_factory else inner.layout
        self.layout = layout
        self.n_jobs = n_jobs
        self.backend = backend
        self.n_chunks = n_jobs if n_chunks is None else int(n_chunks)
        if threads_per_worker is None:
            threads_per_worker = max(1, (os.cpu_count() or 1) // n_jobs)
        self.threads_per_worker = threads_per_worker
        self.n_samples = None if is_factory else getattr(inner, "n_samples", None)
        self._is_factory = is_factory
        self._payload = _dumps(inner)
        self._token = uuid.uuid4().hex
        self._parallel: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_parallel"] = None
        return state

    def _evaluate(self, masks: np.ndarray) -> Metrics:
        from joblib import Parallel, delayed

        if self._parallel is None:
            self._parallel = Parallel(n_jobs=self.n_jobs, backend=self.backend)
        packed = np.packbits(masks, axis=1)
        tasks = [
            delayed(_run_chunk)(
                self._token,
                self._payload,
                self._is_factory,
                packed[start:stop],
                self.layout.n_total,
                self.threads_per_worker,
                os.getpid(),
            )
            for start, stop in _chunk_bounds(len(masks), self.n_chunks)
        ]
        return _concatenate(list(self._parallel(tasks)))


class DaskEvaluator(Evaluator):
    """Evaluate population chunks on a Dask cluster.

    ``scheduler`` is a ``distributed.Client``, a scheduler address (a client is created and
    owned, see :meth:`close`) or None (the current default client). The evaluator is scattered
    to every worker once (``broadcast=True``); each call submits ``n_chunks`` chunks (default:
    one per worker thread) and gathers the results in order.
    """

    def __init__(
        self,
        inner: Evaluator,
        scheduler: Any = None,
        n_chunks: int | None = None,
    ) -> None:
        from distributed import Client, get_client

        if not isinstance(inner, Evaluator):
            raise TypeError(f"inner must be an Evaluator, got {type(inner).__name__}")
        self._owns_client = False
        if scheduler is None:
            try:
                client = get_client()
            except ValueError:
                raise ValueError(
                    "no Dask client is running; pass scheduler=<address or Client>"
                ) from None
        elif isinstance(scheduler, Client):
            client = scheduler
        elif isinstance(scheduler, str):
            client = Client(scheduler)
            self._owns_client = True
        else:
            raise TypeError(
                f"scheduler must be a distributed.Client, an address string or None, got "
                f"{type(scheduler).__name__}"
            )
        self.client = client
        self.layout = inner.layout
        self.n_samples = getattr(inner, "n_samples", None)
        workers = client.scheduler_info().get("workers", {})
        if not workers:
            raise ValueError("the Dask cluster has no workers; start some before evaluating")
        threads = sum(int(info.get("nthreads", 1)) for info in workers.values())
        self.n_chunks = threads if n_chunks is None else int(n_chunks)
        self._remote = client.scatter(inner, broadcast=True, hash=False)

    def _evaluate(self, masks: np.ndarray) -> Metrics:
        packed = np.packbits(masks, axis=1)
        futures = [
            self.client.submit(
                _run_scattered, self._remote, packed[start:stop], self.layout.n_total, pure=False
            )
            for start, stop in _chunk_bounds(len(masks), self.n_chunks)
        ]
        return _concatenate(self.client.gather(futures))

    def close(self) -> None:
        """Release the scattered evaluator (and the client, if this object created it)."""
        self._remote.release()
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> DaskEvaluator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
