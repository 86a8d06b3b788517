from __future__ import annotations

import pytest

import problems


@pytest.fixture(scope="session")
def digits_problem():
    """The embedded digits problem (dense model trained once and cached)."""
    return problems.digits_mlp()
