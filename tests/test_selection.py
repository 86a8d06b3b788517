"""choose_held_out: the candidate best on held-out images at each target density."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import masksearch as ms
from masksearch import catalogue
from masksearch.encodings import GenomeError
from masksearch.training import evaluate


def candidates(problem, seed: int = 0) -> np.ndarray:
    """Magnitude masks at the targets plus random masks at and around them."""
    rng = np.random.default_rng(seed)
    rows = [problem.encoding.magnitude(problem.densities)]
    for density in (*problem.densities, 0.5):
        for _ in range(3):
            rows.append(rng.random((1, problem.n_genes)) < density)
    return np.concatenate(rows)


def test_each_target_gets_the_candidate_with_the_lowest_held_out_loss(digits_problem):
    problem = digits_problem
    genomes = candidates(problem)
    held_out = problem.test_data  # images the fitness never saw
    chosen = ms.choose_held_out(problem, genomes, held_out)
    assert set(chosen) == set(problem.densities)
    # an independent computation: each mask applied to a copy of the model, scored by evaluate
    masks = problem.encoding.decode(genomes)
    for target, row in chosen.items():
        within = [
            i for i in range(len(genomes)) if masks[i].sum() <= round(target * problem.n_genes)
        ]
        losses = {
            i: evaluate(
                ms.Mask.from_flat(problem.layout, masks[i]).apply(copy.deepcopy(problem.model)),
                held_out,
            ).loss
            for i in within
        }
        best = min(losses.values())
        assert row in within
        assert losses[row] == pytest.approx(best, abs=1e-5)


def test_the_held_out_loss_is_the_problems_smoothed_loss():
    problem = catalogue.digits_mlp(label_smoothing=0.3)
    genomes = candidates(problem)
    held_out = problem.test_data
    masks = problem.encoding.decode(genomes)

    def smoothed(row: int) -> float:
        model = ms.Mask.from_flat(problem.layout, masks[row]).apply(copy.deepcopy(problem.model))
        with torch.no_grad():
            log_p = torch.log_softmax(model(held_out.x), dim=1)
        label = -log_p.gather(1, held_out.y.view(-1, 1)).squeeze(1)
        return float((0.7 * label + 0.3 * -log_p.mean(dim=1)).mean())

    chosen = ms.choose_held_out(problem, genomes, held_out)
    for target, row in chosen.items():
        within = [
            i for i in range(len(genomes)) if masks[i].sum() <= round(target * problem.n_genes)
        ]
        assert smoothed(row) == pytest.approx(min(smoothed(i) for i in within), abs=1e-5)
    # with no margin the paired per-image comparison replaces the worst incumbent by the best
    target = problem.densities[0]
    within = [i for i in range(len(genomes)) if masks[i].sum() <= round(target * problem.n_genes)]
    worst = max(within, key=smoothed)
    again = ms.choose_held_out(
        problem, genomes, held_out, densities=(target,), incumbents=[worst], margin=0.0
    )
    assert again[target] == chosen[target] != worst


def test_error_as_the_objective_and_chosen_densities(digits_problem):
    problem = digits_problem
    genomes = candidates(problem, seed=1)
    chosen = ms.choose_held_out(
        problem, genomes, problem.test_data, densities=[0.1], objective="error"
    )
    masks = problem.encoding.decode(genomes)
    errors = {
        i: 1.0
        - evaluate(
            ms.Mask.from_flat(problem.layout, masks[i]).apply(copy.deepcopy(problem.model)),
            problem.test_data,
        ).accuracy
        for i in range(len(genomes))
        if masks[i].sum() <= round(0.1 * problem.n_genes)
    }
    assert list(chosen) == [0.1]
    assert errors[chosen[0.1]] == pytest.approx(min(errors.values()), abs=1e-6)


def test_bad_input_is_refused_with_the_reason(digits_problem):
    problem = digits_problem
    genomes = candidates(problem)
    with pytest.raises(ValueError, match="objective must be one of"):
        ms.choose_held_out(problem, genomes, problem.test_data, objective="accuracy")
    with pytest.raises(ValueError, match="no candidate keeps at most 0.001"):
        ms.choose_held_out(problem, genomes, problem.test_data, densities=[0.001])
    with pytest.raises(TypeError, match="split with x and y"):
        ms.choose_held_out(problem, genomes, [1, 2, 3])
    with pytest.raises(GenomeError):
        ms.choose_held_out(problem, genomes[:, :-1], problem.test_data)


def per_image_losses(problem, mask_row: np.ndarray, split) -> np.ndarray:
    """Independent: the mask applied to a copy of the model, cross-entropy image by image."""
    import torch
    import torch.nn.functional as F

    from masksearch.data import split_tensors
    from masksearch.device import as_model_input

    model = ms.Mask.from_flat(problem.layout, mask_row).apply(copy.deepcopy(problem.model)).eval()
    x, y = split_tensors(split)
    with torch.no_grad():
        logits = model(as_model_input(x, model, torch.device("cpu")))
    return F.cross_entropy(logits, y, reduction="none").double().numpy()


def near_candidates(problem, seed: int = 0) -> np.ndarray:
    """Magnitude masks at the targets, then each with a few kept and pruned weights swapped:
    candidates close enough that the held-out noise decides between some of them."""
    rng = np.random.default_rng(seed)
    magnitude = problem.encoding.magnitude(problem.densities)
    rows = [magnitude]
    for row in magnitude:
        for n_swaps in (1, 2, 4, 8, 16):
            child = row.copy()
            kept, pruned = np.flatnonzero(child), np.flatnonzero(~child)
            child[rng.choice(kept, n_swaps, replace=False)] = False
            child[rng.choice(pruned, n_swaps, replace=False)] = True
            rows.append(child[None])
    return np.concatenate(rows)


def test_incumbents_are_kept_unless_beaten_beyond_the_margin(digits_problem):
    problem = digits_problem
    genomes = near_candidates(problem)
    held_out = problem.test_data
    incumbents = list(range(len(problem.densities)))  # the magnitude rows
    masks = problem.encoding.decode(genomes)
    outcomes = set()
    for target in problem.densities:
        limit = round(target * problem.n_genes)
        losses = {
            i: per_image_losses(problem, masks[i], held_out)
            for i in range(len(genomes))
            if masks[i].sum() <= limit
        }
        best_incumbent = min((i for i in incumbents if i in losses), key=lambda i: losses[i].mean())
        best = min(losses, key=lambda i: losses[i].mean())
        gain = losses[best_incumbent] - losses[best]
        # the paired t statistic, computed here independently of choose_held_out
        t_stat = (
            gain.mean() / (gain.std(ddof=1) / np.sqrt(len(gain))) if best != best_incumbent else 0.0
        )
        for margin in (0.0, 0.5, 1.0, 2.0, 4.0, 1e9):
            chosen = ms.choose_held_out(
                problem,
                genomes,
                held_out,
                densities=[target],
                incumbents=incumbents,
                margin=margin,
            )
            expected = best if best not in incumbents and t_stat > margin else best_incumbent
            assert chosen[target] == expected, (target, margin, t_stat)
            outcomes.add(chosen[target] == best_incumbent)
    assert outcomes == {True, False}, "the candidates should exercise both outcomes"


def test_a_challenger_far_ahead_replaces_the_incumbent(digits_problem):
    problem = digits_problem
    target = max(problem.densities)
    good = problem.encoding.magnitude([target])  # magnitude at the target
    rng = np.random.default_rng(3)
    bad = rng.random((1, problem.n_genes)) < target / 4  # random and sparser: far worse
    genomes = np.concatenate([bad, good])
    chosen = ms.choose_held_out(
        problem, genomes, problem.test_data, densities=[target], incumbents=[0]
    )
    losses = [per_image_losses(problem, row, problem.test_data).mean() for row in genomes]
    assert losses[1] < losses[0]
    assert chosen[target] == 1


def test_bad_incumbents_and_margins_are_refused(digits_problem):
    problem = digits_problem
    genomes = candidates(problem)
    with pytest.raises(ValueError, match="incumbents must be row numbers"):
        ms.choose_held_out(problem, genomes, problem.test_data, incumbents=[len(genomes)])
    with pytest.raises(ValueError, match="incumbents must be row numbers"):
        ms.choose_held_out(problem, genomes, problem.test_data, incumbents=[0.5])
    with pytest.raises(ValueError, match="margin must be a number"):
        ms.choose_held_out(problem, genomes, problem.test_data, incumbents=[0], margin=-1)


def test_the_problems_held_out_images_are_the_default_and_their_absence_is_explained():
    # judged on 200 of digits' 300 validation images: the other 100 are held out
    problem = ms.get_problem("digits_mlp", val_samples=200)
    validation = ms.load("digits").val
    assert len(problem.data) == 200 and len(problem.held_out_data) == 100
    assert torch.equal(problem.held_out_data.x, validation.x[200:])
    genomes = candidates(problem, seed=2)
    assert ms.choose_held_out(problem, genomes) == ms.choose_held_out(
        problem, genomes, problem.held_out_data
    )
    everything = ms.get_problem("digits_mlp")  # every validation image judges the masks
    assert everything.held_out_data is None
    with pytest.raises(ValueError, match="no held-out images to choose on"):
        ms.choose_held_out(everything, genomes)
    on_training = ms.get_problem("digits_mlp", fitness_split="train")
    assert torch.equal(on_training.held_out_data.y, validation.y)


def test_a_problem_scored_after_a_repair_is_not_chosen_on_frozen_weights():
    problem = ms.get_problem("digits_mlp", val_samples=200, repair_steps=2)
    with pytest.raises(ValueError, match="frozen weights"):
        ms.choose_held_out(problem, candidates(problem))


def test_flat_masks_choose_as_the_genomes_they_decode_to():
    # levels genomes (one density level per layer) are not masks: the flag says which rows are
    problem = ms.get_problem("digits_mlp", encoding="levels", val_samples=200)
    genomes = problem.encoding.sample(12, np.random.default_rng(0))
    flat = problem.encoding.decode(genomes).astype(np.uint8)
    targets = [0.5, 0.3]
    chosen = ms.choose_held_out(problem, genomes, densities=targets)
    assert ms.choose_held_out(problem, flat, densities=targets, flat_masks=True) == chosen
    with pytest.raises(ValueError, match="one column per prunable weight"):
        ms.choose_held_out(problem, genomes, densities=targets, flat_masks=True)
    with pytest.raises(ValueError, match="only 0/1"):
        ms.choose_held_out(problem, 2 * flat, densities=targets, flat_masks=True)


def test_the_pick_a_run_needs_follows_its_seeds_loss():
    from masksearch.selection import HELD_OUT_PICKS, held_out_pick_for

    assert held_out_pick_for({}) == "held-out"
    assert held_out_pick_for({"init_options": {"lr": 0.02}}) == "held-out"
    assert held_out_pick_for({"init_options": {"label_smoothing": 0.0}}) == "held-out"
    assert held_out_pick_for({"init_options": {"label_smoothing": 0.1}}) == "held-out-error"
    # a search on the seeds' own smoothed loss compares on it again
    smoothed = {"init_options": {"label_smoothing": 0.1}, "label_smoothing": 0.1}
    assert held_out_pick_for(smoothed) == "held-out"
    assert held_out_pick_for({"label_smoothing": 0.1}) == "held-out-error"
    assert HELD_OUT_PICKS == {"held-out": "loss", "held-out-error": "error"}
