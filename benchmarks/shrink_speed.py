"""Inference of a channel-pruned run: the masked network against its shrunk model.

    python benchmarks/shrink_speed.py RUN [RUN ...] [--batch 256] [--rounds 5] [--json FILE]
        [--dense-masked KEY]

Each ``RUN`` is a run folder trained with ``QWeight.Pattern=Channel`` cells
and already shrunk (``n2prune shrink RUN``, which writes ``RUN/shrunk``).
The masked side is the run as trained (removed channels at exactly 0, every
cell at its full size, the skip or direct kernels where the masks make them
pay); the shrunk side is ``RUN/shrunk/model.ini`` with its weights. One
sample = ``Network.predict`` on ``--batch`` random images, timed over
``--calls`` images after 10 warm-up calls, in a fresh process; the two sides
alternate between quiet checks (``harness.py``).

``--dense-masked KEY`` adds a third side: the masked run with ``KEY=Dense``
set (e.g. ``channels.config.QWeight.Kernel``), so that its pruned cells run
im2col + BLAS on the masked dense weights, the way a framework without skip
kernels runs a channel-pruned network before removal.
"""

import argparse
import sys
from pathlib import Path

import harness

HERE = Path(__file__).resolve()


def predict_fn(job):
    import numpy as np

    from n2prune.commands import load_weights
    from n2prune.train.model import Model
    run = Path(job["run"])
    masked = job["side"] != "shrunk"
    model_ini = run / "config.ini" if masked else run / "shrunk" / "model.ini"
    weights = run if masked else run / "shrunk"
    overrides = [f"sp.BatchSize={job['batch']}", *job.get("overrides", [])]
    model = Model(model_ini, overrides=overrides, seed=1, need_data=False)
    load_weights(model.network, weights)
    x = np.random.default_rng(0).random((job["batch"], *model.network.input_shape),
                                        dtype=np.float32)
    return lambda: model.network.predict(x, batch_size=job["batch"])


def one_sample(job):
    return harness.call_rate(predict_fn(job), max(5, job["calls"] // job["batch"]), job["batch"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="shrunk run folders")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--calls", type=int, default=5120, help="images per sample")
    parser.add_argument("--dense-masked", metavar="KEY",
                        help="also time the masked run with KEY=Dense (its pruned cells on BLAS)")
    args = harness.parse_or_sample(parser, argv, one_sample)
    if args is None:
        return 0
    machine, session = harness.start()
    for run in args.runs:
        jobs = {side: {"run": str(Path(run).resolve()), "side": side, "batch": args.batch,
                       "calls": args.calls} for side in ("shrunk", "masked")}
        if args.dense_masked:
            jobs["masked on BLAS"] = dict(jobs["masked"],
                                                 overrides=[f"{args.dense_masked}=Dense"])
        session.compare(f"{Path(run).name} batch {args.batch}: inference",
                        harness.subprocess_sides(HERE, jobs), rounds=args.rounds,
                        primary="s/call", references=list(jobs)[1:])
    harness.report(session, args.json, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
