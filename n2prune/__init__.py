"""n2prune: N2D2-style INI networks, trained and pruned with skip kernels."""

import os

from n2prune.launch import share_cores

# OpenBLAS's idle threads spin for a while after each BLAS call and slow
# down the numba kernel that follows (measured 1.1 -> 0.8 ms on a 300x784
# skip GEMM right after a BLAS call; docs/performance.rst). A short timeout
# puts them to sleep sooner. It is read when numpy loads, so it only works
# when n2prune is imported first (always true for the ``n2prune`` command);
# a value the user set wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

# Under mpirun, K ranks on one host share its cores (docs/distributed.rst);
# also read when numpy and numba load, so set here, first.
share_cores()

__version__ = "0.1.0"
