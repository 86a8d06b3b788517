from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from masksearch import device, models, training


@dataclass(frozen=True)
class _Split:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class _Mask:
    tensors: dict[str, torch.Tensor]


def _blobs(n: int = 400, seed: int = 0) -> _Split:
    """Digits-shaped (N,1,8,8) data whose class shifts the image mean: learnable, not trivial."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=generator)
    centers = torch.randn(10, 1, 8, 8, generator=generator)
    x = centers[y] + 1.5 * torch.randn(n, 1, 8, 8, generator=generator)
    return _Split(x, y)


def _random_mask(model: nn.Module, density: float, seed: int = 0) -> _Mask:
    generator = torch.Generator().manual_seed(seed)
    return _Mask(
        {
            name: torch.rand(p.shape, generator=generator) < density
            for name, p in model.named_parameters()
            if name.endswith("weight")
        }
    )


def test_evaluate_matches_a_hand_computation():
    split = _blobs(250)
    model = models.digits_mlp(seed=1)
    result = training.evaluate(model, split, batch_size=64)  # several batches + a ragged one
    assert isinstance(result, training.Scores)
    with torch.no_grad():
        logits = model(split.x)
    expected_accuracy = int((logits.argmax(1) == split.y).sum()) / len(split.y)
    expected_loss = F.cross_entropy(logits, split.y).item()
    assert result.n == 250
    assert result.accuracy == expected_accuracy
    assert result.loss == pytest.approx(expected_loss, rel=1e-5)
    assert result.error == pytest.approx(1 - expected_accuracy)


def test_evaluate_smooths_its_loss_as_asked_and_refuses_a_bad_smoothing():
    split = _blobs(250)
    model = models.digits_mlp(seed=1)
    result = training.evaluate(model, split, batch_size=64, label_smoothing=0.2)
    with torch.no_grad():
        log_p = torch.log_softmax(model(split.x).double(), dim=1)
    label = -log_p.gather(1, split.y.view(-1, 1)).squeeze(1)
    expected = float((0.8 * label - 0.2 * log_p.mean(dim=1)).mean())
    assert result.loss == pytest.approx(expected, rel=1e-5)
    assert abs(result.loss - training.evaluate(model, split).loss) > 1e-3
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
        training.evaluate(model, split, label_smoothing=1.0)


def test_evaluate_uses_eval_mode_and_restores_the_mode():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Dropout(0.9))
    split = _blobs(100)
    model.train()
    first = training.evaluate(model, split)
    second = training.evaluate(model, split)
    assert first == second  # dropout off: deterministic
    assert model.training


def test_train_reduces_loss_and_logs_every_epoch():
    split = _blobs()
    model = models.digits_mlp(seed=0)
    before = training.evaluate(model, split).loss
    seen: list[dict] = []
    log = training.train(model, split, epochs=3, lr=0.05, progress=seen.append)
    after = training.evaluate(model, split).loss
    assert after < 0.5 * before
    assert [entry["epoch"] for entry in log] == [1, 2, 3]
    assert seen == log
    assert set(log[0]) == {"epoch", "loss", "lr", "seconds"}
    assert log[-1]["loss"] < log[0]["loss"]


def test_cosine_schedule_decays_the_learning_rate():
    log = training.train(
        models.digits_mlp(seed=0), _blobs(), epochs=4, lr=0.1, lr_schedule="cosine"
    )
    lrs = [entry["lr"] for entry in log]
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[2] == pytest.approx(0.05)  # halfway through a cosine from 0.1 to 0
    assert lrs == sorted(lrs, reverse=True)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_same_seed_gives_identical_weights(optimizer):
    split = _blobs()

    def run(seed: int) -> dict[str, torch.Tensor]:
        model = models.digits_mlp(seed=0)
        training.train(model, split, epochs=2, lr=0.01, optimizer=optimizer, seed=seed)
        return model.state_dict()

    state = torch.get_rng_state()
    first, second, other = run(7), run(7), run(8)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["fc1.weight"], other["fc1.weight"])


@pytest.mark.parametrize(
    ("optimizer", "lr"),
    [("sgd", 0.05), ("adam", 0.01)],
)
def test_finetune_keeps_pruned_weights_exactly_zero(optimizer, lr):
    split = _blobs()
    model = models.digits_mlp(seed=0)
    mask = _random_mask(model, density=0.05)
    after_each_epoch: list[bool] = []

    def check(_: dict) -> None:
        params = dict(model.named_parameters())
        after_each_epoch.append(all((params[n][~m] == 0).all() for n, m in mask.tensors.items()))

    before = training.evaluate(model, split).loss
    training.finetune(
        model,
        mask,
        split,
        epochs=3,
        lr=lr,
        optimizer=optimizer,
        momentum=0.9,
        weight_decay=1e-3,
        progress=check,
    )
    params = dict(model.named_parameters())
    for name, keep in mask.tensors.items():
        weight = params[name].detach()
        assert (weight[~keep] == 0).all(), name
        assert not torch.signbit(weight[~keep]).any(), name  # +0.0, never -0.0
        assert torch.count_nonzero(weight[keep]) == keep.sum(), name  # survivors still train
    assert after_each_epoch == [True, True, True]
    assert training.evaluate(model, split).loss < before


def test_train_with_mask_zeroes_pruned_weights_first():
    model = models.digits_mlp(seed=0)
    mask = _random_mask(model, density=0.5)
    training.train(model, _blobs(64), epochs=1, lr=0.01, batch_size=64, mask=mask)
    assert (model.fc1.weight[~mask.tensors["fc1.weight"]] == 0).all()


def test_finetune_requires_a_mask():
    with pytest.raises(ValueError, match="finetune needs a mask"):
        training.finetune(models.digits_mlp(), None, _blobs(), epochs=1)


@pytest.mark.parametrize("epochs", [0, -2])
def test_epochs_must_be_positive(epochs):
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        training.train(models.digits_mlp(), _blobs(), epochs=epochs)


def test_mask_with_wrong_shape_names_the_parameter():
    model = models.digits_mlp()
    mask = _Mask({"fc2.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"mask for 'fc2.weight' has shape \(3, 3\).*\(64, 128\)"):
        training.finetune(model, mask, _blobs(), epochs=1)


def test_mask_with_unknown_name_lists_parameters():
    mask = _Mask({"fc9.weight": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"'fc9.weight'.*fc1.bias"):
        training.finetune(models.digits_mlp(), mask, _blobs(), epochs=1)


def test_nan_weight_names_the_parameter():
    model = models.digits_mlp()
    with torch.no_grad():
        model.fc2.weight[3, 5] = float("nan")
    with pytest.raises(ValueError, match=r"parameter 'fc2.weight' contains NaN"):
        training.train(model, _blobs(), epochs=1)


def test_data_that_does_not_fit_the_model_names_its_shape():
    digits_like = _blobs(32)
    with pytest.raises(ValueError, match=r"data of shape \(1, 8, 8\).*does not fit the model"):
        training.train(models.lenet300(), digits_like, epochs=1)
    with pytest.raises(ValueError, match=r"data of shape \(1, 8, 8\).*does not fit the model"):
        training.evaluate(models.lenet300(), digits_like)


def test_labels_beyond_the_model_outputs_are_rejected():
    split = _blobs(32)
    with pytest.raises(ValueError, match=r"labels range over \[0, 9\].*3 outputs"):
        training.train(models.digits_mlp(num_classes=3), split, epochs=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'"),
        ({"lr_schedule": "step"}, "unknown lr_schedule 'step'"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
    ],
)
def test_bad_training_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        training.train(models.digits_mlp(), _blobs(), epochs=1, **kwargs)


def test_split_without_tensors_is_a_type_error():
    with pytest.raises(TypeError, match=r"\.x \(images\) and \.y \(labels\)"):
        training.evaluate(models.digits_mlp(), (torch.zeros(2, 64), torch.zeros(2)))


def test_resolve_device():
    # it lives in masksearch.device; training re-exports it for its older callers
    assert training.resolve_device is device.resolve_device
    assert device.resolve_device("cpu") == torch.device("cpu")
    assert device.resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert device.resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="unknown device 'tpu0'"):
        device.resolve_device("tpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu_says_what_to_use():
    with pytest.raises(
        ValueError, match=r"no CUDA device is visible; use device='cpu' or device='auto'"
    ):
        training.resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_finetune_on_gpu_keeps_pruned_weights_zero():
    model = models.digits_mlp(seed=0)
    mask = _random_mask(model, density=0.1)
    training.finetune(model, mask, _blobs(), epochs=1, optimizer="adam", lr=0.01, device="cuda")
    assert model.fc1.weight.device.type == "cuda"
    assert (model.fc1.weight.cpu()[~mask.tensors["fc1.weight"]] == 0).all()


def test_finetune_with_a_real_magnitude_mask():
    from masksearch.mask import Mask

    split = _blobs()
    model = models.digits_mlp(seed=0)
    training.train(model, split, epochs=1, lr=0.05)
    mask = Mask.magnitude(model, density=0.05)
    training.finetune(model, mask, split, epochs=2, lr=0.05, weight_decay=1e-3)
    params = dict(model.named_parameters())
    kept = sum(int(torch.count_nonzero(params[n])) for n in mask.names)
    assert kept == mask.n_kept


def _small_convnet(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6 * 6, 10))


def _colour_blobs(n: int = 200, seed: int = 0) -> _Split:
    generator = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=generator)
    centers = torch.randn(10, 3, 8, 8, generator=generator)
    return _Split(centers[y] + torch.randn(n, 3, 8, 8, generator=generator), y)


def test_channels_last_only_for_conv_models_on_image_batches():
    cpu = torch.device("cpu")
    images = torch.zeros(2, 3, 8, 8)
    assert training.uses_channels_last(_small_convnet(), images, cpu)
    assert not training.uses_channels_last(models.digits_mlp(seed=0), images, cpu)
    assert not training.uses_channels_last(_small_convnet(), images.flatten(1), cpu)
    assert not training.uses_channels_last(_small_convnet(), images, torch.device("cuda"))
    # a model the user already keeps in channels-last memory is left as it is
    chosen = _small_convnet().to(memory_format=torch.channels_last)
    assert not training.uses_channels_last(chosen, images, cpu)
    training.train(chosen, _colour_blobs(64), epochs=1, batch_size=32)
    assert chosen[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_a_thin_pointwise_convolution_trains_in_the_default_layout():
    # the shortcut a 0.75 channel pruning leaves in ResNet-8: oneDNN's channels-last weight
    # gradient of this convolution stalled for minutes per step on the CPU (torch 2.14)
    shortcut = nn.Sequential(nn.Conv2d(5, 6, 1, stride=2), nn.Flatten(), nn.Linear(6 * 14 * 14, 10))
    images = torch.randn(128, 5, 28, 28)
    assert not training.uses_channels_last(shortcut, images, torch.device("cpu"))
    wide = nn.Sequential(nn.Conv2d(8, 6, 1, stride=2), nn.Flatten(), nn.Linear(6 * 14 * 14, 10))
    assert training.uses_channels_last(wide, torch.randn(2, 8, 28, 28), torch.device("cpu"))
    labels = torch.randint(0, 10, (128,), generator=torch.Generator().manual_seed(0))
    log = training.train(shortcut, _Split(images, labels), epochs=1, batch_size=128)
    assert log[0]["loss"] == log[0]["loss"] and log[0]["loss"] < 1e3  # finite


def test_channels_last_training_matches_the_default_layout(monkeypatch):
    split = _colour_blobs()
    mask = _random_mask(_small_convnet(), density=0.3)
    trained = {}
    for layout in ("channels_last", "default"):
        if layout == "default":
            monkeypatch.setattr(training, "uses_channels_last", lambda *args: False)
        model = _small_convnet()
        training.finetune(model, mask, split, epochs=2, lr=0.05, batch_size=32, seed=3)
        trained[layout] = model
        # the caller gets its model back in the default layout, pruned weights exactly 0
        assert model[0].weight.is_contiguous()
        assert (model[0].weight[~mask.tensors["0.weight"]] == 0).all()
    for (name, fast), slow in zip(
        trained["channels_last"].named_parameters(), trained["default"].parameters(), strict=True
    ):
        torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5, msg=name)


def test_channels_last_training_is_deterministic():
    split = _colour_blobs()
    mask = _random_mask(_small_convnet(), density=0.3)

    def run(seed: int) -> dict[str, torch.Tensor]:
        model = _small_convnet()
        training.finetune(model, mask, split, epochs=2, lr=0.05, batch_size=32, seed=seed)
        return model.state_dict()

    first, second, other = run(5), run(5), run(6)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["0.weight"], other["0.weight"])


def _mlp() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.Tanh(), nn.Linear(12, 10))


def _sgd_step(
    state: dict[str, torch.Tensor], split: _Split, lr: float, keep: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """w - lr·(∇L(w)⊙keep) for the weights ``state``, by plain autograd on a fresh copy."""
    model = _mlp()
    model.load_state_dict(state)
    params = dict(model.named_parameters())
    loss = F.cross_entropy(model(split.x), split.y)  # the mean is order-independent
    grads = torch.autograd.grad(loss, list(params.values()))
    return {
        name: (p - lr * g * keep.get(name, torch.ones_like(p))).detach()
        for (name, p), g in zip(params.items(), grads, strict=True)
    }


def test_first_sgd_step_already_trains_the_pruned_network():
    # One full-batch SGD step (momentum and weight decay 0) must be w' = w⊙m − lr·(∇L(w⊙m)⊙m):
    # the gradient of the *pruned* network, so the mask has to be applied before the first
    # step, not only after it.
    torch.manual_seed(0)
    model = _mlp()
    split = _blobs(48, seed=2)
    mask = _random_mask(model, density=0.4, seed=3)
    lr = 0.5
    dense = {name: value.clone() for name, value in model.state_dict().items()}
    pruned = {name: value * mask.tensors.get(name, True) for name, value in dense.items()}
    expected = _sgd_step(pruned, split, lr, mask.tensors)
    # the check can tell: a step on the dense weights, pruned afterwards, lands far away
    wrong = _sgd_step(dense, split, lr, mask.tensors)
    wrong = {name: value * mask.tensors.get(name, True) for name, value in wrong.items()}
    assert max(float((wrong[n] - expected[n]).abs().max()) for n in expected) > 1e-3

    training.finetune(
        model,
        mask,
        split,
        epochs=1,
        lr=lr,
        batch_size=len(split.y),  # a single step over the whole data
        momentum=0.0,
        weight_decay=0.0,
    )
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name], rtol=1e-5, atol=1e-6, msg=name)


# -- knowledge distillation ----------------------------------------------------------------


def test_distillation_step_matches_the_loss_computed_by_hand():
    """One full-batch SGD step with a teacher moves the weights by -lr × the gradient of
    (1 - a) CE + a T² KL(teacher ‖ student), computed here from torch's primitives."""
    split = _blobs(96)
    teacher, start = models.digits_mlp(seed=3), models.digits_mlp(seed=0)
    weight, temperature, lr = 0.7, 3.0, 0.1
    model = models.digits_mlp(seed=0)
    training.train(
        model,
        split,
        epochs=1,
        lr=lr,
        momentum=0.0,
        batch_size=96,
        teacher=teacher,
        distill_temperature=temperature,
        distill_weight=weight,
    )
    start.train()
    logits = start(split.x)
    with torch.no_grad():
        target = torch.softmax(teacher.eval()(split.x) / temperature, dim=1)
    student = torch.log_softmax(logits / temperature, dim=1)
    kl = (target * (target.log() - student)).sum(dim=1).mean()
    loss = (1 - weight) * F.cross_entropy(logits, split.y) + weight * temperature**2 * kl
    loss.backward()
    for (name, moved), (_, original) in zip(
        model.named_parameters(), start.named_parameters(), strict=True
    ):
        expected = original.detach() - lr * original.grad
        torch.testing.assert_close(moved.detach(), expected, rtol=1e-4, atol=1e-6, msg=name)


def test_distillation_weight_zero_is_plain_training_and_the_teacher_is_untouched():
    split = _blobs()
    teacher = models.digits_mlp(seed=5)
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    plain, distilled = models.digits_mlp(seed=0), models.digits_mlp(seed=0)
    training.train(plain, split, epochs=1, seed=2)
    training.train(distilled, split, epochs=1, seed=2, teacher=teacher, distill_weight=0.0)
    assert all(
        torch.equal(plain.state_dict()[k], distilled.state_dict()[k]) for k in plain.state_dict()
    )
    assert all(torch.equal(teacher.state_dict()[k], v) for k, v in teacher_state.items())
    # and a real weight changes what is learned
    training.train(models.digits_mlp(seed=0), split, epochs=1, seed=2, teacher=teacher)
    other = models.digits_mlp(seed=0)
    training.train(other, split, epochs=1, seed=2, teacher=teacher, distill_weight=0.5)
    assert not torch.equal(other.fc1.weight, plain.fc1.weight)


def test_finetune_with_a_teacher_keeps_pruned_weights_zero_and_moves_toward_the_teacher():
    split = _blobs()
    dense = models.digits_mlp(seed=0)
    training.train(dense, split, epochs=3, lr=0.05)
    pruned = models.digits_mlp(seed=0)
    pruned.load_state_dict(dense.state_dict())
    mask = _random_mask(pruned, density=0.3)

    def disagreement(model: nn.Module) -> float:
        with torch.no_grad():
            return float(
                F.kl_div(
                    torch.log_softmax(model.eval()(split.x), 1),
                    torch.log_softmax(dense.eval()(split.x), 1),
                    reduction="batchmean",
                    log_target=True,
                )
            )

    training.train(pruned, split, epochs=1, lr=1e-9, mask=mask)  # applies the mask only
    before = disagreement(pruned)
    training.finetune(pruned, mask, split, epochs=2, lr=0.05, teacher=dense, distill_weight=1.0)
    params = dict(pruned.named_parameters())
    assert all((params[n][~m] == 0).all() for n, m in mask.tensors.items())
    assert disagreement(pruned) < before


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"distill_weight": 1.5}, ValueError, r"distill_weight must be in \[0, 1\], got 1.5"),
        ({"distill_weight": -0.1}, ValueError, "distill_weight must be >= 0"),
        ({"distill_temperature": 0.0}, ValueError, "distill_temperature must be > 0"),
        ({"distill_temperature": float("nan")}, TypeError, "distill_temperature must be a finite"),
    ],
)
def test_bad_distillation_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        training.train(
            models.digits_mlp(), _blobs(), epochs=1, teacher=models.digits_mlp(), **kwargs
        )


def test_a_teacher_with_other_classes_or_inputs_is_refused_by_name():
    five_classes = nn.Sequential(nn.Flatten(), nn.Linear(64, 5))
    with pytest.raises(ValueError, match="distillation needs the same classes"):
        training.train(models.digits_mlp(), _blobs(), epochs=1, teacher=five_classes)
    wrong_input = nn.Sequential(nn.Flatten(), nn.Linear(100, 10))
    with pytest.raises(ValueError, match="the teacher Sequential does not take the data"):
        training.train(models.digits_mlp(), _blobs(), epochs=1, teacher=wrong_input)
