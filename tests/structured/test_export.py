"""Structured export: a shrunk model computes what the masked one does, and loads without us."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from masksearch.mask import MaskError
from masksearch.models import build
from masksearch.structured.export import load_structured, masked, save_structured, shrink
from masksearch.structured.groups import GroupTable, channel_groups


class DepthwiseNet(nn.Module):
    """conv → BN → ReLU → depthwise conv → BN → pointwise conv → pool → linear."""

    def __init__(self, channels: int = 8, wide: int = 12, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.pointwise = nn.Conv2d(channels, wide, 1)
        self.head = nn.Linear(wide, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.stem(x)))
        x = self.pointwise(torch.relu(self.bn2(self.depthwise(x))))
        return self.head(x.mean(dim=(2, 3)))


class GroupedNet(nn.Module):
    """A groups=2 convolution that is not depthwise: zeroing a channel is not removing it."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.split = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.split(torch.relu(self.stem(x))).mean(dim=(2, 3)))


def _randomized(model: nn.Module, seed: int) -> nn.Module:
    """Random BN statistics and affine parameters: fresh ones (mean 0, scale 1, shift 0) would
    let a wrong removal still produce zeros, and hide it."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor: torch.Tensor, low: float, high: float) -> None:
        tensor.copy_(low + (high - low) * torch.rand(tensor.shape, generator=generator))

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                uniform(module.running_mean, -1.0, 1.0)
                uniform(module.running_var, 0.5, 2.0)
                uniform(module.weight, 0.5, 1.5)
                uniform(module.bias, -1.0, 1.0)
    return model.eval()


def _mobilenet() -> nn.Module:
    from torchvision.models import mobilenet_v3_small

    torch.manual_seed(0)
    return mobilenet_v3_small(num_classes=10)


@dataclass
class Case:
    name: str
    model: nn.Module
    shape: tuple[int, ...]
    table: GroupTable
    genome: np.ndarray
    shrunk: nn.Module
    reference: nn.Module  # masked(...)
    state_before: dict[str, torch.Tensor]


# a residual net with BN (1×1 conv shortcuts), a depthwise-separable net, a torchvision model
# (depthwise convs, squeeze-excitation, hardswish); resnet18 works too but costs 3 s a trace
BUILDERS = {
    "resnet20": (lambda: build("resnet20", seed=0), (3, 16, 16)),
    "depthwise": (DepthwiseNet, (3, 10, 10)),
    "mobilenet_v3_small": (_mobilenet, (3, 32, 32)),
}


def _half_genome(table: GroupTable, seed: int) -> np.ndarray:
    """Keep about half of every group's channels, always its first one."""
    genome = np.random.default_rng(seed).random(table.n_genes) < 0.5
    genome[table.offsets[:-1]] = True
    return genome


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    built = {}
    for seed, (name, (builder, shape)) in enumerate(BUILDERS.items()):
        torch.manual_seed(seed)
        model = _randomized(builder(), seed)
        table = channel_groups(model, shape)
        model.train()  # shrink must not change it, mode included
        state = {k: v.clone() for k, v in model.state_dict().items()}
        genome = _half_genome(table, seed)
        built[name] = Case(
            name,
            model,
            shape,
            table,
            genome,
            shrink(model, genome, shape),
            masked(model, genome, shape),
            state,
        )
    return built


@pytest.fixture(params=list(BUILDERS))
def case(request: pytest.FixtureRequest, cases: dict[str, Case]) -> Case:
    return cases[request.param]


def _zeroed_by_hand(case: Case) -> nn.Module:
    """The masked model built from the table alone (not through `masked`)."""
    keep = np.ones(case.table.layout.n_total, dtype=bool)
    for gene in np.flatnonzero(~case.genome):
        keep[case.table.positions_of(int(gene))] = False
    model = copy.deepcopy(case.model).eval()
    params = dict(model.named_parameters())
    offsets = case.table.layout.offsets
    with torch.no_grad():
        for i, (name, shape) in enumerate(
            zip(case.table.layout.names, case.table.layout.shapes, strict=True)
        ):
            part = torch.from_numpy(keep[offsets[i] : offsets[i + 1]].reshape(shape))
            params[name].mul_(part.to(params[name].dtype))
    return model


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)


def test_shrunk_outputs_equal_the_masked_model(case: Case) -> None:
    x = torch.randn(4, *case.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = case.shrunk(x)
        _close(out, case.reference(x))
        _close(out, _zeroed_by_hand(case)(x))
        dense = copy.deepcopy(case.model).eval()(x)
    # half the channels gone must change the output, or the comparison proves nothing
    assert (out - dense).abs().max() > 1e-3


def test_shrink_leaves_the_model_alone_and_returns_eval_mode(case: Case) -> None:
    assert case.model.training
    state = case.model.state_dict()
    assert state.keys() == case.state_before.keys()
    for key, before in case.state_before.items():
        assert torch.equal(state[key], before), key
    assert not case.shrunk.training
    assert not case.reference.training


def test_channels_are_really_removed(case: Case) -> None:
    modules = dict(case.shrunk.named_modules())
    for number, group in enumerate(case.table.groups):
        kept = int(case.genome[case.table.offsets[number] : case.table.offsets[number + 1]].sum())
        root = modules[group.root]
        width = root.out_channels if isinstance(root, nn.Conv2d) else root.out_features
        assert width == kept, group.root


def test_parameter_count_is_the_kept_positions_plus_the_rest(case: Case) -> None:
    removed = np.unique(
        np.concatenate([case.table.positions_of(int(g)) for g in np.flatnonzero(~case.genome)])
    )
    in_layout = set(case.table.layout.names)
    outside = sum(p.numel() for n, p in case.model.named_parameters() if n not in in_layout)
    total = sum(p.numel() for p in case.model.parameters())
    shrunk = sum(p.numel() for p in case.shrunk.parameters())
    assert shrunk == case.table.layout.n_total - removed.size + outside
    assert shrunk < total


def test_saved_models_load_without_masksearch(cases: dict[str, Case], tmp_path: Path) -> None:
    expected = {}
    inputs = {}
    for name, case in cases.items():
        save_structured(case.shrunk, tmp_path / f"{name}.pt2", case.shape)
        # the batch size is free: one the export never saw, and 1
        inputs[name] = [torch.randn(5, *case.shape), torch.randn(1, *case.shape)]
        with torch.no_grad():
            expected[name] = [case.shrunk(x) for x in inputs[name]]
    torch.save(inputs, tmp_path / "inputs.pt")
    script = textwrap.dedent(
        """
        import sys
        import torch
        inputs = torch.load("inputs.pt")
        outputs = {}
        with torch.no_grad():
            for name, xs in inputs.items():
                model = torch.export.load(name + ".pt2").module()
                outputs[name] = [model(x) for x in xs]
        assert "masksearch" not in sys.modules, "loading imported masksearch"
        torch.save(outputs, "outputs.pt")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = torch.load(tmp_path / "outputs.pt")
    for name, want in expected.items():
        for got, wanted in zip(outputs[name], want, strict=True):
            _close(got, wanted)
    # written atomically: no temporary file left beside the programs
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{n}.pt2" for n in cases] + ["inputs.pt", "outputs.pt"]
    )


def test_load_structured_and_a_fixed_batch_size(cases: dict[str, Case], tmp_path: Path) -> None:
    case = cases["depthwise"]
    path = save_structured(case.shrunk, tmp_path / "fixed.pt2", case.shape, batch_size=3)
    assert path == tmp_path / "fixed.pt2"
    loaded = load_structured(path)
    x = torch.randn(3, *case.shape)
    with torch.no_grad():
        _close(loaded(x), case.shrunk(x))
    with pytest.raises(FileNotFoundError, match="save_structured"):
        load_structured(tmp_path / "missing.pt2")
    (tmp_path / "junk.pt2").write_bytes(b"not a program")
    with pytest.raises(ValueError, match="not a torch.export program"):
        load_structured(tmp_path / "junk.pt2")
    with pytest.raises(ValueError, match="batch_size"):
        save_structured(case.shrunk, tmp_path / "bad.pt2", case.shape, batch_size=0)


def test_save_keeps_the_module_device_and_mode(cases: dict[str, Case], tmp_path: Path) -> None:
    module = cases["depthwise"].reference
    module.train()
    try:
        save_structured(module, tmp_path / "m.pt2", cases["depthwise"].shape)
        assert module.training
    finally:
        module.eval()


@pytest.fixture(scope="module")
def small() -> Case:
    model = _randomized(DepthwiseNet(), 7)
    shape = (3, 6, 6)
    table = channel_groups(model, shape)
    genome = _half_genome(table, 7)
    return Case("small", model, shape, table, genome, nn.Identity(), nn.Identity(), {})


def test_a_genome_of_the_wrong_length_is_refused(small: Case) -> None:
    n = small.table.n_genes
    for function in (shrink, masked):
        with pytest.raises(MaskError, match=rf"shape \({n - 1},\).*{n} channel genes.*'groups'"):
            function(small.model, small.genome[:-1], small.shape)


@pytest.mark.parametrize("values", [(0, 2), (0.0, 0.5), (-1, 1)])
def test_non_binary_genomes_are_refused(small: Case, values: tuple[float, float]) -> None:
    genome = np.where(small.genome, values[1], values[0])
    for function in (shrink, masked):
        with pytest.raises(MaskError, match="must be bool"):
            function(small.model, genome, small.shape)


def test_zero_one_genomes_and_tensors_are_accepted(small: Case) -> None:
    x = torch.randn(2, *small.shape)
    base = shrink(small.model, small.genome, small.shape)
    for genome in (small.genome.astype(np.int64), torch.from_numpy(small.genome.astype("f4"))):
        with torch.no_grad():  # Torch-Pruning traces through autograd: shrink must re-enable it
            _close(shrink(small.model, genome, small.shape)(x), base(x))
            _close(masked(small.model, genome, small.shape)(x), base(x))


def test_an_emptied_group_is_refused_by_name(small: Case) -> None:
    genome = small.genome.copy()
    group = 1
    genome[small.table.offsets[group] : small.table.offsets[group + 1]] = False
    root = small.table.groups[group].root
    with pytest.raises(MaskError, match=rf"group {group} \(root layer '{root}'.*keep at least one"):
        shrink(small.model, genome, small.shape)
    masked(small.model, genome, small.shape)  # zeros are still defined: the reference allows it


def test_a_grouped_convolution_is_refused_by_name() -> None:
    model = GroupedNet().eval()
    with pytest.raises(MaskError, match=r"'split' is a grouped convolution \(groups=2"):
        channel_groups(model, (3, 6, 6))
    with pytest.raises(MaskError, match="'split' is a grouped convolution"):
        shrink(model, np.ones(8, dtype=bool), (3, 6, 6))
