"""Helpers shared by the subcommands: ``--config`` files and flag merging."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import yaml

#: Namespace attribute listing the required options that --config may give.
_FROM_CONFIG = "_required_from_config"


def add_config_argument(parser):
    """Add ``--config FILE.yaml`` (any option; flags given override it).

    Call it after the other options: the required ones (``--out`` ...) may
    then come from the file instead, and :func:`apply_config` checks that
    each is given one way or the other.
    """
    required = []
    for action in parser._actions:
        if action.required and action.option_strings:
            action.required = False
            action.help = f"{action.help or ''} (required: here or in --config)"
            required.append((action.dest, _long_flag(action)))
    parser.set_defaults(**{_FROM_CONFIG: tuple(required)})
    parser.add_argument(
        "--config",
        metavar="FILE.yaml",
        help="YAML file of options (keys as the long flags, with - or _); "
        "flags given on the command line override it",
    )


def _long_flag(action) -> str:
    return max(action.option_strings, key=len)


def flag_names(parser) -> dict:
    """``{dest: "--long-flag"}`` for every option of ``parser``.

    The forward configuration's plural fields (``probes``, ``heads``) map to
    the repeatable flags that fill them.
    """
    out = {a.dest: _long_flag(a) for a in parser._actions if a.option_strings}
    for field, dest in (("probes", "probe"), ("heads", "head")):
        if dest in out:
            out.setdefault(field, out[dest])
    return out


# what follows a field's name at the start of a message about that field
_NAMED = (" must ", ": ", " (", "[")


@contextlib.contextmanager
def with_flag_names(names: dict):
    """Re-raise errors about a setting naming its CLI flag, not the field.

    A message that starts with a configuration field (``"n_sims must be
    ..."``) is given the flag that sets it (``"--n-sims must be ..."``).
    """
    try:
        yield
    except (
        ValueError,
        TypeError,
        FileExistsError,
        FileNotFoundError,
        NotADirectoryError,
    ) as err:
        text = str(err)
        for dest, flag in sorted(names.items(), key=lambda kv: -len(kv[0])):
            if text.startswith(dest) and text[len(dest) :].startswith(_NAMED):
                try:
                    renamed = type(err)(flag + text[len(dest) :])
                except TypeError:  # an error type with another signature
                    raise err from None
                raise renamed from None
        raise


#: Options a --config file cannot set.
_NOT_IN_CONFIG = ("help", "config")


def report(message: str) -> None:
    """Print a command's closing line (``dataset written to ...``) unless -q."""
    from .._logging import logger

    if logger.isEnabledFor(logging.INFO):
        print(message)


def _read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = err.problem or err.context or "invalid YAML"
        raise ValueError(
            f"--config {path}: not valid YAML at {where}: {problem}; fix the file "
            f"(keys as the long flags, e.g. 'n-sims: 2')"
        ) from None
    except yaml.YAMLError as err:
        raise ValueError(f"--config {path}: not valid YAML ({err})") from None
    except UnicodeDecodeError:
        raise ValueError(f"--config {path}: not a text (UTF-8) YAML file") from None


def apply_config(args, parser_defaults: dict):
    """Fill ``args`` from ``args.config`` where the flag kept its default.

    Values from the file are checked against the flag they stand for: a
    switch (``--force``) takes only a YAML boolean (``true``/``false``), and
    a repeatable flag (``--probe``) takes a string or a list of strings.
    Afterwards every required option must have a value from either source.
    """
    if getattr(args, "config", None):
        _merge_config(args, Path(args.config), parser_defaults)
    missing = [
        flag
        for dest, flag in getattr(args, _FROM_CONFIG, ())
        if getattr(args, dest, None) is None
    ]
    if missing:
        key = missing[0].lstrip("-")
        raise ValueError(
            f"{missing[0]} is required: give it on the command line or as "
            f"'{key}: ...' in the --config file"
        )
    return args


def _merge_config(args, path: Path, parser_defaults: dict):
    if path.is_dir():
        raise ValueError(f"--config must be a YAML file, got the folder {path}")
    if not path.exists():
        raise FileNotFoundError(f"--config: no such file: {path}")
    data = _read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ValueError(
            f"--config {path}: expected a mapping of options (key: value lines), "
            f"got a {type(data).__name__}"
        )
    for key, value in data.items():
        dest = str(key).replace("-", "_")
        if dest not in parser_defaults or dest in _NOT_IN_CONFIG:
            raise ValueError(
                f"--config {path}: unknown option {key!r}; known: "
                f"{sorted(k for k in parser_defaults if k not in _NOT_IN_CONFIG)}"
            )
        default = parser_defaults[dest]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(
                f"--config {path}: {key} must be true or false (a YAML boolean), "
                f"got {value!r}; write e.g. '{key}: true' without quotes"
            )
        if isinstance(default, list):
            # a repeatable flag: one string is one value, as on the command line
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not all(
                isinstance(v, str) for v in values
            ):
                raise ValueError(
                    f"--config {path}: {key} must be a string or a list of "
                    f"strings, got {value!r}"
                )
            value = values
        if getattr(args, dest) == default:
            setattr(args, dest, value)


_PROBE_KEYS = ("position", "rotation", "label", "n_points", "seed")


def add_forward_arguments(parser):
    """Add ``--probe``, ``--head``, ``--meg`` and ``--forward-config``."""
    parser.add_argument(
        "--probe",
        action="append",
        default=[],
        metavar="'NAME|FILE [position=X,Y,Z] [rotation=RX,RY,RZ] [label=L]'",
        help="probe by MEAutility name, our probes/ name or YAML file, placed "
        "with its centre at position (µm, relative to the soma) and rotated "
        "by rotation (degrees about x, y, z); repeatable (distinct labels)",
    )
    parser.add_argument(
        "--head",
        action="append",
        default=[],
        metavar="NAME|FILE",
        help="EEG head model (see head_models/); repeatable",
    )
    parser.add_argument(
        "--meg",
        action="append",
        nargs="?",
        const="spherical",
        default=[],
        metavar="MODEL",
        help="MEG: 'spherical' (default) or 'infinite'; repeatable",
    )
    parser.add_argument(
        "--forward-config",
        metavar="FILE.yaml",
        help="full forward configuration (ForwardConfig YAML); --probe, "
        "--head and --meg are added to it",
    )


def parse_probe(spec: str) -> dict:
    """``'NAME key=value ...'`` -> ProbePlacement keyword dict."""
    tokens = str(spec).split()
    if not tokens:
        raise ValueError("--probe must start with a probe name or file, got ''")
    out = {"probe": tokens[0]}
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep or key not in _PROBE_KEYS:
            raise ValueError(
                f"--probe {spec!r}: cannot read {token!r}; use key=value with keys "
                f"{', '.join(_PROBE_KEYS)} (e.g. position=50,0,300)"
            )
        if key in ("position", "rotation"):
            try:
                vec = tuple(float(v) for v in value.split(","))
            except ValueError:
                vec = ()
            if len(vec) != 3:
                raise ValueError(
                    f"--probe {spec!r}: {key} must be three numbers X,Y,Z, got "
                    f"{value!r}"
                )
            out[key] = vec
        elif key in ("n_points", "seed"):
            out[key] = int(value)
        else:
            out[key] = value
    return out


def forward_config_from_args(args) -> dict:
    """The forward configuration (plain dict) asked for on the command line."""
    from ..forward import ForwardConfig

    base = ForwardConfig()
    if getattr(args, "forward_config", None):
        base = ForwardConfig.from_yaml(args.forward_config)
    probes = list(base.probes) + [parse_probe(s) for s in args.probe]
    heads = list(base.heads) + list(args.head)
    meg = list(base.meg) + list(args.meg)
    if not (probes or heads or meg):
        return {}
    import dataclasses

    config = dataclasses.replace(base, probes=probes, heads=heads, meg=meg)
    return config.to_dict()
