"""The CUDA paths: evaluators, ``device="auto"`` problems, masking and fine-tuning on a GPU.

Every test here needs a visible CUDA device and is skipped without one (CI has none); they run
on a lent GPU machine through ``benchmarks/gpu_check.sh``. The CPU results are the reference:
Linear layers on CUDA run in full float32 (TF32 is off for matmuls by default), so losses agree
to float32 rounding and errors exactly on these small splits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from masksearch import catalogue, models, training
from masksearch.data import Split
from masksearch.evaluators import (
    BatchedEvaluator,
    PlainEvaluator,
    make_evaluator,
)
from masksearch.mask import Layout, Mask
from masksearch.problem import PruningProblem
from masksearch.search import search
from masksearch.solvers import make_solver

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _synthetic_split(shape: tuple[int, ...], n: int, seed: int) -> Split:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *shape), generator=generator)
    y = torch.randint(0, 10, (n,), generator=generator)
    return Split(x, y)


def _random_masks(layout: Layout, n: int, seed: int) -> np.ndarray:
    """``n`` masks at densities spread over (0, 1), plus the dense and the empty mask."""
    rng = np.random.default_rng(seed)
    densities = rng.uniform(0.02, 0.98, size=(n, 1))
    masks = rng.random((n, layout.n_total)) < densities
    edges = np.stack([np.ones(layout.n_total, bool), np.zeros(layout.n_total, bool)])
    return np.concatenate([masks, edges])


def _digits_case(digits_problem) -> tuple[torch.nn.Module, Split]:
    return digits_problem.model, digits_problem.data


def _lenet300_case(_digits_problem) -> tuple[torch.nn.Module, Split]:
    return models.lenet300(seed=0).eval(), _synthetic_split((1, 28, 28), 256, seed=2)


@pytest.mark.parametrize("case", [_digits_case, _lenet300_case], ids=["digits", "lenet300"])
@pytest.mark.parametrize("kind", ["batched", "plain", "prefix"])
def test_cuda_evaluators_equal_the_cpu_plain_evaluator(digits_problem, case, kind) -> None:
    model, split = case(digits_problem)
    layout = Layout.of(model)
    masks = _random_masks(layout, 40, seed=5)
    expected = PlainEvaluator(model, split, layout, device="cpu")(masks)
    # batched: several chunks per call, so the chunking on the GPU is exercised too
    options = {"chunk_size": 16} if kind == "batched" else {}
    evaluator = make_evaluator(model, split, layout, kind=kind, device="cuda", **options)
    assert evaluator.device.type == "cuda"
    found = evaluator(masks)
    assert found["loss"].dtype == np.float64 and found["error"].dtype == np.float64
    np.testing.assert_allclose(found["loss"], expected["loss"], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(found["error"], expected["error"])


def test_auto_evaluator_on_the_gpu_is_batched(digits_problem) -> None:
    model, split = digits_problem.model, digits_problem.data
    evaluator = make_evaluator(model, split, kind="auto", device="auto")
    assert isinstance(evaluator, BatchedEvaluator)
    assert evaluator.device.type == "cuda"
    # the caller's model and data stay where they were
    assert next(model.parameters()).device.type == "cpu"
    assert split.x.device.type == "cpu"
    # on the CPU the same call picks a CPU-only kind instead
    assert not isinstance(make_evaluator(model, split, kind="auto", device="cpu"), BatchedEvaluator)


def test_problem_with_device_auto_searches_on_the_gpu(digits_problem) -> None:
    on_gpu = PruningProblem(
        digits_problem.model,
        digits_problem.data,
        densities=digits_problem.densities,
        device="auto",
        name="digits_mlp_gpu",
    )
    assert isinstance(on_gpu.evaluator, BatchedEvaluator)
    assert on_gpu.evaluator.device.type == "cuda"

    on_cpu = PruningProblem(
        digits_problem.model,
        digits_problem.data,
        densities=digits_problem.densities,
        device="cpu",
        name="digits_mlp_cpu",
    )
    genomes = on_cpu.magnitude_genomes()
    np.testing.assert_array_equal(on_gpu.evaluate(genomes).F, on_cpu.evaluate(genomes).F)

    results = {
        name: search(problem, make_solver("nsga2", pop_size=16), budget=160, seed=0)
        for name, problem in (("gpu", on_gpu), ("cpu", on_cpu))
    }
    gpu, cpu = results["gpu"], results["cpu"]
    assert gpu.n_evals == cpu.n_evals
    assert len(cpu.front) >= 2
    # exact evaluators on both sides: fronts of the same size, give or take float32 rounding
    assert len(cpu.front) / 2 <= len(gpu.front) <= 2 * len(cpu.front)
    for density in digits_problem.densities:
        best = {
            name: result.front.metrics["error"][result.front.index(max_density=density)]
            for name, result in results.items()
        }
        assert abs(best["gpu"] - best["cpu"]) <= 0.05, (density, best)


def test_mask_apply_and_finetune_on_the_gpu_keep_pruned_weights_zero() -> None:
    model = models.digits_mlp(seed=0).to("cuda")
    mask = Mask.magnitude(model, density=0.1)
    mask.apply(model)
    params = dict(model.named_parameters())
    for name, keep in mask.tensors.items():
        assert params[name].device.type == "cuda"
        assert bool((params[name].detach().cpu()[~keep] == 0).all()), name

    split = _synthetic_split((1, 8, 8), 256, seed=3)
    for optimizer in ("sgd", "adam"):
        training.finetune(
            model,
            mask,
            split,
            epochs=2,
            lr=0.05 if optimizer == "sgd" else 0.01,
            optimizer=optimizer,
            weight_decay=1e-3,
            device="cuda",
        )
        params = dict(model.named_parameters())
        for name, keep in mask.tensors.items():
            weight = params[name].detach()
            assert weight.device.type == "cuda"
            assert bool((weight.cpu()[~keep] == 0).all()), (optimizer, name)
        kept = sum(int(torch.count_nonzero(params[n])) for n in mask.names)
        assert kept == mask.n_kept, optimizer  # the kept weights moved but none died

    scores = training.evaluate(model, split, device="cuda")
    reference = training.evaluate(model.to("cpu"), split, device="cpu")
    assert scores.accuracy == reference.accuracy
    assert scores.loss == pytest.approx(reference.loss, abs=1e-5)


def test_catalogue_problem_with_device_auto_uses_the_gpu() -> None:
    problem = catalogue.digits_mlp(device="auto")
    assert problem.evaluator.device.type == "cuda"
    metrics = problem.evaluate(problem.magnitude_genomes()).metrics
    assert np.all((metrics["error"] >= 0) & (metrics["error"] <= 1))


def test_cuda_repair_equals_the_cpu_repair(digits_problem) -> None:
    from masksearch.evaluators import RepairedEvaluator

    model, split = digits_problem.model, digits_problem.data
    train = digits_problem.train_data
    layout = Layout.of(model)
    masks = _random_masks(layout, 6, seed=7)
    options = {"steps": 3, "batch_size": 64, "seed": 2}
    expected = RepairedEvaluator(model, split, layout, train, device="cpu", **options)(masks)
    found = RepairedEvaluator(model, split, layout, train, device="cuda", **options)(masks)
    # three SGD steps move float32 rounding a little further than a forward pass does
    np.testing.assert_allclose(found["loss"], expected["loss"], rtol=0, atol=1e-4)
    assert np.abs(found["error"] - expected["error"]).max() <= 2 / len(split)
