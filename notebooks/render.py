"""Execute the notebooks and write every figure they draw as a PNG file.

Usage::

    python notebooks/render.py --out notebook_figures/
    python notebooks/render.py notebooks/01_lfp_on_a_probe.ipynb --out figs/

Each notebook runs in its own folder with a fresh ``python3`` kernel, with the
environment of this command (so ``LFP_SURROGATE_NOTEBOOK_*`` variables shrink
it as they do in the tests) and matplotlib's inline backend. Figures go to
``OUT/<notebook>/cell-NN-K.png`` (NN: the cell's index, K: the image's index
in that cell). The notebooks on disk are not changed: they stay without
outputs.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def render(notebook: Path, out: Path, timeout: int) -> list[Path]:
    """Execute ``notebook`` and write its PNG outputs under ``out``."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    env = dict(os.environ, MPLBACKEND="module://matplotlib_inline.backend_inline")
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    saved_env = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
    folder = out / notebook.stem
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, cell in enumerate(nb.cells):
        k = 0
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                path = folder / f"cell-{i:02d}-{k}.png"
                path.write_bytes(base64.b64decode(data["image/png"]))
                written.append(path)
                k += 1
    return written


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="notebooks to render (default: every notebook in this folder)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for PNGs")
    parser.add_argument(
        "--timeout", type=int, default=1200, help="seconds allowed per cell"
    )
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(HERE.glob("[0-9]*.ipynb"))
    for nb in notebooks:
        t0 = time.perf_counter()
        written = render(nb.resolve(), args.out, args.timeout)
        print(
            f"{nb.name}: {len(written)} figure(s) in {args.out / nb.stem} "
            f"({time.perf_counter() - t0:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
