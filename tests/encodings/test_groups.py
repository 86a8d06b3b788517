"""GroupsEncoding: a gene removes one channel of a dependency group, everywhere it lives."""

from __future__ import annotations

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from masksearch import PruningProblem, models
from masksearch.data import Split
from masksearch.encodings import GroupsEncoding, make_encoding
from masksearch.mask import Mask, MaskError


class TinyResidual(nn.Module):
    """conv1 (1→4) + bn1 → relu → [conv_a (4→3) + bn_a → relu → conv_b (3→4) + bn_b] + skip →
    pool → fc (4→2): two groups, the residual stream (4) and the block's inside (3)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv_a = nn.Conv2d(4, 3, 3, padding=1, bias=False)
        self.bn_a = nn.BatchNorm2d(3)
        self.conv_b = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn_b = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stream = torch.relu(self.bn1(self.conv1(x)))
        inner = torch.relu(self.bn_a(self.conv_a(stream)))
        stream = torch.relu(stream + self.bn_b(self.conv_b(inner)))
        return self.fc(stream.mean(dim=(2, 3)))


def tiny_residual(seed: int = 0) -> TinyResidual:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyResidual()
        for module in model.modules():  # batch norms that do not map zeros to zeros
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.uniform_(-1, 1)
    return model.eval()


def masked_model(model: nn.Module, encoding: GroupsEncoding, genome: np.ndarray) -> nn.Module:
    mask = Mask.from_flat(encoding.layout, encoding.decode(genome)[0])
    copy_ = copy.deepcopy(model)
    params = dict(copy_.named_parameters())
    with torch.no_grad():
        for name, keep in mask.tensors.items():
            params[name].mul_(keep.to(params[name].dtype))
    return copy_


def test_groups_follow_the_residual_stream():
    model = tiny_residual()
    encoding = GroupsEncoding(model, input_shape=(1, 6, 6))
    assert encoding.n_genes == 4 + 3
    assert sorted(g.channels for g in encoding.table.groups) == [3, 4]
    stream = next(i for i, g in enumerate(encoding.table.groups) if g.channels == 4)
    genome = np.ones(encoding.n_genes, dtype=bool)
    genome[encoding.table.offsets[stream] + 2] = False  # residual channel 2
    mask = Mask.from_flat(encoding.layout, encoding.decode(genome)[0]).tensors
    # everything that writes channel 2 into the stream, and everything that reads it
    assert not mask["conv1.weight"][2].any() and mask["conv1.weight"][[0, 1, 3]].all()
    assert not mask["bn1.weight"][2] and not mask["bn1.bias"][2]
    assert not mask["conv_b.weight"][2].any() and mask["conv_b.weight"][[0, 1, 3]].all()
    assert not mask["bn_b.weight"][2] and not mask["bn_b.bias"][2]
    assert not mask["conv_a.weight"][:, 2].any() and mask["conv_a.weight"][:, [0, 1, 3]].all()
    assert not mask["fc.weight"][:, 2].any() and mask["fc.weight"][:, [0, 1, 3]].all()
    assert mask["fc.bias"].all() and mask["bn_a.weight"].all()


def test_a_removed_channel_no_longer_affects_the_output():
    model = tiny_residual()
    encoding = GroupsEncoding(model, input_shape=(1, 6, 6))
    rng = np.random.default_rng(0)
    x = torch.randn(5, 1, 6, 6)
    for _ in range(5):
        genome = encoding.validate(rng.random(encoding.n_genes) < 0.5)[0]
        reference = masked_model(model, encoding, genome)
        # scramble every parameter the mask zeroes: the output must not move
        flat = encoding.decode(genome)[0]
        scrambled = copy.deepcopy(model)
        params = dict(scrambled.named_parameters())
        with torch.no_grad():
            for index, name in enumerate(encoding.layout.names):
                part = flat[encoding.layout.offsets[index] : encoding.layout.offsets[index + 1]]
                keep = torch.from_numpy(part.reshape(encoding.layout.shapes[index]))
                noise = torch.randn_like(params[name]) * 10
                params[name].copy_(torch.where(keep, params[name], noise))
        again = masked_model(scrambled, encoding, genome)
        with torch.no_grad():
            assert torch.allclose(reference(x), again(x), atol=1e-5)


def test_masked_model_equals_torch_pruning_physical_removal():
    import torch_pruning as tp

    model = models.build("resnet20", seed=0).eval()
    encoding = GroupsEncoding(model, input_shape=(3, 16, 16))
    genome = encoding.validate(np.random.default_rng(1).random(encoding.n_genes) < 0.6)[0]
    pruned = copy.deepcopy(model)
    graph = tp.DependencyGraph().build_dependency(pruned, example_inputs=torch.zeros(1, 3, 16, 16))
    groups = list(
        graph.get_all_groups(ignored_layers=[pruned.fc], root_module_types=[nn.Conv2d, nn.Linear])
    )
    assert len(groups) == len(encoding.table.groups)
    for number, group in enumerate(groups):
        start, end = encoding.table.offsets[number], encoding.table.offsets[number + 1]
        drop = np.flatnonzero(~genome[start:end]).tolist()
        if drop:
            root = group.items[0].dep
            graph.get_pruning_group(root.target.module, root.handler, idxs=drop).prune()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(masked_model(model, encoding, genome)(x), pruned(x), atol=1e-4)
    n_params = sum(p.numel() for p in pruned.parameters())
    assert n_params == int(encoding.decode(genome)[0].sum())  # the layout is every parameter


def test_magnitude_hits_its_densities_and_keeps_each_groups_best():
    model = models.build("resnet20", seed=0)
    encoding = GroupsEncoding(model, input_shape=(3, 16, 16))
    targets = [0.6, 0.4, 0.2]
    genomes = encoding.magnitude(targets)
    densities = encoding.densities(genomes)
    assert np.allclose(densities, targets, atol=0.02)
    # density counted independently: the kept positions of the decoded mask
    assert np.allclose(densities, encoding.decode(genomes).mean(axis=1))
    assert genomes[:, encoding._best].all()
    # global ranking: no removed channel scores above a kept one (each group's best aside)
    for genome in genomes:
        free = genome.copy()
        free[encoding._best] = False
        assert encoding._score[~genome].max() <= encoding._score[free].min()


def test_validate_turns_an_emptied_groups_best_channel_back_on():
    encoding = GroupsEncoding(tiny_residual(), input_shape=(1, 6, 6))
    genome = np.ones(encoding.n_genes, dtype=bool)
    start, end = encoding.table.offsets[0], encoding.table.offsets[1]
    genome[start:end] = False
    fixed = encoding.validate(genome)[0]
    assert fixed[start:end].sum() == 1 and fixed[encoding._best[0]]
    assert fixed[end:].all() and not genome[start:end].any()  # input untouched


def test_encode_inverts_decode():
    encoding = GroupsEncoding(models.build("resnet20", seed=0), input_shape=(3, 16, 16))
    rng = np.random.default_rng(2)
    for genome in encoding.validate(rng.random((6, encoding.n_genes)) < rng.random((6, 1))):
        mask = Mask.from_flat(encoding.layout, encoding.decode(genome)[0])
        assert np.array_equal(encoding.encode(mask), genome)


def test_pickles_without_the_graph_and_decodes_the_same():
    encoding = GroupsEncoding(tiny_residual(), input_shape=(1, 6, 6))
    genomes = encoding.sample(4, np.random.default_rng(3))
    copy_ = pickle.loads(pickle.dumps(encoding))
    assert copy_._cover_cache is None
    assert np.array_equal(copy_.decode(genomes), encoding.decode(genomes))
    assert make_encoding("groups", tiny_residual(), **encoding.options).n_genes == encoding.n_genes


def test_refuses_layers_it_cannot_prune_exactly():
    grouped = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 8, 3)),
                ("conv2", nn.Conv2d(8, 8, 3, groups=2)),
                ("pool", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(8, 2)),
            ]
        )
    )
    with pytest.raises(MaskError, match=r"'conv2' is a grouped convolution \(groups=2"):
        GroupsEncoding(grouped, input_shape=(1, 8, 8))
    normed = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 8, 3)),
                ("norm", nn.GroupNorm(2, 8)),
                ("pool", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(8, 2)),
            ]
        )
    )
    with pytest.raises(MaskError, match=r"'norm' \(GroupNorm\).*Supported: Linear"):
        GroupsEncoding(normed, input_shape=(1, 8, 8))
    with pytest.raises(MaskError, match="could not trace.*input_shape"):
        GroupsEncoding(tiny_residual(), input_shape=(3, 6, 6))
    with pytest.raises(MaskError, match="no channel that can be removed"):
        GroupsEncoding(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), input_shape=(4,))


def test_depthwise_convs_share_their_producers_group():
    model = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 6, 3)),
                ("bn1", nn.BatchNorm2d(6)),
                ("dw", nn.Conv2d(6, 6, 3, groups=6)),
                ("bn2", nn.BatchNorm2d(6)),
                ("pw", nn.Conv2d(6, 5, 1)),
                ("pool", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(5, 2)),
            ]
        )
    ).eval()
    encoding = GroupsEncoding(model, input_shape=(1, 8, 8))
    assert sorted(g.channels for g in encoding.table.groups) == [5, 6]
    group = next(i for i, g in enumerate(encoding.table.groups) if g.channels == 6)
    genome = np.ones(encoding.n_genes, dtype=bool)
    genome[encoding.table.offsets[group] + 1] = False
    mask = Mask.from_flat(encoding.layout, encoding.decode(genome)[0]).tensors
    assert not mask["conv1.weight"][1].any() and not mask["dw.weight"][1].any()
    assert not mask["pw.weight"][:, 1].any() and not mask["bn2.bias"][1]
    assert mask["dw.weight"][[0, 2, 3, 4, 5]].all()


def test_problem_fills_in_the_input_shape_and_scores_the_masked_model():
    model = tiny_residual()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 6, 6, generator=generator)
    y = torch.randint(0, 2, (64,), generator=generator)
    problem = PruningProblem(model, Split(x, y), encoding="groups", densities=(0.5,))
    assert problem.encoding.options["input_shape"] == [1, 6, 6]
    genomes = problem.encoding.sample(4, np.random.default_rng(4))
    evaluation = problem.evaluate(genomes)
    for row, genome in enumerate(evaluation.genomes):
        with torch.no_grad():
            predicted = masked_model(model, problem.encoding, genome)(x).argmax(dim=1)
        error = 1.0 - (predicted == y).float().mean().item()
        assert evaluation.metrics["error"][row] == pytest.approx(error)
    assert np.allclose(evaluation.metrics["density"], problem.encoding.densities(genomes))
    with pytest.raises(ValueError, match="latency objective needs the 'groups' encoding"):
        PruningProblem(
            models.digits_mlp(seed=0),
            Split(torch.randn(8, 64), torch.zeros(8).long()),
            objectives=("error", "latency"),
        )


def test_widths_only_keeps_each_groups_most_important_channels():
    model = models.build("resnet20", seed=0)
    free = GroupsEncoding(model, input_shape=(3, 16, 16))
    widths = GroupsEncoding(model, input_shape=(3, 16, 16), widths_only=True)
    rng = np.random.default_rng(5)
    genomes = rng.random((8, free.n_genes)) < rng.random((8, 1))
    genomes[0] = False  # every group emptied: one channel each survives
    fixed = widths.validate(genomes)
    offsets = free.table.offsets
    for raw, genome in zip(genomes, fixed, strict=True):
        for g in range(len(offsets) - 1):
            part = slice(offsets[g], offsets[g + 1])
            # the width is the genome's own (at least 1), the channels the top-scoring ones,
            # checked against a plain sort of the group's scores
            width = max(1, int(raw[part].sum()))
            assert int(genome[part].sum()) == width
            best = np.argsort(-free._score[part], kind="stable")[:width]
            assert set(np.flatnonzero(genome[part])) == set(best)
    # a genome already in that form is left as it is, and the operators keep the form
    assert np.array_equal(widths.validate(fixed), fixed)
    children = widths.mutate(fixed, rng)
    assert np.array_equal(widths.validate(children), children)
    assert not np.array_equal(children, fixed)
    crossed = widths.crossover(fixed[:4], fixed[4:], rng)
    sampled = widths.sample(6, rng)
    for made in (crossed, sampled):
        assert np.array_equal(widths.validate(made), made)
    # global magnitude pruning removes each group's weakest channels: already widths-only
    magnitude = free.magnitude([0.6, 0.3])
    assert np.array_equal(widths.magnitude([0.6, 0.3]), magnitude)
    assert np.array_equal(widths.validate(magnitude), magnitude)


def test_widths_only_is_an_option_a_run_directory_rebuilds():
    model = tiny_residual()
    widths = GroupsEncoding(model, input_shape=(1, 6, 6), widths_only=True)
    assert widths.options["widths_only"] is True
    assert "widths_only" not in GroupsEncoding(model, input_shape=(1, 6, 6)).options
    rebuilt = make_encoding("groups", tiny_residual(), **widths.options)
    genome = np.zeros(widths.n_genes, dtype=bool)
    genome[[0, widths.n_genes - 1]] = True
    assert np.array_equal(rebuilt.validate(genome), widths.validate(genome))
    with pytest.raises(TypeError, match="widths_only must be True or False"):
        GroupsEncoding(model, input_shape=(1, 6, 6), widths_only="yes")


def test_magnitude_at_most_never_exceeds_its_target():
    encoding = GroupsEncoding(models.build("resnet20", seed=0), input_shape=(3, 16, 16))
    targets = [0.63, 0.41, 0.17]
    nearest = encoding.densities(encoding.magnitude(targets))
    below = encoding.densities(encoding.magnitude(targets, at_most=True))
    assert (below <= np.array(targets) + 1e-12).all()
    # the densest such genome: one channel fewer removed would exceed the target
    assert (below <= nearest + 1e-12).all()
    assert (nearest - below < 0.02).all()


def test_widths_genome_keeps_each_groups_top_channels_and_refuses_bad_widths():
    model = models.build("resnet20", seed=0)
    encoding = GroupsEncoding(model, input_shape=(3, 16, 16))
    sizes = np.diff(encoding.table.offsets)
    widths = [max(1, size // (g + 2)) for g, size in enumerate(sizes)]
    genome = encoding.widths_genome(widths)
    assert genome.shape == (encoding.n_genes,) and genome.dtype == bool
    # the same channels as a plain sort of each group's scores, and valid as it is
    for g, width in enumerate(widths):
        part = slice(encoding.table.offsets[g], encoding.table.offsets[g + 1])
        best = np.argsort(-encoding._score[part], kind="stable")[:width]
        assert set(np.flatnonzero(genome[part])) == set(best)
    assert np.array_equal(encoding.kept_channels(genome[None])[0], widths)
    assert np.array_equal(encoding.validate(genome[None])[0], genome)
    # full widths keep every channel
    assert encoding.widths_genome(sizes).all()
    with pytest.raises(ValueError, match=f"one channel count per group, {sizes.size} here"):
        encoding.widths_genome(widths[:-1])
    too_wide = list(widths)
    too_wide[1] = int(sizes[1]) + 1
    with pytest.raises(ValueError, match="group 1 .* out of range"):
        encoding.widths_genome(too_wide)
    with pytest.raises(ValueError, match="out of range"):
        encoding.widths_genome([0, *widths[1:]])
    with pytest.raises(ValueError, match="whole channel counts"):
        encoding.widths_genome(["wide", *widths[1:]])
