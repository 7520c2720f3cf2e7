"""The LeNet comparisons of ``inference.py`` and ``train_throughput.py``.

Per model (LeNet-5, LeNet-300-100) and batch: n2prune pruned to each
``--sparsity`` against PyTorch dense (when installed), each sample measured
by the calling script's ``--one`` in a fresh process.
"""

import argparse
import json
import tempfile
from pathlib import Path

import harness


def main(argv, doc, script, one_sample, per_sample, batches, what, primary, batch_in_describe,
         sparsity_help=None):
    """The command line of ``script`` (described by ``doc``): ``per_sample`` is
    its (option, default) giving a sample's size, e.g. ``("steps", 30)``;
    ``one_sample`` answers ``--one``; the rest goes to ``compare``."""
    option, default = per_sample
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(f"--{option}", type=int, default=default)
    parser.add_argument("--sparsity", type=float, nargs="+", default=[0.0, 0.9, 0.95],
                        help=sparsity_help)
    parser.add_argument("--batch", type=int, nargs="+", default=list(batches))
    parser.add_argument("--model", nargs="+", default=["LeNet-5", "LeNet-300-100"])
    args = harness.parse_or_sample(parser, argv, one_sample)
    if args is not None:
        compare(script, args, what, primary, {option: getattr(args, option)}, batch_in_describe)
    return 0


def compare(script, args, what, primary, sample, batch_in_describe):
    """Every model and batch of ``args``: a comparison named ``what`` of the
    sides' ``primary`` metric; each job carries ``sample`` (its size, e.g.
    ``{"steps": 30}``). The PyTorch description of the model takes the batch
    size when ``batch_in_describe`` (its solver depends on it)."""
    import n2prune_side
    size = ", ".join(f"{v} {k}" for k, v in sample.items())
    machine, session = harness.start({"torch threads": 2, "sample": size})
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in args.model:
            ini = n2prune_side.MODELS[name]
            for batch in args.batch:
                describe = Path(tmp) / f"{name}-{batch}.json"
                overrides = [f"sp.BatchSize={batch}"] if batch_in_describe else []
                describe.write_text(json.dumps(n2prune_side.describe(ini, overrides)))
                base = {"ini": str(ini), "batch": batch, **sample, "describe": str(describe)}
                jobs = {f"n2prune s={s:g}": dict(base, side="n2prune", sparsity=s)
                        for s in args.sparsity}
                if harness.torch_installed():
                    jobs["torch dense"] = dict(base, side="torch", sparsity=0.0)
                session.compare(f"{name} batch {batch}: {what}",
                                harness.subprocess_sides(script, jobs), args.rounds,
                                primary=primary)
    harness.report(session, args.json, machine)
