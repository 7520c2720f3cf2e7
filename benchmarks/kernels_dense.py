"""Time the dense kernels on LeNet-5 shapes against vectorised numpy.

LeNet-5 here: 32x32 input, conv1 6@5x5 -> 28x28, pool 2 -> 14x14, conv2 16@5x5
-> 10x10, pool 2 -> 5x5, conv3 120@5x5 -> 1x1 (no padding, stride 1, float32).
Each row compares the n2prune kernel with a numpy equivalent written the way
a careful numpy user would (sliding_window_view, reshape-max, slice-adds):
median and min-max of 21 alternated samples (a sample loops a call for
>= 2 ms), and the speed-up = numpy median / kernel median. One quiet check
frames each batch size. Run:
``python benchmarks/kernels_dense.py [--rounds 21] [--batch 64 256] [--json FILE]``.
"""

import argparse
import time

import harness
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from n2prune import kernels

CONVS = [("conv1", 1, 32), ("conv2", 6, 14), ("conv3", 16, 5)]   # (name, C, H=W); 5x5
POOLS = [("pool1", 6, 28), ("pool2", 16, 10)]                      # 2x2, stride 2
ACTS = [("conv1", 6, 28), ("conv2", 16, 10), ("conv3", 120, 1)]    # conv outputs


def warm_up(seconds=2.0):
    """Run the kernels a little first: numba's thread pool starts on the first
    parallel call (and, with OpenMP spinning, the first ~2 s of a process
    were seen to stall ~8 ms per parallel call until the scheduler spread the
    threads over both CPUs)."""
    x = np.ones((16, 10, 10, 64), dtype=np.float32)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        kernels.relu_forward(x)
        kernels.relu_forward(np.ones(1 << 21, dtype=np.float32))     # parallel path


def numpy_im2col(x, k):
    c = x.shape[0]
    win = sliding_window_view(x, (k, k), axis=(1, 2))          # (C, OH, OW, N, k, k)
    return win.transpose(0, 4, 5, 1, 2, 3).reshape(c * k * k, -1)


def numpy_col2im(cols, shape, k):
    c, h, w, n = shape
    oh, ow = h - k + 1, w - k + 1
    dx = np.zeros(shape, dtype=cols.dtype)
    cols = cols.reshape(c, k, k, oh, ow, n)
    for ky in range(k):
        for kx in range(k):
            dx[:, ky:ky + oh, kx:kx + ow] += cols[:, ky, kx]
    return dx


def numpy_max_pool(x):
    c, h, w, n = x.shape
    y = x.reshape(c, h // 2, 2, w // 2, 2, n).max(axis=(2, 4))
    mask = x == y.repeat(2, axis=1).repeat(2, axis=2)
    return y, mask


def numpy_max_pool_backward(dy, mask):
    return mask * dy.repeat(2, axis=1).repeat(2, axis=2)


def conv_rows(rng, n, c, h):
    """im2col / col2im of one 5x5 conv on a (C, H, H, N) input."""
    x = rng.standard_normal((c, h, h, n)).astype(np.float32)
    cols = kernels.im2col(x, 5, 1, 0, 1)
    cols_buf, dx_buf = np.empty_like(cols), np.empty_like(x)
    return [
        ("im2col", lambda: kernels.im2col(x, 5, 1, 0, 1), lambda: numpy_im2col(x, 5)),
        ("im2col out=", lambda: kernels.im2col(x, 5, 1, 0, 1, out=cols_buf),
         lambda: np.copyto(cols_buf, numpy_im2col(x, 5))),
        ("col2im", lambda: kernels.col2im(cols, x.shape, 5, 1, 0, 1),
         lambda: numpy_col2im(cols, x.shape, 5)),
        ("col2im out=", lambda: kernels.col2im(cols, x.shape, 5, 1, 0, 1, out=dx_buf),
         lambda: numpy_col2im(cols, x.shape, 5)),
    ]


def pool_rows(rng, n, c, h):
    """2x2 stride-2 max and average pooling of a (C, H, H, N) input."""
    x = rng.standard_normal((c, h, h, n)).astype(np.float32)
    y, arg = kernels.max_pool_forward(x, 2, 2, 0)
    _, mask = numpy_max_pool(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    return [
        ("max_pool_fwd", lambda: kernels.max_pool_forward(x, 2, 2, 0),
         lambda: numpy_max_pool(x)),
        ("max_pool_bwd", lambda: kernels.max_pool_backward(dy, arg, x.shape[1:3], 2, 2, 0),
         lambda: numpy_max_pool_backward(dy, mask)),
        ("avg_pool_fwd", lambda: kernels.avg_pool_forward(x, 2, 2, 0),
         lambda: x.reshape(c, h // 2, 2, h // 2, 2, n).mean(axis=(2, 4))),
        ("avg_pool_bwd", lambda: kernels.avg_pool_backward(dy, x.shape, 2, 2, 0),
         lambda: dy.repeat(2, axis=1).repeat(2, axis=2) * np.float32(0.25)),
    ]


def numpy_relu_backward_bias_grad(dy, y):
    dx = dy * (y > 0)
    return dx, dx.sum(axis=(1, 2, 3))


def act_rows(rng, n, c, h):
    """Rectifier and bias kernels on a conv output (C, H, H, N)."""
    x = rng.standard_normal((c, h, h, n)).astype(np.float32)
    y, dy = np.maximum(x, 0), rng.standard_normal(x.shape).astype(np.float32)
    buf = np.empty_like(x)
    bias = rng.standard_normal(c).astype(np.float32)
    b4 = bias.reshape(c, 1, 1, 1)
    return [
        ("relu_fwd", lambda: kernels.relu_forward(x), lambda: np.maximum(x, 0)),
        ("relu_bwd", lambda: kernels.relu_backward(dy, y), lambda: dy * (y > 0)),
        ("add_bias (in place)", lambda: kernels.add_bias_channels(buf, bias),
         lambda: np.add(buf, b4, out=buf)),
        ("bias_grad", lambda: kernels.bias_grad_channels(dy), lambda: dy.sum(axis=(1, 2, 3))),
        ("bias+relu fused", lambda: kernels.add_bias_relu_channels(buf, bias),
         lambda: np.maximum(np.add(buf, b4, out=buf), 0, out=buf)),
        ("relu_bwd+bias_grad", lambda: kernels.relu_backward_bias_grad(dy, y),
         lambda: numpy_relu_backward_bias_grad(dy, y)),
    ]


LAYERS = [(conv_rows, CONVS, "k5"), (pool_rows, POOLS, "p2s2"), (act_rows, ACTS, "")]


def timed(fn):
    """A sample: milliseconds per call of ``fn``, looped for >= 2 ms."""
    return lambda: {"ms": 1e3 * harness.seconds_per_call(fn, min_seconds=2e-3, warmup=1)}


def bench_batch(session, rng, n, rounds):
    for make_rows, layers, suffix in LAYERS:
        for layer, c, h in layers:
            shape = f"{c}x{h}x{h}x{n} {suffix}".strip()
            for kernel, ours, reference in make_rows(rng, n, c, h):
                session.compare(f"{kernel} {layer} {shape}",
                                {"n2prune": timed(ours), "numpy": timed(reference)},
                                rounds, primary="ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    harness.add_common_args(parser, rounds=21)
    args = parser.parse_args()
    machine, session = harness.start()
    rng = np.random.default_rng(0)
    warm_up()
    for n in args.batch:
        with session.group():
            bench_batch(session, rng, n, args.rounds)
    harness.report(session, args.json, machine, compact=True)


if __name__ == "__main__":
    main()
