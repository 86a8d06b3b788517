from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from masksearch import models
from masksearch.evaluators import DaskEvaluator, JoblibEvaluator, PlainEvaluator, make_evaluator
from masksearch.mask import Layout

from .conftest import random_masks, synthetic_split


def _build(kind: str):
    """A module-level factory, so process workers can rebuild the evaluator themselves."""
    model = models.digits_mlp(seed=0).eval()
    return make_evaluator(model, synthetic_split((1, 8, 8), 96, seed=1), kind=kind)


@pytest.fixture(scope="module")
def serial(mlp, mlp_split):
    layout = Layout.of(mlp)
    masks = random_masks(layout, 7, np.random.default_rng(0))
    return masks, PlainEvaluator(mlp, mlp_split, layout)(masks)


def test_threaded_chunks_equal_serial(mlp, mlp_split, serial):
    masks, expected = serial
    evaluator = JoblibEvaluator(
        PlainEvaluator(mlp, mlp_split, Layout.of(mlp)), n_jobs=2, backend="threading", n_chunks=3
    )
    threads = torch.get_num_threads()
    result = evaluator(masks)
    np.testing.assert_array_equal(result["loss"], expected["loss"])
    np.testing.assert_array_equal(result["error"], expected["error"])
    # the threads ran in this process: its torch thread count is left as it was
    assert torch.get_num_threads() == threads


@pytest.mark.slow
def test_process_workers_equal_serial(mlp, mlp_split, serial):
    masks, expected = serial
    # an evaluator shipped to loky workers, and a factory that builds one in each worker
    shipped = JoblibEvaluator(PlainEvaluator(mlp, mlp_split, Layout.of(mlp)), n_jobs=2)
    built = JoblibEvaluator(
        functools.partial(_build, "incremental"), n_jobs=2, layout=Layout.of(mlp)
    )
    for evaluator in (shipped, built):
        result = evaluator(masks)
        np.testing.assert_allclose(result["loss"], expected["loss"], rtol=0, atol=1e-5)
        np.testing.assert_array_equal(result["error"], expected["error"])
    # the second call reuses the workers' evaluators
    again = built(masks[::-1])
    np.testing.assert_allclose(again["loss"], expected["loss"][::-1], rtol=0, atol=1e-5)


def test_joblib_rejects_bad_arguments(mlp, mlp_split):
    with pytest.raises(TypeError, match="factory"):
        JoblibEvaluator(42)
    with pytest.raises(ValueError, match="n_jobs"):
        JoblibEvaluator(PlainEvaluator(mlp, mlp_split, Layout.of(mlp)), n_jobs=0)


@pytest.mark.slow
def test_dask_cluster_equals_serial(mlp, mlp_split, serial):
    distributed = pytest.importorskip("distributed")
    masks, expected = serial
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
        DaskEvaluator(PlainEvaluator(mlp, mlp_split, Layout.of(mlp)), client) as evaluator,
    ):
        assert evaluator.n_chunks == 2
        result = evaluator(masks)
        np.testing.assert_array_equal(result["loss"], expected["loss"])
        np.testing.assert_array_equal(result["error"], expected["error"])
        single = evaluator(masks[:1])  # fewer candidates than workers
        np.testing.assert_array_equal(single["loss"], expected["loss"][:1])


def test_dask_needs_a_scheduler(mlp, mlp_split):
    pytest.importorskip("distributed")
    with pytest.raises(TypeError, match="scheduler"):
        DaskEvaluator(PlainEvaluator(mlp, mlp_split, Layout.of(mlp)), scheduler=3)
