"""Training throughput, n2prune against PyTorch CPU measured in the same run.

    python benchmarks/train_throughput.py [--rounds 5] [--steps 30] [--json FILE]

For LeNet-5 (models_ini/lenet.ini: 32x32 input, N2D2's conv2 table) and
LeNet-300-100 (models_ini/lenet_300_100.ini), at batch 64 and 256, times full
training steps (forward, backward, SGD update with the INI's solver) on
random inputs with 2 threads. n2prune also runs pruned (``--sparsity``,
default 0 0.9 0.95: every Conv and Fc pruned with Static IterNonStruct and
HardZero, so the skip kernels serve the cells past their crossover);
PyTorch (``benchmarks/torch_lenet.py``, same layers, conv2 dense as the
mapping costs it nothing) always trains dense.

One sample = ``--steps`` steps after 5 warm-up steps, in a fresh process:
PyTorch and numba would otherwise share one OpenMP runtime whose
busy-waiting threads slow both sides down. The sides alternate
(``harness.alternate``) and each comparison is framed by quiet checks.
"""

import json
import sys
from pathlib import Path

import harness
import lenet_sides

HERE = Path(__file__).resolve()
BATCHES = (64, 256)


def one_sample(job):
    """Seconds per step of one side, measured in this (fresh) process."""
    if job["side"] == "n2prune":
        import n2prune_side
        step = n2prune_side.n2prune_step_fn(job["ini"], job["batch"], job["sparsity"])
    else:
        import torch_lenet
        model = json.loads(Path(job["describe"]).read_text())
        step = torch_lenet.step_fn(model["spec"], model["solver"], model["input_shape"],
                                   job["batch"])
    return harness.step_rate(step, job["steps"], job["batch"])


def main(argv=None):
    return lenet_sides.main(argv, __doc__, HERE, one_sample, ("steps", 30), batches=BATCHES,
                            what="training step", primary="s/step", batch_in_describe=True,
                            sparsity_help="n2prune runs pruned to these fractions "
                                          "(PyTorch stays dense)")


if __name__ == "__main__":
    sys.exit(main())
