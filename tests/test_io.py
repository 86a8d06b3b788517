from __future__ import annotations

import errno
import json
import os

import pytest

from masksearch.io import atomic_write, atomic_write_json


def _failing(code: int):
    def write(handle) -> None:
        handle.write(b"half a file")
        raise OSError(code, os.strerror(code))

    return write


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (errno.ENOSPC, "free some space"),
        (errno.EDQUOT, "quota"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permissions"),
    ],
)
def test_a_failed_write_names_the_file_the_cause_and_the_fix(tmp_path, code, advice) -> None:
    target = tmp_path / "runs" / "x" / "front.json"
    with pytest.raises(OSError) as caught:
        atomic_write(target, _failing(code))
    message = str(caught.value)
    assert message.startswith(f"could not write {target}: {os.strerror(code)} (")
    assert advice in message
    assert caught.value.errno == code
    # the kind of OSError is kept, so `except PermissionError` still works
    assert isinstance(caught.value, type(OSError(code, "")))
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no temporary file left behind


def test_a_failed_write_keeps_the_previous_file(tmp_path) -> None:
    target = tmp_path / "front.json"
    atomic_write_json({"front": 1}, target)
    with pytest.raises(OSError, match="No space left on device"):
        atomic_write(target, _failing(errno.ENOSPC))
    assert json.loads(target.read_text()) == {"front": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["front.json"]


def test_an_unknown_cause_is_still_named(tmp_path) -> None:
    target = tmp_path / "f.bin"
    with pytest.raises(OSError, match=rf"could not write {target}: Input/output error$") as caught:
        atomic_write(target, _failing(errno.EIO))
    assert caught.value.errno == errno.EIO


def test_a_folder_that_cannot_be_created_is_named(tmp_path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    target = blocker / "front.json"
    with pytest.raises(OSError, match=f"could not write {target}"):
        atomic_write(target, lambda handle: handle.write(b"{}"))
