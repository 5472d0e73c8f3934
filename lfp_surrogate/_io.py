"""Atomic writes, reading HDF5 files with clear errors, and the cache directory."""

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


def _umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    # elsewhere the only portable read is to set and restore it
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0o666 less the umask."""
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path, *, suffix: str = ""):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    The file gets the usual mode of a new file (0o666 less the umask, e.g.
    0644), not the 0600 of :func:`tempfile.mkstemp`.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the path of a file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # writers may have replaced the file: set the mode on what is there
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def open_hdf5(path, name: str = "path", *, what: str = "an HDF5 file"):
    """Open an HDF5 file read-only, turning h5py's OSErrors into clear errors.

    Parameters
    ----------
    path : path-like
        The file.
    name : str
        The parameter or flag that gave ``path``, for the messages.
    what : str
        What ``path`` should be (e.g. ``"a dataset shard"``), for the messages.

    Returns
    -------
    h5py.File

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``path`` is a folder (naming a shard in it when there is one), is
        not readable by this user, or is not a readable HDF5 file.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{name}: no such file: {path}")
    if path.is_dir():
        shards = sorted(path.glob("shard-*.h5"))
        hint = f", e.g. {shards[0]}" if shards else ""
        raise ValueError(
            f"{name} must be {what}, got the folder {path}; give a file in it{hint}"
        )
    if not os.access(path, os.R_OK):
        raise ValueError(
            f"{name}: cannot read {path} (permission denied); check its mode and owner"
        )
    try:
        return h5py.File(path, "r")
    except OSError:
        raise ValueError(
            f"{path} is not a readable HDF5 file (truncated or corrupt?); "
            f"{name} must be {what}"
        ) from None


def open_npz(path, *, what: str, writer: str, name: str = "path"):
    """Open an ``.npz`` archive without pickles, with errors naming the file.

    Parameters
    ----------
    path : path-like
        The file.
    what : str
        What the file should hold (e.g. ``"a cell geometry"``).
    writer : str
        What writes such files (e.g. ``"CellGeometry.save"``).
    name : str
        The parameter that gave ``path``.

    Returns
    -------
    numpy.lib.npyio.NpzFile
        Open archive (use it as a context manager).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``path`` is a folder or not an ``.npz`` archive.
    """
    import zipfile

    import numpy as np

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{name}: no such file: {path}")
    not_ours = (
        f"{path} is not {what} file: expected an .npz archive written by {writer}"
    )
    if path.is_dir():
        raise ValueError(f"{not_ours}, got a folder")
    if not zipfile.is_zipfile(path):
        raise ValueError(not_ours)
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile):
        raise ValueError(f"{not_ours} (it is damaged or of another kind)") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):  # pragma: no cover - zip, not npz
        raise ValueError(not_ours)
    return npz
