from __future__ import annotations

import pytest
import torch
from torch import nn

from masksearch import models


def _weight_count(model: nn.Module, kinds: tuple[type[nn.Module], ...]) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, kinds))


def test_lenet300_has_266200_linear_weights_in_three_named_layers():
    model = models.lenet300()
    assert _weight_count(model, (nn.Linear,)) == 784 * 300 + 300 * 100 + 100 * 10 == 266_200
    names = [name for name, _ in model.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]


def test_lenet5_has_430500_weights():
    model = models.lenet5()
    expected = 20 * 1 * 25 + 50 * 20 * 25 + 800 * 500 + 500 * 10
    assert _weight_count(model, (nn.Linear, nn.Conv2d)) == expected == 430_500
    assert [n for n, _ in model.named_parameters() if n.endswith("weight")] == [
        "conv1.weight",
        "conv2.weight",
        "fc1.weight",
        "fc2.weight",
    ]


def test_resnet20_has_the_cifar_layout():
    model = models.resnet20()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    three_by_three = [c for c in convs if c.kernel_size == (3, 3)]
    shortcuts = [c for c in convs if c.kernel_size == (1, 1)]
    # 1 stem conv + 3 stages x 3 blocks x 2 convs = 19 conv layers, + fc = 20 weighted layers
    assert len(three_by_three) == 19
    assert len(shortcuts) == 2  # option B at the two stage transitions
    assert [c.out_channels for c in three_by_three[1::6]] == [16, 32, 64]
    total = sum(p.numel() for p in model.parameters())
    assert 260_000 < total < 280_000  # He et al.: 0.27M


@pytest.mark.parametrize(
    ("name", "input_shape"),
    [
        ("lenet300", (1, 28, 28)),
        ("lenet5", (1, 28, 28)),
        ("digits_mlp", (1, 8, 8)),
        ("resnet20", (3, 32, 32)),
    ],
)
@pytest.mark.parametrize("num_classes", [10, 3])
def test_output_shape_on_matching_input(name, input_shape, num_classes):
    model = models.build(name, num_classes).eval()
    with torch.no_grad():
        out = model(torch.randn(4, *input_shape, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (4, num_classes)
    assert torch.isfinite(out).all()


def test_seed_gives_identical_weights_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    first = models.build("lenet5", seed=3).state_dict()
    second = models.build("lenet5", seed=3).state_dict()
    other = models.build("lenet5", seed=4).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["fc1.weight"], other["fc1.weight"])


def test_kaiming_init_uses_relu_gain_only_before_a_relu():
    lenet300 = models.lenet300(seed=0)
    assert lenet300.fc1.weight.std().item() == pytest.approx((2.0 / 784) ** 0.5, rel=0.02)
    assert lenet300.fc3.weight.std().item() == pytest.approx((1.0 / 100) ** 0.5, rel=0.1)
    assert torch.count_nonzero(lenet300.fc1.bias) == 0
    lenet5 = models.lenet5(seed=0)  # Caffe's LeNet-5 has no ReLU after its convolutions
    assert lenet5.conv2.weight.std().item() == pytest.approx((1.0 / 500) ** 0.5, rel=0.02)
    assert lenet5.fc1.weight.std().item() == pytest.approx((2.0 / 800) ** 0.5, rel=0.02)
    resnet = models.resnet20(seed=0)
    block_conv = resnet.layer2[1].conv1.weight
    assert block_conv.std().item() == pytest.approx((2.0 / (32 * 9)) ** 0.5, rel=0.05)


def test_build_unknown_name_lists_choices():
    with pytest.raises(
        ValueError, match=r"unknown model 'vgg16'.*digits_mlp.*lenet300.*lenet5.*resnet20"
    ):
        models.build("vgg16")


def test_build_rejects_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        models.build("lenet300", num_classes=1)
