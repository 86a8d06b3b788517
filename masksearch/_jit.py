"""Whether masksearch's Numba kernels are compiled for this CPU yet.

Numba compiles a kernel on its first call and caches it beside the package (``cache=True``), so
the first search after installing spends about a minute compiling in its first generation. The
command line says so before that pause, instead of leaving a progress bar that seems stuck.
"""

from __future__ import annotations

from typing import Any


def uncached(kernels: list[Any]) -> list[str]:
    """The names of ``kernels`` (Numba dispatchers) that Numba's on-disk cache holds no build of
    for this CPU, so that their first call will compile them.

    Reads Numba's cache index, which is not public API: if it cannot be read (another Numba
    version), no kernel is named.
    """
    names = []
    for kernel in kernels:
        try:
            index = kernel._cache._cache_file._load_index()
            machine = kernel.targetctx.codegen().magic_tuple()
        except Exception:  # noqa: BLE001 - a notice is not worth an error
            return []
        if not any(key[1] == machine for key in index):
            names.append(kernel.py_func.__name__)
    return names


def search_kernels(packable: bool) -> list[Any]:
    """The kernels every search runs: the archive's keys, and the packed mutation where the
    encoding's genomes are packed."""
    from masksearch.encodings.packed import _mutate_rows
    from masksearch.keys import _digests

    return [_digests, _mutate_rows] if packable else [_digests]
