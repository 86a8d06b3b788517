from __future__ import annotations

import pytest

from masksearch import catalogue


@pytest.fixture(scope="session")
def digits_problem():
    """The embedded digits problem (dense model trained once and cached)."""
    return catalogue.digits_mlp()
