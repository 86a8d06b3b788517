"""Latency as an objective: measured on the target device, never guessed from FLOPs.

:func:`measure_latency` times whole forward passes. :class:`LatencyTable` is a per-layer
lookup table: every Linear/Conv/BatchNorm/PReLU layer of the model is rebuilt at a grid of
kept channel counts and timed on the target device (CPU or GPU); a genome's estimate sums the
layers' latencies, interpolated at the widths the genome keeps, plus one measured constant for
everything else. A search scores whole populations with one vectorised numpy call, and the
measurements are cached as JSON so that a resumed search gets the very same estimates.
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from masksearch.device import resolve_device
from masksearch.io import atomic_write_json
from masksearch.structured.groups import GroupTable

__all__ = ["LatencyTable", "LayerSignature", "TimedLayer", "measure_latency"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCH_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_LAYER_CLASSES: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in (nn.Linear, *_CONV, *_BATCH_NORM, nn.PReLU)
}
# bump when the cache's content or its meaning changes: old files then no longer match
_CACHE_FORMAT = 1


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    # bool is an int to Python, but batch_size=True is a bug, not a batch of one
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(
            "input_shape must be the shape of one input without the batch dimension, e.g. "
            f"(3, 32, 32); got {input_shape!r}"
        )
    return shape


def _dtype(model: nn.Module) -> torch.dtype:
    parameter = next(model.parameters(), None)
    return parameter.dtype if parameter is not None else torch.get_default_dtype()


def _on_device(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` itself when it already lives on ``device``, else a copy moved there: timing
    must not move the caller's model."""
    here = {p.device for p in model.parameters()} | {b.device for b in model.buffers()}
    if all(
        d.type == device.type and (device.index is None or d.index == device.index) for d in here
    ):
        return model
    return copy.deepcopy(model).to(device)


def _synchronize(device: torch.device) -> None:
    # kernels run asynchronously on accelerators: without waiting, we would time the launch
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _median_seconds(
    run: Callable[[], object], device: torch.device, repeats: int, warmup: int
) -> float:
    """Median wall seconds of ``run()``; the median shrugs off a few scheduler hiccups."""
    for _ in range(warmup):
        run()
    _synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _checked_forward(model: nn.Module, batch: torch.Tensor) -> None:
    """One forward pass whose failure names the input shape instead of a deep torch trace."""
    try:
        with torch.no_grad():
            model(batch)
    except Exception as error:  # the user's forward can fail in any way; say what to check
        raise ValueError(
            f"could not run {type(model).__name__} on a batch of shape {tuple(batch.shape)} "
            f"({type(error).__name__}: {error}); check input_shape: it must be the shape of "
            "one input the model accepts, without the batch dimension"
        ) from error


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    repeats: int = 20,
    warmup: int = 3,
) -> float:
    """Median wall seconds of one forward pass of a ``batch_size`` batch on ``device``.

    The model runs in eval mode under ``torch.no_grad`` (its training mode is restored after);
    a model that lives on another device is timed as a copy, so it is never moved.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    shape = _input_shape(input_shape)
    batch_size = _positive_int("batch_size", batch_size)
    repeats = _positive_int("repeats", repeats)
    warmup = _positive_int("warmup", warmup, minimum=0)
    target = resolve_device(device)
    timed = _on_device(model, target)
    batch = torch.randn((batch_size, *shape), device=target, dtype=_dtype(model))
    was_training = timed.training
    timed.eval()
    try:
        _checked_forward(timed, batch)  # also the first warm-up pass

        def forward() -> None:
            with torch.no_grad():
                timed(batch)

        return _median_seconds(forward, target, repeats, warmup)
    finally:
        timed.train(was_training)


@dataclass(frozen=True)
class LayerSignature:
    """Everything a layer's latency depends on: enough to build and time an equivalent layer.

    ``input_shape`` is the full input (batch included) at full width; ``in_points`` and
    ``out_points`` are the kept widths it is timed at. A *tied* layer (depthwise conv,
    batch norm, PReLU) has as many outputs as inputs: it is timed at ``in_points`` only and
    ``out_points`` is its single full width.
    """

    kind: str  # the torch class name: "Linear", "Conv2d", "BatchNorm2d", "PReLU"
    input_shape: tuple[int, ...]
    in_width: int
    out_width: int
    tied: bool
    bias: bool
    conv_groups: int  # a fixed grouped conv keeps its groups; depthwise ones are tied
    kernel_size: tuple[int, ...] | None
    stride: tuple[int, ...] | None
    padding: tuple[int, ...] | str | None
    dilation: tuple[int, ...] | None
    padding_mode: str | None
    in_points: tuple[int, ...]
    out_points: tuple[int, ...]

    @property
    def channel_dim(self) -> int:
        return -1 if self.kind == "Linear" else 1

    def input_for(self, channels: int) -> tuple[int, ...]:
        """The input shape with ``channels`` input channels."""
        shape = list(self.input_shape)
        shape[self.channel_dim] = channels
        return tuple(shape)

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class TimedLayer:
    """One call of a timed layer and which groups set its widths.

    A side's kept width is ``width - ratio * sum(removed channels of its groups)``: ``ratio``
    is how many features one channel is (the spatial size after a flatten, else 1), and a
    concatenation feeds one side from several groups.
    """

    name: str
    signature: LayerSignature
    in_groups: tuple[int, ...]
    in_ratio: int
    out_groups: tuple[int, ...]
    out_ratio: int


def _build_layer(signature: LayerSignature, in_channels: int, out_channels: int) -> nn.Module:
    """A freshly initialised layer like the timed one, with the given widths."""
    cls = _LAYER_CLASSES[signature.kind]
    if cls is nn.Linear:
        return nn.Linear(in_channels, out_channels, bias=signature.bias)
    if cls in _BATCH_NORM:
        return cls(in_channels)
    if cls is nn.PReLU:
        return nn.PReLU(num_parameters=in_channels)
    groups = in_channels if signature.tied else signature.conv_groups
    return cls(
        in_channels,
        in_channels if signature.tied else out_channels,
        kernel_size=signature.kernel_size,
        stride=signature.stride,
        padding=signature.padding,
        dilation=signature.dilation,
        groups=groups,
        bias=signature.bias,
        padding_mode=signature.padding_mode,
    )


def _time_layer(
    signature: LayerSignature,
    in_channels: int,
    out_channels: int,
    *,
    device: torch.device,
    dtype: torch.dtype,
    repeats: int,
    warmup: int,
) -> float:
    """Median seconds of one call of a fresh layer like ``signature`` with these widths.

    Module-level so that tests can replace the clock with a known function of the widths.
    """
    layer = _build_layer(signature, in_channels, out_channels).to(device=device, dtype=dtype)
    layer.eval()
    x = torch.randn(signature.input_for(in_channels), device=device, dtype=dtype)

    def forward() -> None:
        with torch.no_grad():
            layer(x)

    return _median_seconds(forward, device, repeats, warmup)


def _device_name(device: torch.device) -> str:
    """What the timings hold for: the GPU model, or the CPU model (caches may be shared)."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as info:
                for line in info:
                    if line.startswith("model name"):
                        return f"cpu:{line.split(':', 1)[1].strip()}"
        except OSError:
            pass
        return f"cpu:{platform.processor() or platform.machine()}"
    return device.type


def _grid_points(width: int, pruned: bool, grid: int) -> tuple[int, ...]:
    if not pruned:
        return (width,)
    return tuple(sorted({max(1, round(k * width / grid)) for k in range(1, grid + 1)}))


def _ratio(width: int, groups: Sequence[int], channels: Sequence[int]) -> int:
    total = sum(channels[g] for g in groups)
    # a flatten makes every channel `width // total` features; a concatenation with a
    # tensor no group prunes does not divide evenly, and there one channel is one feature
    return width // total if groups and width % total == 0 else 1


def _group_sides(table: GroupTable) -> dict[str, tuple[set[int], set[int]]]:
    """For every layer named in a group, the groups that set its input and output widths."""
    sides: dict[str, tuple[set[int], set[int]]] = {}
    for number, group in enumerate(table.groups):
        for member in group.members:
            name, _, side = member.rpartition(":")
            sides.setdefault(name, (set(), set()))[0 if side == "in" else 1].add(number)
    for name, (in_group, out_group) in table.layer_groups.items():
        found = sides.setdefault(name, (set(), set()))
        found[0].update({in_group} - {-1})
        found[1].update({out_group} - {-1})
    return sides


def _kind(module: nn.Module) -> str | None:
    """The torch layer class ``module`` is (a subclass is rebuilt as its torch base)."""
    for name, cls in _LAYER_CLASSES.items():
        if isinstance(module, cls):
            return name
    return None


def _record_inputs(model: nn.Module, batch: torch.Tensor) -> dict[nn.Module, list[tuple]]:
    """The input shape of every call of every timed layer, in call order."""
    calls: dict[nn.Module, list[tuple]] = {}

    def hook(module: nn.Module, inputs: tuple, _output: object) -> None:
        calls.setdefault(module, []).append(tuple(inputs[0].shape))

    handles = [
        module.register_forward_hook(hook)
        for module in model.modules()
        if _kind(module) is not None
    ]
    try:
        _checked_forward(model, batch)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _signature(
    name: str, module: nn.Module, input_shape: tuple, in_pruned: bool, out_pruned: bool, grid: int
) -> LayerSignature:
    kind = _kind(module)
    if isinstance(module, nn.Linear):
        in_width, out_width = module.in_features, module.out_features
    elif isinstance(module, _CONV):
        in_width, out_width = module.in_channels, module.out_channels
    elif isinstance(module, nn.PReLU):
        in_width = out_width = module.num_parameters
    else:
        in_width = out_width = module.num_features
    conv = isinstance(module, _CONV)
    groups = module.groups if conv else 1
    depthwise = conv and groups > 1 and groups == in_width == out_width
    tied = depthwise or not isinstance(module, (nn.Linear, *_CONV))
    if conv and groups > 1 and not depthwise and (in_pruned or out_pruned):
        raise ValueError(
            f"layer {name!r} is a grouped convolution (groups={groups}) whose channels are "
            "pruned: only ungrouped or depthwise convolutions can be rebuilt narrower; add it "
            "and its producers to `ignored` when building the GroupTable"
        )
    if tied:
        in_pruned = in_pruned or out_pruned
    in_points = _grid_points(in_width, in_pruned, grid)
    return LayerSignature(
        kind=str(kind),
        input_shape=tuple(int(s) for s in input_shape),
        in_width=in_width,
        out_width=out_width,
        tied=tied,
        bias=getattr(module, "bias", None) is not None,
        conv_groups=1 if depthwise else groups,
        kernel_size=tuple(module.kernel_size) if conv else None,
        stride=tuple(module.stride) if conv else None,
        padding=(module.padding if isinstance(module.padding, str) else tuple(module.padding))
        if conv
        else None,
        dilation=tuple(module.dilation) if conv else None,
        padding_mode=module.padding_mode if conv else None,
        in_points=in_points,
        out_points=(out_width,) if tied else _grid_points(out_width, out_pruned, grid),
    )


def _interpolation(points: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the grid points below and above ``x`` and the weight of the upper one.

    Widths outside the grid take the nearest end's value: below the smallest grid point this
    over-estimates, which is the safe side for a latency budget.
    """
    if points.size == 1:
        zero = np.zeros(x.shape, dtype=np.int64)
        return zero, zero, np.zeros(x.shape)
    x = np.clip(x, points[0], points[-1])
    upper = np.clip(np.searchsorted(points, x, side="right"), 1, points.size - 1)
    lower = upper - 1
    weight = (x - points[lower]) / (points[upper] - points[lower])
    return lower, upper, weight


class LatencyTable:
    """Estimated seconds per batch of a structurally pruned model, from per-layer timings.

    Every Linear/Conv layer in ``table.layer_groups`` and every BatchNorm/PReLU layer the
    model runs is rebuilt at kept fractions ``k / grid`` (``k = 1..grid``) of each pruned
    width (full width for a fixed side) and timed on ``device`` with an input of the shape it
    sees in the model; a genome's widths are interpolated bilinearly between grid points
    (linearly for a one-sided layer) and the layers' latencies summed.

    Everything not timed per layer (activations, residual adds, pooling, framework overhead)
    is one measured constant, ``rest = measure_latency(model) - sum(dense layer estimates)``
    (clipped at 0), added unscaled. That is conservative: it does not shrink with pruning, so
    a pruned model's estimate errs high. The benchmark checks estimates against the measured
    latencies of physically pruned models.

    Measurements are cached as JSON (never pickle) in ``cache_dir`` (default
    ``masksearch.zoo.cache_dir() / "latency"``) under a SHA-256 of everything they depend on:
    layer signatures, grid, batch size, device model, dtype, torch version and thread count.
    A second construction with the same key loads them and times nothing, so the estimates
    are deterministic across a resumed search.
    """

    def __init__(
        self,
        model: nn.Module,
        table: GroupTable,
        input_shape: Sequence[int],
        *,
        batch_size: int = 64,
        device: str | torch.device = "cpu",
        grid: int = 8,
        repeats: int = 10,
        warmup: int = 2,
        cache_dir: str | Path | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
        if not isinstance(table, GroupTable):
            raise TypeError(
                f"table must be a GroupTable (from channel_groups), got {type(table).__name__}"
            )
        shape = _input_shape(input_shape)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.grid = _positive_int("grid", grid)
        repeats = _positive_int("repeats", repeats)
        warmup = _positive_int("warmup", warmup, minimum=0)
        self.device = resolve_device(device)
        self.n_genes = table.n_genes
        self._offsets = np.asarray(table.offsets, dtype=np.int64)
        dtype = _dtype(model)

        timed = _on_device(model, self.device)
        self.layers = self._trace(timed, table, shape, dtype)
        signatures = list(dict.fromkeys(layer.signature for layer in self.layers))
        key = {
            "format": _CACHE_FORMAT,
            "layers": [s.to_json() for s in signatures],
            "grid": self.grid,
            "batch_size": self.batch_size,
            "device": _device_name(self.device),
            "dtype": str(dtype),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()
        if cache_dir is None:
            from masksearch import zoo  # the zoo pulls in training; only needed for the default

            cache_dir = zoo.cache_dir() / "latency"
        self.cache_path = Path(cache_dir) / f"{digest}.json"

        loaded = self._load(key, signatures)
        if loaded is None:
            seconds = [
                self._measure(s, device=self.device, dtype=dtype, repeats=repeats, warmup=warmup)
                for s in signatures
            ]
            model_seconds = self._measure_model(timed, shape, repeats, warmup)
            self._save(key, seconds, model_seconds)
        else:
            seconds, model_seconds = loaded
        by_signature = dict(zip(signatures, seconds, strict=True))
        self._seconds = [by_signature[layer.signature] for layer in self.layers]
        self.measured = model_seconds
        self._prepare(table)
        layers_dense = float(self._layer_seconds(np.ones((1, self.n_genes), dtype=bool))[0])
        self.rest = max(model_seconds - layers_dense, 0.0)
        self._dense = layers_dense + self.rest

    # -- construction --------------------------------------------------------------------

    def _trace(
        self, model: nn.Module, table: GroupTable, shape: tuple[int, ...], dtype: torch.dtype
    ) -> tuple[TimedLayer, ...]:
        modules = dict(model.named_modules())
        for name in table.layer_groups:
            if not isinstance(modules.get(name), (nn.Linear, *_CONV)):
                raise ValueError(
                    f"the GroupTable names layer {name!r}, which is not a Linear/Conv layer of "
                    f"{type(model).__name__}: build the table with channel_groups(model, ...) "
                    "from this very model"
                )
        for name, (_, out_group) in table.layer_groups.items():
            width = getattr(
                modules[name], "out_features", getattr(modules[name], "out_channels", 0)
            )
            if out_group >= 0 and width != table.groups[out_group].channels:
                raise ValueError(
                    f"layer {name!r} has {width} outputs but the GroupTable gives its group "
                    f"{table.groups[out_group].channels} channels: the table was built from "
                    "another model; build it with channel_groups(model, ...) from this one"
                )
        batch = torch.zeros((self.batch_size, *shape), device=self.device, dtype=dtype)
        was_training = model.training
        model.eval()
        try:
            calls = _record_inputs(model, batch)
        finally:
            model.train(was_training)
        sides = _group_sides(table)
        channels = [group.channels for group in table.groups]
        layers = []
        for name, module in modules.items():
            linear_or_conv = isinstance(module, (nn.Linear, *_CONV))
            if linear_or_conv and name not in table.layer_groups:
                continue  # channel_groups lists them all; a layer it skipped is not ours
            if isinstance(module, nn.PReLU) and module.num_parameters == 1:
                continue  # a shared slope: just an activation, part of `rest`
            in_groups, out_groups = sides.get(name, (set(), set()))
            for input_shape in calls.get(module, []):  # a layer never called costs nothing
                signature = _signature(
                    name, module, input_shape, bool(in_groups), bool(out_groups), self.grid
                )
                if signature.tied:  # one width: whichever side a group names
                    in_groups, out_groups = in_groups | out_groups, set()
                layers.append(
                    TimedLayer(
                        name=name,
                        signature=signature,
                        in_groups=tuple(sorted(in_groups)),
                        in_ratio=_ratio(signature.in_width, sorted(in_groups), channels),
                        out_groups=tuple(sorted(out_groups)),
                        out_ratio=_ratio(signature.out_width, sorted(out_groups), channels),
                    )
                )
        return tuple(layers)

    @staticmethod
    def _measure(signature: LayerSignature, **timing: Any) -> np.ndarray:
        # looked up at call time so that a patched `_time_layer` is the one used
        return np.array(
            [
                [
                    _time_layer(signature, cin, cin if signature.tied else cout, **timing)
                    for cout in signature.out_points
                ]
                for cin in signature.in_points
            ]
        )

    def _measure_model(
        self, model: nn.Module, shape: tuple[int, ...], repeats: int, warmup: int
    ) -> float:
        return measure_latency(
            model,
            shape,
            batch_size=self.batch_size,
            device=self.device,
            repeats=repeats,
            warmup=warmup,
        )

    def _load(
        self, key: dict[str, Any], signatures: list[LayerSignature]
    ) -> tuple[list[np.ndarray], float] | None:
        """The cached measurements, or None (with a warning when a file was there but bad)."""
        if not self.cache_path.exists():
            return None
        try:
            stored = json.loads(self.cache_path.read_text(encoding="utf-8"))
            if stored.get("key") != key:
                raise ValueError("it was measured for another model, device or setting")
            seconds = [np.asarray(s, dtype=np.float64) for s in stored["seconds"]]
            model_seconds = float(stored["model_seconds"])
            if len(seconds) != len(signatures) or any(
                s.shape != (len(sig.in_points), len(sig.out_points))
                for s, sig in zip(seconds, signatures, strict=True)
            ):
                raise ValueError("its tables do not match the layers' grids")
            if not all(np.isfinite(s).all() and (s >= 0).all() for s in seconds) or not (
                np.isfinite(model_seconds) and model_seconds >= 0
            ):
                raise ValueError("it holds negative or non-finite times")
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            warnings.warn(
                f"ignoring the latency cache {self.cache_path} ({type(error).__name__}: "
                f"{error}); measuring again and overwriting it",
                stacklevel=3,
            )
            return None
        return seconds, model_seconds

    def _save(self, key: dict[str, Any], seconds: list[np.ndarray], model_seconds: float) -> None:
        document = {
            "key": key,
            "seconds": [s.tolist() for s in seconds],
            "model_seconds": model_seconds,
        }
        try:
            atomic_write_json(document, self.cache_path)
        except OSError as error:  # the estimates are still good, only the next run re-measures
            warnings.warn(f"latency measurements not cached: {error}", stacklevel=3)

    def _prepare(self, table: GroupTable) -> None:
        """Matrices that turn kept channels per group into every layer's two widths."""
        channels = np.array([group.channels for group in table.groups], dtype=np.float64)
        n_groups, n_layers = len(table.groups), len(self.layers)
        self._in_matrix = np.zeros((n_groups, n_layers))
        self._out_matrix = np.zeros((n_groups, n_layers))
        self._in_base = np.zeros(n_layers)
        self._out_base = np.zeros(n_layers)
        for index, layer in enumerate(self.layers):
            signature = layer.signature
            in_groups, out_groups = list(layer.in_groups), list(layer.out_groups)
            self._in_matrix[in_groups, index] = layer.in_ratio
            self._out_matrix[out_groups, index] = layer.out_ratio
            self._in_base[index] = signature.in_width - layer.in_ratio * channels[in_groups].sum()
            self._out_base[index] = (
                signature.out_width - layer.out_ratio * channels[out_groups].sum()
            )

    # -- estimates -----------------------------------------------------------------------

    def _genomes(self, genomes: np.ndarray) -> np.ndarray:
        array = np.asarray(genomes)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != self.n_genes:
            raise ValueError(
                f"genomes must have shape (population, {self.n_genes}) or ({self.n_genes},), one "
                f"gene per channel of the GroupTable; got shape {np.shape(genomes)}"
            )
        if array.dtype != bool:
            if array.size and not np.isin(array, (0, 1)).all():
                raise ValueError(
                    "genomes must be boolean (True = channel kept); got values other than 0 and 1"
                )
            array = array.astype(bool)
        return array

    def widths(self, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(P, n_layers)`` kept input and output widths of every timed layer."""
        array = self._genomes(genomes)
        counts = np.zeros((array.shape[0], array.shape[1] + 1), dtype=np.int64)
        np.cumsum(array, axis=1, out=counts[:, 1:])
        kept = (counts[:, self._offsets[1:]] - counts[:, self._offsets[:-1]]).astype(np.float64)
        return self._in_base + kept @ self._in_matrix, self._out_base + kept @ self._out_matrix

    def _layer_seconds(self, genomes: np.ndarray) -> np.ndarray:
        widths_in, widths_out = self.widths(genomes)
        total = np.zeros(widths_in.shape[0])
        for index, layer in enumerate(self.layers):
            values = self._seconds[index]
            i0, i1, t = _interpolation(np.array(layer.signature.in_points), widths_in[:, index])
            j0, j1, u = _interpolation(np.array(layer.signature.out_points), widths_out[:, index])
            total += (
                values[i0, j0] * (1 - t) * (1 - u)
                + values[i1, j0] * t * (1 - u)
                + values[i0, j1] * (1 - t) * u
                + values[i1, j1] * t * u
            )
        return total

    def __call__(self, genomes: np.ndarray) -> np.ndarray:
        """``(P,)`` estimated seconds per batch of ``(P, n_genes)`` (or one ``(n_genes,)``)
        boolean genomes; a single genome gives a ``(1,)`` array."""
        return self._layer_seconds(genomes) + self.rest

    @property
    def dense(self) -> float:
        """The estimate for the unpruned model (every channel kept)."""
        return self._dense

    def relative(self, genomes: np.ndarray) -> np.ndarray:
        """Estimates as fractions of the unpruned model's estimate."""
        return self(genomes) / self.dense
