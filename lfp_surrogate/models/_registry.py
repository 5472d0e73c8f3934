"""Registry of the multitask heads, built by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import nn

from .._validation import check_option, check_type

_HEADS: dict[str, type[nn.Module]] = {}

HeadT = TypeVar("HeadT", bound=type[nn.Module])


def register_model(name: str) -> Callable[[HeadT], HeadT]:
    """Class decorator that registers a multitask head under ``name``.

    Parameters
    ----------
    name : str
        The architecture name, the value of :attr:`ModelConfig.arch` that
        selects this head.

    Returns
    -------
    decorator : callable
        Registers the class and returns it unchanged. The class must have a
        ``from_config(config, in_width, generator=None)`` class method and a
        ``forward(features)`` returning a :class:`HeadOutput` (see
        :class:`MultitaskHead`).
    """
    check_type(name, str, "name")

    def decorator(cls: HeadT) -> HeadT:
        if not callable(getattr(cls, "from_config", None)):
            raise TypeError(
                f"register_model({name!r}) needs a class with a from_config "
                f"class method, got {cls!r}; derive it from MultitaskHead"
            )
        old = _HEADS.get(name)
        if old is not None and old.__qualname__ != cls.__qualname__:
            raise ValueError(
                f"name {name!r} is already registered for {old.__qualname__}, "
                f"got a second class {cls.__qualname__}; choose another name"
            )
        _HEADS[name] = cls
        return cls

    return decorator


def list_models() -> list[str]:
    """Names of the registered architectures, sorted.

    Returns
    -------
    names : list of str
        Valid values of :attr:`ModelConfig.arch`.
    """
    return sorted(_HEADS)


def get_head(name: str) -> type[nn.Module]:
    """The head class registered under ``name`` (ValueError if unknown)."""
    check_option(
        name,
        list_models(),
        "arch",
        fix="Register a new head with @register_model(name)",
    )
    return _HEADS[name]
