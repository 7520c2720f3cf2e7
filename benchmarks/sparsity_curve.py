"""Cost of a training step against sparsity: n2prune, PyTorch dense, SparseProp.

    python benchmarks/sparsity_curve.py [--rounds 5] [--steps 30] [--batch 128]
        [--out docs/img/cost_vs_sparsity.png] [--json FILE]

For LeNet-5, LeNet-300-100 and a 4x-wider LeNet-5 (``NbOutputs`` of every
Conv and Fc but the last x4 through ``--set``-style overrides; LeNet-5's
conv2 mapping tiled 4x4, so each layer keeps its connection density), times
s/step (forward, backward, SGD with the INI's solver, random inputs) of
n2prune with every Conv and Fc tensor pruned at random to each sparsity
(the same masks as ``recipe_vs_torch.py``: exactly round(S * size) zeros,
from ``--seed``), of PyTorch dense (a horizontal line) and, when
``import sparseprop`` works, of SparseProp's modules at the same masks.

Per model, all sides alternate round by round, each sample a fresh process
(``harness.in_subprocess``), between two quiet checks. Writes the medians as
CSV (``--out`` with ``.csv``) and the plot as PNG (matplotlib, imported only
here).
"""

import argparse
import csv
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import harness
import numpy as np

HERE = Path(__file__).resolve()
SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
WIDE = 4


def widen_overrides(ini, factor):
    """Overrides that multiply the outputs of every Conv and Fc but the last by ``factor``."""
    import n2prune_side

    from n2prune.train.model import Model
    net = Model(ini, need_data=False).network
    cells = n2prune_side.weighted_cells(net)
    overrides = [f"{c.name}.NbOutputs={c.nb_outputs * factor}" for c in cells[:-1]]
    for cell in cells:
        conn = getattr(cell, "connections", [None])[0]
        if conn is None or conn.mask is None:
            continue
        source = net.inputs[cell.name][0]
        rows = 1 if source not in {c.name for c in net.cells} else factor
        cols = factor if cell is not cells[-1] else 1
        mapping = np.kron(np.ones((rows, cols), dtype=int), conn.mask[:, :, 0, 0].T)
        overrides.append(f"{cell.name}.Mapping({source})=" + " ".join(map(str, mapping.ravel())))
    return overrides


def models():
    import n2prune_side
    lenet, mlp = n2prune_side.MODELS["LeNet-5"], n2prune_side.MODELS["LeNet-300-100"]
    return {"LeNet-5": (lenet, []), "LeNet-300-100": (mlp, []),
            f"LeNet-5 x{WIDE}": (lenet, widen_overrides(lenet, WIDE))}


def one_sample(job):
    """Seconds per step of one side at one sparsity, in this (fresh) process."""
    masks_file = job.get("masks")
    if job["side"] == "n2prune":
        import n2prune_side
        from recipe_vs_torch import load_masks
        masks = load_masks(masks_file) if masks_file else None
        step = n2prune_side.n2prune_step_fn(job["ini"], job["batch"], masks=masks,
                                            overrides=job["overrides"])
    else:
        import torch_lenet
        model = json.loads(Path(job["describe"]).read_text())
        masks = None
        if job.get("torch_masks"):
            with np.load(job["torch_masks"]) as m:
                masks = {k: m[k] for k in m.files}
        step = torch_lenet.step_fn(model["spec"], model["solver"], model["input_shape"],
                                   job["batch"], masks, side=job["side"])
    return harness.step_rate(step, job["steps"], job["batch"])


def write_masks(ini, overrides, sparsity, seed, tmp, tag):
    """npz files of the random masks: n2prune's (per tensor) and PyTorch's (with mappings)."""
    import n2prune_side

    from n2prune.train.model import Model
    net = Model(ini, overrides=overrides, need_data=False).network
    masks = n2prune_side.random_masks(net, sparsity, seed)
    ours, theirs = tmp / f"{tag}-n2prune.npz", tmp / f"{tag}-torch.npz"
    np.savez(ours, **{f"{c}/{k}": m for c, ms in masks.items() for k, m in enumerate(ms)})
    np.savez(theirs, **n2prune_side.torch_masks(net, masks))
    return str(ours), str(theirs)


def sides_for(name, ini, overrides, args, tmp):
    import n2prune_side
    describe = tmp / f"{name}.json"
    describe.write_text(json.dumps(n2prune_side.describe(
        ini, [*overrides, f"sp.BatchSize={args.batch}"])))
    base = {"ini": str(ini), "overrides": overrides, "batch": args.batch, "steps": args.steps,
            "describe": str(describe)}
    jobs = {}
    sparseprop = importlib.util.find_spec("sparseprop") is not None
    for s in args.sparsity:
        ours, theirs = write_masks(ini, overrides, s, args.seed, tmp, f"{name}-{s:g}") if s \
            else (None, None)
        jobs[f"n2prune s={s:g}"] = dict(base, side="n2prune", masks=ours)
        if sparseprop and s:
            jobs[f"sparseprop s={s:g}"] = dict(base, side="sparseprop", torch_masks=theirs)
    if harness.torch_installed():
        jobs["torch dense"] = dict(base, side="torch")
    return harness.subprocess_sides(HERE, jobs)


def rows_of(comparison, model):
    """CSV rows (model, side, sparsity, median, min, max, contended) of one comparison."""
    rows = []
    for r in harness.summary_rows(comparison):
        side, _, s = r["side"].partition(" s=")
        rows.append({"model": model, "side": side, "sparsity": float(s) if s else "",
                     "median_s_per_step": r["median"], "min": r["min"], "max": r["max"],
                     "contended": comparison["contended"]})
    return rows


def plot(rows, path, title):
    """One panel per model: n2prune and SparseProp against sparsity, PyTorch dense as a line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        mine = [r for r in rows if r["model"] == name]
        for side, style in (("n2prune", "o-"), ("sparseprop", "s--")):
            pts = [(r["sparsity"], 1e3 * r["median_s_per_step"]) for r in mine if r["side"] == side]
            if pts:
                ax.plot(*zip(*pts), style, label=side)
        for r in mine:
            if r["side"] == "torch dense":
                ax.axhline(1e3 * r["median_s_per_step"], color="grey", ls=":",
                           label="PyTorch dense")
        ax.set(title=name, xlabel="sparsity", ylabel="ms / step", yscale="log")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sparsity", type=float, nargs="+", default=list(SPARSITIES))
    parser.add_argument("--model", nargs="+", help="subset of the models (default all three)")
    parser.add_argument("--out", type=Path,
                        default=harness.ROOT / "docs" / "img" / "cost_vs_sparsity.png")
    args = harness.parse_or_sample(parser, argv, one_sample)
    if args is None:
        return 0
    machine, session = harness.start({"torch threads": 2, "batch": args.batch,
                                      "sample": f"{args.steps} steps"})
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name, (ini, overrides) in models().items():
            if args.model and name not in args.model:
                continue
            c = session.compare(f"{name} batch {args.batch}: training step",
                                sides_for(name, ini, overrides, args, Path(tmp)),
                                args.rounds, primary="s/step")
            rows += rows_of(c, name)
    ok = harness.report(session, args.json, machine)
    save(rows, args.out, ok, machine)
    return 0


def save(rows, out, ok, machine):
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    date = next(ln for ln in machine.splitlines() if ln.startswith("# date"))[2:]
    title = f"s/step against sparsity, {date}" + ("" if ok else " (NOT FIT FOR THE DOCS)")
    plot(rows, out, title)
    print(f"wrote {out.with_suffix('.csv')} and {out}")


if __name__ == "__main__":
    sys.exit(main())
