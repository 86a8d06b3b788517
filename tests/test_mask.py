from __future__ import annotations

import copy
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from masksearch.mask import (
    Layout,
    Mask,
    MaskError,
    check_finite,
    prunable_parameters,
    top_k_keep,
)
from masksearch.models import digits_mlp, lenet5


@pytest.fixture
def model() -> nn.Module:
    return digits_mlp(seed=0).eval()


@pytest.fixture
def inputs() -> torch.Tensor:
    return torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_default_prunable_set_is_linear_and_conv_weights() -> None:
    net = lenet5(seed=0)
    names = list(prunable_parameters(net))
    expected = [n for n, m in net.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert names == [f"{n}.weight" for n in expected]
    with_bias = prunable_parameters(net, include_bias=True)
    assert set(with_bias) - set(names) == {f"{n}.bias" for n in expected}


def test_model_with_nothing_to_prune_is_refused() -> None:
    with pytest.raises(MaskError, match="nothing to prune"):
        prunable_parameters(nn.Sequential(nn.ReLU(), nn.Flatten()))


def test_all_ones_mask_leaves_outputs_bit_identical(model: nn.Module, inputs: torch.Tensor) -> None:
    before = model(inputs)
    Mask.ones(model).apply(model)
    assert torch.equal(model(inputs), before)


def test_density_equals_counted_zeros(model: nn.Module) -> None:
    mask = Mask.magnitude(model, 0.1)
    pruned = mask.apply(copy.deepcopy(model))
    params = dict(pruned.named_parameters())
    zeros = sum(int((params[n] == 0).sum()) for n in mask.names)
    total = sum(params[n].numel() for n in mask.names)
    assert mask.density == pytest.approx(1 - zeros / total)
    assert mask.n_kept == total - zeros


def test_magnitude_keeps_exactly_the_top_k(model: nn.Module) -> None:
    density = 0.07
    mask = Mask.magnitude(model, density)
    weights = torch.cat([p.detach().abs().reshape(-1) for p in prunable_parameters(model).values()])
    k = round(density * weights.numel())
    threshold = np.sort(weights.numpy())[::-1][k - 1]
    flat = mask.flat()
    assert flat.sum() == k
    assert (weights.numpy()[flat] >= threshold).all()
    assert (weights.numpy()[~flat] <= threshold).all()


def test_layer_scope_prunes_every_layer_to_the_density(model: nn.Module) -> None:
    mask = Mask.magnitude(model, 0.2, scope="layer")
    for name, tensor in mask.tensors.items():
        assert abs(int(tensor.sum()) - 0.2 * tensor.numel()) <= 1, name


def test_ties_are_broken_by_lower_index() -> None:
    scores = {"w": torch.ones(10)}
    mask = Mask.from_scores(scores, 0.3)
    assert mask.tensors["w"].tolist() == [True] * 3 + [False] * 7


def _sorted_top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The definition: the first ``k`` of a stable sort on ``-scores``."""
    keep = torch.zeros(scores.numel(), dtype=torch.bool)
    keep[torch.sort(-scores, stable=True).indices[:k]] = True
    return keep


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "kind", ["distinct", "few levels", "signed zeros", "all equal", "with NaN", "with inf"]
)
def test_top_k_keep_chooses_what_a_stable_sort_chooses(kind: str, dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(5_000, generator=generator, dtype=torch.float64)
    if kind == "few levels":  # every threshold falls inside a long run of ties
        scores = torch.randint(0, 7, (5_000,), generator=generator).to(torch.float64)
    elif kind == "signed zeros":
        scores = torch.where(scores > 0, 0.0, -0.0) * torch.randint(0, 2, (5_000,))
    elif kind == "all equal":
        scores = torch.full((5_000,), 0.25, dtype=torch.float64)
    elif kind == "with NaN":
        scores[::7] = float("nan")
    elif kind == "with inf":
        scores[::11] = float("inf")
        scores[1::13] = float("-inf")
    scores = scores.to(dtype)
    for k in (0, 1, 2, 37, 714, 2_500, 4_999, 5_000, 6_000):
        keep = top_k_keep(scores, k)
        assert keep.dtype == torch.bool and int(keep.sum()) == min(k, 5_000)
        assert torch.equal(keep, _sorted_top_k(scores, k)), (kind, k)


@pytest.mark.parametrize("density", [0.0, -0.1, 1.5, float("nan"), "half"])
def test_bad_density_is_refused(model: nn.Module, density: object) -> None:
    with pytest.raises(MaskError, match="density must be"):
        Mask.magnitude(model, density)  # type: ignore[arg-type]


def test_export_reimport_gives_the_same_mask(model: nn.Module, inputs: torch.Tensor) -> None:
    mask = Mask.magnitude(model, 0.1)
    reference = mask.apply(copy.deepcopy(model))(inputs)
    exported = mask.to_prune(copy.deepcopy(model))
    assert all(hasattr(m, "weight_orig") for m in exported.modules() if isinstance(m, nn.Linear))
    assert Mask.from_pruned(exported) == mask
    assert torch.allclose(exported(inputs), reference)
    Mask.make_permanent(exported)
    assert not any(hasattr(m, "weight_orig") for m in exported.modules())
    assert torch.equal(exported(inputs), reference)


def test_exported_state_dict_has_prune_keys(model: nn.Module) -> None:
    state = Mask.magnitude(model, 0.1).to_prune(copy.deepcopy(model)).state_dict()
    assert {"fc1.weight_orig", "fc1.weight_mask"} <= set(state)


def test_save_load_round_trip(tmp_path, model: nn.Module) -> None:
    mask = Mask.magnitude(model, 0.05)
    mask.save(tmp_path / "m.pt")
    assert Mask.load(tmp_path / "m.pt") == mask
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_saved_file_is_a_pickle_free_npz_with_identical_bytes(tmp_path, model: nn.Module) -> None:
    mask = Mask.magnitude(model, 0.05)
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    mask.save(first)
    mask.save(second)  # at another moment: no timestamps in the file
    assert first.read_bytes() == second.read_bytes()
    with np.load(first, allow_pickle=False) as stored:  # readable without masksearch
        assert int(stored["format"]) == 2
        assert stored["names"].tolist() == mask.names
        flat = np.unpackbits(stored["bits"], count=mask.n_total).astype(bool)
    np.testing.assert_array_equal(flat, mask.flat())
    with zipfile.ZipFile(first) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_format_1_files_still_load(tmp_path, model: nn.Module) -> None:
    mask = Mask.magnitude(model, 0.1)
    path = tmp_path / "old.pt"
    # what Mask.save wrote before format 2
    torch.save(
        {
            "format": 1,
            "names": mask.names,
            "shapes": [tuple(t.shape) for t in mask.tensors.values()],
            "bits": np.packbits(mask.flat()),
        },
        path,
    )
    assert Mask.load(path) == mask


class _Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch", "pickle", "format-1 dict"])
def test_a_mask_file_carrying_code_is_refused_without_running_it(tmp_path, writer) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "mask.npz"
    payload = _Payload(str(marker))
    if writer == "torch":
        torch.save(payload, path)
    elif writer == "pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save({"format": 1, "names": ["fc1.weight"], "shapes": [(1,)], "bits": payload}, path)
    pickle.loads(pickle.dumps(_Payload(str(tmp_path / "CONTROL"))))
    assert (tmp_path / "CONTROL").exists()  # the payload works when it is unpickled
    with pytest.raises(MaskError, match=r"mask\.npz is not a masksearch mask file") as caught:
        Mask.load(path)
    assert not marker.exists()
    assert "weights_only" not in str(caught.value)  # no advice to load it unsafely
    if writer != "pickle":
        assert "refused without running anything" in str(caught.value)


def test_a_truncated_bit_array_is_refused(tmp_path, model: nn.Module) -> None:
    mask = Mask.magnitude(model, 0.1)
    path = tmp_path / "m.npz"
    torch.save(
        {
            "format": 1,
            "names": mask.names,
            "shapes": [tuple(t.shape) for t in mask.tensors.values()],
            "bits": np.packbits(mask.flat())[:-3],
        },
        path,
    )
    with pytest.raises(MaskError, match="truncated"):
        Mask.load(path)


def test_load_of_a_damaged_file_names_the_file(tmp_path) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a mask")
    with pytest.raises(MaskError, match="broken.pt"):
        Mask.load(path)


def test_flat_round_trip_and_layout(model: nn.Module) -> None:
    layout = Layout.of(model)
    mask = Mask.magnitude(model, 0.3)
    assert Mask.from_flat(layout, mask.flat()) == mask
    assert layout.n_total == sum(p.numel() for p in prunable_parameters(model).values())
    with pytest.raises(MaskError, match="entries"):
        Mask.from_flat(layout, mask.flat()[:-1])


def test_wrong_shape_is_refused(model: nn.Module) -> None:
    mask = Mask({"fc1.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(MaskError, match=r"fc1.weight.*shape \(3, 3\)"):
        mask.apply(model)


def test_missing_parameter_is_refused(model: nn.Module) -> None:
    mask = Mask({"fc9.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(MaskError, match="does not have"):
        mask.apply(model)


def test_non_binary_values_are_refused() -> None:
    with pytest.raises(MaskError, match="boolean"):
        Mask({"w": torch.tensor([0.0, 0.5, 1.0])})


def test_nan_weight_is_named(model: nn.Module) -> None:
    with torch.no_grad():
        model.fc2.weight[0, 0] = float("nan")
    with pytest.raises(MaskError, match="fc2.weight"):
        check_finite(model)


def test_mask_pickles(model: nn.Module) -> None:
    mask = Mask.magnitude(model, 0.2)
    assert pickle.loads(pickle.dumps(mask)) == mask


def test_double_export_is_refused(model: nn.Module) -> None:
    mask = Mask.magnitude(model, 0.2)
    exported = mask.to_prune(copy.deepcopy(model))
    with pytest.raises(MaskError, match="already pruned"):
        mask.to_prune(exported)


def _tied() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    model[2].weight = model[0].weight
    return model.eval()


def test_tied_weights_are_pruned_in_every_module() -> None:
    model = _tied()
    inputs = torch.randn(5, 8, generator=torch.Generator().manual_seed(2))
    mask = Mask.magnitude(model, 0.3)
    assert mask.names == ["0.weight"]  # one entry for the shared parameter
    reference = mask.apply(copy.deepcopy(model))(inputs)
    exported = mask.to_prune(copy.deepcopy(model))
    assert torch.equal(exported(inputs), reference)
    keep = mask.tensors["0.weight"]
    for index in (0, 2):
        layer = exported[index]
        assert torch.equal(layer.weight_mask, keep.float())
        assert not layer.weight[~keep].any()  # the weight each module computes with
    assert exported[0].weight_orig is exported[2].weight_orig  # the tie survives
    assert Mask.from_pruned(exported) == mask
    Mask.make_permanent(exported)
    assert exported[0].weight is exported[2].weight
    assert torch.equal(exported(inputs), reference)


def test_a_tied_parameter_named_twice_is_refused() -> None:
    model = _tied()
    keep = torch.ones(8, 8, dtype=torch.bool)
    mask = Mask({"0.weight": keep, "2.weight": keep})
    with pytest.raises(MaskError, match="same tied parameter"):
        mask.validate(model)
    # the alias alone is fine: it prunes the same parameter
    alias = Mask({"2.weight": ~torch.eye(8, dtype=torch.bool)})
    alias.apply(model)
    assert not model[0].weight.diagonal().any()
