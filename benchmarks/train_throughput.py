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

import argparse
import json
import sys
import tempfile
from pathlib import Path

import harness

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


def sides_for(name, batch, args, describe_file):
    import n2prune_side
    base = {"ini": str(n2prune_side.MODELS[name]), "batch": batch, "steps": args.steps,
            "describe": str(describe_file)}
    sides = {}
    for sparsity in args.sparsity:
        job = dict(base, side="n2prune", sparsity=sparsity)
        sides[f"n2prune s={sparsity:g}"] = _runner(job)
    if harness.installed_version("torch") != "not installed":
        sides["torch dense"] = _runner(dict(base, side="torch", sparsity=0.0))
    return sides


def _runner(job):
    return lambda: harness.in_subprocess(HERE, ["--one", json.dumps(job)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--sparsity", type=float, nargs="+", default=[0.0, 0.9, 0.95],
                        help="n2prune runs pruned to these fractions (PyTorch stays dense)")
    parser.add_argument("--batch", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--model", nargs="+", default=["LeNet-5", "LeNet-300-100"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    harness.add_common_args(parser)
    args = parser.parse_args(argv)
    if args.one:
        harness.emit(one_sample(json.loads(args.one)))
        return 0
    import n2prune_side
    machine = harness.machine_report({"torch threads": 2, "sample": f"{args.steps} steps"})
    print(machine, flush=True)
    session = harness.Session()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in args.model:
            for batch in args.batch:
                describe = Path(tmp) / f"{name}-{batch}.json"
                model = n2prune_side.describe(n2prune_side.MODELS[name], [f"sp.BatchSize={batch}"])
                describe.write_text(json.dumps(model))
                session.compare(f"{name} batch {batch}: training step",
                                sides_for(name, batch, args, describe), args.rounds,
                                primary="s/step")
    harness.report(session, args.json, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
