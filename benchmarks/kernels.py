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
BLAS; at inference ``W*M`` is kept, so the fallback is plain BLAS.

A sample loops a call for >= 20 ms after 3 warm-up calls; the sides
alternate (``harness.alternate``, 7 rounds by default) and the medians and
min-max are printed. OPENBLAS_THREAD_TIMEOUT=4 (set by the harness) puts
OpenBLAS's idle threads to sleep quickly, and the warm-up calls absorb what
is left of them, so alternating does not charge one side for the other's
spinning threads. One quiet check frames each shape.

Run: ``python benchmarks/kernels.py [--quick] [--rounds 7] [--json FILE]``
(threads: ``BENCH_THREADS``, default 2; see ``harness.py``).
"""

import argparse

import harness
import numpy as np

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


def timed(fn):
    """A sample: milliseconds per call of ``fn``."""
    return lambda: {"ms": 1e3 * harness.seconds_per_call(fn, min_seconds=0.02)}


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


def bench_shape(session, label, rows, k, n, rng, rounds, sparsities=SPARSITIES):
    """One comparison per (sparsity, operation): dense BLAS, skip kernel (and fallback)."""
    w = rng.standard_normal((rows, k), dtype=np.float32)
    x = rng.standard_normal((k, n), dtype=np.float32)
    dy = rng.standard_normal((rows, n), dtype=np.float32)
    ops = ("fwd", "fwd+g") if n == 1 else ("fwd", "fwd+g", "dX", "dW")
    dense = dense_operations(w, x, dy)
    for sparsity in sparsities:
        mask = (rng.random((rows, k)) >= sparsity).astype(np.uint8)
        sparse = sparse_operations(SparseWeights(mask), w, x, dy)
        for name in ops:
            sides = {"dense": timed(dense[name]), "skip": timed(sparse[name])}
            if name == "fwd+g":
                sides["fallback"] = timed(masked_dense_forward(w, mask, x))
            session.compare(f"{label} {name} s={sparsity:g}", sides, rounds, primary="ms",
                            references=["dense"])


def print_efficiency(session):
    """Sparse efficiency = speed-up x (1 - sparsity), per comparison."""
    print("\nsparse efficiency = (dense / skip) x (1 - sparsity); 1.0: every skipped "
          "multiply saved at BLAS speed")
    for c in session.comparisons:
        sparsity = float(c["label"].rsplit("s=", 1)[1])
        speed = harness.speedup(c, "skip", "dense")
        flag = "  CONTENDED" if c["contended"] else ""
        print(f"{c['label']:<34} speed-up {speed:6.2f}  efficiency "
              f"{speed * (1 - sparsity):5.2f}{flag}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="four shapes only")
    parser.add_argument("--sparsity", type=float, nargs="+", default=list(SPARSITIES))
    harness.add_common_args(parser, rounds=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    machine, session = harness.start()
    for label, rows, k, n in SHAPES:
        if args.quick and label not in QUICK:
            continue
        with session.group():
            bench_shape(session, label, rows, k, n, rng, args.rounds, args.sparsity)
    harness.report(session, args.json, machine, compact=True)
    print_efficiency(session)


if __name__ == "__main__":
    main()
