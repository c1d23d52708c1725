"""Crash-safe file writing: everything is written to a temporary name, flushed, then renamed.

A failed write leaves no temporary file behind. OS errors (a full disk, a read-only folder)
become one sentence naming the path and the fix (:func:`os_errors_as_sentences`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from genaug.errors import GenaugError

# What to do about an OS error, by errno; anything else gets its own strerror and no advice.
_ADVICE = {
    errno.ENOSPC: "free space on that disk",
    errno.EDQUOT: "free space within your disk quota",
    errno.EROFS: "choose a writable folder",
    errno.EACCES: "choose a folder you may write to",
    errno.EPERM: "choose a folder you may write to",
}
# Errors of libraries that wrap an OS error in their own type (safetensors: "... (os error 28)
# at path "..."").
_WRAPPED = re.compile(r"\(os error (\d+)\)(?: at path \"([^\"]*)\")?")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()  # a full disk leaves no half-written temporary file
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_folder_atomically(target: str | os.PathLike, fill: Callable[[Path], None]) -> Path:
    """Create folder ``target`` by calling ``fill(tmp_folder)`` and renaming it into place.

    If ``target`` exists it is replaced; a crash leaves either the old folder or the new one
    (plus a hidden temporary folder that the next write ignores), never a half-written target.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp = target.with_name(f".{target.name}.tmp-{tag}")
    tmp.mkdir()
    try:
        fill(tmp)
        for child in tmp.iterdir():
            with open(child, "rb") as f:
                os.fsync(f.fileno())
        if target.exists():
            old = target.with_name(f".{target.name}.old-{tag}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


# ------------------------------------------------------------------------- OS errors as sentences
def as_os_error(exc: BaseException) -> OSError | None:
    """``exc`` as an OSError: itself, one a library wrapped (safetensors), or None."""
    if isinstance(exc, OSError):
        return exc
    found = _WRAPPED.search(str(exc))
    if found is None:
        return None
    code = int(found.group(1))
    return OSError(code, os.strerror(code), found.group(2))


def os_error_message(exc: OSError, action: str, fix: str | None = None) -> str:
    """One sentence: ``Could not ACTION (STRERROR: PATH); FIX.``

    ``fix`` defaults to advice for the errno (free space, choose a writable folder).
    """
    reason = exc.strerror or str(exc)
    if exc.filename:
        reason += f": {exc.filename}"
    return f"Could not {action} ({reason}); {fix or os_error_advice(exc)}."


def os_error_advice(exc: OSError) -> str:
    """What to do about an OS error: free space, choose a writable folder, ..."""
    return _ADVICE.get(exc.errno or 0, "check the path and the disk, then try again")


@contextlib.contextmanager
def os_errors_as_sentences(
    action: str, fix: str | None = None, then: str | Callable[[], str] = ""
) -> Iterator[None]:
    """Turn an OS error inside the block into a :class:`GenaugError` of one sentence.

    ``fix`` replaces the advice for the errno; ``then`` (text, or a callable asked only when an
    error happens) is appended to it. Errors of libraries that wrap an OS error (safetensors)
    are turned too; other exceptions pass. Example:
    ``with os_errors_as_sentences(f"write {out}", "choose a writable --out"): ...``.
    """
    try:
        yield
    except GenaugError:
        raise
    except Exception as exc:
        os_error = as_os_error(exc)
        if os_error is None:
            raise
        more = then() if callable(then) else then
        message = os_error_message(os_error, action, (fix or os_error_advice(os_error)) + more)
        raise GenaugError(message) from None


def check_writable(folder: str | os.PathLike) -> None:
    """Create ``folder`` if needed and write (then remove) a probe file there; an OS error passes.

    Callers check before long work that would end by writing there (an evaluation).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".genaug-probe-{uuid.uuid4().hex[:8]}"
    with open(probe, "wb") as f:
        f.write(b"0")
    probe.unlink()
