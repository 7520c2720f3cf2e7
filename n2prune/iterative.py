"""``n2prune train MODEL.ini --weights RUN --iterations K --finetune-epochs E``.

Iterative pruning (seed 003's notes: prune a trained model, fine-tune 1-5
epochs, repeat): K rounds; round k prunes every channel-pruning cell
(``QWeight.Pattern=Channel``) at once to ``k/K`` of its own
``QWeight.Threshold`` (equal steps; ``PruningMode=Static`` for the round)
and fine-tunes E epochs. Each round is an ordinary run folder,
``OUT/round1``, ``OUT/round2``..., whose ``run.json`` holds the round's
overrides, so ``--resume OUT/roundk`` continues it. ``OUT/iterations.csv``
sums them up.

A round starts from the previous round's final weights with the channel
masks baked in (``w * mask``) and the channel cells' masks left out
(``OUT/roundk-start.npz``): the masks are recomputed at the higher target,
and the channels removed before score 0, so they stay removed.
"""

import copy
import csv
import json
import logging
from pathlib import Path

import numpy as np

from n2prune.errors import UserError
from n2prune.inspect import load_run
from n2prune.io.atomic import atomic_open
from n2prune.io.npz import read_npz
from n2prune.prune.channels import channel_cells
from n2prune.prune.costs import cell_costs, totals
from n2prune.train.evaluate import require_accuracy
from n2prune.train.model import Model
from n2prune.train.runfolder import new_run_dir

log = logging.getLogger("n2prune")

FIELDS = ("round", "fraction", "thresholds", "test_accuracy", "best_validation_accuracy",
          "params_shrunk", "macs_shrunk", "macs_shrunk_fraction")


def run_iterative(args, default_seed, run_train, format_rows):
    """K rounds of prune -> fine-tune; prints and writes ``iterations.csv``. ``run_train``
    (the train verb) runs each round; it and ``format_rows`` are ``commands``' (passed:
    no import cycle)."""
    _check_options(args)
    seed = default_seed if args.seed is None else args.seed
    network = Model(args.model, args.overrides, seed, args.strict, need_data=False,
                    max_memory=args.max_memory).network
    require_accuracy(network, "--iterations")
    finals = final_thresholds(network)
    out = new_run_dir(args.model, args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out}: exists and is not an empty folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    rows, start = [], args.weights
    for k in range(1, args.iterations + 1):
        thresholds = {name: t * k / args.iterations for name, t in finals.items()}
        log.info("round %d/%d: channel pruning at %s", k, args.iterations, _format(thresholds))
        start = baked_start(start, finals, out / f"round{k}-start.npz")
        round_args = copy.copy(args)
        round_args.overrides = list(args.overrides) + round_overrides(thresholds)
        round_args.weights, round_args.out = str(start), str(out / f"round{k}")
        round_args.iterations, round_args.epochs = None, args.finetune_epochs
        run_train(round_args)
        rows.append(_summary(k, k / args.iterations, thresholds, out / f"round{k}"))
        start = out / f"round{k}"
    _write_csv(out / "iterations.csv", rows)
    print(format_rows([FIELDS] + [tuple(str(r[f]) for f in FIELDS) for r in rows]))
    print(f"wrote {out / 'iterations.csv'}")
    return 0


def _check_options(args):
    if args.resume:
        raise UserError("--iterations starts new rounds; to continue one round, "
                        "--resume OUT/roundK without --iterations")
    if not args.weights:
        raise UserError("--iterations prunes a trained model: give --weights RUN")
    if args.epochs is not None:
        raise UserError("--iterations trains --finetune-epochs per round; drop --epochs")


def final_thresholds(network):
    """``{cell: QWeight.Threshold}`` of the channel-pruning cells (what the rounds reach)."""
    finals = {cell.name: cell.quantizer.threshold for cell in channel_cells(network)}
    if not finals:
        raise UserError("--iterations raises channel pruning: no cell has QWeight=Prune with "
                        "QWeight.Pattern=Channel (add them to the INI, or --set-file the "
                        "budget.ini of n2prune sensitivity)")
    return finals


def round_overrides(thresholds):
    """The ``--set`` overrides of one round: each cell pruned at once to its threshold."""
    return [f"{name}.{key}" for name, t in thresholds.items()
            for key in ("QWeight.PruningMode=Static", f"QWeight.Threshold={t:.6g}")]


def baked_start(source, cells, dest):
    """Weights a round starts from: ``source`` as is (an N2D2 folder holds no masks), or
    its npz with the masks of ``cells`` multiplied in and their pruning state left out."""
    path = Path(source)
    if path.is_dir() and (path / "weights.npz").is_file():
        path = path / "weights.npz"
    if path.suffix != ".npz":
        return source
    arrays = read_npz(path, "weights file", "point --weights at another file")
    for name in cells:
        for k in range(len([key for key in arrays if key.startswith(f"param/{name}.weights[")])):
            mask = arrays.get(f"quant/{name}/mask{k}")
            if mask is not None:
                key = f"param/{name}.weights[{k}]"
                arrays[key] = (arrays[key] * mask.reshape(arrays[key].shape)).astype(arrays[key].dtype)
    kept = {key: value for key, value in arrays.items()
            if not any(key.startswith(f"quant/{name}/") for name in cells)}
    with atomic_open(dest, "wb") as handle:
        np.savez(handle, **kept)
    return dest


def _summary(k, fraction, thresholds, run):
    summary = json.loads((run / "summary.json").read_text())
    total = totals(cell_costs(load_run(run)[0]))
    return {"round": k, "fraction": f"{fraction:.4g}", "thresholds": _format(thresholds),
            "test_accuracy": f"{summary['test_accuracy']:.4f}",
            "best_validation_accuracy": _maybe(summary["best_validation_accuracy"]),
            "params_shrunk": total["params_shrunk"], "macs_shrunk": total["macs_shrunk"],
            "macs_shrunk_fraction": f"{total['macs_shrunk_ratio']:.4f}"}


def _maybe(value):
    return "" if value is None else f"{value:.4f}"


def _format(thresholds):
    return " ".join(f"{name}={t:.4g}" for name, t in thresholds.items())


def _write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
