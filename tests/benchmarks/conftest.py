from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from masksearch import zoo

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="session", autouse=True)
def benchmarks_use_the_user_cache():
    """Benchmarks pin the committed dense models unless $MASKSEARCH_CACHE is set; tests set it
    to the user's cache (where the other tests' models already are), so that no test trains a
    model into the repository's benchmarks/results/dense/. The benchmark scripts import their
    shared module as ``_common``, which needs their folder on sys.path."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(zoo.ENV_VAR, str(zoo.cache_dir()))
        patch.syspath_prepend(str(BENCHMARKS))
        yield


def load_script(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (a script, not a package module) under the name
    ``bench_<name>``."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
