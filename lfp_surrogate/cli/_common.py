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
