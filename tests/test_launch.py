"""What an MPI launcher's environment makes of the thread counts (n2prune/launch.py)."""

import subprocess
import sys

import pytest
from mpirun import environment

from n2prune import launch

LAUNCHER_VARIABLES = launch.WORLD_SIZE_VARIABLES + launch.LOCAL_SIZE_VARIABLES


@pytest.fixture
def machine(monkeypatch):
    """Set the host's cores, the cores this process may use, and the launcher's variables."""
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def set_up(cores, usable, **variables):
        monkeypatch.setattr(launch.os, "cpu_count", lambda: cores)
        monkeypatch.setattr(launch.os, "sched_getaffinity", lambda pid: set(range(usable)),
                            raising=False)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
    return set_up


@pytest.mark.parametrize("cores, usable, world, local, threads", [
    (8, 8, "2", "2", 4),    # not bound: an equal share of the host
    (8, 1, "2", "2", 1),    # bound to one core each (Open MPI's default for 2 ranks)
    (8, 8, "4", "2", 4),    # two hosts: the ranks on this one share it
    (2, 2, "4", "4", 1),    # oversubscribed: never below one
    (16, 8, "4", "4", 4),   # bound to a socket of 8 shared by two ranks
])
def test_threads_share_the_cores_of_the_host(machine, cores, usable, world, local, threads):
    machine(cores, usable, OMPI_COMM_WORLD_SIZE=world, OMPI_COMM_WORLD_LOCAL_SIZE=local)
    assert launch.world_size() == int(world)
    assert launch.rank_threads() == threads


def test_mpich_names_are_read_and_nothing_else_is_a_launch(machine):
    machine(8, 8)
    assert launch.world_size() is None
    machine(8, 8, PMI_SIZE="4", MPI_LOCALNRANKS="4")
    assert (launch.world_size(), launch.rank_threads()) == (4, 2)


def _numba_threads(**variables):
    env = {k: v for k, v in environment(**variables).items()
           if k not in LAUNCHER_VARIABLES + launch.THREAD_VARIABLES or k in variables}
    code = "import n2prune, numba; print(numba.config.NUMBA_NUM_THREADS)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def test_the_package_sets_numba_threads_before_numba_loads():
    alone = launch.rank_threads()  # this process, as if no launcher: every usable core
    expected = max(1, min(alone, (launch.os.cpu_count() or 1) // 2))
    assert _numba_threads(OMPI_COMM_WORLD_SIZE="2", OMPI_COMM_WORLD_LOCAL_SIZE="2") == expected
    # A value the user set wins.
    assert _numba_threads(OMPI_COMM_WORLD_SIZE="2", NUMBA_NUM_THREADS="1") == 1
