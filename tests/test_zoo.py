from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import asdict, replace

import pytest
import torch

from masksearch import data, training, zoo

_TINY = zoo.Recipe(epochs=1, lr=0.05, batch_size=64)
_PAIR = ("digits_mlp", "digits")


@pytest.fixture
def tiny_zoo(tmp_path, monkeypatch):
    """A cache in tmp_path, a one-epoch digits recipe and an empty in-process memo."""
    monkeypatch.setenv(zoo.ENV_VAR, str(tmp_path))
    monkeypatch.setitem(zoo.RECIPES, _PAIR, _TINY)
    monkeypatch.setattr(zoo, "_MEMO", {})
    return tmp_path


def _forbid_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was retrained")

    monkeypatch.setattr(zoo.training, "train", refuse)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.ENV_VAR, str(tmp_path / "c"))
    assert zoo.cache_dir() == tmp_path / "c"
    monkeypatch.delenv(zoo.ENV_VAR)
    assert zoo.cache_dir() == zoo.Path.home() / ".cache" / "masksearch"


def test_every_recipe_names_a_known_model_and_dataset():
    from masksearch import models

    for model, dataset in zoo.RECIPES:
        assert model in models.MODELS
        assert dataset in data.DATASETS
    for pair in [
        ("lenet300", "fashion-mnist"),
        ("lenet5", "fashion-mnist"),
        ("lenet300", "mnist"),
        ("lenet5", "mnist"),
        ("resnet20", "cifar10"),
        _PAIR,
    ]:
        assert pair in zoo.RECIPES


def test_first_call_trains_and_writes_then_loads_without_training(tiny_zoo, monkeypatch):
    model = zoo.pretrained(*_PAIR)
    path = zoo.cache_path(*_PAIR)
    assert path.parent == tiny_zoo
    assert path.name == f"digits_mlp-digits-{_TINY.digest()[:12]}.pt"
    assert [p.name for p in tiny_zoo.iterdir()] == [path.name]  # no temp files left

    # an independent training run with the same recipe gives the same weights
    reference = zoo.models.build("digits_mlp", seed=_TINY.seed)
    digits = data.load("digits")
    training.train(reference, digits.train, **asdict(_TINY))
    assert _same_weights(model, reference)

    payload = torch.load(path, weights_only=True)
    assert payload["format"] == 1
    assert payload["recipe"] == asdict(_TINY)
    assert payload["test_accuracy"] == training.evaluate(reference, digits.test).accuracy

    _forbid_training(monkeypatch)
    again = zoo.pretrained(*_PAIR)  # from the in-process memo
    monkeypatch.setattr(zoo, "_MEMO", {})
    from_disk = zoo.pretrained(*_PAIR)  # from the file
    assert _same_weights(again, model) and _same_weights(from_disk, model)
    assert zoo.dense_accuracy(*_PAIR) == payload["test_accuracy"]


def test_dense_sha256_digests_the_weights_from_memo_and_from_disk(tiny_zoo, monkeypatch):
    model = zoo.pretrained(*_PAIR)
    digest = hashlib.sha256()  # independent of zoo's helper: names, dtypes, shapes, bytes
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    assert zoo.dense_sha256(*_PAIR) == digest.hexdigest()
    monkeypatch.setattr(zoo, "_MEMO", {})
    _forbid_training(monkeypatch)
    assert zoo.dense_sha256(*_PAIR) == digest.hexdigest()  # read back from the file
    with torch.no_grad():
        model.fc1.weight[0, 0] += 1.0  # a copy: the cached weights and their digest stay
    assert zoo.dense_sha256(*_PAIR) == digest.hexdigest()


def test_each_call_returns_an_independent_copy(tiny_zoo):
    first = zoo.pretrained(*_PAIR)
    with torch.no_grad():
        first.fc1.weight.zero_()
    second = zoo.pretrained(*_PAIR)
    assert torch.count_nonzero(second.fc1.weight) > 0
    assert not second.training


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_file_warns_and_is_rebuilt_identically(tiny_zoo, monkeypatch, damage):
    original = zoo.pretrained(*_PAIR)
    path = zoo.cache_path(*_PAIR)
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":
        middle = slice(len(raw) // 2, len(raw) // 2 + 8)  # inside the weights' storage
        raw[middle] = bytes(byte ^ 0xFF for byte in raw[middle])
    else:
        raw = b"not a torch file"
    path.write_bytes(bytes(raw))
    monkeypatch.setattr(zoo, "_MEMO", {})

    with pytest.warns(zoo.CacheWarning, match=rf"{path.name}.*unusable.*retraining"):
        rebuilt = zoo.pretrained(*_PAIR)
    assert _same_weights(rebuilt, original)
    assert [p.name for p in tiny_zoo.iterdir()] == [path.name]

    # the rewritten file is sound: it loads without warning or training
    monkeypatch.setattr(zoo, "_MEMO", {})
    _forbid_training(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _same_weights(zoo.pretrained(*_PAIR), original)


class _Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_a_cache_file_carrying_code_is_rebuilt_without_running_it(tiny_zoo, monkeypatch):
    original = zoo.pretrained(*_PAIR)
    path = zoo.cache_path(*_PAIR)
    assert path.parent == tiny_zoo
    marker = tiny_zoo.parent / f"{tiny_zoo.name}-MARKER"  # outside the cache folder
    # a real payload with the code hidden among the weights
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["fc1.weight"] = _Payload(str(marker))
    torch.save(payload, path)
    monkeypatch.setattr(zoo, "_MEMO", {})

    with pytest.warns(zoo.CacheWarning, match=rf"{path.name}.*unusable.*retraining") as caught:
        rebuilt = zoo.pretrained(*_PAIR)
    assert not marker.exists()
    message = str(caught[0].message)
    assert "posix.system" in message and "weights_only" not in message  # no unsafe advice
    assert _same_weights(rebuilt, original)
    assert torch.load(path, weights_only=True)["sha256"] == zoo.dense_sha256(*_PAIR)


def test_weights_edited_behind_the_checksum_are_rebuilt(tiny_zoo, monkeypatch):
    original = zoo.pretrained(*_PAIR)
    path = zoo.cache_path(*_PAIR)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["fc2.weight"][0, 0] += 1.0
    torch.save(payload, path)
    monkeypatch.setattr(zoo, "_MEMO", {})
    with pytest.warns(zoo.CacheWarning, match="sha256"):
        rebuilt = zoo.pretrained(*_PAIR)
    assert _same_weights(rebuilt, original)


def test_memo_notices_a_file_rewritten_on_disk(tiny_zoo):
    zoo.pretrained(*_PAIR)
    zoo.cache_path(*_PAIR).write_bytes(b"broken by another process")
    with pytest.warns(zoo.CacheWarning, match="cannot be read"):
        zoo.pretrained(*_PAIR)


def test_file_made_by_another_recipe_is_rebuilt(tiny_zoo, monkeypatch):
    path = zoo.cache_path(*_PAIR)
    zoo.pretrained(*_PAIR)
    # another recipe's payload under this recipe's name (as if the hash collided)
    payload = torch.load(path, weights_only=True)
    payload["recipe"] = asdict(replace(_TINY, epochs=2))
    torch.save(payload, path)
    monkeypatch.setattr(zoo, "_MEMO", {})
    with pytest.warns(zoo.CacheWarning, match="made by recipe"):
        zoo.pretrained(*_PAIR)
    assert torch.load(path, weights_only=True)["recipe"] == asdict(_TINY)


def test_changed_recipe_uses_a_new_file(tiny_zoo, monkeypatch):
    zoo.pretrained(*_PAIR)
    old_path = zoo.cache_path(*_PAIR)
    monkeypatch.setitem(zoo.RECIPES, _PAIR, replace(_TINY, seed=1))
    new_path = zoo.cache_path(*_PAIR)
    assert new_path != old_path
    zoo.pretrained(*_PAIR)
    assert sorted(p.name for p in tiny_zoo.iterdir()) == sorted([old_path.name, new_path.name])


def test_retrain_overwrites(tiny_zoo, monkeypatch):
    zoo.pretrained(*_PAIR)
    calls = []
    real_train = zoo.training.train
    monkeypatch.setattr(
        zoo.training, "train", lambda *a, **k: calls.append(1) or real_train(*a, **k)
    )
    zoo.pretrained(*_PAIR, retrain=True)
    assert calls == [1]


def test_progress_receives_the_epoch_logs(tiny_zoo):
    seen: list[dict] = []
    zoo.pretrained(*_PAIR, progress=seen.append)
    assert [entry["epoch"] for entry in seen] == [1]


def test_unknown_pair_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"no pretrained recipe.*'vgg'.*lenet300/fashion-mnist"):
        zoo.pretrained("vgg", "digits")


def test_recipe_digest_depends_on_every_field():
    digests = {_TINY.digest()}
    for change in [
        {"epochs": 2},
        {"lr": 0.06},
        {"batch_size": 32},
        {"optimizer": "adam"},
        {"momentum": 0.0},
        {"weight_decay": 1e-4},
        {"seed": 3},
        {"lr_schedule": "cosine"},
    ]:
        digests.add(replace(_TINY, **change).digest())
    assert len(digests) == 9
