from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from masksearch.mask import Layout, Mask, MaskError, check_finite, prunable_parameters
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
