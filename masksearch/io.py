"""Atomic file writes: a crash or a concurrent writer never leaves a half-written file."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

# What to do about the usual reasons a write fails; other errors get only their cause. The
# same writer serves run folders, masks and the model cache, so the advice names no option.
_ADVICE = {
    errno.ENOSPC: "free some space or write to another folder",
    errno.EDQUOT: "your disk quota is used up; free some space or write to another folder",
    errno.EROFS: "the file system is read-only; write to another folder",
    errno.EACCES: "fix the folder's permissions or write to another folder",
    errno.EPERM: "fix the folder's permissions or write to another folder",
}


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, fsync, then rename over it.

    An :class:`OSError` on the way (disk full, read-only folder, ...) is raised again as the
    same kind of OSError, with the same ``errno``, whose message names ``path``, the cause and
    what to do; the temporary file is removed.
    """
    path = Path(path)
    tmp_name: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(handle, 0o644)  # mkstemp's 0600 would hide shared files from other users
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except OSError as error:
        raise _write_error(path, error) from error
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def _write_error(path: Path, error: OSError) -> OSError:
    # the bare OSError names a temporary file (or nothing at all) and says nothing of the fix
    cause = error.strerror or str(error) or type(error).__name__
    advice = _ADVICE.get(error.errno) if error.errno is not None else None
    message = f"could not write {path}: {cause}" + (f" ({advice})" if advice else "")
    try:
        wrapped = type(error)(message)
    except Exception:  # a subclass with its own constructor: keep the plain kind
        wrapped = OSError(message)
    # errno without strerror: callers can still test the cause, and str() stays the message
    wrapped.errno = error.errno
    return wrapped


def write_npz(handle: IO[bytes], arrays: dict[str, Any], *, compress: bool = True) -> None:
    """``np.savez(_compressed)`` with fixed dates and modes: equal arrays give equal bytes."""
    import numpy as np

    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(handle, "w", compression=method) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            info.create_system = 3  # unix, whatever the writing machine
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


def refused_global(error: BaseException) -> str | None:
    """What ``torch.load(weights_only=True)`` refused to import (``module.name``), if anything.

    torch's message goes on to advise ``weights_only=False``, which would run the file's code.
    """
    found = re.search(r"GLOBAL (\S+)", str(error))
    return found.group(1) if found else None


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    return atomic_write(path, lambda file: torch.save(obj, file))


def atomic_write_text(text: str, path: str | os.PathLike[str]) -> Path:
    return atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def atomic_write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    return atomic_write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", path)
