"""Helpers shared by the subcommands: ``--config`` files and flag merging."""

from __future__ import annotations

from pathlib import Path

import yaml


def add_config_argument(parser):
    """Add ``--config FILE.yaml`` (any option; flags given override it)."""
    parser.add_argument(
        "--config",
        metavar="FILE.yaml",
        help="YAML file of options (keys as the long flags, with - or _); "
        "flags given on the command line override it",
    )


def apply_config(args, parser_defaults: dict):
    """Fill ``args`` from ``args.config`` where the flag kept its default."""
    if not getattr(args, "config", None):
        return args
    path = Path(args.config)
    if not path.exists():
        raise FileNotFoundError(f"--config: no such file: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: expected a mapping of options")
    for key, value in data.items():
        dest = key.replace("-", "_")
        if dest not in parser_defaults:
            raise ValueError(
                f"--config {path}: unknown option {key!r}; known: "
                f"{sorted(k for k in parser_defaults if not k.startswith('_'))}"
            )
        if getattr(args, dest) == parser_defaults[dest]:
            setattr(args, dest, value)
    return args


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
