from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from masksearch.data import Split, load
from masksearch.encodings import GenomeError
from masksearch.mask import Mask, MaskError
from masksearch.models import digits_mlp, lenet5
from masksearch.problem import PruningProblem, weight_flops
from masksearch.training import evaluate


def test_objectives_match_an_independent_forward_pass(digits_problem) -> None:
    problem = digits_problem
    genomes = problem.encoding.magnitude([0.3, 0.1])
    result = problem.evaluate(genomes)
    for genome, row in zip(genomes, result.F, strict=True):
        mask = problem.mask(genome)
        pruned = mask.apply(copy.deepcopy(problem.model))
        reference = evaluate(pruned, problem.data)
        params = dict(pruned.named_parameters())
        zeros = sum(int((params[n] == 0).sum()) for n in mask.names)
        assert row[0] == pytest.approx(reference.error, abs=1e-9)
        assert row[1] == pytest.approx(1 - zeros / mask.n_total)
    assert np.all(result.violation == 0)


def test_density_constraint_is_reported_as_violation(digits_problem) -> None:
    problem = PruningProblem(digits_problem.model, digits_problem.data, max_density=0.2)
    result = problem.evaluate(problem.encoding.magnitude([0.5, 0.1]))
    assert result.violation[0] == pytest.approx(0.3, abs=1e-3)
    assert result.violation[1] == 0


def test_flops_count_conv_positions() -> None:
    model = lenet5(seed=0)
    from masksearch.mask import Layout

    layout = Layout.of(model)
    flops = weight_flops(model, layout, torch.zeros(1, 1, 28, 28))
    # conv1 output 24x24, conv2 output 8x8, linear weights once per sample
    expected = {"conv1.weight": 24 * 24, "conv2.weight": 8 * 8, "fc1.weight": 1, "fc2.weight": 1}
    for name in layout.names:
        assert np.all(flops[layout.slice(name)] == expected[name])


def test_unknown_objective_is_named(digits_problem) -> None:
    with pytest.raises(ValueError, match="unknown objective 'accuracy'.*choose from"):
        PruningProblem(digits_problem.model, digits_problem.data, objectives=("accuracy",))


def test_bad_target_density_is_refused(digits_problem) -> None:
    with pytest.raises(MaskError, match=r"density must be in \(0, 1\]"):
        PruningProblem(digits_problem.model, digits_problem.data, densities=(1.5,))


def test_model_with_nothing_prunable_is_refused() -> None:
    data = Split(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(MaskError, match="nothing to prune"):
        PruningProblem(nn.Sequential(nn.ReLU()), data)


def test_data_that_does_not_fit_the_model_is_refused() -> None:
    data = load("digits")
    with pytest.raises(ValueError, match=r"does not fit the model"):
        PruningProblem(lenet5(seed=0), data)


def test_nan_weights_are_refused() -> None:
    model = digits_mlp(seed=0)
    with torch.no_grad():
        model.fc1.weight[0, 0] = float("nan")
    with pytest.raises(MaskError, match="fc1.weight"):
        PruningProblem(model, load("digits"))


def test_wrong_genome_length_is_explained(digits_problem) -> None:
    with pytest.raises(GenomeError, match="genes"):
        digits_problem.evaluate(np.ones((2, 5), dtype=bool))


def test_empty_population_is_refused(digits_problem) -> None:
    with pytest.raises((ValueError, GenomeError), match="empty|0 genomes|at least one"):
        digits_problem.evaluate(np.ones((0, digits_problem.n_genes), dtype=bool))


def test_mask_of_a_genome_matches_decode(digits_problem) -> None:
    genome = digits_problem.encoding.magnitude([0.2])[0]
    mask = digits_problem.mask(genome)
    assert isinstance(mask, Mask)
    assert mask == Mask.magnitude(digits_problem.model, 0.2)
