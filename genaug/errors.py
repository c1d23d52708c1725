"""The one exception type for bad user input.

Every user-facing path raises :class:`GenaugError` with one sentence that names the problem and the
fix. The CLI prints that sentence and exits with status 2, without a traceback.
"""

from __future__ import annotations


class GenaugError(ValueError):
    """Bad input from the user: the message names the problem and how to fix it."""
