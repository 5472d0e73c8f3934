"""Atomic writes and the per-user cache directory."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

#: Environment variable that moves the per-user cache.
CACHE_ENV = "LFP_SURROGATE_CACHE"


def cache_dir(*parts: str) -> Path:
    """The per-user cache directory (``$LFP_SURROGATE_CACHE`` or XDG)."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(xdg) / "lfp_surrogate"
    path = Path(root).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(path, *, suffix: str = ""):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
