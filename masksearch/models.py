"""The small reference networks masksearch prunes.

Every model takes NCHW images. Where the architecture allows it a model is a plain
``nn.Sequential`` of named layers, so parameter names read ``fc1.weight``, ``conv2.weight`` and
fast evaluators can walk the layers in order.

Every builder takes an optional ``seed``: with it, the weights are drawn from a private
``torch.Generator`` (the same seed always gives the same network and the global RNG is left
alone); without it, from torch's global RNG like any torch module.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["MODELS", "BasicBlock", "build", "digits_mlp", "lenet300", "lenet5", "resnet20"]


def _seeded(builder: Callable[[int], nn.Module]) -> Callable[..., nn.Module]:
    """Give a builder a keyword ``seed`` and Kaiming-initialise what it builds."""

    @functools.wraps(builder)
    def build_with_seed(num_classes: int = 10, *, seed: int | None = None) -> nn.Module:
        if seed is None:
            return _initialize(builder(num_classes), None)
        # layer constructors draw their default init from the global RNG: fork it so that a
        # seeded build leaves the caller's random state exactly as it was
        with torch.random.fork_rng(devices=[]):
            model = builder(num_classes)
        return _initialize(model, seed)

    return build_with_seed


@_seeded
def lenet300(num_classes: int = 10) -> nn.Sequential:
    """LeNet-300-100 for 28×28 grey images: 784 → 300 → 100 → classes (266,200 weights)."""
    model = nn.Sequential(
        OrderedDict(
            [
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(784, 300)),
                ("relu1", nn.ReLU()),
                ("fc2", nn.Linear(300, 100)),
                ("relu2", nn.ReLU()),
                ("fc3", nn.Linear(100, num_classes)),
            ]
        )
    )
    return model


@_seeded
def lenet5(num_classes: int = 10) -> nn.Sequential:
    """Caffe's LeNet-5 for 28×28 grey images (430,500 weights).

    conv 20@5×5 → max-pool 2 → conv 50@5×5 → max-pool 2 → fc 800→500 → ReLU → fc 500→classes.
    As in Caffe (and in the pruning literature that uses it) the convolutions have no ReLU.
    """
    model = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 20, kernel_size=5)),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(20, 50, kernel_size=5)),
                ("pool2", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(800, 500)),
                ("relu1", nn.ReLU()),
                ("fc2", nn.Linear(500, num_classes)),
            ]
        )
    )
    return model


@_seeded
def digits_mlp(num_classes: int = 10) -> nn.Sequential:
    """A small MLP for scikit-learn's 8×8 digits: 64 → 128 → 64 → classes."""
    model = nn.Sequential(
        OrderedDict(
            [
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(64, 128)),
                ("relu1", nn.ReLU()),
                ("fc2", nn.Linear(128, 64)),
                ("relu2", nn.ReLU()),
                ("fc3", nn.Linear(64, num_classes)),
            ]
        )
    )
    return model


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with a residual connection (He et al. 2016).

    When the block changes resolution or width the shortcut is a 1×1 conv + BN (option B);
    otherwise it is the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                OrderedDict(
                    [
                        (
                            "conv",
                            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                        ),
                        ("bn", nn.BatchNorm2d(out_channels)),
                    ]
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


@_seeded
def resnet20(num_classes: int = 10) -> nn.Sequential:
    """ResNet-20 for 32×32 colour images (He et al. 2016, CIFAR variant).

    conv3×3 16 → 3 stages × 3 :class:`BasicBlock` (16/32/64 channels, stride 2 at the start of
    stages 2 and 3) → global average pool → fc. Shortcuts that change shape use a 1×1 conv + BN
    (option B, simpler than option A's zero padding and only 2,560 extra weights).
    """
    stages: list[tuple[str, nn.Module]] = []
    in_channels = 16
    for index, (channels, stride) in enumerate([(16, 1), (32, 2), (64, 2)], start=1):
        blocks = []
        for block_index in range(3):
            blocks.append(BasicBlock(in_channels, channels, stride if block_index == 0 else 1))
            in_channels = channels
        stages.append((f"layer{index}", nn.Sequential(*blocks)))
    model = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 16, 3, padding=1, bias=False)),
                ("bn1", nn.BatchNorm2d(16)),
                ("relu1", nn.ReLU()),
                *stages,
                ("pool", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(64, num_classes)),
            ]
        )
    )
    return model


@_seeded
def resnet8(num_classes: int = 10) -> nn.Sequential:
    """A small residual CNN for 28×28 grey images (77,850 weights + batch norms).

    conv3×3 16 → three :class:`BasicBlock` stages of one block each (16/32/64 channels,
    stride 2 at the start of stages 2 and 3) → global average pool → fc: ResNet-20's shape
    with one block per stage, so a CPU trains it in minutes. Its residual adds and batch norms
    are what channel pruning must respect (the ``groups`` encoding).
    """
    stages: list[tuple[str, nn.Module]] = []
    in_channels = 16
    for index, (channels, stride) in enumerate([(16, 1), (32, 2), (64, 2)], start=1):
        stages.append((f"layer{index}", BasicBlock(in_channels, channels, stride)))
        in_channels = channels
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 16, 3, padding=1, bias=False)),
                ("bn1", nn.BatchNorm2d(16)),
                ("relu1", nn.ReLU()),
                *stages,
                ("pool", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(64, num_classes)),
            ]
        )
    )


MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet300": lenet300,
    "lenet5": lenet5,
    "digits_mlp": digits_mlp,
    "resnet20": resnet20,
    "resnet8": resnet8,
}


def build(name: str, num_classes: int = 10, *, seed: int | None = None) -> nn.Module:
    """Build the model registered as ``name`` in :data:`MODELS`."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    return MODELS[name](num_classes, seed=seed)


def _initialize(model: nn.Module, seed: int | None) -> nn.Module:
    # Kaiming-normal with fan-in (He et al. 2015): std = gain / sqrt(fan_in), gain sqrt(2) for a
    # layer whose output goes through a ReLU and 1 for one that stays linear (LeNet-5's
    # convolutions, every output layer); a ReLU gain there inflates the logits enough to make
    # SGD diverge at ordinary learning rates. Written out by hand to draw from a private
    # generator, which nn.init only accepts in recent torch versions.
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    relu_follows = _relu_follows(model)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _WEIGHTED):
                gain = math.sqrt(2.0) if relu_follows.get(id(module), True) else 1.0
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, gain / math.sqrt(fan_in), generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.fill_(1.0)
                module.bias.zero_()
    return model


_WEIGHTED = (nn.Linear, nn.Conv2d)


def _relu_follows(model: nn.Module) -> dict[int, bool]:
    """For each weighted layer inside an nn.Sequential: does a ReLU come before the next one?

    Layers outside a Sequential (the convolutions of a BasicBlock) are absent: they all feed
    a ReLU.
    """
    follows: dict[int, bool] = {}
    for container in model.modules():
        if not isinstance(container, nn.Sequential):
            continue
        children = list(container.children())
        for position, child in enumerate(children):
            if not isinstance(child, _WEIGHTED):
                continue
            follows[id(child)] = False
            for later in children[position + 1 :]:
                if isinstance(later, nn.ReLU):
                    follows[id(child)] = True
                    break
                if any(isinstance(m, _WEIGHTED) for m in later.modules()):
                    break
    return follows
