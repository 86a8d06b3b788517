from __future__ import annotations

import pickle
import time
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from masksearch import models
from masksearch.encodings import (
    DEFAULT_LADDER,
    ChannelsEncoding,
    GenomeError,
    LevelsEncoding,
    PoolEncoding,
    WeightsEncoding,
    make_encoding,
)
from masksearch.mask import Layout, Mask, MaskError


@pytest.fixture(scope="module")
def mlp() -> nn.Module:
    return models.digits_mlp(seed=0)


def tiny_conv(seed: int = 0) -> nn.Sequential:
    """8×8 grey input: conv 1→4 (3×3) → conv 4→6 (3×3) → flatten (6·4·4) → fc 96→7 → fc 7→3."""
    with torch.random.fork_rng(devices=[]):  # seeded weights, caller's RNG state untouched
        torch.manual_seed(seed)
        return nn.Sequential(
            OrderedDict(
                [
                    ("conv1", nn.Conv2d(1, 4, 3)),
                    ("relu1", nn.ReLU()),
                    ("conv2", nn.Conv2d(4, 6, 3)),
                    ("relu2", nn.ReLU()),
                    ("flatten", nn.Flatten()),
                    ("fc1", nn.Linear(96, 7)),
                    ("relu3", nn.ReLU()),
                    ("fc2", nn.Linear(7, 3)),
                ]
            )
        )


def flat_abs(model: nn.Module) -> np.ndarray:
    layout = Layout.of(model)
    params = dict(model.named_parameters())
    return torch.cat([params[n].detach().abs().reshape(-1) for n in layout.names]).numpy()


def build(name: str, model: nn.Module):
    options = {"density": 0.05} if name == "pool" else {}
    return make_encoding(name, model, **options)


ALL = ["weights", "pool", "levels", "channels"]


# -- weights ----------------------------------------------------------------------------------


def test_weights_round_trip_between_masks_and_genomes(mlp):
    encoding = WeightsEncoding(mlp)
    rng = np.random.default_rng(0)
    flat = rng.random(encoding.n_genes) < 0.1
    mask = Mask.from_flat(encoding.layout, flat)
    genome = encoding.encode(mask)
    assert np.array_equal(genome, flat)
    assert np.array_equal(encoding.decode(genome)[0], flat)
    assert Mask.from_flat(encoding.layout, encoding.decode(genome)[0]) == mask


@pytest.mark.parametrize("density", [0.005, 0.02, 0.05, 0.3, 1.0])
def test_weights_magnitude_equals_mask_magnitude(mlp, density):
    encoding = WeightsEncoding(mlp)
    assert np.array_equal(encoding.magnitude([density])[0], Mask.magnitude(mlp, density).flat())


def test_weights_magnitude_breaks_ties_like_mask_magnitude():
    model = models.digits_mlp(seed=1)
    with torch.no_grad():  # two significant digits: many exactly tied magnitudes
        for param in model.parameters():
            param.copy_(torch.round(param * 10) / 10)
    encoding = WeightsEncoding(model)
    genomes = encoding.magnitude([0.01, 0.1])
    for genome, density in zip(genomes, [0.01, 0.1], strict=True):
        assert np.array_equal(genome, Mask.magnitude(model, density).flat())


def test_weights_sample_spans_log_spaced_densities(mlp):
    encoding = WeightsEncoding(mlp)
    genomes = encoding.sample(12, np.random.default_rng(0))
    density = genomes.mean(axis=1)
    # swaps keep the count, so the densities are exactly the magnitude ladder's
    expected = [Mask.magnitude(mlp, d).density for d in np.geomspace(0.005, 0.5, 12)]
    assert np.allclose(density, expected)
    assert not any(
        np.array_equal(g, encoding.magnitude([d])[0])
        for g, d in zip(genomes, np.geomspace(0.005, 0.5, 12), strict=True)
    )


def test_weights_mutation_is_a_small_sparse_move(mlp):
    encoding = WeightsEncoding(mlp)
    rng = np.random.default_rng(1)
    parents = np.repeat(encoding.magnitude([0.05]), 200, axis=0)
    children = encoding.mutate(parents, rng)
    kept_parent = int(parents[0].sum())
    change = children.sum(axis=1) - kept_parent
    flips = (children != parents).sum(axis=1)
    assert (flips > 0).all()
    swaps = change == 0
    assert swaps.any() and (change > 0).any() and (change < 0).any()
    # a swap moves at most 0.05% of the genes each way; add/drop steps are 5-10% of kept
    assert flips[swaps].max() <= 2 * max(1, round(0.0005 * encoding.n_genes))
    steps = np.abs(change[~swaps])
    assert steps.min() >= round(0.05 * kept_parent) - 1
    assert steps.max() <= round(0.10 * kept_parent) + 1
    assert (flips[~swaps] == steps).all()


def test_weights_mutation_of_a_large_model_is_fast():
    encoding = WeightsEncoding(models.lenet300(seed=0))
    parents = encoding.sample(32, np.random.default_rng(0))
    start = time.perf_counter()
    encoding.mutate(parents, np.random.default_rng(1))
    encoding.crossover(parents, parents[::-1], np.random.default_rng(2))
    assert time.perf_counter() - start < 2.0  # vectorised: ~0.1 s on a laptop core


def test_weights_crossover_keeps_agreement_and_density_range(mlp):
    encoding = WeightsEncoding(mlp)
    rng = np.random.default_rng(2)
    first = encoding.sample(40, rng)
    second = encoding.mutate(encoding.sample(40, rng)[::-1], rng)
    children = encoding.crossover(first, second, rng)
    agree = first == second
    assert np.array_equal(children[agree], first[agree])
    kept = children.sum(axis=1)
    low = np.minimum(first.sum(axis=1), second.sum(axis=1))
    high = np.maximum(first.sum(axis=1), second.sum(axis=1))
    assert ((kept >= low) & (kept <= high)).all()
    # a real mix: some child takes genes from both parents
    from_first = (children & ~agree & first).any(axis=1)
    from_second = (children & ~agree & second).any(axis=1)
    assert (from_first & from_second).any()


# -- pool (method A) --------------------------------------------------------------------------


def independent_order(model: nn.Module) -> np.ndarray:
    scores = torch.from_numpy(flat_abs(model)).double()
    return torch.sort(-scores, stable=True).indices.numpy()


def test_pool_sizes_follow_the_method(mlp):
    encoding = PoolEncoding(mlp, density=0.05, rho=0.8, pool_factor=4)
    n = encoding.layout.n_total
    k = round(0.05 * n)
    assert encoding.n_kept == k
    assert encoding.n_always == round(0.8 * k)
    assert encoding.n_select == k - round(0.8 * k)
    assert encoding.n_genes == encoding.pool_size == 4 * encoding.n_select
    order = independent_order(mlp)
    assert set(encoding.pool_indices) == set(
        order[encoding.n_always : encoding.n_always + encoding.pool_size]
    )
    everything = PoolEncoding(mlp, density=0.05, pool_factor=None)
    assert everything.n_genes == n - everything.n_always


def test_pool_decode_keeps_exactly_k_including_the_top(mlp):
    encoding = PoolEncoding(mlp, density=0.05)
    genomes = encoding.sample(20, np.random.default_rng(3))
    flats = encoding.decode(genomes)
    assert (flats.sum(axis=1) == encoding.n_kept).all()
    top = torch.topk(torch.from_numpy(flat_abs(mlp)), encoding.n_always).indices.numpy()
    assert flats[:, top].all()
    # every kept weight outside the top K_L lies in the pool
    outside = flats.copy()
    outside[:, top] = False
    outside[:, encoding.pool_indices] = False
    assert not outside.any()


def test_pool_magnitude_is_the_global_magnitude_mask(mlp):
    encoding = PoolEncoding(mlp, density=0.03)
    assert np.array_equal(
        encoding.decode(encoding.magnitude([0.03]))[0], Mask.magnitude(mlp, 0.03).flat()
    )
    assert np.array_equal(encoding.encode(Mask.magnitude(mlp, 0.03)), encoding.magnitude([0.03])[0])


def test_pool_operators_keep_the_cardinality(mlp):
    encoding = PoolEncoding(mlp, density=0.05, rho=0.5)
    rng = np.random.default_rng(4)
    population = encoding.sample(16, rng)
    for _ in range(50):
        mates = population[rng.permutation(len(population))]
        children = encoding.crossover(population, mates, rng)
        agree = population == mates
        assert np.array_equal(children[agree], population[agree])
        population = encoding.mutate(children, rng)
        assert (population.sum(axis=1) == encoding.n_select).all()
        assert (children.sum(axis=1) == encoding.n_select).all()


def test_pool_repair_without_rng_keeps_the_largest_magnitudes(mlp):
    encoding = PoolEncoding(mlp, density=0.05)
    magnitudes = flat_abs(mlp)[encoding.pool_indices]
    rng = np.random.default_rng(5)
    too_many = rng.random((3, encoding.n_genes)) < 0.5
    repaired = encoding.repair(too_many)
    for before, after in zip(too_many, repaired, strict=True):
        assert after.sum() == encoding.n_select and not (after & ~before).any()
        # the survivors are the largest |w| among the genes that were on
        assert magnitudes[after].min() >= magnitudes[before & ~after].max()
    too_few = np.zeros((1, encoding.n_genes), dtype=bool)
    too_few[0, -3:] = True
    repaired = encoding.repair(too_few)[0]
    assert repaired.sum() == encoding.n_select and repaired[-3:].all()
    added = repaired & ~too_few[0]
    assert magnitudes[added].min() >= magnitudes[~repaired].max()
    with_rng = encoding.repair(too_many, rng=np.random.default_rng(0))
    assert (with_rng.sum(axis=1) == encoding.n_select).all()
    assert np.array_equal(with_rng, encoding.repair(too_many, rng=np.random.default_rng(0)))


def test_pool_rejects_a_density_ladder_and_bad_options(mlp):
    with pytest.raises(ValueError, match="single budget"):
        PoolEncoding(mlp, density=(0.05, 0.02, 0.01))
    with pytest.raises(ValueError, match="rho"):
        PoolEncoding(mlp, density=0.05, rho=1.0)
    with pytest.raises(ValueError, match="pool_factor"):
        PoolEncoding(mlp, density=0.05, pool_factor=0.5)
    with pytest.raises(MaskError, match="density"):
        PoolEncoding(mlp, density=1.5)


# -- levels (EvoPress) ------------------------------------------------------------------------


def test_levels_decode_keeps_each_layers_top_at_the_ladder_density(mlp):
    encoding = LevelsEncoding(mlp)
    assert len(DEFAULT_LADDER) == encoding.ladder.size and 24 <= encoding.ladder.size <= 32
    rng = np.random.default_rng(6)
    genomes = rng.integers(0, encoding.ladder.size, size=(10, encoding.n_genes))
    flats = encoding.decode(genomes)
    params = dict(mlp.named_parameters())
    for genome, flat in zip(genomes, flats, strict=True):
        mask = Mask.from_flat(encoding.layout, flat)
        for layer, name in enumerate(encoding.layout.names):
            weight = params[name].detach().abs().reshape(-1)
            count = max(1, round(encoding.ladder[genome[layer]] * weight.numel()))
            kept = mask.tensors[name].reshape(-1)
            assert int(kept.sum()) == count
            assert kept[torch.topk(weight, count).indices].all()


def test_levels_magnitude_imitates_global_magnitude(mlp):
    encoding = LevelsEncoding(mlp)
    ladder = np.asarray(encoding.ladder)
    for density in (0.3, 0.05, 0.02):
        genome = encoding.magnitude([density])[0]
        decoded = encoding.decode(genome)[0].mean()
        assert abs(decoded - density) / density <= 0.02
        # each layer sits a few ladder steps at most from global magnitude's layer density
        for name, level in zip(encoding.layout.names, genome, strict=True):
            layer_density = Mask.magnitude(mlp, density).layer_densities()[name]
            nearest = int(np.abs(np.log(ladder) - np.log(max(layer_density, 1e-9))).argmin())
            assert abs(int(level) - nearest) <= 3


def best_switch_gap(encoding: LevelsEncoding, genome: np.ndarray) -> int:
    """Brute force: the smallest |change of the total| a level switch can make."""
    counts = encoding.level_counts
    best = None
    for driver in range(encoding.n_genes):
        for step in (-1, 1):
            level = genome[driver] + step
            if not 0 <= level < encoding.ladder.size:
                continue
            gain = counts[driver, level] - counts[driver, genome[driver]]
            for partner in range(encoding.n_genes):
                for other in range(encoding.ladder.size):
                    loss = counts[partner, other] - counts[partner, genome[partner]]
                    if partner != driver and gain * loss < 0:
                        gap = abs(int(gain + loss))
                        best = gap if best is None else min(best, gap)
    return best


@pytest.mark.parametrize("model_name", ["mlp", "conv"])
def test_level_switch_keeps_the_total_within_tolerance(mlp, model_name):
    model = mlp if model_name == "mlp" else tiny_conv()
    encoding = LevelsEncoding(model)
    rng = np.random.default_rng(7)
    parents = encoding.sample(30, rng)
    for _ in range(5):
        children = encoding.level_switch(parents, rng)
        before = encoding.decode(parents).sum(axis=1)
        after = encoding.decode(children).sum(axis=1)
        changed = (children != parents).sum(axis=1)
        assert (changed == 2).all()  # one layer up, another down
        for parent, old, new in zip(parents, before, after, strict=True):
            allowed = max(encoding.switch_tolerance * old, best_switch_gap(encoding, parent))
            assert abs(int(new) - int(old)) <= allowed
        parents = children


def test_levels_with_a_density_budget_steers_to_it(mlp):
    encoding = LevelsEncoding(mlp, density=0.05)
    rng = np.random.default_rng(8)
    population = encoding.sample(10, rng)
    for _ in range(30):
        population = encoding.mutate(population, rng)
    target = round(0.05 * encoding.layout.n_total)
    kept = encoding.decode(population).sum(axis=1)
    assert (np.abs(kept - target) <= 0.02 * kept + 1).all()


def test_levels_mutation_sometimes_changes_the_density(mlp):
    encoding = LevelsEncoding(mlp)
    parents = np.repeat(encoding.magnitude([0.05]), 100, axis=0)
    children = encoding.mutate(parents, np.random.default_rng(9))
    changed = (children != parents).sum(axis=1)
    assert set(changed) <= {1, 2}  # a ±1 step or a level switch
    assert (changed == 1).any() and (changed == 2).any()
    steps = changed == 1
    assert (np.abs(children[steps] - parents[steps]).sum(axis=1) == 1).all()


def test_levels_crossover_is_uniform_per_gene(mlp):
    encoding = LevelsEncoding(mlp)
    rng = np.random.default_rng(10)
    first = rng.integers(0, 14, size=(200, encoding.n_genes))
    second = rng.integers(14, 28, size=(200, encoding.n_genes))
    children = encoding.crossover(first, second, rng)
    assert ((children == first) | (children == second)).all()
    share = (children == first).mean()
    assert 0.4 < share < 0.6


def test_levels_encode_picks_the_nearest_level(mlp):
    encoding = LevelsEncoding(mlp)
    genome = np.array([3, 10, 20])
    assert np.array_equal(
        encoding.encode(Mask.from_flat(encoding.layout, encoding.decode(genome)[0])), genome
    )


def test_levels_rejects_a_bad_ladder(mlp):
    with pytest.raises(ValueError, match="strictly decreasing"):
        LevelsEncoding(mlp, ladder=[0.1, 0.5, 1.0])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        LevelsEncoding(mlp, ladder=[1.0, 0.0])


# -- channels ---------------------------------------------------------------------------------


def test_channels_removed_neuron_zeroes_its_row_and_the_next_column():
    model = nn.Sequential(
        OrderedDict([("fc1", nn.Linear(4, 3)), ("relu", nn.ReLU()), ("fc2", nn.Linear(3, 2))])
    )
    encoding = ChannelsEncoding(model)
    assert encoding.n_genes == 3  # fc2's outputs are classes
    mask = Mask.from_flat(encoding.layout, encoding.decode(np.array([True, False, True]))[0])
    expected_fc1 = torch.ones(3, 4, dtype=torch.bool)
    expected_fc1[1] = False
    expected_fc2 = torch.ones(2, 3, dtype=torch.bool)
    expected_fc2[:, 1] = False
    assert torch.equal(mask.tensors["fc1.weight"], expected_fc1)
    assert torch.equal(mask.tensors["fc2.weight"], expected_fc2)


def test_channels_conv_to_linear_removes_the_flattened_block():
    model = tiny_conv()
    encoding = ChannelsEncoding(model)
    assert encoding.n_genes == 4 + 6 + 7
    genome = np.ones(encoding.n_genes, dtype=bool)
    genome[1] = False  # conv1 channel 1
    genome[4 + 2] = False  # conv2 channel 2
    genome[10 + 5] = False  # fc1 neuron 5
    mask = Mask.from_flat(encoding.layout, encoding.decode(genome)[0])
    conv1, conv2 = mask.tensors["conv1.weight"], mask.tensors["conv2.weight"]
    fc1, fc2 = mask.tensors["fc1.weight"], mask.tensors["fc2.weight"]
    assert not conv1[1].any() and conv1[[0, 2, 3]].all()
    assert not conv2[:, 1].any() and not conv2[2].any()
    assert conv2[[0, 1, 3, 4, 5]][:, [0, 2, 3]].all()
    assert not fc1[:, 2 * 16 : 3 * 16].any() and not fc1[5].any()
    others = torch.ones(96, dtype=torch.bool)
    others[32:48] = False
    assert fc1[[0, 1, 2, 3, 4, 6]][:, others].all()
    assert not fc2[:, 5].any() and fc2[:, [0, 1, 2, 3, 4, 6]].all()
    assert np.isclose(encoding.densities(genome)[0], mask.density)


def test_channels_removed_channel_no_longer_affects_the_output():
    model = tiny_conv()
    encoding = ChannelsEncoding(model)
    genome = np.ones(encoding.n_genes, dtype=bool)
    genome[4 + 2] = False  # conv2 channel 2
    mask = Mask.from_flat(encoding.layout, encoding.decode(genome)[0])
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    pruned = mask.apply(tiny_conv())
    reference = pruned(x)
    with torch.no_grad():  # the removed channel's bias still emits a constant: it must not matter
        pruned.conv2.bias[2] += 100.0
    assert torch.allclose(pruned(x), reference)


def test_channels_round_trip_and_densities(mlp):
    encoding = ChannelsEncoding(mlp)
    rng = np.random.default_rng(11)
    genomes = rng.random((20, encoding.n_genes)) < 0.7
    flats = encoding.decode(genomes)
    assert np.allclose(encoding.densities(genomes), flats.mean(axis=1))
    for genome, flat in zip(genomes, flats, strict=True):
        assert np.array_equal(encoding.encode(Mask.from_flat(encoding.layout, flat)), genome)


def test_channels_magnitude_and_operators(mlp):
    encoding = ChannelsEncoding(mlp)
    genomes = encoding.magnitude([0.5, 0.1])
    assert np.allclose(encoding.densities(genomes), [0.5, 0.1], rtol=0.1)
    for layer in range(2):  # every layer keeps at least one channel
        start, end = encoding._gene_offsets[layer], encoding._gene_offsets[layer + 1]
        assert genomes[:, start:end].any(axis=1).all()
    rng = np.random.default_rng(12)
    children = encoding.mutate(genomes, rng)
    assert ((children != genomes).sum(axis=1) > 0).all()
    mixed = encoding.crossover(genomes, genomes[::-1], rng)
    kept = mixed.sum(axis=1)
    assert ((kept >= genomes.sum(axis=1).min()) & (kept <= genomes.sum(axis=1).max())).all()


def test_channels_reject_models_that_do_not_chain():
    with pytest.raises(MaskError, match="run in sequence"):
        ChannelsEncoding(models.resnet20(seed=0))


# -- common behaviour -------------------------------------------------------------------------


def test_validate_messages(mlp):
    weights = WeightsEncoding(mlp)
    with pytest.raises(
        GenomeError,
        match=r"genome has 100 genes but the 'weights' encoding of this model has 17,024",
    ):
        weights.validate(np.zeros(100, dtype=bool))
    with pytest.raises(GenomeError, match="shape"):
        weights.validate(np.zeros((2, 2, weights.n_genes), dtype=bool))
    half = np.zeros(weights.n_genes)
    half[7] = 0.5
    with pytest.raises(GenomeError, match=r"binary \(0/1\).*gene 7.*0\.5"):
        weights.validate(half)
    half[7] = np.nan
    with pytest.raises(GenomeError, match="NaN"):
        weights.validate(half)
    levels = LevelsEncoding(mlp)
    with pytest.raises(GenomeError, match=r"outside 0\.\.27"):
        levels.validate(np.array([0, 28, 3]))
    with pytest.raises(GenomeError, match="whole numbers"):
        levels.validate(np.array([0.0, 2.5, 3.0]))
    with pytest.raises(GenomeError, match="integer level indices"):
        levels.validate(np.array([True, False, True]))
    pool = PoolEncoding(mlp, density=0.05)
    with pytest.raises(
        GenomeError, match=rf"exactly K_S={pool.n_select:,} ones; got 0 .*repair\(\)"
    ):
        pool.validate(np.zeros(pool.n_genes, dtype=bool))


def test_validate_accepts_exact_numbers_from_other_libraries(mlp):
    weights = WeightsEncoding(mlp)
    genome = weights.magnitude([0.1])[0]
    for as_number in (genome.astype(np.float64), genome.astype(np.int32)):
        converted = weights.validate(as_number)
        assert converted.dtype == bool and np.array_equal(converted[0], genome)
    levels = LevelsEncoding(mlp)
    converted = levels.validate(np.array([[1.0, 5.0, 27.0]]))
    assert converted.dtype == np.int64 and converted.tolist() == [[1, 5, 27]]


@pytest.mark.parametrize("name", ALL)
def test_operators_are_deterministic_and_never_edit_their_input(mlp, name):
    encoding = build(name, mlp)
    population = encoding.sample(8, np.random.default_rng(13))
    assert np.array_equal(population, encoding.sample(8, np.random.default_rng(13)))
    assert population.dtype == encoding.dtype and population.shape == (8, encoding.n_genes)
    assert ((population >= encoding.lower) & (population <= encoding.upper)).all()
    snapshot = population.copy()
    for operator in (
        lambda rng: encoding.mutate(population, rng),
        lambda rng: encoding.crossover(population, population[::-1], rng),
    ):
        first, second = operator(np.random.default_rng(14)), operator(np.random.default_rng(14))
        assert np.array_equal(first, second)
        assert first is not population and np.array_equal(population, snapshot)
        encoding.validate(first)
    flats = encoding.decode(population)
    assert flats.shape == (8, encoding.layout.n_total) and flats.dtype == bool
    assert np.allclose(encoding.densities(population), flats.mean(axis=1))


@pytest.mark.parametrize("name", ALL)
def test_encodings_pickle_without_the_model(mlp, name):
    encoding = build(name, mlp)
    assert not any(
        isinstance(value, (nn.Module, torch.Tensor)) for value in vars(encoding).values()
    )
    copy = pickle.loads(pickle.dumps(encoding))
    genomes = encoding.sample(3, np.random.default_rng(15))
    assert np.array_equal(copy.decode(genomes), encoding.decode(genomes))


def test_make_encoding(mlp):
    assert isinstance(make_encoding("levels", mlp, ladder=[1.0, 0.5, 0.1]), LevelsEncoding)
    assert make_encoding("pool", mlp, density=0.02, rho=0.5).n_always == round(
        0.5 * round(0.02 * 17024)
    )
    with pytest.raises(ValueError, match=r"unknown encoding 'bits'.*'channels'.*'weights'"):
        make_encoding("bits", mlp)
    with pytest.raises(TypeError, match="no option 'rate'"):
        make_encoding("weights", mlp, rate=0.1)
    with pytest.raises(TypeError, match="needs the option 'density'"):
        make_encoding("pool", mlp)
