"""What an MPI launcher (``mpirun``, ``mpiexec``) tells a process through its environment.

Read without mpi4py: the thread counts must be set before numpy and numba
start their pools, which happens long before MPI is initialised (and a
process that MPI did not start should not initialise it at all).
"""

import os

# Ranks in the job, then ranks on this host: Open MPI's names, then those of
# MPICH's and Intel MPI's launcher (Hydra).
WORLD_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
LOCAL_SIZE_VARIABLES = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS")
# What numba, OpenBLAS, OpenMP and MKL read when they load.
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                    "MKL_NUM_THREADS")


def _first_count(names):
    for name in names:
        try:
            return max(1, int(os.environ[name]))
        except (KeyError, ValueError):
            continue
    return None


def world_size():
    """Ranks of the MPI job that started this process, or None when no launcher did."""
    return _first_count(WORLD_SIZE_VARIABLES)


def rank_threads():
    """Threads for one rank: the cores this process may use, shared by the ranks on its host.

    Launchers bind ranks to cores or sockets; the smaller of the cores this
    process is bound to and an equal share of the host's cores keeps K ranks
    from oversubscribing the machine whichever binding is in force.
    """
    local = _first_count(LOCAL_SIZE_VARIABLES) or world_size() or 1
    cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return max(1, min(usable, cores // local))


def share_cores():
    """Under an MPI launcher, each thread pool's size set to ``rank_threads()``
    (a value the user set wins); elsewhere nothing changes."""
    if world_size() is None:
        return
    threads = str(rank_threads())
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, threads)
