"""The optional ``diffusers`` library, imported on first use with one sentence when it is missing.

``import genaug``, ``from genaug import *``, the registry and ``genaug list`` work without it; only
building a diffusion generator needs it (``pip install -e ".[diffusion]"``).
"""

from __future__ import annotations

import contextlib
import importlib
import warnings
from collections.abc import Iterator
from types import ModuleType

from genaug.errors import GenaugError

__all__ = ["EXTRA_HINT", "quiet_loading", "require"]

EXTRA_HINT = 'pip install -e ".[diffusion]" (or pip install "genaug[diffusion]")'


def require(library: str = "diffusers", what: str = "A diffusion generator") -> ModuleType:
    """Import ``library`` (``diffusers`` or ``transformers``), or one sentence naming the extra."""
    try:
        return importlib.import_module(library)
    except ImportError:
        raise GenaugError(
            f"{what} needs the optional {library} package, which is not installed; install "
            f"the diffusion extra: {EXTRA_HINT}."
        ) from None


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence diffusers' and transformers' loading chatter (progress bars, advice to install
    accelerate, deprecation notes on the folder's configs) while a local folder loads; their
    settings are restored afterwards."""
    diffusers = require()
    logging = diffusers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    transformers_logging = None
    with contextlib.suppress(ImportError):
        transformers_logging = importlib.import_module("transformers").utils.logging
    previous = transformers_logging.get_verbosity() if transformers_logging else None
    if transformers_logging:
        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
        if transformers_logging and previous is not None:
            transformers_logging.set_verbosity(previous)
            transformers_logging.enable_progress_bar()
