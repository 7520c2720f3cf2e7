"""Which of N2D2's own INI files n2prune builds, and why the others are refused.

    python benchmarks/n2d2_zoo.py [--checkout DIR] [--step] [--size 64] [--json FILE]

Reads an N2D2 checkout (``--checkout``, default ``$N2D2_CHECKOUT``): every
``*.ini`` under ``models/`` (with ``models/ONNX``, ``models/quantizer``),
``tests/tests_data/`` and ``exec/``. Each file goes through ``n2prune check
FILE --json`` in its own process, from the file's folder, with
``N2D2_MODELS`` set to the checkout's ``models/`` (the templates' include
path) and ``--max-memory`` (default 1T): the question is whether n2prune
builds the network, not whether this machine could train it at the file's
batch size (ImageNet models at batch 256 need more than half of 24 GiB). A
file that builds is listed with its parameters and MACs; a refused one with
the one-line error n2prune printed. With ``--step``, every file that
builds also runs one training step (forward, backward, solver update) on
random images, batch 2, its input reduced to at most ``--size`` pixels a
side (``--set sp.SizeX/SizeY``), or at its full size when a fixed pooling
window needs it: the databases are not needed. This is a survey, not a speed benchmark.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

FOLDERS = ("models", "tests/tests_data", "exec")
TIMEOUT = 600


def ini_files(checkout):
    """Every INI file of the checkout's model folders, sorted by path."""
    return sorted(p for folder in FOLDERS for p in (checkout / folder).rglob("*.ini"))


def _run(args, ini, checkout):
    env = dict(os.environ, N2D2_MODELS=str(checkout / "models"))
    return subprocess.run([sys.executable, *args], check=False, cwd=ini.parent, env=env, text=True,
                          capture_output=True, timeout=TIMEOUT)


def _last_error(stderr):
    lines = [line for line in stderr.splitlines() if line.startswith("error")]
    return lines[-1] if lines else (stderr.strip().splitlines() or ["(no message)"])[-1]


def survey_one(ini, checkout, step=False, size=64, max_memory="1T"):
    """``{"file", "builds", "params", "macs", "error", "step"}`` for one INI file."""
    row = {"file": str(ini.relative_to(checkout)), "builds": False, "step": None}
    done = _run(["-m", "n2prune", "check", ini.name, "--json", "--max-memory", max_memory],
                ini, checkout)
    if done.returncode != 0:
        row["error"] = _last_error(done.stderr)
        return row
    total = json.loads(done.stdout)["total"]
    row.update(builds=True, params=total["params_dense"], macs=total["macs_dense"])
    if step:
        row["step"] = _step(ini, checkout, size)
    return row


def _step(ini, checkout, size):
    """"ok" when one training step runs at the reduced size; a network whose fixed
    pooling window needs its full input (GoogleNet, SqueezeNet) is stepped at full size."""
    outcome = None
    for side in (size, 0):
        done = _run([str(Path(__file__).resolve()), "--one-step", ini.name, "--size", str(side)],
                    ini, checkout)
        if done.returncode == 0:
            return "ok" if side else "ok at full size"
        outcome = outcome or _last_error(done.stderr)
    return outcome


def reduced_size(ini, size):
    """``--set`` overrides bringing the provider's input to at most ``size`` per side."""
    from n2prune.graph.reader import SectionReader
    from n2prune.graph.stimuli import provider_section, read_provider
    from n2prune.ini import load_ini
    parsed = load_ini(ini)
    name = provider_section(parsed)
    (height, width, _), _ = read_provider(SectionReader(parsed, name, set()))
    overrides = [f"{name}.BatchSize=2"]
    if size and max(height, width) > size:
        overrides += [f"{name}.SizeX={max(1, width * size // max(height, width))}",
                      f"{name}.SizeY={max(1, height * size // max(height, width))}"]
    return overrides


def one_step(ini, size):
    """One training step of ``ini`` on random images, at most ``size`` pixels a side."""
    import numpy as np

    from n2prune.train.model import Model
    net = Model(ini, overrides=reduced_size(ini, size), seed=1, need_data=False).network
    rng = np.random.default_rng(0)
    x = rng.random((*net.input_shape, 2), dtype=np.float32)
    classes = net.cell(net.metric_target.cell).output_shape[0]
    labels = rng.integers(0, classes, 2)
    net.forward(x, train=True, labels=labels)  # a TargetBias reads them
    loss, _ = net.loss_and_backward(labels)
    net.apply_solvers(2)
    if not np.isfinite(loss):
        raise SystemExit(f"error: the loss of one step is {loss}")


def print_table(rows):
    builds = [r for r in rows if r["builds"]]
    print(f"{len(builds)} of {len(rows)} files build\n")
    for row in rows:
        if row["builds"]:
            step = "" if row["step"] is None else f"  step: {row['step']}"
            print(f"builds   {row['file']}  ({row['params']:,} parameters, "
                  f"{row['macs']:,} MACs){step}")
    for row in rows:
        if not row["builds"]:
            print(f"refused  {row['file']}\n         {row['error']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", default=os.environ.get("N2D2_CHECKOUT"),
                        help="an N2D2 checkout (default: $N2D2_CHECKOUT)")
    parser.add_argument("--step", action="store_true", help="one training step per built file")
    parser.add_argument("--size", type=int, default=64,
                        help="largest input side of --step (larger inputs are reduced)")
    parser.add_argument("--max-memory", default="1T", help="passed to check (default 1T)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--one-step", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_step:
        one_step(args.one_step, args.size)
        return 0
    if not args.checkout or not (Path(args.checkout) / "models").is_dir():
        parser.error("give --checkout DIR (or set N2D2_CHECKOUT): an N2D2 checkout with models/")
    checkout = Path(args.checkout).resolve()
    rows = [survey_one(ini, checkout, args.step, args.size, args.max_memory)
            for ini in ini_files(checkout)]
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
