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

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import harness

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
    predict = predict_fn(job)
    calls = max(5, job["calls"] // job["batch"]) if job["batch"] > 1 else job["calls"]
    for _ in range(10):
        predict()
    start = time.perf_counter()
    for _ in range(calls):
        predict()
    seconds = (time.perf_counter() - start) / calls
    return {"s/call": seconds, "samples/s": job["batch"] / seconds}


def sides_for(name, batch, args, describe):
    import n2prune_side
    base = {"ini": str(n2prune_side.MODELS[name]), "batch": batch, "calls": args.calls,
            "describe": str(describe)}
    sides = {f"n2prune s={s:g}": dict(base, side="n2prune", sparsity=s) for s in args.sparsity}
    if harness.installed_version("torch") != "not installed":
        sides["torch dense"] = dict(base, side="torch", sparsity=0.0)
    return {label: (lambda job=job: harness.in_subprocess(HERE, ["--one", json.dumps(job)]))
            for label, job in sides.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--sparsity", type=float, nargs="+", default=[0.0, 0.9, 0.95])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--model", nargs="+", default=["LeNet-5", "LeNet-300-100"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    harness.add_common_args(parser)
    args = parser.parse_args(argv)
    if args.one:
        harness.emit(one_sample(json.loads(args.one)))
        return 0
    import n2prune_side
    machine = harness.machine_report({"torch threads": 2, "sample": f"{args.calls} calls"})
    print(machine, flush=True)
    session = harness.Session()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in args.model:
            describe = Path(tmp) / f"{name}.json"
            describe.write_text(json.dumps(n2prune_side.describe(n2prune_side.MODELS[name])))
            for batch in args.batch:
                session.compare(f"{name} batch {batch}: inference",
                                sides_for(name, batch, args, describe), args.rounds,
                                primary="s/call")
    harness.report(session, args.json, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
