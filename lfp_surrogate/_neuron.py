"""Import NEURON quietly (only ``cells`` and ``simulate`` use this)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

from ._logging import logger


def import_neuron():
    """Import NEURON without its GUI and return ``neuron.h``."""
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    try:
        from neuron import h
    except ImportError:
        raise ImportError(
            "NEURON is needed for this step but is not installed; install it "
            "with `pip install neuron`"
        ) from None
    return h


@contextlib.contextmanager
def quiet_stdout():
    """Send what hoc prints on file descriptor 1 to the DEBUG log instead."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode(errors="replace").strip()
            if text:
                logger.debug("hoc output: %s", text)
