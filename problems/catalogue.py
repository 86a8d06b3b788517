"""Ready-made pruning problems: a trained dense model, its validation data and defaults.

Each function returns a :class:`~masksearch.PruningProblem`; the dense model is trained on
first use with a fixed recipe and cached (see :mod:`masksearch.zoo`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from masksearch import data as datasets
from masksearch import zoo
from masksearch.problem import PruningProblem


def _build(
    name: str,
    model_name: str,
    dataset: str,
    *,
    val_samples: int | None,
    root: str | None,
    device: str,
    **options: Any,
) -> PruningProblem:
    loaded = datasets.load(dataset, root=root)
    model = zoo.pretrained(model_name, dataset, root=root, device="cpu")
    val = loaded.val if val_samples is None else loaded.val.subset(val_samples)
    return PruningProblem(
        model,
        val,
        name=name,
        device=device,
        test_data=loaded.test,
        train_data=loaded.train,
        **options,
    )


def digits_mlp(
    *,
    encoding: str = "weights",
    objectives: Sequence[str] = ("error", "density"),
    densities: Sequence[float] = (0.2, 0.1, 0.05),
    val_samples: int | None = None,
    root: str | None = None,
    device: str = "cpu",
    **options: Any,
) -> PruningProblem:
    """MLP 64-128-64-10 on scikit-learn's digits (embedded data: always available, seconds)."""
    return _build(
        "digits_mlp",
        "digits_mlp",
        "digits",
        encoding=encoding,
        objectives=objectives,
        densities=densities,
        val_samples=val_samples,
        root=root,
        device=device,
        **options,
    )


def lenet300_fashion(
    *,
    encoding: str = "weights",
    objectives: Sequence[str] = ("error", "density"),
    densities: Sequence[float] = (0.05, 0.02, 0.01),
    val_samples: int | None = None,
    root: str | None = None,
    device: str = "cpu",
    **options: Any,
) -> PruningProblem:
    """LeNet-300-100 on Fashion-MNIST (266,200 prunable weights)."""
    # all 5,000 validation images by default: masks chosen on 1,024 of them overfit those
    # (benchmarks/results/search_quality_val1024.md), and incremental evaluation keeps the
    # larger split affordable
    return _build(
        "lenet300_fashion",
        "lenet300",
        "fashion-mnist",
        encoding=encoding,
        objectives=objectives,
        densities=densities,
        val_samples=val_samples,
        root=root,
        device=device,
        **options,
    )


def lenet5_fashion(
    *,
    encoding: str = "weights",
    objectives: Sequence[str] = ("error", "density"),
    densities: Sequence[float] = (0.05, 0.02, 0.01),
    val_samples: int | None = 1024,
    root: str | None = None,
    device: str = "cpu",
    **options: Any,
) -> PruningProblem:
    """LeNet-5 (Caffe variant) on Fashion-MNIST (430,500 prunable weights)."""
    return _build(
        "lenet5_fashion",
        "lenet5",
        "fashion-mnist",
        encoding=encoding,
        objectives=objectives,
        densities=densities,
        val_samples=val_samples,
        root=root,
        device=device,
        **options,
    )


def resnet20_cifar10(
    *,
    encoding: str = "levels",
    objectives: Sequence[str] = ("error", "density"),
    densities: Sequence[float] = (0.5, 0.3, 0.1),
    val_samples: int | None = 1024,
    root: str | None = None,
    device: str = "auto",
    **options: Any,
) -> PruningProblem:
    """ResNet-20 on CIFAR-10 (needs CIFAR-10 under a data root; a GPU helps)."""
    return _build(
        "resnet20_cifar10",
        "resnet20",
        "cifar10",
        encoding=encoding,
        objectives=objectives,
        densities=densities,
        val_samples=val_samples,
        root=root,
        device=device,
        **options,
    )


@dataclass(frozen=True)
class ProblemInfo:
    name: str
    dataset: str
    model: str
    description: str
    factory: Callable[..., PruningProblem]

    def available(self, root: str | None = None) -> bool:
        return datasets.available(self.dataset, root=root)


CATALOGUE: dict[str, ProblemInfo] = {
    info.name: info
    for info in (
        ProblemInfo("digits_mlp", "digits", "digits_mlp", digits_mlp.__doc__ or "", digits_mlp),
        ProblemInfo(
            "lenet300_fashion",
            "fashion-mnist",
            "lenet300",
            lenet300_fashion.__doc__ or "",
            lenet300_fashion,
        ),
        ProblemInfo(
            "lenet5_fashion",
            "fashion-mnist",
            "lenet5",
            lenet5_fashion.__doc__ or "",
            lenet5_fashion,
        ),
        ProblemInfo(
            "resnet20_cifar10",
            "cifar10",
            "resnet20",
            resnet20_cifar10.__doc__ or "",
            resnet20_cifar10,
        ),
    )
}


def list_problems() -> list[ProblemInfo]:
    """Every catalogued problem, in order."""
    return list(CATALOGUE.values())


def get(name: str, **options: Any) -> PruningProblem:
    """Build the catalogued problem ``name`` (options go to its function)."""
    if name not in CATALOGUE:
        raise ValueError(f"no problem named {name!r}; the catalogue has {sorted(CATALOGUE)}")
    return CATALOGUE[name].factory(**options)


def default_problem_name(root: str | None = None) -> str:
    """Fashion-MNIST's LeNet-300-100 when that data is present, the embedded digits otherwise."""
    return "lenet300_fashion" if datasets.available("fashion-mnist", root=root) else "digits_mlp"
