"""choose_held_out: the candidate best on held-out images at each target density."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import masksearch as ms
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
