"""``benchmarks/focused.py``: a search capped at one density from the seed there, its figures
against computations by hand, and its table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import masksearch as ms
from masksearch.builder import build_run
from masksearch.methods import Supermask, SupermaskPath

from .conftest import load_script, refused_options

TARGETS = (0.2, 0.1)


@pytest.fixture(scope="module")
def focused():
    return load_script("focused")


@pytest.fixture(scope="module")
def digits_run():
    return build_run(
        {
            "problem": "digits_mlp",
            "objectives": ["loss"],
            "densities": list(TARGETS),
            "solver": "ga",
            "pop_size": 8,
            "budget": 48,
            "local_search": "gradient-swaps",
            "init": ["magnitude"],
            "seed": 0,
        }
    )


@pytest.fixture(scope="module")
def digits_seeds(digits_run):
    path = SupermaskPath(epochs=1, later_epochs=1, seed=0)
    return ms.warm_start(digits_run.problem, ["magnitude", path])


def _masked_logits(model, layout, flat: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    """The model's logits with the weights of ``flat`` (one bool per prunable weight) zeroed
    out, by a plain masked copy of its parameters."""
    params = dict(model.named_parameters())
    saved = {name: params[name].detach().clone() for name in layout.names}
    try:
        with torch.no_grad():
            offset = 0
            for name, shape in zip(layout.names, layout.shapes, strict=True):
                size = int(np.prod(shape))
                keep = torch.from_numpy(flat[offset : offset + size].reshape(shape))
                params[name].mul_(keep.to(params[name].dtype))
                offset += size
            return model(x)
    finally:
        with torch.no_grad():
            for name, value in saved.items():
                params[name].copy_(value)


def _losses_by_hand(problem, flat: np.ndarray, held_out, smoothing: float) -> dict[str, float]:
    """The fitness and held-out loss of the masked model by the formula, ``(1 − ε)·(−log
    p_label) + ε·mean_k(−log p_k)`` (the plain cross-entropy at ε = 0)."""
    losses = {}
    for split, key in ((problem.data, "fitness_loss"), (held_out, "held_out_loss")):
        logits = _masked_logits(problem.model, problem.layout, flat, split.x)
        log_p = torch.log_softmax(logits, dim=1)
        label = -log_p.gather(1, split.y.view(-1, 1)).squeeze(1)
        losses[key] = float(((1 - smoothing) * label - smoothing * log_p.mean(dim=1)).mean())
    return losses


def _seed_mask(problem, seeds, density: float) -> np.ndarray:
    """The flat mask of the supermask-path seed at ``density``."""
    seed = seeds.genomes[seeds.labels.index(f"supermask-path@{density:g}")]
    return problem.encoding.decode(seed[None])[0]


def test_the_search_stays_at_its_density_and_never_ends_worse_than_its_seed(
    focused, digits_run, digits_seeds
) -> None:
    problem = digits_run.problem
    n_weights = problem.layout.n_total
    for density in TARGETS:
        result = focused.focused_search(digits_run, digits_seeds, density)
        assert problem.max_density == density
        kept = problem.encoding.decode(result.front.genomes).sum(axis=1)
        assert (kept <= round(density * n_weights)).all()
        seed = digits_seeds.genomes[digits_seeds.labels.index(f"supermask-path@{density:g}")]
        seed_loss = problem.evaluate(seed[None]).metrics["loss"][0]
        assert result.front.F[:, 0].min() <= seed_loss + 1e-6


def test_a_density_without_a_seed_is_refused_by_name(focused, digits_run, digits_seeds) -> None:
    with pytest.raises(ValueError, match="no seed at density 0.37"):
        focused.focused_search(digits_run, digits_seeds, 0.37)


def test_each_rows_figures_are_those_of_its_mask_computed_by_hand(
    focused, digits_run, digits_seeds
) -> None:
    problem = digits_run.problem
    held_out = ms.Split(problem.train_data.x[:300], problem.train_data.y[:300])
    density = TARGETS[1]
    row = focused.one_density(digits_run, digits_seeds, density, held_out)
    seed_mask = _seed_mask(problem, digits_seeds, density)
    for key, expected in _losses_by_hand(problem, seed_mask, held_out, 0.0).items():
        assert row["seed"][key] == pytest.approx(expected, rel=1e-5)
    test = problem.test_data
    logits = _masked_logits(problem.model, problem.layout, seed_mask, test.x)
    accuracy = float((logits.argmax(1) == test.y).float().mean())
    assert row["seed"]["test_accuracy"] == pytest.approx(accuracy)
    assert row["seed"]["density"] == pytest.approx(seed_mask.mean())
    # the search's own pick is its best fitness: never above the seed's
    assert row["search's own pick"]["fitness_loss"] <= row["seed"]["fitness_loss"] + 1e-5
    guarded = row[focused.ROWS[2]]
    if row["held_out_kept_seed"]:
        assert guarded == row["seed"]
    else:  # a challenger is taken only with a lower held-out loss
        assert guarded["held_out_loss"] < row["seed"]["held_out_loss"]
    assert row["n_evals"] >= 48


def test_a_smoothed_problems_rows_report_its_smoothed_losses(focused, digits_seeds) -> None:
    run = build_run(
        {
            "problem": "digits_mlp",
            "objectives": ["loss"],
            "densities": list(TARGETS),
            "solver": "ga",
            "pop_size": 8,
            "budget": 24,
            "local_search": "gradient-swaps",
            "init": ["magnitude"],
            "label_smoothing": 0.2,
        }
    )
    problem = run.problem
    held_out = ms.Split(problem.train_data.x[:300], problem.train_data.y[:300])
    density = TARGETS[0]
    row = focused.one_density(run, digits_seeds, density, held_out)
    seed_mask = _seed_mask(problem, digits_seeds, density)
    for key, expected in _losses_by_hand(problem, seed_mask, held_out, 0.2).items():
        assert row["seed"][key] == pytest.approx(expected, rel=1e-5)
    # the search minimised the same smoothed loss: its pick is never above the seed's
    assert row["search's own pick"]["fitness_loss"] <= row["seed"]["fitness_loss"] + 1e-5


def test_the_learned_seed_is_found_whatever_method_made_it(focused) -> None:
    genomes = np.zeros((4, 3), dtype=bool)
    labels = ("magnitude@0.05", "magnitude@0.01", "supermask-path@0.05", "supermask@0.01")
    seeds = ms.WarmStart(genomes, labels, 1.0, 1.0)
    assert focused.seed_index(seeds, 0.05) == 2
    assert focused.seed_index(seeds, 0.01) == 3
    with pytest.raises(ValueError, match="expected one learned seed at density 0.02"):
        focused.seed_index(seeds, 0.02)


def test_lenet5_seeds_are_learned_only_at_the_targets_asked_for(focused, digits_run) -> None:
    problem = digits_run.problem
    recipe = {"lr": 0.02, "lr_schedule": "cosine"}
    seeds = focused.lenet5_seeds(problem, (0.01,), 0, recipe, quick=True)
    assert seeds.labels == ("magnitude@0.01", "supermask@0.01")
    # the same mask as supermask from fresh scores at 1% alone, learned by hand
    by_hand = Supermask(epochs=1, seed=0, **recipe).prune(problem.model, problem.train_data, 0.01)
    learned = problem.encoding.decode(seeds.genomes[1:2])[0]
    np.testing.assert_array_equal(learned, by_hand.flat())
    assert seeds.epochs == pytest.approx(1.0)


def test_smoothed_and_single_density_runs_get_their_own_files(focused) -> None:
    import argparse

    def stem(**changes) -> str:
        values = {
            "problem": "lenet300_fashion",
            "label_smoothing": 0.0,
            "densities": focused.DENSITIES,
            "budget": None,
            "train_samples": None,
            "quick": False,
        }
        return focused.result_stem(argparse.Namespace(**{**values, **changes}))

    assert stem() == "focused"
    assert stem(label_smoothing=0.1, densities=(0.02,)) == "focused_ls0.1_d0.02"
    assert stem(quick=True, densities=(0.05, 0.01)) == "focused_d0.05-0.01_quick"
    lenet5 = stem(problem="lenet5_fashion", label_smoothing=0.1, densities=(0.01,), budget=4096)
    assert lenet5 == "focused_lenet5_ls0.1_d0.01_b4096"
    assert stem(train_samples=8000) == "focused_train8000"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--label-smoothing", "1", "--label-smoothing must be in [0, 1), got 1.0"),
        ("--densities", "0.03", "--densities must be among (0.05, 0.02, 0.01)"),
        ("--densities", "x", "--densities must be numbers, got 'x'"),
        ("--budget", "0", "--budget must be >= 1, got 0"),
        ("--train-samples", "-5", "--train-samples must be >= 1, got -5"),
        ("--problem", "vgg", "invalid choice: 'vgg'"),
    ],
)
def test_bad_options_are_refused_before_any_work(option, value, message) -> None:
    assert message in refused_options("focused", option, value)


def _synthetic_runs(focused) -> list[dict]:
    rng = np.random.default_rng(3)
    runs = []
    for seed in range(3):
        rows = []
        for density in focused.DENSITIES:
            row = {
                "density": density,
                "search_seconds": float(rng.uniform(50, 150)),
                "n_evals": 8240,
                "held_out_kept_seed": seed != 1,
            }
            for name in focused.ROWS:
                row[name] = {
                    "density": density,
                    "fitness_loss": float(rng.uniform(0.2, 0.7)),
                    "held_out_loss": float(rng.uniform(0.2, 0.7)),
                    "test_accuracy": float(rng.uniform(0.8, 0.9)),
                }
            rows.append(row)
        runs.append({"seed": seed, "densities": rows})
    return runs


def test_the_summary_and_the_page_give_each_rows_mean_and_std(focused) -> None:
    runs = _synthetic_runs(focused)
    table = focused.summarise(runs)
    assert [entry["density"] for entry in table] == list(focused.DENSITIES)
    payload = {
        "command": "python benchmarks/focused.py",
        "budget": 8192,
        "train_samples": 20000,
        "held_out_samples": 5000,
        "seeds": 3,
        "environment": {"cpu": {"model": "Some CPU"}},
        "table": table,
    }
    page = focused.markdown(payload)
    for index, density in enumerate(focused.DENSITIES):
        entry = table[index]
        assert entry["held_out_kept_seed"] == 2 and entry["n_seeds"] == 3
        for name in focused.ROWS:
            accuracies = [run["densities"][index][name]["test_accuracy"] for run in runs]
            losses = [run["densities"][index][name]["fitness_loss"] for run in runs]
            assert entry[name]["test_accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
            assert entry[name]["fitness_loss"]["std"] == pytest.approx(np.std(losses, ddof=1))
            shown = (
                f"| {density:.0%} | {name} | {100 * np.mean(accuracies):.2f} ± "
                f"{100 * np.std(accuracies, ddof=1):.2f} | {np.mean(losses):.4f} ± "
            )
            assert shown in page
        assert f"| {density:.0%} | 8,240 |" in page
        assert "| 2 of 3 seeds |" in page
    assert "Some CPU" in page and "8,192 evaluations" in page
    assert "LeNet-300-100 on Fashion-MNIST" in page and "side branches of 4 and 2" in page
    lenet5 = focused.markdown({**payload, "problem": "lenet5_fashion", "train_samples": 4000})
    assert "LeNet-5 on Fashion-MNIST" in lenet5 and "2% and 1% from fresh scores" in lenet5
    assert "on the first 4,000 training images" in lenet5
