"""Compile NMODL mechanisms once into a per-user cache and load them.

A set of ``.mod`` files is compiled by ``nrnivmodl`` into
``<cache>/mechanisms/<hash>/``, where ``<hash>`` is a SHA-256 of the files'
names and contents and of the NEURON version. Compilation happens in a private
temporary folder that is renamed into place when complete, so concurrent
processes never see (or corrupt) a half-built library: the first rename wins
and the others discard their copy.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .._io import cache_dir
from .._logging import logger

_NAME_RE = re.compile(
    r"^\s*(?:SUFFIX|POINT_PROCESS|ARTIFICIAL_CELL)\s+(\w+)", re.MULTILINE
)

#: Mechanism libraries loaded into this process, by hash.
_LOADED: dict[str, Path] = {}


def mechanism_names(mod_files) -> list[str]:
    """Names of the mechanisms that ``mod_files`` define."""
    names = []
    for path in mod_files:
        text = Path(path).read_text(errors="replace")
        names.extend(_NAME_RE.findall(_strip_comments(text)))
    return names


def _strip_comments(text: str) -> str:
    text = re.sub(r"COMMENT.*?ENDCOMMENT", "", text, flags=re.DOTALL)
    return re.sub(r":.*", "", text)


def sources_hash(mod_files) -> str:
    """SHA-256 of the names and contents of ``mod_files`` and NEURON's version."""
    from .._neuron import import_neuron

    import_neuron()
    import neuron

    digest = hashlib.sha256()
    digest.update(f"neuron {neuron.__version__}\n".encode())
    for path in sorted(Path(p) for p in mod_files):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _find_nrnivmodl() -> str:
    exe = Path(sys.executable).parent / "nrnivmodl"
    if exe.exists():
        return str(exe)
    found = shutil.which("nrnivmodl")
    if found is None:
        raise RuntimeError(
            "nrnivmodl was not found next to the Python interpreter nor on PATH; "
            "install NEURON with `pip install neuron` in this environment"
        )
    return found


def _library(folder: Path) -> Path:
    return folder / platform.machine() / "libnrnmech.so"


def compile_mechanisms(mod_files, *, verbose=None) -> Path:
    """Compile ``mod_files`` into the cache (once) and return the library path.

    Parameters
    ----------
    mod_files : list of path-like
        The NMODL files to compile together.

    Returns
    -------
    library : Path
        The shared library ``libnrnmech.so`` to load with ``nrn_load_dll``.
    """
    mod_files = [Path(p) for p in mod_files]
    key = sources_hash(mod_files)
    root = cache_dir("mechanisms")
    final = root / key
    if _library(final).exists():
        return _library(final)

    if shutil.which("gcc") is None and shutil.which("cc") is None:
        raise RuntimeError(
            "no C compiler (gcc or cc) on PATH: NEURON's nrnivmodl needs one to "
            "compile the cell's mechanisms; install gcc (e.g. `apt install gcc`)"
        )
    nrnivmodl = _find_nrnivmodl()
    work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    for path in mod_files:
        shutil.copy2(path, work / path.name)
    log = work / "build.log"
    logger.info("Compiling %d mechanism files into %s", len(mod_files), final)
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(
            [nrnivmodl, *[p.name for p in mod_files]],
            cwd=work,
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    if proc.returncode != 0 or not _library(work).exists():
        raise RuntimeError(
            f"nrnivmodl failed (exit code {proc.returncode}) compiling "
            f"{len(mod_files)} mechanism files; see the build log {log}"
        )
    try:
        os.rename(work, final)
    except OSError:
        # another process finished first: use its library, drop ours
        shutil.rmtree(work, ignore_errors=True)
        if not _library(final).exists():
            raise RuntimeError(
                f"mechanism cache {final} exists but holds no library; delete "
                f"it and retry"
            ) from None
    logger.info("Compiled mechanisms in %.1f s", time.perf_counter() - t0)
    return _library(final)


def load_mechanisms(mod_files, *, verbose=None) -> Path:
    """Compile (if needed) and load ``mod_files`` into this NEURON process.

    Loading the same set twice is a no-op. Loading a different set that
    defines a mechanism already present raises a RuntimeError, since NEURON
    cannot replace a mechanism in a running process.
    """
    from .._neuron import import_neuron

    h = import_neuron()
    key = sources_hash(mod_files)
    if key in _LOADED:
        return _LOADED[key]
    names = mechanism_names(mod_files)
    present = [n for n in names if _mechanism_exists(h, n)]
    if present:
        raise RuntimeError(
            f"mechanism(s) {present} are already loaded in this process from "
            f"other sources; NEURON cannot reload them. Run this cell in a "
            f"fresh Python process."
        )
    library = compile_mechanisms(mod_files, verbose=verbose)
    if not h.nrn_load_dll(str(library)):
        raise RuntimeError(f"NEURON could not load the mechanism library {library}")
    _LOADED[key] = library
    return library


def _mechanism_exists(h, name: str) -> bool:
    for kind in (0, 1):
        mt = h.MechanismType(kind)
        sref = h.ref("")
        for i in range(int(mt.count())):
            mt.select(i)
            mt.selected(sref)
            if sref[0] == name:
                return True
    return False
