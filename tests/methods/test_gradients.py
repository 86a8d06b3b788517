from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from masksearch.methods import _gradients
from masksearch.methods._gradients import gradient_statistics


class _RowwiseLinear(nn.Module):
    """A Linear layer applied to each image row (inputs with an extra dimension)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = nn.Linear(8, 4)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.rows(x.reshape(-1, 8, 8))).flatten(1))


def _conv_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, stride=2, bias=False),
        nn.ReLU(),
        nn.Conv2d(3, 2, 2, dilation=2),
        nn.Flatten(),
        nn.Linear(2 * 2 * 2, 10),
    )


def _conv1d_model() -> nn.Module:  # not hookable: exercises the vmap fallback
    return nn.Sequential(
        nn.Flatten(1),
        nn.Unflatten(1, (1, 64)),
        nn.Conv1d(1, 2, 5, stride=4),
        nn.Flatten(),
        nn.Linear(30, 10),
    )


def _loop_statistics(model, x, y, names, weights=None):
    params = dict(model.named_parameters())
    if weights is not None:
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value)
    grads = {n: [] for n in names}
    for xi, yi in zip(x, y, strict=True):
        model.zero_grad()
        F.cross_entropy(model(xi.unsqueeze(0)), yi.unsqueeze(0)).backward()
        for n in names:
            grads[n].append(params[n].grad.clone())
    stacked = {n: torch.stack(g) for n, g in grads.items()}
    return {n: s.mean(0) for n, s in stacked.items()}, {
        n: (s**2).mean(0) for n, s in stacked.items()
    }


@pytest.mark.parametrize("build", [_conv_model, _RowwiseLinear, _conv1d_model])
def test_per_sample_statistics_match_a_loop(build, monkeypatch):
    torch.manual_seed(0)
    model = build()
    if build is not _conv1d_model:  # Linear/Conv2d models must take the fast hooked path

        def refuse(*args, **kwargs):
            raise AssertionError("fell back to vmap")

        monkeypatch.setattr(_gradients, "_vmapped", refuse)
    x, y = torch.randn(12, 1, 8, 8), torch.randint(0, 10, (12,))
    names = [n for n, _ in model.named_parameters() if n.endswith("weight")]
    g, h = gradient_statistics(model, x, y, names, chunk_size=5)
    expected_g, expected_h = _loop_statistics(model, x, y, names)
    for n in names:
        torch.testing.assert_close(g[n], expected_g[n], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(h[n], expected_h[n], rtol=1e-4, atol=1e-7)


def test_statistics_at_given_weights_leave_the_model_alone():
    torch.manual_seed(1)
    model = _conv_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    names = ["0.weight", "4.weight"]
    masked = {n: before[n] * (torch.rand(before[n].shape) < 0.5) for n in names}
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))
    g, h = gradient_statistics(model, x, y, names, weights=masked)
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), before[n])
    expected_g, expected_h = _loop_statistics(model, x, y, names, weights=masked)
    for n in names:
        torch.testing.assert_close(g[n], expected_g[n], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(h[n], expected_h[n], rtol=1e-4, atol=1e-7)
