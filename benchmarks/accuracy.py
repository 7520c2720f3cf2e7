"""Accuracy of recipes over seeds: mean ± sample std of the official MNIST test set.

    python benchmarks/accuracy.py models_ini/lenet_95.ini [more.ini ...]
        [--seeds 1 2 3] [--jobs 1] [--epochs E] [--steps N] [--out DIR] [--json FILE]

Each (recipe, seed) is one ``n2prune train RECIPE --seed S`` in a fresh
process, as a user runs it; the run's ``summary.json`` gives the test
accuracy after the last epoch and the best validation accuracy, and
``n2prune inspect --json`` the sparsity over every weight of the network.
``time`` is the wall time of the whole command (data, training, validation,
weight files), per run.

Threads: the runs take the thread settings of this environment (numba,
OpenMP, OpenBLAS), 2 unless set. BLAS and the kernels sum in a different
order with another thread count, and training drifts apart from there as
with another seed: the same seed on 1 and 2 threads can differ by a few
tenths of a point. Compare runs made with the same settings. ``--jobs 2``
runs two trainings side by side (set the threads to 1 then). ``--steps N``
stops each run after N batches: a check that the script runs, not a
measurement.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a source checkout, not installed
    sys.path.insert(0, str(ROOT))
from n2prune.io.atomic import atomic_write_text

THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _env():
    env = dict(os.environ)
    for name in THREAD_VARS:
        env.setdefault(name, "2")
    # A source checkout runs its own code, not an installed n2prune.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_one(recipe, seed, out, epochs=None, steps=None):
    """Train once; a dict of seed, test and validation accuracy (%), sparsity and seconds."""
    cmd = [sys.executable, "-m", "n2prune", "train", str(recipe), "--seed", str(seed),
           "--out", str(out)] + (["--epochs", str(epochs)] if epochs else []) \
        + (["--steps", str(steps)] if steps else [])
    start = time.perf_counter()
    done = subprocess.run(cmd, check=False, env=_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{recipe} seed {seed} failed:\n{done.stderr[-2000:]}")
    summary = json.loads((Path(out) / "summary.json").read_text())
    inspect = subprocess.run([sys.executable, "-m", "n2prune", "inspect", str(out), "--json"],
                             env=_env(), capture_output=True, text=True, check=True)
    total = json.loads(inspect.stdout)["total"]
    return {"seed": seed, "test": 100 * summary["test_accuracy"],
            "validation": _percent(summary.get("best_validation_accuracy")),
            "sparsity": 1 - total["nonzero"] / total["params"], "seconds": seconds}


def _percent(fraction):
    """None stays None: a run stopped by --steps before its first validation has none."""
    return None if fraction is None else 100 * fraction


def mean_std(values):
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _mean_or_none(values):
    return None if None in values else statistics.mean(values)


def summarize(recipe, runs):
    test = [r["test"] for r in runs]
    mean, std = mean_std(test)
    return {"recipe": Path(recipe).name, "seeds": [r["seed"] for r in runs],
            "test_mean": mean, "test_std": std, "test_min": min(test), "test_max": max(test),
            "validation_mean": _mean_or_none([r["validation"] for r in runs]),
            "sparsity": statistics.mean(r["sparsity"] for r in runs),
            "seconds_mean": statistics.mean(r["seconds"] for r in runs), "runs": runs}


def _fmt(value):
    return "-" if value is None else f"{value:.2f}"


def print_row(row):
    per_seed = " / ".join(f"{r['test']:.2f}" for r in row["runs"])
    print(f"{row['recipe']:34s} sparsity {row['sparsity']:.4f}  test {row['test_mean']:.2f} "
          f"± {row['test_std']:.2f}% ({per_seed})  val {_fmt(row['validation_mean'])}%  "
          f"{row['seconds_mean']:.0f} s/run", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="+", type=Path)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--jobs", type=int, default=1, help="trainings at a time")
    parser.add_argument("--epochs", type=int, help="override the 10 epochs of `n2prune train`")
    parser.add_argument("--steps", type=int, help="stop each run after this many batches")
    parser.add_argument("--out", type=Path, help="keep the run folders here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write every run and the means here")
    args = parser.parse_args(argv)
    env = _env()
    print("# threads: " + ", ".join(f"{k}={env[k]}" for k in THREAD_VARS)
          + f"; {args.jobs} training(s) at a time; "
          + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        base = args.out or Path(tmp)
        futures = {r: [pool.submit(run_one, r, s, base / f"{r.stem}_s{s}",
                                   args.epochs, args.steps)
                       for s in args.seeds] for r in args.recipes}
        for recipe, runs in futures.items():  # a row as soon as its seeds are done
            rows.append(summarize(recipe, [f.result() for f in runs]))
            print_row(rows[-1])
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main()
