"""The one exception type for bad user input, and the one warning type for notices.

Every user-facing path raises :class:`GenaugError` with one sentence that names the problem and the
fix. The CLI prints that sentence and exits with status 2, without a traceback.
:class:`GenaugNotice` says what genaug worked around (a damaged checkpoint skipped, a torn log
line dropped); the CLI prints it as one ``genaug: notice:`` line.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator


class GenaugError(ValueError):
    """Bad input from the user: the message names the problem and how to fix it."""


class GenaugNotice(UserWarning):
    """Something genaug worked around and the user should know about; one sentence."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), or its type's name:
    what a one-sentence error quotes of a library's exception."""
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def notice(message: str) -> None:
    """Warn with a :class:`GenaugNotice` (the CLI shows it as one ``genaug: notice:`` line)."""
    warnings.warn(message, GenaugNotice, stacklevel=3)


@contextlib.contextmanager
def notices_as_lines() -> Iterator[None]:
    """Show every :class:`GenaugNotice` inside the block as one ``genaug: notice:`` line on
    stderr (the CLI does; other warnings are shown as usual)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", GenaugNotice)
        show = warnings.showwarning

        def show_notice(message, category, filename, lineno, file=None, line=None):
            if not issubclass(category, GenaugNotice):
                return show(message, category, filename, lineno, file, line)
            sys.stderr.write(f"genaug: notice: {message}\n")  # one write: ranks share stderr
            sys.stderr.flush()
            return None

        warnings.showwarning = show_notice
        yield
