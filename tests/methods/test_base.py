from __future__ import annotations

import pytest
import torch

from masksearch.data import Split
from masksearch.mask import MaskError
from masksearch.methods import METHODS, MethodError, OneShotMethod, TrainingMethod, make_method
from masksearch.methods.base import check_epochs, train_split

ONE_SHOT = sorted(n for n, c in METHODS.items() if issubclass(c, OneShotMethod))
TRAINING = sorted(n for n, c in METHODS.items() if issubclass(c, TrainingMethod))


def test_registry_holds_every_method_of_the_issue_except_a():
    expected = {
        "magnitude",
        "random",
        "snip",
        "obd",
        "wanda",
        "supermask",
        "han",
        "gmp",
        "dns",
        "imp",
        "small_frequency",
        "oneshot_finetune",
    }
    assert expected <= set(METHODS)
    for name in METHODS:
        assert make_method(name).name == name


def test_unknown_method_lists_the_names():
    with pytest.raises(ValueError, match="unknown pruning method 'nope'") as info:
        make_method("nope")
    for name in ("magnitude", "dns", "small_frequency"):
        assert name in str(info.value)


def test_unknown_option_names_the_options():
    with pytest.raises(TypeError, match="has no option 'foo'.*gamma"):
        make_method("dns", foo=1)


@pytest.mark.parametrize("density", [0, -0.1, 1.5, "half"])
@pytest.mark.parametrize("name", ["magnitude", "random", "snip"])
def test_one_shot_density_outside_unit_interval_is_refused(trained, digits, name, density):
    with pytest.raises(MaskError, match=r"density must be"):
        make_method(name).prune(trained, digits, density)


@pytest.mark.parametrize("name", TRAINING)
def test_training_methods_refuse_a_zero_or_negative_budget(trained, digits, name):
    method = make_method(name)
    with pytest.raises(MethodError, match="epochs must be >= 1"):
        method.run(trained, digits, 0.5, epochs=0)
    with pytest.raises(MethodError, match="epochs must be >= 1"):
        method.run(trained, digits, 0.5, epochs=-2)
    with pytest.raises(TypeError, match="epochs must be an int"):
        method.run(trained, digits, 0.5, epochs=1.5)
    with pytest.raises(MaskError, match="density must be"):
        method.run(trained, digits, 0.0, epochs=1)


def test_check_epochs_accepts_positive_ints():
    assert check_epochs(3) == 3


def test_train_split_takes_a_dataset_or_a_split(digits):
    assert train_split(digits) is digits.train
    split = Split(torch.zeros(3, 1, 8, 8), torch.zeros(3, dtype=torch.long))
    assert train_split(split) is split
    with pytest.raises(TypeError, match="Dataset or a Split"):
        train_split([1, 2, 3])
    with pytest.raises(TypeError, match="needs data"):
        train_split(None)


def test_data_driven_criteria_need_data(trained):
    with pytest.raises(TypeError, match="needs data"):
        make_method("snip").prune(trained, None, 0.5)


def test_bad_scope_is_refused(trained, digits):
    with pytest.raises(MaskError, match="supports scope"):
        make_method("magnitude").prune(trained, digits, 0.5, scope="row")
    with pytest.raises(MaskError, match="supports scope"):
        make_method("magnitude", scope="everything")


def test_invalid_options_are_refused():
    with pytest.raises(MethodError, match="gamma"):
        make_method("dns", gamma=-1.0)
    with pytest.raises(MethodError, match="rounds"):
        make_method("han", rounds=0)
    with pytest.raises(MethodError, match="lr"):
        make_method("gmp", lr=0)
    with pytest.raises(MethodError, match="optimizer"):
        make_method("imp", optimizer="lbfgs")
    with pytest.raises(MethodError, match="train_first"):
        make_method("imp", rewind_step=3)
    with pytest.raises(MethodError, match="criterion"):
        make_method("oneshot_finetune", criterion="supermask")
    with pytest.raises(MethodError, match="stages"):
        make_method("small_frequency", stages=(0.5, 0.2))


def test_progress_reports_the_final_mask(trained, digits):
    records = []
    mask = make_method("magnitude").prune(trained, digits, 0.3, progress=records.append)
    assert records[-1]["method"] == "magnitude"
    assert records[-1]["event"] == "done"
    assert records[-1]["density"] == pytest.approx(mask.density)
    assert records[-1]["layer_densities"] == mask.layer_densities()


def test_a_new_method_cannot_take_an_old_name():
    from masksearch.methods import register

    class Clash:
        name = "method_a"  # the old name of large_plus_small

    with pytest.raises(ValueError, match="already registered"):
        register(Clash)
    assert METHODS["method_a"] is not Clash
