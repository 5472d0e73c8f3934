"""Where the shipped data folders (``probes/``, ``head_models/``) are found."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

from .._logging import logger

#: Environment variable with extra probe folders (``os.pathsep`` separated).
PROBE_PATH_ENV = "LFP_SURROGATE_PROBE_PATH"
#: Environment variable with extra head-model folders (``os.pathsep`` separated).
HEAD_MODEL_PATH_ENV = "LFP_SURROGATE_HEAD_MODEL_PATH"


def data_dirs(folder: str, env: str) -> list[Path]:
    """Existing folders named ``folder``, searched in order.

    1. the folders in the environment variable ``env``;
    2. the source checkout: ``lfp_surrogate/forward/../../<folder>``;
    3. the installed package data: ``lfp_surrogate/_data/<folder>``.

    Duplicates (same resolved path) are listed once.
    """
    candidates = [Path(p) for p in os.environ.get(env, "").split(os.pathsep) if p]
    candidates.append(Path(__file__).resolve().parents[2] / folder)
    try:
        packaged = importlib.resources.files("lfp_surrogate").joinpath("_data", folder)
        if packaged.is_dir():
            candidates.append(Path(str(packaged)))
    except (ModuleNotFoundError, TypeError, NotADirectoryError) as err:
        # XXX: namespace-package edge cases of importlib.resources; the source
        # checkout folder above still works.
        logger.debug("no packaged %s folder: %s", folder, err)
    out, seen = [], set()
    for path in candidates:
        if not path.is_dir():
            continue
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out


def yaml_files(dirs: list[Path]) -> dict[str, Path]:
    """Map each ``*.yaml``/``*.yml`` file stem in ``dirs`` to its path.

    Earlier folders win when a stem appears twice.
    """
    found: dict[str, Path] = {}
    for folder in dirs:
        for path in sorted(folder.iterdir()):
            if path.suffix in (".yaml", ".yml") and path.is_file():
                found.setdefault(path.stem, path)
    return found
