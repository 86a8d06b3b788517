"""Problems by name: the table's rows, a user's ``module:function`` and a package's entry point."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import masksearch as ms
from masksearch import catalogue
from masksearch.catalogue import CATALOGUE, ProblemError

# A user's module: a small untrained MLP on digits (its weights are random but fixed by the seed;
# the mechanics below do not need a trained model). `densities` is a parameter, `device` is not.
USER_MODULE = textwrap.dedent(
    '''
    """A user's problems."""
    import torch
    from torch import nn

    import masksearch as ms


    def make_problem(densities=(0.5, 0.3)):
        """Random MLP 64-16-10 on digits."""
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
        return ms.PruningProblem(model, ms.load("digits"), densities=densities, name="mine")


    def not_a_problem():
        return 42
    '''
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "usermodels_catalogue.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    yield "usermodels_catalogue"
    sys.modules.pop("usermodels_catalogue", None)


def test_every_row_names_a_model_and_dataset_the_library_has() -> None:
    from masksearch import data, models

    for spec in CATALOGUE.values():
        assert spec.name in catalogue.__all__  # each row has its named function
        assert spec.model in models.MODELS, spec
        assert spec.dataset in data.DATASETS, spec
        assert all(0 < d <= 1 for d in spec.densities)


def test_a_row_builds_with_its_defaults_and_every_override(digits_problem) -> None:
    spec = CATALOGUE["digits_mlp"]
    assert digits_problem.densities == spec.densities
    assert digits_problem.encoding.name == spec.encoding
    assert digits_problem.source == "digits_mlp"
    assert digits_problem.train_data is not None and digits_problem.test_data is not None
    custom = catalogue.get("digits_mlp", densities=(0.3,), val_samples=100, encoding="levels")
    assert custom.densities == (0.3,) and len(custom.data) == 100
    assert custom.encoding.name == "levels"


def test_fitness_on_the_training_split_judges_masks_on_training_images() -> None:
    train = ms.load("digits").train
    whole = catalogue.get("digits_mlp", fitness_split="train")
    assert whole.fitness_split == "train" and len(whole.data) == len(train)
    some = catalogue.get("digits_mlp", fitness_split="train", train_samples=200)
    assert torch.equal(some.data.x, train.x[:200]) and torch.equal(some.data.y, train.y[:200])
    settings = some.settings()
    assert settings["fitness_split"] == "train" and settings["train_samples"] == 200
    assert "val_samples" not in settings  # no validation image judges a mask
    default = catalogue.get("digits_mlp")
    assert default.fitness_split == "val" and default.settings()["val_samples"] == len(default.data)
    # the same masks score differently on the two splits: the data really changed
    genomes = default.magnitude_genomes()
    assert not np.allclose(default.evaluate(genomes).F, some.evaluate(genomes).F)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"fitness_split": "train", "val_samples": 100}, "give train_samples instead"),
        ({"train_samples": 100}, "give val_samples, or fitness_split='train'"),
        ({"fitness_split": "test"}, "must be 'val'"),
    ],
)
def test_a_sample_count_of_the_other_split_is_refused(options, fragment) -> None:
    with pytest.raises(ProblemError, match=re.escape(fragment)):
        catalogue.get("digits_mlp", **options)


def test_a_module_function_reference_builds_from_the_current_directory(user_module) -> None:
    reference = f"{user_module}:make_problem"
    problem = catalogue.get(reference)
    assert isinstance(problem, ms.PruningProblem)
    assert problem.source == reference  # what report/export and --resume rebuild it from
    assert problem.densities == (0.5, 0.3)
    assert catalogue.get(reference, densities=(0.2,)).densities == (0.2,)


def test_an_option_the_function_does_not_take_must_already_hold(user_module) -> None:
    reference = f"{user_module}:make_problem"
    # a run's config.json stores the problem's own device: that is accepted
    assert catalogue.get(reference, device="cpu").device == "cpu"
    with pytest.raises(ProblemError, match="takes no 'val_samples' option"):
        catalogue.get(reference, val_samples=10)


@pytest.mark.parametrize(
    ("reference", "fragment"),
    [
        ("no_such_module_here:make", "no module 'no_such_module_here' in the current directory"),
        ("usermodels_catalogue:missing", "has no 'missing'"),
        ("usermodels_catalogue:not_a_problem", "returned a int, not a masksearch.PruningProblem"),
        ("json:__doc__", "is a str, not a function"),
        (":make", "'pkg.module:function'"),
        ("lenet_300", "no problem named 'lenet_300'"),
    ],
)
def test_bad_references_say_what_is_wrong(user_module, reference, fragment) -> None:
    with pytest.raises(ProblemError) as raised:
        catalogue.get(reference)
    assert fragment in str(raised.value)


def _install_plugin(site: Path) -> None:
    """A package as pip installs it: its module and a dist-info with the entry point."""
    site.mkdir()
    (site / "plugin_problems.py").write_text(USER_MODULE)
    info = site / "plugin_problems-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin-problems\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[masksearch.problems]\n"
        "plugin_mlp = plugin_problems:make_problem\n"
        "digits_mlp = plugin_problems:make_problem\n"  # may not shadow the shipped one
    )


def test_an_installed_package_registers_problems_by_entry_point(tmp_path) -> None:
    site = tmp_path / "site"
    _install_plugin(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    listed = subprocess.run(
        [sys.executable, "-m", "masksearch", "problems", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    names = [row["name"] for row in rows]
    assert names.count("digits_mlp") == 1 and "plugin_mlp" in names
    plugin = next(row for row in rows if row["name"] == "plugin_mlp")
    assert plugin["description"] == "Random MLP 64-16-10 on digits."
    code = (
        "from masksearch import catalogue as c; p = c.get('plugin_mlp'); "
        "print(p.source, p.densities, type(c.resolve('digits_mlp')).__name__)"
    )
    built = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert built.returncode == 0, built.stderr
    assert built.stdout.split() == ["plugin_mlp", "(0.5,", "0.3)", "ProblemSpec"]


def test_problem_source_defaults_to_none_for_a_hand_built_problem(digits_problem) -> None:
    problem = ms.PruningProblem(digits_problem.model, digits_problem.data)
    assert problem.source is None


def test_the_example_problem_in_problems_builds_from_the_repository_root(monkeypatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    problem = catalogue.get("problems.tiny_mlp:make_problem", densities=(0.3,))
    assert problem.source == "problems.tiny_mlp:make_problem" and problem.densities == (0.3,)
    dense = ms.evaluate(problem.model, problem.test_data)
    assert dense.accuracy > 0.8  # trained, not random (10 classes)
    sys.modules.pop("problems.tiny_mlp", None)
    sys.modules.pop("problems", None)


def test_a_function_with_keyword_options_gets_what_a_problem_takes(tmp_path, monkeypatch) -> None:
    (tmp_path / "kwmodels.py").write_text(
        USER_MODULE.replace("def not_a_problem", "def make_kw(**options):\n"
        "    torch.manual_seed(0)\n"
        "    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))\n"
        "    return ms.PruningProblem(model, ms.load('digits'), **options)\n\n\n"
        "def not_a_problem")
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    try:
        # what a run's config.json holds: the val_samples the problem already has passes
        problem = catalogue.get("kwmodels:make_kw", densities=(0.3,), val_samples=300)
        assert problem.densities == (0.3,) and len(problem.data) == 300
        with pytest.raises(ProblemError, match="takes no 'val_samples' option"):
            catalogue.get("kwmodels:make_kw", val_samples=10)
        with pytest.raises(ProblemError) as raised:
            catalogue.get("kwmodels:make_problem", evaluator="batched")
        assert "takes no 'evaluator' option" in str(raised.value)
        assert "object at" not in str(raised.value)
    finally:
        sys.modules.pop("kwmodels", None)
