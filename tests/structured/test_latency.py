"""LatencyTable: per-layer timings on the target device, interpolated, summed and cached."""

from __future__ import annotations

import copy
import json
import math
import warnings
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from masksearch import models
from masksearch.structured import latency
from masksearch.structured.groups import channel_groups, trace_groups
from masksearch.structured.latency import LatencyTable, LayerSignature, measure_latency

FAST = {"batch_size": 2, "grid": 2, "repeats": 2, "warmup": 0}


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            [
                ("fc1", nn.Linear(6, 12)),
                ("relu1", nn.ReLU()),
                ("fc2", nn.Linear(12, 8)),
                ("relu2", nn.ReLU()),
                ("fc3", nn.Linear(8, 3)),
            ]
        )
    )


def _conv_flatten() -> nn.Module:
    """conv → flatten → linear: one removed channel is 4×4 = 16 fewer linear inputs."""
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 4, 3, padding=1)),
                ("bn1", nn.BatchNorm2d(4)),
                ("relu", nn.ReLU()),
                ("conv2", nn.Conv2d(4, 5, 3, stride=2, padding=1)),
                ("prelu", nn.PReLU(5)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(5 * 4 * 4, 3)),
            ]
        )
    )


def _depthwise() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 8, 3, padding=1)),
                ("bn1", nn.BatchNorm2d(8)),
                ("relu1", nn.ReLU()),
                ("dw", nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)),
                ("bn2", nn.BatchNorm2d(8)),
                ("relu2", nn.ReLU()),
                ("pw", nn.Conv2d(8, 6, 1)),
                ("pool", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(6, 4)),
            ]
        )
    )


class _Concat(nn.Module):
    """Two branches concatenated into one conv: its input width comes from two groups."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 6, 1)
        self.c = nn.Conv2d(10, 5, 1)
        self.fc = nn.Linear(5 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.c(torch.cat([self.a(x), self.b(x)], 1)).flatten(1))


def _resnet() -> nn.Module:
    return models.build("resnet20", seed=0)


MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "mlp": (_mlp, (6,)),
    "conv_flatten": (_conv_flatten, (1, 8, 8)),
    "depthwise": (_depthwise, (3, 8, 8)),
    "concat": (_Concat, (3, 4, 4)),
    "resnet20": (_resnet, (3, 16, 16)),
}


def _analytic(signature: LayerSignature, cin: int, cout: int, **_: object) -> float:
    # nonlinear in both widths, so that bilinear interpolation is visibly not exact off-grid
    return 1e-6 * cin**2 * cout + 1e-4 * len(signature.input_shape) + 1e-5


class _Clock:
    """Stands in for the timers: known seconds, and a count of how often it was asked."""

    def __init__(self, layer: Callable[..., float] = _analytic, model: float = 0.0) -> None:
        self.layer, self.model = layer, model
        self.layer_calls = self.model_calls = 0
        self.seen: list[tuple[LayerSignature, int, int]] = []

    def time_layer(self, signature: LayerSignature, cin: int, cout: int, **timing: object) -> float:
        self.layer_calls += 1
        self.seen.append((signature, cin, cout))
        return self.layer(signature, cin, cout, **timing)

    def measure(self, *_: object, **__: object) -> float:
        self.model_calls += 1
        return self.model


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    found = _Clock()
    monkeypatch.setattr(latency, "_time_layer", found.time_layer)
    monkeypatch.setattr(latency, "measure_latency", found.measure)
    return found


def _build(name: str, tmp_path, **options) -> tuple[nn.Module, LatencyTable]:
    factory, shape = MODELS[name]
    model = factory()
    table = channel_groups(model, shape)
    settings = {**FAST, "cache_dir": tmp_path, **options}
    return model, LatencyTable(model, table, shape, **settings)


def _genome(name: str, keep: dict[str, int]) -> np.ndarray:
    """Keep the first ``keep[root]`` channels of the group named after layer ``root``."""
    factory, shape = MODELS[name]
    groups = channel_groups(factory(), shape).groups
    return np.concatenate([np.arange(g.channels) < keep[g.root] for g in groups])


def _bilinear(f, xs: tuple[float, float], ys: tuple[float, float], x: float, y: float) -> float:
    """f interpolated at (x, y) from the 4 corners of the cell xs × ys (or a 1-D cell)."""
    t = 0.0 if xs[0] == xs[1] else (x - xs[0]) / (xs[1] - xs[0])
    u = 0.0 if ys[0] == ys[1] else (y - ys[0]) / (ys[1] - ys[0])
    return (
        f(xs[0], ys[0]) * (1 - t) * (1 - u)
        + f(xs[1], ys[0]) * t * (1 - u)
        + f(xs[0], ys[1]) * (1 - t) * u
        + f(xs[1], ys[1]) * t * u
    )


# -- measure_latency ----------------------------------------------------------------------


def test_measure_latency_is_a_positive_time_and_restores_training_mode():
    model = _conv_flatten().train()
    seconds = measure_latency(model, (1, 8, 8), batch_size=4, repeats=3, warmup=1)
    assert isinstance(seconds, float)
    assert math.isfinite(seconds) and seconds > 0
    assert model.training


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"repeats": 0}, "repeats"),
        ({"warmup": -1}, "warmup"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_measure_latency_rejects_bad_arguments(options, message):
    with pytest.raises(ValueError, match=message):
        measure_latency(_mlp(), (6,), **options)


@pytest.mark.parametrize("shape", [(), (0,), (7,)])
def test_measure_latency_names_a_wrong_input_shape(shape):
    with pytest.raises(ValueError, match="input_shape"):
        measure_latency(_mlp(), shape, batch_size=2, repeats=1)


# -- the estimate: analytic timings ---------------------------------------------------------


def test_estimate_at_grid_points_is_the_sum_of_the_timed_layers_plus_rest(clock, tmp_path):
    clock.model = 1.0  # more than the layers sum to: the difference is `rest`
    _, table = _build("mlp", tmp_path, grid=4)
    # grid 4 over 12 and 8 channels: 3, 6, 9, 12 and 2, 4, 6, 8
    genome = _genome("mlp", {"fc1": 9, "fc2": 4})
    layers = _analytic_sum([(6, 9), (9, 4), (4, 3)], table)
    dense = _analytic_sum([(6, 12), (12, 8), (8, 3)], table)
    assert table.rest == pytest.approx(1.0 - dense, rel=1e-12)
    assert table(genome)[0] == pytest.approx(layers + table.rest, rel=1e-12)
    assert table.dense == pytest.approx(1.0, rel=1e-12)


def _analytic_sum(widths: list[tuple[int, int]], table: LatencyTable) -> float:
    return sum(
        _analytic(layer.signature, cin, cout)
        for layer, (cin, cout) in zip(table.layers, widths, strict=True)
    )


def test_estimate_between_grid_points_is_the_bilinear_interpolation(clock, tmp_path):
    _, table = _build("mlp", tmp_path, grid=4)
    genome = _genome("mlp", {"fc1": 4, "fc2": 5})  # 4 of 12 and 5 of 8 kept: both off-grid
    fc1, fc2, fc3 = (lambda x, y, s=layer.signature: _analytic(s, x, y) for layer in table.layers)
    expected = (
        _bilinear(fc1, (6, 6), (3, 6), 6, 4)
        + _bilinear(fc2, (3, 6), (4, 6), 4, 5)
        + _bilinear(fc3, (4, 6), (3, 3), 5, 3)
    )
    assert table(genome)[0] == pytest.approx(expected + table.rest, rel=1e-12)
    # the interpolation is not the analytic value itself: the test would see a wrong grid
    assert abs(expected - _analytic_sum([(6, 4), (4, 5), (5, 3)], table)) > 1e-7


def test_a_bilinear_timing_is_reproduced_exactly_for_any_genome(monkeypatch, tmp_path):
    # a*in*out + b is bilinear (a*c + b for a tied layer: one width), so interpolating it
    # between grid points is exact everywhere
    def affine(signature: LayerSignature, cin: int, cout: int, **_: object) -> float:
        return 2e-6 * cin * (1 if signature.tied else cout) + 3e-4

    found = _Clock(affine)
    monkeypatch.setattr(latency, "_time_layer", found.time_layer)
    monkeypatch.setattr(latency, "measure_latency", found.measure)
    _, table = _build("conv_flatten", tmp_path, grid=4)
    rng = np.random.default_rng(0)
    genomes = rng.random((16, table.n_genes)) < 0.7
    # stay on the grid: fc's smallest point is 20 inputs, 2 of conv2's 5 channels (16 each)
    offsets = channel_groups(_conv_flatten(), MODELS["conv_flatten"][1]).offsets
    genomes[:, offsets[:-1]] = genomes[:, offsets[:-1] + 1] = True
    widths_in, widths_out = table.widths(genomes)
    expected = np.zeros(len(genomes))
    for index, layer in enumerate(table.layers):
        cout = 1 if layer.signature.tied else widths_out[:, index]
        expected += 2e-6 * widths_in[:, index] * cout + 3e-4
    assert np.allclose(table(genomes), expected + table.rest, rtol=1e-12, atol=0)


def test_rest_is_clipped_at_zero_when_the_layers_sum_to_more_than_the_model(clock, tmp_path):
    clock.model = 0.0
    _, table = _build("mlp", tmp_path, grid=4)
    assert table.rest == 0.0
    assert table.dense == pytest.approx(_analytic_sum([(6, 12), (12, 8), (8, 3)], table))


def test_dense_relative_and_one_genome(clock, tmp_path):
    clock.model = 1.0
    _, table = _build("mlp", tmp_path, grid=4)
    ones = np.ones(table.n_genes, dtype=bool)
    assert table(ones).shape == (1,)
    assert table(ones)[0] == table.dense
    assert table.relative(ones)[0] == pytest.approx(1.0)
    genomes = np.stack([ones, _genome("mlp", {"fc1": 3, "fc2": 2})])
    assert table(genomes).shape == (2,)
    assert table.relative(genomes)[1] < 1.0
    assert np.array_equal(table(genomes.astype(np.int8)), table(genomes))  # 0/1 works too


def test_a_width_below_the_grid_takes_the_smallest_grid_points_time(clock, tmp_path):
    _, table = _build("mlp", tmp_path, grid=4)
    # 1 of 12 kept is below the smallest grid point (3): it reads as 3, over- not under-
    assert (
        table(_genome("mlp", {"fc1": 1, "fc2": 8}))[0]
        == table(_genome("mlp", {"fc1": 3, "fc2": 8}))[0]
    )


def test_tied_layers_are_timed_with_as_many_outputs_as_inputs(clock, tmp_path):
    _, table = _build("depthwise", tmp_path, grid=4)
    tied = {layer.name for layer in table.layers if layer.signature.tied}
    assert tied == {"bn1", "dw", "bn2"}
    for signature, cin, cout in clock.seen:
        if signature.tied:
            assert cin == cout
            assert signature.out_points == (signature.out_width,)
    assert {s.in_points for s, _, _ in clock.seen if s.kind == "Conv2d" and s.tied} == {
        (2, 4, 6, 8)
    }


# -- widths: what a genome leaves of every layer, checked against physical pruning ------------


def _physically_pruned(model: nn.Module, shape: tuple[int, ...], keep: np.ndarray) -> nn.Module:
    """The channels ``keep`` removes, taken out by Torch-Pruning itself."""
    pruned = copy.deepcopy(model).eval()
    graph, named = trace_groups(pruned, shape)
    start = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for info, group in named:
            drop = np.flatnonzero(~keep[start : start + info.channels]).tolist()
            start += info.channels
            if drop:
                root = group.items[0].dep
                graph.get_pruning_group(root.target.module, root.handler, idxs=drop).prune()
    return pruned


def _module_widths(module: nn.Module) -> tuple[int, int]:
    for ins, outs in (("in_features", "out_features"), ("in_channels", "out_channels")):
        if hasattr(module, ins):
            return getattr(module, ins), getattr(module, outs)
    width = getattr(module, "num_features", getattr(module, "num_parameters", None))
    return width, width


@pytest.mark.parametrize("name", list(MODELS))
def test_widths_match_the_physically_pruned_model(clock, tmp_path, name):
    model, table = _build(name, tmp_path, grid=3)
    shape = MODELS[name][1]
    groups = channel_groups(model, shape)
    rng = np.random.default_rng(1)
    for _ in range(2):
        keep = rng.random(table.n_genes) < 0.6
        keep[groups.offsets[:-1]] = True  # every group keeps a channel
        modules = dict(_physically_pruned(model, shape, keep).named_modules())
        widths_in, widths_out = table.widths(keep)
        for index, layer in enumerate(table.layers):
            cin, cout = _module_widths(modules[layer.name])
            assert widths_in[0, index] == cin, layer.name
            if not layer.signature.tied:
                assert widths_out[0, index] == cout, layer.name


# -- real timings on the CPU ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet20", "depthwise"])
def test_real_timings_give_finite_positive_estimates(tmp_path, name):
    _, table = _build(name, tmp_path)
    assert table.measured > 0 and table.rest >= 0
    rng = np.random.default_rng(0)
    genomes = rng.random((4, table.n_genes)) < 0.5
    estimates = table(genomes)
    assert estimates.shape == (4,)
    assert np.isfinite(estimates).all() and (estimates > 0).all()
    assert table(np.ones(table.n_genes, dtype=bool))[0] == table.dense
    kinds = {layer.signature.kind for layer in table.layers}
    assert {"Conv2d", "BatchNorm2d", "Linear"} <= kinds


def test_construction_leaves_the_model_as_it_was(clock, tmp_path):
    factory, shape = MODELS["conv_flatten"]
    model = factory().train()
    groups = channel_groups(model, shape)
    before = copy.deepcopy(model.state_dict())
    LatencyTable(model, groups, shape, **FAST, cache_dir=tmp_path)
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


# -- the cache --------------------------------------------------------------------------------


def test_the_cache_is_json_and_a_second_construction_times_nothing(clock, tmp_path):
    clock.model = 0.5
    _, first = _build("resnet20", tmp_path)
    assert clock.layer_calls > 0 and clock.model_calls == 1
    files = list(tmp_path.glob("*.json"))
    assert files == [first.cache_path]
    assert len(first.cache_path.stem) == 64  # a SHA-256
    stored = json.loads(first.cache_path.read_text())
    assert stored["key"]["batch_size"] == FAST["batch_size"]
    assert stored["key"]["threads"] == torch.get_num_threads()
    assert stored["key"]["torch"] == torch.__version__

    clock.layer_calls = clock.model_calls = 0
    _, second = _build("resnet20", tmp_path)
    assert clock.layer_calls == 0 and clock.model_calls == 0
    genomes = np.random.default_rng(0).random((5, first.n_genes)) < 0.5
    assert np.array_equal(first(genomes), second(genomes))
    assert second.dense == first.dense and second.rest == first.rest


def test_equal_signatures_are_timed_once(clock, tmp_path):
    _, table = _build("resnet20", tmp_path)
    signatures = {layer.signature for layer in table.layers}
    assert len(signatures) < len(table.layers)  # ResNet repeats its blocks
    assert clock.layer_calls == sum(len(s.in_points) * len(s.out_points) for s in signatures)


@pytest.mark.parametrize(
    "content", ["{ not json", '{"key": {}, "seconds": [], "model_seconds": 1}', "[]"]
)
def test_a_corrupt_or_mismatched_cache_is_measured_again_and_overwritten(clock, tmp_path, content):
    _, first = _build("mlp", tmp_path)
    first.cache_path.write_text(content)
    clock.layer_calls = 0
    with pytest.warns(UserWarning, match="ignoring the latency cache"):
        _, second = _build("mlp", tmp_path)
    assert clock.layer_calls > 0
    assert json.loads(second.cache_path.read_text())["key"]["grid"] == FAST["grid"]
    assert second.dense == first.dense  # the same analytic clock


def test_a_cache_with_impossible_times_is_measured_again(clock, tmp_path):
    _, first = _build("mlp", tmp_path)
    stored = json.loads(first.cache_path.read_text())
    stored["seconds"][0][0][0] = -1.0
    first.cache_path.write_text(json.dumps(stored))
    with pytest.warns(UserWarning, match="negative or non-finite"):
        _build("mlp", tmp_path)


def test_other_settings_are_cached_in_other_files(clock, tmp_path):
    _, first = _build("mlp", tmp_path)
    _, other_batch = _build("mlp", tmp_path, batch_size=3)
    _, other_grid = _build("mlp", tmp_path, grid=3)
    paths = {first.cache_path, other_batch.cache_path, other_grid.cache_path}
    assert len(paths) == 3 and all(p.exists() for p in paths)


def test_an_unwritable_cache_warns_and_still_estimates(clock, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.warns(UserWarning, match="not cached"):
        _, table = _build("mlp", blocked)
    assert math.isfinite(table.dense)


# -- bad input --------------------------------------------------------------------------------


def test_a_genome_of_the_wrong_shape_or_values_is_refused(clock, tmp_path):
    _, table = _build("mlp", tmp_path)
    with pytest.raises(ValueError, match=rf"\(population, {table.n_genes}\)"):
        table(np.ones(table.n_genes + 1, dtype=bool))
    with pytest.raises(ValueError, match="population"):
        table(np.ones((2, 3, table.n_genes), dtype=bool))
    with pytest.raises(ValueError, match="boolean"):
        table(np.full(table.n_genes, 0.5))


@pytest.mark.parametrize(
    ("options", "message"),
    [({"batch_size": 0}, "batch_size"), ({"grid": 0}, "grid"), ({"repeats": 0}, "repeats")],
)
def test_bad_settings_are_refused(clock, tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        _build("mlp", tmp_path, **options)


def test_an_input_shape_the_model_cannot_take_is_named(clock, tmp_path):
    model = _mlp()
    table = channel_groups(model, (6,))
    with pytest.raises(ValueError, match=r"input_shape.*without the batch dimension"):
        LatencyTable(model, table, (7,), **FAST, cache_dir=tmp_path)


def test_a_table_of_another_model_is_refused(clock, tmp_path):
    table = channel_groups(_mlp(), (6,))
    wider = nn.Sequential(
        OrderedDict(
            [("fc1", nn.Linear(6, 16)), ("fc2", nn.Linear(16, 8)), ("fc3", nn.Linear(8, 3))]
        )
    )
    with pytest.raises(ValueError, match="another model"):
        LatencyTable(wider, table, (6,), **FAST, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="not a Linear/Conv layer"):
        LatencyTable(_depthwise(), table, (3, 8, 8), **FAST, cache_dir=tmp_path)


# -- the GPU ----------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_timings_are_finite_and_keyed_by_the_gpu(tmp_path):
    factory, shape = MODELS["resnet20"]
    model = factory()  # stays on the CPU: the table times a copy on the GPU
    table = LatencyTable(
        model, channel_groups(model, shape), shape, **FAST, device="cuda", cache_dir=tmp_path
    )
    assert next(model.parameters()).device.type == "cpu"
    genomes = np.random.default_rng(0).random((3, table.n_genes)) < 0.5
    assert np.isfinite(table(genomes)).all() and table.dense > 0
    key = json.loads(table.cache_path.read_text())["key"]
    assert torch.cuda.get_device_name() in key["device"]
    cpu = LatencyTable(model, channel_groups(model, shape), shape, **FAST, cache_dir=tmp_path)
    assert cpu.cache_path != table.cache_path
    assert measure_latency(model, shape, batch_size=2, device="cuda", repeats=2) > 0
