"""End to end: a real recipe trained by n2prune and by PyTorch, same data, batch and solver.

    python benchmarks/recipe_vs_torch.py [--model models_ini/lenet.ini] [--epochs 2]
        [--rounds 3] [--sparsity S] [--seed 1] [--json FILE]
    python benchmarks/recipe_vs_torch.py --profile [--sparsity S]

Both sides train on the MNIST bundled with n2prune, split into learn and
validation by ``n2prune.data.mnist.split_indices`` with the seed and the
INI's ``Validation``, and already transformed as n2prune's data path does
(LeNet-5: 28x28 rescaled bilinear to 32x32, once, untimed on both sides).
PyTorch (``torch_lenet.py``) builds the INI's layers and SGD (rate,
momentum, decay, StepDecay per epoch, clamping) and starts from the
weights n2prune drew with the seed (pruned LeNet-5's accuracy after two
epochs depends on the start); LeNet-5's conv2 mapping is a fixed mask
there. Reported per side: seconds per epoch including the validation pass
(n2prune: also the end-of-epoch snapshot and best-weights writes ``n2prune
train`` does), training samples/s, test accuracy on the official 10k test
set; speed-ups against PyTorch (and SparseProp).

``--sparsity S`` prunes every Conv and Fc tensor on both sides with the
same random unstructured masks (exactly round(S * size) zeros, drawn from
the seed): n2prune through Static ``QWeight=Prune`` with HardZero and the
masks set, PyTorch through ``prune.custom_from_mask``. With SparseProp
installed (``pip install --no-build-isolation sparseprop==0.1.14``) its
modules, converted from the masked PyTorch network, are a third side.

Each sample is one whole training run in a fresh process; the sides
alternate (n2prune, torch, [sparseprop], n2prune, ...). ``--limit N`` keeps
the first N images of each partition: a check that the script runs, not a
measurement. ``--profile`` runs one n2prune epoch (data path, steps,
validation) in this process under cProfile and prints the top 25 by
cumulative time.
"""

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import harness
import numpy as np

HERE = Path(__file__).resolve()
DEFAULT_MODEL = harness.ROOT / "models_ini" / "lenet.ini"


def load_masks(path):
    """``{cell: [mask, ...]}`` from an npz of ``cell/k`` keys (written in order)."""
    masks = {}
    with np.load(path) as data:
        for key in data.files:
            masks.setdefault(key.rsplit("/", 1)[0], []).append(data[key])
    return masks


def one_sample(job):
    """One training run of one side, in this (fresh) process."""
    if job["side"] == "n2prune":
        import n2prune_side
        masks = load_masks(job["masks"]) if job["masks"] else None
        with tempfile.TemporaryDirectory(prefix="bench-run-") as run_dir:
            return n2prune_side.train_recipe(job["ini"], Path(run_dir) / "run", job["epochs"],
                                             job["seed"], masks, job["limit"])
    import torch_lenet
    model = json.loads(Path(job["describe"]).read_text())
    with np.load(job["torch_masks"]) as m:
        masks = {k: m[k] for k in m.files}
    with np.load(job["data"]) as d:
        data = {k: d[k] for k in d.files}
    with np.load(job["weights"]) as w:
        weights = {k: w[k] for k in w.files}
    return torch_lenet.train_recipe(model["spec"], model["solver"], data, job["epochs"],
                                    job["seed"], masks, side=job["side"], weights=weights)


def prepare(args, tmp):
    """Write what the workers share: model description, data and initial weights for torch, masks."""
    import n2prune_side

    from n2prune.train.model import Model
    model = Model(args.model, seed=args.seed)
    masks = (n2prune_side.random_masks(model.network, args.sparsity, args.seed)
             if args.sparsity else {})
    files = {"describe": tmp / "model.json", "data": tmp / "data.npz",
             "masks": tmp / "masks.npz" if masks else None, "torch_masks": tmp / "torch.npz",
             "weights": tmp / "weights.npz"}
    files["describe"].write_text(json.dumps(n2prune_side.describe(args.model, seed=args.seed)))
    data = {}
    for part in ("learn", "validation", "test"):
        images, labels = model.stimuli(part)
        data[f"{part}_x"], data[f"{part}_y"] = images[:args.limit], labels[:args.limit]
    np.savez(files["data"], **data)
    if masks:
        np.savez(files["masks"], **{f"{c}/{k}": m for c, ms in masks.items()
                                    for k, m in enumerate(ms)})
    np.savez(files["torch_masks"], **n2prune_side.torch_masks(model.network, masks))
    # The n2prune worker rebuilds this same model from the seed: one start for both.
    np.savez(files["weights"], **n2prune_side.initial_weights(model.network))
    return {k: str(v) if v else None for k, v in files.items()}


def sides_for(args, files):
    base = dict(files, ini=str(args.model), epochs=args.epochs, seed=args.seed,
                limit=args.limit)
    names = ["n2prune"]
    if harness.torch_installed():
        names.append("torch")
        if args.sparsity and importlib.util.find_spec("sparseprop") is not None:
            names.append("sparseprop")
    return harness.subprocess_sides(HERE, {name: dict(base, side=name) for name in names})


def profile_epoch(args):
    """One n2prune epoch under cProfile (data path, steps, validation); top 25 cumulative."""
    import cProfile
    import pstats

    import n2prune_side

    from n2prune.train.model import Model
    model = Model(args.model, seed=args.seed)
    if args.sparsity:
        n2prune_side.set_masks(model.network, n2prune_side.random_masks(
            model.network, args.sparsity, args.seed))
    for part in ("learn", "validation", "test"):  # cached once, not an epoch's cost
        model.stimuli(part)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        def run():
            return n2prune_side.train_recipe_model(model, Path(tmp) / "run", 1, args.seed,
                                                   args.limit)
        profiler = cProfile.Profile()
        summary = profiler.runcall(run)
    print(f"one epoch: {summary}")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sparsity", type=float, default=0.0)
    parser.add_argument("--limit", type=int, help="first N images of each partition (a check)")
    parser.add_argument("--profile", action="store_true")
    args = harness.parse_or_sample(parser, argv, one_sample, rounds=3)
    if args is None:
        return 0
    machine, session = harness.start({"torch threads": 2, "epochs": args.epochs,
                                      "seed": args.seed, "limit": args.limit})
    if args.profile:
        profile_epoch(args)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        files = prepare(args, Path(tmp))
        label = (f"{args.model.name}, {args.epochs} epochs, sparsity {args.sparsity:g}"
                 + (f", limit {args.limit}" if args.limit else ""))
        sides = sides_for(args, files)
        session.compare(label, sides, args.rounds, primary="s/epoch",
                        references=[s for s in ("torch", "sparseprop") if s in sides] or None)
    harness.report(session, args.json, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
