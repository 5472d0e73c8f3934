"""The package logger, verbosity control and progress bars."""

from __future__ import annotations

import contextlib
import logging
import os

logger = logging.getLogger("lfp_surrogate")
logger.addHandler(logging.NullHandler())

#: Environment variable that silences every progress bar when set to 1.
NO_PROGRESS_ENV = "LFP_SURROGATE_NO_PROGRESS"


def set_log_level(verbose: bool | str | int | None = None) -> None:
    """Set the level of the ``lfp_surrogate`` logger.

    Parameters
    ----------
    verbose : bool | str | int | None
        ``True`` or ``None`` gives INFO, ``False`` gives WARNING; a level name
        (``"DEBUG"``, ``"INFO"``, ...) or number is used as it is.
    """
    logger.setLevel(_level(verbose))
    if not any(isinstance(h, logging.StreamHandler) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


def _level(verbose: bool | str | int | None) -> int:
    if verbose is None or verbose is True:
        return logging.INFO
    if verbose is False:
        return logging.WARNING
    if isinstance(verbose, str):
        level = logging.getLevelName(verbose.upper())
        if not isinstance(level, int):
            raise ValueError(
                f"verbose must be a bool, a logging level name or number, "
                f"got {verbose!r}"
            )
        return level
    return int(verbose)


@contextlib.contextmanager
def use_log_level(verbose: bool | str | int | None):
    """Temporarily set the logger level (``None`` keeps the current level)."""
    if verbose is None:
        yield
        return
    old = logger.level
    logger.setLevel(_level(verbose))
    try:
        yield
    finally:
        logger.setLevel(old)


def progress_disabled() -> bool:
    """Whether progress bars are silenced (environment or log level)."""
    if os.environ.get(NO_PROGRESS_ENV, "0") not in ("", "0"):
        return True
    return logger.getEffectiveLevel() > logging.INFO


def progress(iterable=None, **kwargs):
    """A tqdm progress bar that logging level or environment can silence."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", progress_disabled())
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
