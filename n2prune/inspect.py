"""``n2prune inspect RUN``: what pruning did to each cell of a trained run.

The run's own resolved ``config.ini`` rebuilds the network (no data needed),
then ``weights.npz`` (or, for a run still going or interrupted,
``snapshot.npz``) restores weights and masks.
"""

import json
from pathlib import Path

import numpy as np

from n2prune.cells import WeightCell
from n2prune.errors import UserError
from n2prune.io.checkpoint import byte_budget, load_network_arrays
from n2prune.io.npz import read_npz
from n2prune.prune.channels import refresh_removed_channels
from n2prune.prune.costs import cell_costs, totals
from n2prune.train.model import Model


def load_run(run):
    """The network of run folder ``run`` with its latest weights and masks
    (or of a folder written by ``n2prune shrink``: model.ini and weights.npz)."""
    run = Path(run)
    config = next((run / n for n in ("config.ini", "model.ini") if (run / n).is_file()), None)
    if config is None:
        raise UserError(f"{run}: not a run folder (no config.ini, nor a shrunk model.ini)")
    weights = next((run / n for n in ("weights.npz", "snapshot.npz") if (run / n).is_file()), None)
    if weights is None:
        raise UserError(f"{run}: no weights.npz or snapshot.npz yet")
    model = Model(config, need_data=False)
    arrays = read_npz(weights, "weights file", "train the run again, or restore the file from a copy",
                      text_keys=("meta",), max_bytes=byte_budget(model.network))
    load_network_arrays(model.network, arrays, weights)
    refresh_removed_channels(model.network)
    return model.network, weights


def _effective(cell):
    return [cell.effective_weights(k) for k in range(len(cell.weights))]


def cell_row(cell):
    """One cell's numbers: shapes, parameters, non-zeros, sparsity, quantizer state."""
    tensors = _effective(cell)
    params = sum(t.size for t in tensors)
    nonzero = int(sum(np.count_nonzero(t) for t in tensors))
    row = {"cell": cell.name, "type": cell.type_name,
           "weight_shape": [list(t.shape) for t in tensors], "params": params,
           "nonzero": nonzero, "sparsity": 1.0 - nonzero / params if params else 0.0,
           "mode": "-", "filler": "-", "threshold": None, "next_update": None}
    q = getattr(cell, "quantizer", None)
    if q is not None:
        row.update(mode=q.prune_mode, filler=rule_name(q), threshold=q.get_current_threshold(),
                   mask_sparsity=q.sparsity(), next_update=q.next_update_in)
    return row


def rule_name(quantizer):
    """What makes the masks: N2D2's filler, or the pattern with its sizes and criterion."""
    options = quantizer.options
    if options.pattern is None:
        return quantizer.prune_filler
    params = quantizer.params
    sizes = {"NM": f" {params.n}:{params.m}", "NMFlat": f" {params.n}:{params.m}",
             "Bank": f" {params.bank_size}x{params.bank_interleave}",
             "Block": f" {params.block_outputs}x{params.block_inputs}"}
    return f"{options.pattern}{sizes.get(options.pattern, '')}/{options.criterion}"


def check_report(network):
    """``{cell: [violations]}`` of every pruned cell's masks against its declared pattern.

    Cells masked by N2D2's fillers (no pattern) have nothing to check.
    """
    report = {}
    for cell in network.cells:
        q = getattr(cell, "quantizer", None)
        if q is None or q.options.pattern is None:
            continue
        report[cell.name] = [f"weights[{k}]: {line}" for k in range(len(q.masks))
                             for line in q.violations(k)]
    return report


def print_check(report):
    """Print the check; returns the exit status (0 all follow their pattern, 1 otherwise)."""
    if not report:
        print("check: no cell declares a QWeight.Pattern")
        return 0
    for name, problems in report.items():
        print(f"check [{name}]: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        for line in problems:
            print(f"  {line}")
    return 1 if any(report.values()) else 0


def network_report(network):
    """Weighted cells' sparsity and quantizer state, with every cell's MACs and parameters
    dense, effective and shrunk (``prune.costs``); totals over the whole network."""
    costs = cell_costs(network)
    by_name = {r["cell"]: r for r in costs}
    rows = [{**cell_row(c), **_counts(by_name[c.name])}
            for c in network.cells if isinstance(c, WeightCell)]
    params = sum(r["params"] for r in rows)
    nonzero = sum(r["nonzero"] for r in rows)
    total = {"params": params, "nonzero": nonzero,
             "sparsity": 1.0 - nonzero / params if params else 0.0, **totals(costs)}
    return {"cells": rows, "total": total}


def _counts(costs):
    return {k: v for k, v in costs.items() if k.startswith(("macs_", "params_"))}


def channel_report(network, name):
    """Per-output-channel non-zeros and sparsity of one cell."""
    if name not in network.by_name or not isinstance(network.by_name[name], WeightCell):
        known = ", ".join(c.name for c in network.cells if isinstance(c, WeightCell))
        raise UserError(f"no cell [{name}] with weights in this run (cells: {known})")
    kept = np.concatenate([t.reshape(t.shape[0], -1) != 0
                           for t in _effective(network.by_name[name])], axis=1)
    size = kept.shape[1]
    return [{"output": o, "nonzero": int(n), "sparsity": 1.0 - int(n) / size}
            for o, n in enumerate(kept.sum(axis=1))]


def format_table(report):
    head = ("cell", "type", "weights", "params", "nonzero", "sparsity", "mode", "masks by",
            "threshold", "next update", "MACs", "effective", "shrunk")
    rows = [head]
    for r in report["cells"]:
        shape = "+".join("x".join(map(str, s)) for s in r["weight_shape"])
        threshold = "-" if r["threshold"] is None else f"{r['threshold']:.4g}"
        nxt = "-" if r["next_update"] is None else f"{r['next_update']} stimuli"
        rows.append((r["cell"], r["type"], shape, str(r["params"]), str(r["nonzero"]),
                     f"{r['sparsity']:.4f}", r["mode"], r["filler"], threshold, nxt,
                     str(r["macs_dense"]), str(r["macs_effective"]), str(r["macs_shrunk"])))
    t = report["total"]
    rows.append(("total", "", "", str(t["params"]), str(t["nonzero"]), f"{t['sparsity']:.4f}",
                 "", "", "", "", str(t["macs_dense"]),
                 f"{t['macs_effective']} ({t['macs_effective_ratio']:.1%})",
                 f"{t['macs_shrunk']} ({t['macs_shrunk_ratio']:.1%})"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows)


def run_inspect(args):
    network, source = load_run(args.run)
    if args.cell:
        channels = channel_report(network, args.cell)
        if args.json:
            print(json.dumps({"cell": args.cell, "outputs": channels}, indent=2))
        else:
            print(f"{args.cell}: per-output sparsity ({source.name})")
            for c in channels:
                print(f"  output {c['output']:4d}  nonzero {c['nonzero']:6d}  sparsity {c['sparsity']:.4f}")
    else:
        report = network_report(network)
        print(json.dumps(report, indent=2) if args.json else format_table(report))
    if args.plot:
        from n2prune.plots import plot_run
        for path in plot_run(network, Path(args.run)):
            print(f"wrote {path}")
    return print_check(check_report(network)) if args.check else 0
