"""Warm starts: accepted in every form a user holds masks, refused clearly otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import masksearch as ms
from masksearch.encodings import GenomeError
from masksearch.report import save_results
from masksearch.rundir import RunDir
from masksearch.warmstart import as_initial


@pytest.fixture(scope="module")
def seeds(digits_problem):
    return ms.warm_start(digits_problem, ["magnitude", "supermask"], epochs=1, seed=0)


def test_seeds_are_one_mask_per_source_and_density_with_their_cost(digits_problem, seeds):
    n_densities = len(digits_problem.densities)
    assert seeds.genomes.shape == (2 * n_densities, digits_problem.n_genes)
    assert [label.split("@")[0] for label in seeds.labels] == ["magnitude"] * n_densities + [
        "supermask"
    ] * n_densities
    # each mask keeps its target share of the weights (to the nearest weight)
    densities = seeds.genomes.mean(axis=1)
    targets = np.tile(digits_problem.densities, 2)
    assert np.allclose(densities, targets, atol=1.0 / digits_problem.n_genes)
    assert seeds.epochs == n_densities  # one epoch of supermask training per density
    assert seeds.seconds > 0
    assert np.array_equal(seeds.genomes[:n_densities], digits_problem.magnitude_genomes())


def test_supermask_seeds_beat_magnitude_on_the_validation_data(digits_problem, seeds):
    n = len(digits_problem.densities)
    error = digits_problem.evaluate(seeds.genomes).metrics["error"]
    assert (error[n:] < error[:n]).all()


def test_supermask_path_seeds_every_density_from_one_run_and_counts_its_epochs(digits_problem):
    targets = list(digits_problem.densities)
    seeds = ms.warm_start(digits_problem, ["supermask-path"], epochs=2, seed=0)
    assert [label for label in seeds.labels] == [f"supermask-path@{d:g}" for d in targets]
    assert np.allclose(seeds.genomes.mean(axis=1), targets, atol=1.0 / digits_problem.n_genes)
    # 2 epochs at the densest target, then 1 at each sparser one
    assert seeds.epochs == 2 + (len(targets) - 1)
    # the densest seed is exactly supermask's with the same epochs and seed
    densest = int(np.argmax(targets))
    alone = ms.warm_start(
        digits_problem, ["supermask"], densities=[targets[densest]], epochs=2, seed=0
    )
    assert np.array_equal(seeds.genomes[densest], alone.genomes[0])
    magnitude = digits_problem.evaluate(digits_problem.encoding.magnitude(targets)).F[:, 0]
    assert (digits_problem.evaluate(seeds.genomes).F[:, 0] < magnitude).all()


def test_warm_starts_made_at_different_densities_add_up(digits_problem, seeds):
    densest, *sparser = sorted(digits_problem.densities, reverse=True)
    magnitude = ms.warm_start(digits_problem, ["magnitude"])
    sparse = ms.warm_start(digits_problem, ["supermask"], densities=sparser, epochs=1, seed=0)
    total = magnitude + sparse + magnitude  # the repeated magnitude masks are kept once
    assert total.labels == magnitude.labels + sparse.labels
    np.testing.assert_array_equal(
        total.genomes, np.concatenate([magnitude.genomes, sparse.genomes])
    )
    assert (total.seconds, total.epochs) == (
        2 * magnitude.seconds + sparse.seconds,
        sparse.epochs,
    )
    assert total.epochs == len(sparser) and total.summary()["sources"] == [
        "magnitude",
        "supermask",
    ]
    # the sparser supermask seeds are those of one call over every density
    np.testing.assert_array_equal(sparse.genomes, seeds.genomes[-len(sparser) :])
    other = ms.WarmStart(np.zeros((1, digits_problem.n_genes + 1), dtype=bool), ("x",))
    with pytest.raises(ValueError, match="same problem"):
        magnitude + other
    with pytest.raises(TypeError):
        magnitude + seeds.genomes


def test_a_warm_started_search_never_ends_worse_than_its_seeds(digits_problem, seeds):
    result = ms.search(
        digits_problem, ms.make_solver("nsga2", pop_size=16), budget=64, seed=0, initial=seeds
    )
    seed_F = digits_problem.evaluate(seeds.genomes).F
    for row in seed_F:
        assert (row + 1e-12 >= result.front.F).all(axis=1).any(), row
    assert result.warm_start == seeds.summary()


def test_same_seed_same_front_with_warm_starts(digits_problem):
    def run():
        initial = ms.warm_start(digits_problem, ["supermask"], epochs=1, seed=3)
        result = ms.search(
            digits_problem, ms.make_solver("nsga2", pop_size=8), budget=24, seed=1, initial=initial
        )
        return result.front.genomes, result.front.F

    (genomes_a, F_a), (genomes_b, F_b) = run(), run()
    assert np.array_equal(genomes_a, genomes_b) and np.array_equal(F_a, F_b)


def test_masks_flat_masks_and_genomes_are_all_accepted(digits_problem):
    masks = [ms.Mask.magnitude(digits_problem.model, d) for d in digits_problem.densities]
    from_masks = as_initial(digits_problem, masks)
    flat = np.stack([m.flat() for m in masks])
    assert np.array_equal(as_initial(digits_problem, flat), from_masks)
    assert np.array_equal(as_initial(digits_problem, flat.astype(np.uint8)), from_masks)
    assert np.array_equal(as_initial(digits_problem, from_masks), from_masks)
    assert np.array_equal(from_masks, digits_problem.magnitude_genomes())


def test_a_mask_of_another_model_is_refused(digits_problem):
    other = nn.Sequential(nn.Linear(64, 10))
    with pytest.raises(GenomeError, match="does not fit this problem's model"):
        as_initial(digits_problem, ms.Mask.magnitude(other, 0.5))


def test_rows_of_the_wrong_width_are_refused(digits_problem):
    with pytest.raises(GenomeError, match=f"{digits_problem.n_genes} genes"):
        as_initial(digits_problem, np.ones((2, 17), dtype=bool))
    flat = np.full((1, digits_problem.layout.n_total), 2)
    with pytest.raises(GenomeError, match="0/1"):
        as_initial(digits_problem, flat)


def test_unknown_source_names_the_choices(digits_problem):
    with pytest.raises(ValueError, match="supermask"):
        ms.warm_start(digits_problem, ["supermaks"])


def test_a_run_directory_seeds_its_front(digits_problem, tmp_path):
    result = ms.search(digits_problem, ms.make_solver("nsga2", pop_size=8), budget=24, seed=0)
    run = RunDir(tmp_path / "run")
    save_results(run, result, digits_problem)
    seeds = ms.warm_start(digits_problem, [str(run.path)])
    assert len(seeds) == len(result.front)
    assert {g.tobytes() for g in seeds.genomes} == {g.tobytes() for g in result.front.genomes}
    assert seeds.seconds >= 0 and seeds.epochs == 0


def test_learning_sources_need_training_data(digits_problem):
    bare = ms.PruningProblem(digits_problem.model, digits_problem.data)
    assert bare.train_data is None
    with pytest.raises(ValueError, match="learns from data"):
        ms.warm_start(bare, ["supermask"])
    # data= supplies it
    train = ms.Split(digits_problem.data.x, digits_problem.data.y)
    seeds = ms.warm_start(bare, ["supermask"], data=train, epochs=1)
    assert len(seeds) == len(bare.densities)
    assert torch.is_tensor(train.x)


def test_a_method_with_its_own_options_is_a_source(digits_problem):
    from masksearch.methods import SupermaskPath

    path = SupermaskPath(epochs=1, later_epochs=0.5, seed=2)
    seeds = ms.warm_start(digits_problem, path)  # one source, not in a list
    n = len(digits_problem.densities)
    assert seeds.labels == tuple(f"supermask-path@{d:g}" for d in digits_problem.densities)
    assert seeds.epochs == 1 + 0.5 * (n - 1)
    again = ms.warm_start(digits_problem, ["supermask-path"], epochs=1, seed=2)
    # the same method by name has later_epochs 1: the densest mask is the same, the others not
    densest = int(np.argmax(digits_problem.densities))
    assert np.array_equal(seeds.genomes[densest], again.genomes[densest])
    assert again.epochs == 1 + (n - 1)


def test_options_reach_the_named_methods_that_take_them(digits_problem):
    from masksearch.methods import SupermaskPath

    recipe = {"lr": 0.05, "lr_schedule": "cosine"}
    seeds = ms.warm_start(
        digits_problem, ["magnitude", "supermask-path"], epochs=1, seed=2, options=recipe
    )
    by_hand = ms.warm_start(
        digits_problem, ["magnitude", SupermaskPath(epochs=1, seed=2, **recipe)]
    )
    np.testing.assert_array_equal(seeds.genomes, by_hand.genomes)
    plain = ms.warm_start(digits_problem, ["magnitude", "supermask-path"], epochs=1, seed=2)
    assert not np.array_equal(seeds.genomes, plain.genomes)  # the options changed the masks


@pytest.mark.parametrize(
    ("sources", "options", "fragment"),
    [
        (["magnitude", "supermask"], {"lr_schdule": "cosine"}, "'lr_schdule' is taken by none"),
        (["magnitude"], {"lr": 0.02}, "of the methods named (none)"),
        # a class-level attribute is not an option
        (
            ["supermask"],
            {"name": "x"},
            "their options are batch_size, label_smoothing, lr, lr_schedule",
        ),
        (
            ["supermask"],
            {"epochs": 3},
            "give epochs as its own setting (warm_start(epochs=...), --init-epochs)",
        ),
    ],
)
def test_an_option_no_named_method_takes_is_refused(digits_problem, sources, options, fragment):
    with pytest.raises(ValueError) as raised:
        ms.warm_start(digits_problem, sources, options=options)
    assert fragment in str(raised.value)
