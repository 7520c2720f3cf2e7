"""Running kernel tests through the serial or the parallel compilation of a loop.

Kernels pick a compilation per call from the amount of work (``use_parallel``
reads ``PARALLEL_MIN_ELEMENTS``, ``use_parallel_fmas`` and the skip kernels
``PARALLEL_MIN_FMAS``); a test forces one by moving those thresholds.
"""

import sys

import numba
import pytest

ELEMENTS = ("n2prune.kernels.im2col", "PARALLEL_MIN_ELEMENTS")
DIRECT_FMAS = ("n2prune.kernels.direct_conv", "PARALLEL_MIN_FMAS")
SPARSE_FMAS = ("n2prune.kernels.sparse", "PARALLEL_MIN_FMAS")
MODES = ("serial", "parallel")


def force_mode(monkeypatch, mode, *thresholds):
    """Make the kernels deciding by ``thresholds`` ((module, name) pairs) run
    ``mode``, "serial" or "parallel"; returns ``mode``.

    With one numba thread the kernels never choose the parallel compilation,
    so a parallel case is skipped rather than passed on the serial code.
    """
    if mode == "parallel" and numba.get_num_threads() < 2:
        pytest.skip("one numba thread: the parallel compilations are never chosen")
    for module, name in thresholds:
        monkeypatch.setattr(sys.modules[module], name, 0 if mode == "parallel" else 1 << 62)
    return mode
