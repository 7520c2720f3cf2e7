"""Inference speed, n2prune (dense and pruned) against PyTorch CPU dense.

    python benchmarks/inference.py [--rounds 5] [--calls 300] [--json FILE]

For LeNet-5 and LeNet-300-100 at batch 1 (latency) and batch 256
(throughput), times ``Network.predict`` against ``torch.no_grad()`` +
``model.eval()`` of the same layers (``torch_lenet.py``), 2 threads. n2prune
runs dense and pruned to 0.9 and 0.95 (Static IterNonStruct on every Conv
and Fc: the skip kernels serve the cells past their crossover, batch 1
through the GEMV). One sample = ``--calls`` calls (batch 256:
``max(5, calls // 256)``) after 10 warm-up calls, in a fresh process (see
``train_throughput.py``); the sides alternate between quiet checks.
"""

import json
import sys
from pathlib import Path

import harness
import lenet_sides

HERE = Path(__file__).resolve()


def predict_fn(job):
    if job["side"] == "n2prune":
        import n2prune_side
        import numpy as np

        from n2prune.train.model import Model
        model = Model(job["ini"], overrides=[f"sp.BatchSize={job['batch']}"], seed=1,
                      need_data=False)
        net = model.network
        if job["sparsity"]:
            n2prune_side.prune_every_weighted_cell(net, job["sparsity"])
        x = np.random.default_rng(0).random((job["batch"], *net.input_shape), dtype=np.float32)
        return lambda: net.predict(x, batch_size=job["batch"])
    import torch_lenet
    model = json.loads(Path(job["describe"]).read_text())
    return torch_lenet.predict_fn(model["spec"], model["input_shape"], job["batch"])


def one_sample(job):
    calls = max(5, job["calls"] // job["batch"]) if job["batch"] > 1 else job["calls"]
    return harness.call_rate(predict_fn(job), calls, job["batch"])


def main(argv=None):
    return lenet_sides.main(argv, __doc__, HERE, one_sample, ("calls", 300), batches=(1, 256),
                            what="inference", primary="s/call", batch_in_describe=False)


if __name__ == "__main__":
    sys.exit(main())
