"""Training throughput, n2prune against PyTorch CPU measured in the same run.

    python benchmarks/train_throughput.py [--reps 7] [--steps 30]

For LeNet-5 (models_ini/lenet.ini: 32x32 input, N2D2's conv2 table) and
LeNet-300-100 (models_ini/lenet_300_100.ini), at batch 64 and 256, times full
training steps (forward, backward, SGD update) on random inputs with 2
threads, and prints the median samples/s of each side and their ratio.
n2prune also runs pruned (``--sparsity``, default 0 0.9 0.95: every Conv and
Fc pruned with Static IterNonStruct and HardZero, so the skip kernels serve
the cells past their crossover); PyTorch always trains dense.
PyTorch runs the same layers (conv2 dense, as the mapping costs it nothing)
when it is installed (``pip install torch==2.13.0``).

Each measurement runs in its own process: PyTorch and numba would otherwise
share one OpenMP runtime whose busy-waiting threads slow both sides down.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

# What the n2prune command gets: importing n2prune before numpy sets this
# (n2prune/__init__.py); here numpy comes first, so set it the same way.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"LeNet-5": ROOT / "models_ini" / "lenet.ini",
          "LeNet-300-100": ROOT / "models_ini" / "lenet_300_100.ini"}


def prune_every_weighted_cell(net, sparsity):
    """``QWeight=Prune`` (Static, IterNonStruct, HardZero) on every Conv and Fc."""
    from n2prune.prune.network import initialize_masks
    from n2prune.quantizer import PruneCell
    for cell in net.cells:
        if hasattr(cell, "weights"):
            cell.quantizer = PruneCell(prune_mode="Static", prune_filler="IterNonStruct",
                                       threshold=sparsity, delta=1e-4, hard_zero=True)
    initialize_masks(net, np.random.default_rng(0), log_period=0)


def n2prune_step_fn(ini, batch, sparsity):
    from n2prune.prune.network import step_quantizers
    from n2prune.train.model import Model
    model = Model(ini, overrides=[f"sp.BatchSize={batch}"], seed=1, need_data=False)
    net = model.network
    if sparsity:
        prune_every_weighted_cell(net, sparsity)
    c, h, w = net.input_shape
    rng = np.random.default_rng(0)
    x = rng.random((c, batch, h, w), dtype=np.float32)
    labels = rng.integers(0, 10, batch)

    def step():
        net.forward(x, train=True)
        net.loss_and_backward(labels)
        net.apply_solvers(batch)
        step_quantizers(net, batch)
    return step


def torch_network(name, batch):
    """PyTorch's copy of the model and a random batch for it."""
    import torch
    from torch import nn
    if name == "LeNet-5":
        net = nn.Sequential(nn.Conv2d(1, 6, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(6, 16, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(16, 120, 5, bias=False), nn.ReLU(), nn.Flatten(),
                            nn.Linear(120, 84, bias=False), nn.ReLU(), nn.Dropout(0.5),
                            nn.Linear(84, 10, bias=False))
        return net, torch.rand(batch, 1, 32, 32)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(),
                        nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10))
    return net, torch.rand(batch, 1, 28, 28)


def torch_step_fn(name, batch):
    import torch
    from torch import nn
    torch.set_num_threads(2)
    net, x = torch_network(name, batch)
    labels = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(net(x), labels).backward()
        opt.step()
    return step


def samples_per_second(step, batch, steps, reps):
    for _ in range(5):
        step()
    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(batch * steps / (time.perf_counter() - start))
    return statistics.median(rates)


def measure(side, name, batch, args, sparsity=0.0):
    """Median samples/s of one side, measured in a fresh process."""
    cmd = [sys.executable, __file__, "--one", side, name, str(batch), str(sparsity),
           "--reps", str(args.reps), "--steps", str(args.steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--sparsity", type=float, nargs="+", default=[0.0, 0.9, 0.95],
                        help="n2prune runs pruned to these fractions (PyTorch stays dense)")
    parser.add_argument("--one", nargs=4, metavar=("SIDE", "MODEL", "BATCH", "SPARSITY"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        side, name, batch, sparsity = args.one[0], args.one[1], int(args.one[2]), float(args.one[3])
        step = (n2prune_step_fn(MODELS[name], batch, sparsity) if side == "n2prune"
                else torch_step_fn(name, batch))
        print(samples_per_second(step, batch, args.steps, args.reps))
        return
    torch_version = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.__version__)"],
        capture_output=True, text=True, check=False).stdout.strip() or None
    print(f"# {platform.machine()}, {os.cpu_count()} cpus, python {sys.version.split()[0]}, "
          f"numpy {np.__version__}, torch {torch_version or 'not installed'}, "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"{'model':14} {'batch':>5} {'sparsity':>8} {'n2prune/s':>10} {'torch/s':>10} "
          f"{'ratio':>6}")
    for name in MODELS:
        for batch in (64, 256):
            theirs = measure("torch", name, batch, args) if torch_version else None
            for sparsity in args.sparsity:
                ours = measure("n2prune", name, batch, args, sparsity)
                ratio = f"{ours / theirs:6.2f}" if theirs else "     -"
                print(f"{name:14} {batch:5d} {sparsity:8.2f} {ours:10.0f} {theirs or 0:10.0f} "
                      f"{ratio}", flush=True)


if __name__ == "__main__":
    main()
