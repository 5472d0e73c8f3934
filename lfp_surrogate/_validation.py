"""Shared checks of user input; every message names the parameter."""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import numpy as np


def check_type(value, types, name: str, type_name: str | None = None):
    """Raise TypeError unless ``value`` is an instance of ``types``."""
    if not isinstance(value, types):
        if type_name is None:
            types_ = types if isinstance(types, tuple) else (types,)
            type_name = " or ".join(t.__name__ for t in types_)
        raise TypeError(
            f"{name} must be {type_name}, got {type(value).__name__} ({value!r})"
        )
    return value


def check_option(value, allowed, name: str, fix: str = ""):
    """Raise ValueError unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        msg = (
            f"{name} must be one of {', '.join(repr(a) for a in allowed)}, "
            f"got {value!r}"
        )
        if fix:
            msg += f". {fix}"
        raise ValueError(msg)
    return value


def check_positive(value, name: str, *, integer: bool = False, strict=True):
    """Check a positive (or non-negative) finite number and return it."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a number"
        raise TypeError(f"{name} must be {what}, got {value!r}")
    bad = value <= 0 if strict else value < 0
    if bad or not np.isfinite(value):
        need = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be finite and {need}, got {value!r}")
    return value


def check_multiple(value: float, step: float, name: str, step_name: str):
    """Check that ``value`` is an integer multiple of ``step``."""
    ratio = value / step
    if abs(ratio - round(ratio)) > 1e-9 * max(1.0, abs(ratio)) or round(ratio) < 1:
        raise ValueError(
            f"{name} must be a positive integer multiple of {step_name} "
            f"({step:g}), got {value:g} (ratio {ratio:g}); choose e.g. "
            f"{max(1, round(ratio)) * step:g}"
        )
    return int(round(ratio))


def check_array(array, name: str, *, shape=None, ndim=None, finite=True):
    """Return ``array`` as a numpy array after checking its shape.

    ``shape`` may hold ``None`` for free axes.
    """
    array = np.asarray(array)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    if shape is not None:
        ok = array.ndim == len(shape) and all(
            s is None or s == a for s, a in zip(shape, array.shape)
        )
        if not ok:
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape)
            raise ValueError(f"{name} must have shape {want}), got {array.shape}")
    if finite and array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got NaN or infinite values")
    return array


def check_device(device, name: str = "device") -> str:
    """Check a torch device string (``cpu``, ``cuda``, ``cuda:N``) is usable here."""
    text = str(device)
    check_option(text.split(":")[0], ("cpu", "cuda"), name)
    if text.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError(
                f"{name}={text!r} but torch sees no CUDA device; use {name}='cpu'"
            )
    return text


def check_path(path, name: str, *, must_exist: bool = True) -> Path:
    """Return ``path`` as a Path, checking existence when asked."""
    check_type(path, (str, os.PathLike), name, "a path (str or os.PathLike)")
    path = Path(path).expanduser()
    if must_exist and not path.exists():
        raise FileNotFoundError(f"{name}: no such file or directory: {path}")
    return path
