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


@pytest.mark.parametrize("evaluator", ["plain", "incremental", "batched"])
def test_the_loss_objective_is_smoothed_as_the_problem_says(digits_problem, evaluator) -> None:
    problem = PruningProblem(
        digits_problem.model,
        digits_problem.data,
        objectives=("loss", "density"),
        label_smoothing=0.1,
        evaluator=evaluator,
    )
    assert problem.settings()["label_smoothing"] == 0.1
    genomes = problem.encoding.magnitude([0.3, 0.1])
    losses = problem.evaluate(genomes).F[:, 0]
    for genome, loss in zip(genomes, losses, strict=True):
        pruned = problem.mask(genome).apply(copy.deepcopy(problem.model))
        with torch.no_grad():
            log_p = torch.log_softmax(pruned(problem.data.x).double(), dim=1)
        label = -log_p.gather(1, problem.data.y.view(-1, 1)).squeeze(1)
        assert loss == pytest.approx(
            float((0.9 * label - 0.1 * log_p.mean(dim=1)).mean()), abs=2e-6
        )
    # the plain problem's settings say nothing of smoothing (run directories stay as they were)
    assert "label_smoothing" not in digits_problem.settings()


def test_an_evaluator_smoothing_another_loss_is_refused(digits_problem) -> None:
    from masksearch.evaluators import PlainEvaluator

    plain = PlainEvaluator(digits_problem.model, digits_problem.data, digits_problem.layout)
    with pytest.raises(ValueError, match="smooths its loss by 0.0 but the problem's"):
        PruningProblem(
            digits_problem.model, digits_problem.data, evaluator=plain, label_smoothing=0.1
        )
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
        PruningProblem(digits_problem.model, digits_problem.data, label_smoothing=1.0)


def test_unknown_fitness_split_is_named(digits_problem) -> None:
    with pytest.raises(ValueError, match=r"fitness_split must be one of \('val', 'train'\)"):
        PruningProblem(digits_problem.model, digits_problem.data, fitness_split="test")


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


def test_nan_and_inf_inputs_are_counted_and_located() -> None:
    data = load("digits")
    x = data.val.x.clone()
    x[3, 0, 1, 2] = float("nan")
    x[3, 0, 4, 4] = float("nan")
    x[7, 0, 0, 0] = float("-inf")
    model = digits_mlp(seed=0)
    with pytest.raises(ValueError) as caught:
        PruningProblem(model, Split(x, data.val.y))
    assert str(caught.value) == (
        "validation inputs contain 2 NaN and 1 inf values (first at sample 3); clean or "
        "impute the data before searching"
    )
    test_x = data.test.x.clone()
    test_x[5, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"^test inputs contain 1 inf value \(first at sample 5\)"):
        PruningProblem(model, data.val, test_data=Split(test_x, data.test.y))


def test_pool_without_density_says_how_to_pass_it() -> None:
    data = load("digits")
    with pytest.raises(TypeError) as caught:
        PruningProblem(digits_mlp(seed=0), data, encoding="pool")
    message = str(caught.value)
    assert "needs the option 'density'" in message
    python_call = "encoding='pool', encoding_options={'density': 0.05}"
    assert python_call in message
    assert "--encoding pool --encoding-option density=0.05" in message
    # what the message tells the user to write works
    problem = PruningProblem(
        digits_mlp(seed=0), data, encoding="pool", encoding_options={"density": 0.05}
    )
    assert problem.encoding.density == 0.05


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


# -- density and FLOPs objectives on a convolutional model ---------------------------------


def test_density_and_flops_objectives_on_a_conv_model() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3),  # 8x8 -> 6x6
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=1),  # 6x6 -> 3x3
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 3 * 3, 16),
        nn.ReLU(),
        nn.Linear(16, 10),
    )
    generator = torch.Generator().manual_seed(1)
    data = Split(
        torch.randn(20, 1, 8, 8, generator=generator),
        torch.randint(0, 10, (20,), generator=generator),
    )
    problem = PruningProblem(model, data, objectives=("density", "flops"), densities=(0.5,))

    # Independent cost table: MACs of one sample's forward pass per weight, from the output
    # sizes a forward hook sees (a conv weight is used at every output position).
    output_shapes: dict[str, tuple[int, ...]] = {}
    layers = {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear))
    }
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out, name=name: output_shapes.__setitem__(name, tuple(out.shape))
        )
        for name, module in layers.items()
    ]
    with torch.no_grad():
        model(data.x[:1])
    for hook in hooks:
        hook.remove()
    cost = {
        f"{name}.weight": (
            output_shapes[name][2] * output_shapes[name][3] if isinstance(module, nn.Conv2d) else 1
        )
        for name, module in layers.items()
    }
    assert cost == {"0.weight": 36, "2.weight": 9, "5.weight": 1, "7.weight": 1}
    sizes = {f"{name}.weight": module.weight.numel() for name, module in layers.items()}

    # genomes whose layers keep very different shares, so density and FLOPs part ways
    rng = np.random.default_rng(2)
    rows = []
    for conv_share, linear_share in [(1.0, 0.05), (0.05, 1.0), (0.3, 0.7), (0.8, 0.2)]:
        flat = np.concatenate(
            [
                rng.random(size) < (conv_share if cost[name] > 1 else linear_share)
                for name, size in sizes.items()
            ]
        )
        rows.append(problem.encoding.encode(Mask.from_flat(problem.layout, flat)))
    genomes = np.stack(rows)
    F = problem.evaluate(genomes).F

    for genome, (density, flops) in zip(genomes, F, strict=True):
        keep = problem.mask(genome).tensors
        assert set(keep) == set(sizes)
        kept = {name: int(keep[name].sum()) for name in sizes}
        assert density == pytest.approx(sum(kept.values()) / sum(sizes.values()), abs=1e-12)
        expected_flops = sum(cost[n] * kept[n] for n in sizes) / sum(
            cost[n] * sizes[n] for n in sizes
        )
        assert flops == pytest.approx(expected_flops, abs=1e-12)
    # the two objectives differ on these genomes: a FLOPs count of 1 per weight would not pass
    assert np.all(np.abs(F[:, 0] - F[:, 1]) > 0.05)
    # the search counts kept weights on packed rows (layers of 36 and 216 weights end
    # mid-byte here): the same objectives, bit for bit
    packed = problem.evaluate_valid(genomes, packed=np.packbits(genomes, axis=1))
    np.testing.assert_array_equal(packed.F, F)


def _channels_problem() -> PruningProblem:
    """A problem whose genomes are not masks: a channels gene keeps a whole row of weights."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))
    data = Split(torch.randn(10, 1, 4, 4), torch.randint(0, 3, (10,)))
    return PruningProblem(model, data, encoding="channels", densities=(0.5,))


def test_packed_rows_are_ignored_where_genomes_are_not_masks() -> None:
    # a channels genome keeps whole rows of weights: its packed bits are not the mask's, so
    # evaluate_valid must count the decoded masks whatever it is handed
    problem = _channels_problem()
    genomes = problem.encoding.magnitude([0.5, 0.2])
    expected = problem.evaluate(genomes)
    wrong = np.zeros((2, (problem.n_genes + 7) // 8), dtype=np.uint8)
    got = problem.evaluate_valid(problem.encoding.validate(genomes), packed=wrong)
    np.testing.assert_array_equal(got.metrics["density"], expected.metrics["density"])
    assert np.all(got.metrics["density"] > 0)


def test_a_population_is_validated_once_per_evaluation(digits_problem, monkeypatch) -> None:
    encoding = digits_problem.encoding
    genomes = digits_problem.magnitude_genomes().astype(np.int8)  # 0/1 ints from a solver
    calls = []
    validate = encoding.validate
    monkeypatch.setattr(
        encoding, "validate", lambda g: calls.append(len(g)) or validate(g), raising=False
    )
    evaluation = digits_problem.evaluate(genomes)
    assert calls == [len(genomes)]
    assert evaluation.genomes.dtype == np.bool_
    np.testing.assert_array_equal(evaluation.genomes, genomes.astype(bool))
    # the masks judged are the decoded genomes: densities agree with counting kept weights
    np.testing.assert_allclose(
        evaluation.metrics["density"], genomes.sum(axis=1) / digits_problem.layout.n_total
    )


def test_packed_genomes_score_as_their_bool_genomes(digits_problem) -> None:
    # weights genomes are masks: the evaluator gets them packed, and the objectives, metrics
    # and violations are those of the bool genomes, bit for bit (fresh evaluators both ways)
    problem = copy.copy(digits_problem)
    problem.evaluator = copy.deepcopy(digits_problem.evaluator)
    problem.max_density = 0.03
    genomes = problem.encoding.sample(6, np.random.default_rng(0))
    expected = problem.evaluate(genomes)
    problem.evaluator = copy.deepcopy(digits_problem.evaluator)
    calls = []
    inner = problem.evaluator.evaluate_packed
    problem.evaluator.evaluate_packed = lambda rows: calls.append(rows.dtype) or inner(rows)
    got = problem.evaluate_packed(np.packbits(genomes, axis=1))
    assert calls == [np.uint8], "the evaluator must be handed the packed rows"
    np.testing.assert_array_equal(got.F, expected.F)
    np.testing.assert_array_equal(got.violation, expected.violation)
    assert got.violation.max() > 0 and set(got.metrics) == set(expected.metrics)
    for key in expected.metrics:
        np.testing.assert_array_equal(got.metrics[key], expected.metrics[key])
    assert got.genomes is None


def test_packed_genomes_that_are_not_masks_are_unpacked_first() -> None:
    problem = _channels_problem()
    genomes = problem.encoding.magnitude([0.5, 0.2])
    expected = problem.evaluate(genomes)
    got = problem.evaluate_packed(np.packbits(genomes, axis=1))
    np.testing.assert_array_equal(got.F, expected.F)
    np.testing.assert_array_equal(got.genomes, genomes)
    with pytest.raises(ValueError, match="empty population"):
        problem.evaluate_packed(np.zeros((0, 2), dtype=np.uint8))
