"""Crash-safe writing and OS errors as one sentence (genaug.io)."""

from __future__ import annotations

import errno
import os

import pytest

from genaug.errors import GenaugError
from genaug.io import as_os_error, atomic_write_bytes, check_writable, os_errors_as_sentences


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    atomic_write_bytes(path, b"old")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_library_error_wrapping_an_os_error_is_read_back():
    wrapped = Exception(
        'Error while serializing: I/O error: Read-only file system (os error 30) at path "/x/y"'
    )
    error = as_os_error(wrapped)
    assert error is not None and error.errno == errno.EROFS and error.filename == "/x/y"
    assert as_os_error(ValueError("no os error here")) is None


@pytest.mark.parametrize(
    "code, advice",
    [(errno.ENOSPC, "free space on that disk"), (errno.EROFS, "choose a writable folder")],
)
def test_os_errors_become_one_sentence_with_the_fix(code, advice):
    with (
        pytest.raises(GenaugError) as caught,
        os_errors_as_sentences("write runs/x", then=", then run it again"),
    ):
        raise OSError(code, os.strerror(code), "runs/x/a.png")
    message = str(caught.value)
    assert message == (
        f"Could not write runs/x ({os.strerror(code)}: runs/x/a.png); {advice}, then run it again."
    )
    with pytest.raises(KeyError), os_errors_as_sentences("write runs/x"):  # others pass
        raise KeyError("bug")


def test_check_writable_makes_the_folder_and_leaves_nothing(tmp_path):
    check_writable(tmp_path / "a" / "b")
    assert list((tmp_path / "a" / "b").iterdir()) == []
