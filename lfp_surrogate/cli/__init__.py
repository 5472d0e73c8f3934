"""The ``lfp-surrogate`` command line: one thin module per subcommand."""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from .._logging import set_log_level

# name -> module (imported lazily so that `--help` stays fast)
_COMMANDS = {
    "cells": "_cells",
    "simulate": "_simulate",
    "probes": "_probes",
    "forward": "_forward",
    "figures": "_figures",
    "train": "_train",
    "evaluate": "_evaluate",
    "population": "_population",
    "info": "_info",
    "bench": "_bench",
    "predict": "_predict",
    "validate": "_validate",
    "demo": "_demo",
}


def _parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="lfp-surrogate",
        description="Neural-network surrogates of detailed neurons: ground-truth "
        "simulation, LFP, CSD, dipoles, EEG and MEG.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="only warnings and errors"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug messages too"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _COMMANDS.items():
        mod = importlib.import_module(f".{module}", __name__)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    set_log_level("DEBUG" if args.verbose else "WARNING" if args.quiet else "INFO")
    try:
        return int(args._run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as err:
        print(f"lfp-surrogate {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (RuntimeError, NotADirectoryError, ImportError) as err:
        print(f"lfp-surrogate {args.command}: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # IsADirectoryError, PermissionError, disk full
        print(f"lfp-surrogate {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
