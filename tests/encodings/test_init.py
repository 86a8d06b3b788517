"""make_encoding: the registry, its options and its messages."""

from __future__ import annotations

import pytest

from masksearch.encodings import (
    LevelsEncoding,
    make_encoding,
)


def test_make_encoding(mlp):
    assert isinstance(make_encoding("levels", mlp, ladder=[1.0, 0.5, 0.1]), LevelsEncoding)
    assert make_encoding("pool", mlp, density=0.02, rho=0.5).n_always == round(
        0.5 * round(0.02 * 17024)
    )
    with pytest.raises(ValueError, match=r"unknown encoding 'bits'.*'channels'.*'weights'"):
        make_encoding("bits", mlp)
    with pytest.raises(TypeError, match="no option 'rate'"):
        make_encoding("weights", mlp, rate=0.1)
    with pytest.raises(TypeError, match="needs the option 'density'"):
        make_encoding("pool", mlp)
