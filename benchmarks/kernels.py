"""Skip kernels against dense numpy BLAS, timed in the same run.

For each GEMM shape ``O x K x N`` (weights O x K, activations K x N) and each
sparsity (random unstructured masks), the operations as a pruned cell runs
them (``n2prune.cells.sparse_weights.SparseWeights``):

- ``fwd``: ``Y = (W*M) @ X`` against ``W @ X``, kept values already gathered
  (inference: they are kept until the weights change);
- ``fwd+g``: the same with the values gathered from the dense weights first
  (a training step, where the solver changed them);
- ``dX``: ``(W*M).T @ dY`` against ``W.T @ dY`` (values gathered: training);
- ``dW``: the weight gradient at kept positions (dense result) against ``dY @ X.T``.

Columns: dense median ms, skip-kernel median ms, speed-up = dense / skip, and
**sparse efficiency = speed-up x (1 - sparsity)**: 1.0 means every skipped
multiply was saved at BLAS speed. ``fallback`` (on ``fwd+g``) is the dense
path of a pruned cell in a training step (``W*M`` then BLAS) over plain
BLAS; at inference ``W*M`` is kept, so the fallback is plain BLAS. Medians of
7 samples, each side timed in its own block; a sample loops a call for >= 20 ms.

Run: ``python benchmarks/kernels.py [--quick]`` (threads: all cores; set
``NUMBA_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` to change).
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

try:
    from n2prune.cells.sparse_weights import SparseWeights
except ImportError:  # run from a source checkout, not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from n2prune.cells.sparse_weights import SparseWeights

SPARSITIES = (0.5, 0.75, 0.9, 0.95, 0.99)
# (label, O, K, N): LeNet-5 (32x32 input) conv GEMMs have N = batch * OH * OW.
SHAPES = [
    ("lenet5 conv1 b64", 6, 25, 64 * 28 * 28),
    ("lenet5 conv2 b64", 16, 150, 64 * 10 * 10),
    ("lenet5 conv3 b64", 120, 400, 64),
    ("lenet5 fc1 b64", 84, 120, 64),
    ("lenet5 fc2 b64", 10, 84, 64),
    ("lenet5 conv1 b256", 6, 25, 256 * 28 * 28),
    ("lenet5 conv2 b256", 16, 150, 256 * 10 * 10),
    ("lenet5 conv3 b256", 120, 400, 256),
    ("lenet5 fc1 b256", 84, 120, 256),
    ("300-100 fc1 b64", 300, 784, 64),
    ("300-100 fc2 b64", 100, 300, 64),
    ("300-100 fc1 b256", 300, 784, 256),
    ("300-100 fc2 b256", 100, 300, 256),
    ("256x2304x8192", 256, 2304, 8192),
    ("4096x4096x256", 4096, 4096, 256),
    ("4096^2 GEMV", 4096, 4096, 1),
]
QUICK = {"lenet5 conv2 b64", "lenet5 conv3 b256", "300-100 fc1 b256", "4096^2 GEMV"}


def medians(functions, samples=7, min_sample_s=0.02):
    """Median ms per call of each function, each timed in its own block.

    Not interleaved: after a BLAS call OpenBLAS's threads keep spinning for a
    while and slow down a numba kernel started right after, which would
    charge one side for the other's idle threads.
    """
    result = []
    for fn in functions:
        for _ in range(3):
            fn()
        start, count = time.perf_counter(), 0
        while time.perf_counter() - start < min_sample_s:
            fn()
            count += 1
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            for _ in range(count):
                fn()
            times.append(1e3 * (time.perf_counter() - t0) / count)
        result.append(float(np.median(times)))
    return result


def dense_operations(w, x, dy):
    return {"fwd": lambda: w @ x, "fwd+g": lambda: w @ x, "dX": lambda: w.T @ dy,
            "dW": lambda: dy @ x.T}


def masked_dense_forward(w, mask, x):
    """The dense path of a pruned cell: ``W*M`` into a reused buffer, then BLAS."""
    buffer = np.empty_like(w)
    return lambda: np.multiply(w, mask, out=buffer) @ x


def sparse_operations(op, w, x, dy):
    return {"fwd": lambda: op.forward(w, x, "kept"), "fwd+g": lambda: op.forward(w, x),
            "dX": lambda: op.input_grad(w, dy), "dW": lambda: op.weight_grad(dy, x)}


def bench_shape(label, rows, k, n, rng):
    w = rng.standard_normal((rows, k), dtype=np.float32)
    x = rng.standard_normal((k, n), dtype=np.float32)
    dy = rng.standard_normal((rows, n), dtype=np.float32)
    ops = ("fwd", "fwd+g") if n == 1 else ("fwd", "fwd+g", "dX", "dW")
    dense = dense_operations(w, x, dy)
    results = []
    for sparsity in SPARSITIES:
        mask = (rng.random((rows, k)) >= sparsity).astype(np.uint8)
        sparse = sparse_operations(SparseWeights(mask), w, x, dy)
        fallback = masked_dense_forward(w, mask, x)
        for name in ops:
            extra = [fallback] if name == "fwd+g" else []
            times = medians([dense[name], sparse[name], *extra])
            results.append((label, name, sparsity, *times[:2],
                            times[2] / times[0] if extra else None))
    return results


def print_row(label, name, sparsity, dense_ms, skip_ms, fallback):
    speed = dense_ms / skip_ms
    extra = f"  fallback x{fallback:.2f}" if fallback is not None else ""
    print(f"{label:20s} {name:5s} {sparsity:4.2f}  dense {dense_ms:9.4f} ms  skip "
          f"{skip_ms:9.4f} ms  speed-up {speed:6.2f}  efficiency {speed * (1 - sparsity):5.2f}"
          f"{extra}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="four shapes only")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"# {time.strftime('%Y-%m-%d')} {os.cpu_count()} CPUs, numpy {np.__version__}")
    for label, rows, k, n in SHAPES:
        if args.quick and label not in QUICK:
            continue
        for row in bench_shape(label, rows, k, n, rng):
            print_row(*row)


if __name__ == "__main__":
    main()
