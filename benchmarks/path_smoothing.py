"""Label smoothing in supermask-path's loss: the seeds of the best LeNet-300-100 runs, masks only.

    python benchmarks/path_smoothing.py                   # 7 recipes, 3 seeds (about 15 minutes)
    python benchmarks/path_smoothing.py --seeds 1 --quick   # a smoke run (short phases)

The seeds of the best runs learn the path of ``path_batches.py`` (4 epochs at 5%, 2 at 2%, 1 at
1%, side branches of 4 and 2 more at 5% and 2%, Adam from 0.02 annealed within each phase) on the
plain cross-entropy. Masks learned on fixed weights fit the training labels with confident
logits; softening the targets (``Supermask(label_smoothing=...)``, torch's
``cross_entropy(label_smoothing=...)``) asks the mask for less confident, and so perhaps more
general, logits. Each row learns the path from the committed dense model with one amount of
smoothing, in batches of 256 (the 1% goal's run) and of 128 (the earlier best run's). Test
accuracy of the three masks (judged by plain accuracy), mean ± std over seeds; the same seeds
per row.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from path_batches import method_for, recipe_markdown, run_recipes

# (batch size, label smoothing); Adam from 0.02 throughout, phases as the best runs'
RECIPES: tuple[tuple[int, float], ...] = (
    (256, 0.0),
    (256, 0.05),
    (256, 0.1),
    (256, 0.2),
    (256, 0.3),
    (128, 0.0),
    (128, 0.1),
)
LR = 0.02


def label(batch_size: int, smoothing: float) -> str:
    softened = f"label smoothing {smoothing:g}" if smoothing else "plain labels"
    return f"batches of {batch_size}, {softened}"


def main() -> None:
    run_recipes("path_smoothing", __doc__.splitlines()[0], _recipes, markdown, {"lr": LR})


def _recipes(quick: bool) -> list[tuple[str, Callable[[int], Any]]]:
    return [(label(*recipe), functools.partial(_method_of, recipe, quick)) for recipe in RECIPES]


def _method_of(recipe: tuple[int, float], quick: bool, seed: int) -> Any:
    batch_size, smoothing = recipe
    return method_for(batch_size, LR, 1, seed=seed, quick=quick, label_smoothing=smoothing)


def markdown(payload: dict) -> str:
    return recipe_markdown(
        payload,
        "supermask-path: label smoothing in the seeds' loss, masks only",
        "LeNet-300-100 on Fashion-MNIST; the path of 4 epochs at 5%, 2 at 2% and 1 at 1% with "
        "side branches of 4 and 2 at 5% and 2%, Adam from "
        f"{payload['lr']:g} annealed within each phase",
    )


if __name__ == "__main__":
    main()
