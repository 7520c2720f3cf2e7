"""Inference speed, n2prune (dense and pruned) against PyTorch CPU dense.

    python benchmarks/inference.py [--reps 7] [--calls 300]

For LeNet-5 and LeNet-300-100 at batch 1 (latency) and batch 256
(throughput), times ``Network.predict`` against ``torch.no_grad()`` +
``model.eval()`` of the same layers, 2 threads, each side in a fresh
process (see ``train_throughput.py``). n2prune runs dense and pruned to 0.9
and 0.95 (Static IterNonStruct on every Conv and Fc: the skip kernels serve
the cells past their crossover, batch 1 through the GEMV). Prints median
samples/s and the ratio to PyTorch.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

# What the n2prune command gets: importing n2prune before numpy sets this
# (n2prune/__init__.py); here numpy comes first, so set it the same way.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np
from train_throughput import MODELS, prune_every_weighted_cell, torch_network


def n2prune_predict_fn(name, batch, sparsity):
    from n2prune.train.model import Model
    model = Model(MODELS[name], overrides=[f"sp.BatchSize={batch}"], seed=1, need_data=False)
    net = model.network
    if sparsity:
        prune_every_weighted_cell(net, sparsity)
    c, h, w = net.input_shape
    x = np.random.default_rng(0).random((batch, c, h, w), dtype=np.float32)
    return lambda: net.predict(x, batch_size=batch)


def torch_predict_fn(name, batch):
    import torch
    torch.set_num_threads(2)
    net, x = torch_network(name, batch)
    net.eval()

    def predict():
        with torch.no_grad():
            return net(x)
    return predict


def samples_per_second(predict, batch, calls, reps):
    for _ in range(10):
        predict()
    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(calls):
            predict()
        rates.append(batch * calls / (time.perf_counter() - start))
    return statistics.median(rates)


def measure(side, name, batch, sparsity, args):
    cmd = [sys.executable, __file__, "--one", side, name, str(batch), str(sparsity),
           "--reps", str(args.reps), "--calls", str(args.calls)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        side, name, batch, sparsity = args.one[0], args.one[1], int(args.one[2]), float(args.one[3])
        calls = max(5, args.calls // batch) if batch > 1 else args.calls
        fn = (n2prune_predict_fn(name, batch, sparsity) if side == "n2prune"
              else torch_predict_fn(name, batch))
        print(samples_per_second(fn, batch, calls, args.reps))
        return
    print(f"# {time.strftime('%Y-%m-%d')}; median samples/s, ratio = n2prune / PyTorch dense")
    print(f"{'model':14} {'batch':>5} {'sparsity':>8} {'n2prune/s':>10} {'torch/s':>10} "
          f"{'ratio':>6}")
    for name in MODELS:
        for batch in (1, 256):
            theirs = measure("torch", name, batch, 0.0, args)
            for sparsity in (0.0, 0.9, 0.95):
                ours = measure("n2prune", name, batch, sparsity, args)
                print(f"{name:14} {batch:5d} {sparsity:8.2f} {ours:10.0f} {theirs:10.0f} "
                      f"{ours / theirs:6.2f}", flush=True)


if __name__ == "__main__":
    main()
