"""``n2prune sensitivity MODEL.ini --weights RUN``: accuracy of each group pruned alone.

A *group* is what one pruning decision covers: by default a channel
dependency group (``prune.channel_graph``, named by its producers joined
with ``+``), with ``--unstructured`` one Conv or Fc cell pruned by weight
magnitude. Each group is pruned alone at each ratio through the quantizers
training uses (the model is built with ``QWeight=Prune``,
``PruningMode=Static``, ``Threshold=0`` on the groups' cells, then each
quantizer's target is raised), its validation accuracy measured, and every
weight and mask restored before the next point. So a ratio means what
``QWeight.Threshold`` means in training, and ``budget.ini`` reproduces it.

Cells that already prune in the INI, target cells and ``--exclude`` cells
are left out; their pruning, if any, is part of the baseline.
"""

import csv
import importlib.util
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from n2prune.cells import Conv, Deconv, Fc
from n2prune.errors import UserError
from n2prune.io.atomic import atomic_write_text
from n2prune.io.checkpoint import load_network_arrays, network_arrays
from n2prune.prune.budget import choose_ratios, predicted_drop
from n2prune.prune.channel_graph import ChannelGraph
from n2prune.prune.channels import refresh_removed_channels, resolve_channels
from n2prune.prune.costs import cell_costs, shrunk_totals, totals
from n2prune.prune.pruned_cells import initialize_masks, pruned_cells
from n2prune.train.evaluate import accuracy, require_accuracy
from n2prune.train.model import Model

log = logging.getLogger("n2prune")

DEFAULT_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass
class Point:
    """One measurement: ``group`` pruned alone at ``ratio``."""

    group: str
    ratio: float
    accuracy: float
    drop: float
    params: int
    macs: int
    removed: dict = field(default_factory=dict)  # channel mode: network.removed_channels

    @property
    def costs(self):
        return self.params, self.macs


class Analysis:
    """The model with quantizers on every analysed cell, ready to prune one group at a time.

    ``kind`` is what the costs count: ``shrunk`` (channels, after
    ``n2prune shrink``) or ``effective`` (non-zero weights, ``--unstructured``).
    """

    def __init__(self, args, seed, load_weights):
        self.unstructured = args.unstructured
        self.kind = "effective" if self.unstructured else "shrunk"
        probe = Model(args.model, args.overrides, seed, args.strict, need_data=False,
                      max_memory=args.max_memory)
        require_accuracy(probe.network, "n2prune sensitivity")
        self.groups = analysed_groups(probe.network, self.unstructured, args.exclude)
        pattern = "Unstructured" if self.unstructured else "Channel"
        keys = ("QWeight=Prune", "QWeight.PruningMode=Static", f"QWeight.Pattern={pattern}",
                "QWeight.Threshold=0")
        self.overrides = [f"{cell}.{key}" for group in self.groups for cell in group for key in keys]
        self.model = Model(args.model, list(args.overrides) + self.overrides, seed, args.strict,
                           max_memory=args.max_memory)
        self.network = self.model.network
        _check_validation(self.model, args.model)
        _load(self.model, args.weights, load_weights)
        analysed = {name for group in self.groups for name in group}
        for cell in pruned_cells(self.network):
            if cell.name not in analysed:
                # Outputs unchanged (W * M); resolving all channel groups at each point
                # then removes the INI's own removed channels again: they score 0.
                cell.quantizer.finalize()
        self.saved = {k: np.array(v) for k, v in network_arrays(self.network).items()}

    def prune(self, choice):
        """Prune every ``{group (tuple of cells): ratio}`` at once (the others stay as loaded)."""
        for group, ratio in choice.items():
            for name in group:
                cell = self.network.by_name[name]
                cell.quantizer.target = float(ratio)
                if self.unstructured:
                    cell.quantizer.refresh_masks()
        if not self.unstructured:
            resolve_channels(self.network)  # the other groups' targets are 0: all kept

    def restore(self):
        load_network_arrays(self.network, self.saved, "the weights before pruning")
        refresh_removed_channels(self.network)

    def costs(self):
        """``(params, macs)`` of the whole network now, of this analysis' ``kind``."""
        total = totals(cell_costs(self.network))
        return total[f"params_{self.kind}"], total[f"macs_{self.kind}"]

    def validation_accuracy(self):
        return accuracy(self.network, self.model, "validation")


def analysed_groups(network, unstructured, exclude=()):
    """Tuples of cell names, one per decision: channel groups' producers, or single cells."""
    known = {cell.name for cell in network.cells}
    unknown = [name for name in exclude if name not in known]
    if unknown:
        raise UserError(f"--exclude {','.join(unknown)}: no such cell; cells: {', '.join(sorted(known))}")
    if unstructured:
        candidates = [(c.name,) for c in network.cells if isinstance(c, (Conv, Deconv, Fc))]
    else:
        candidates = [g.producers for g in ChannelGraph(network).groups]
    skipped = {c.name for c in pruned_cells(network)} | {t.cell for t in network.targets} | set(exclude)
    for group in candidates:
        if set(group) & (skipped - set(exclude)):
            log.info("notice: %s left out (a target, or it prunes in the INI already)", "+".join(group))
    groups = [g for g in candidates if not set(g) & skipped]
    if not groups:
        raise UserError("nothing to analyse: no Conv/Fc cell (channel group) that is not a target, "
                        "excluded or pruned in the INI already")
    return groups


def _check_validation(model, path):
    if not model.partition_size("validation"):
        raise UserError(f"{path}: the database has no validation images ([database] Validation=0); "
                        "sensitivity measures on them, never on the test set: give "
                        "--set database.Validation=0.1 (and the run's --seed)")


def _load(model, weights, load_weights):
    """``load_weights(network, source)`` (the ``train --weights`` loader, handed down by
    ``commands``), then the masks of the cells the file held none for, as ``train`` does."""
    restored = load_weights(model.network, weights)
    stale = [c for c in pruned_cells(model.network) if c.name not in restored]
    initialize_masks(model.network, model.rng, model.epoch_size, stale)


def run_seed(args, default):
    """``--seed``, else the seed of the run ``--weights`` names (its validation split), else
    ``default``: the validation images must be ones the run did not train on."""
    if args.seed is not None:
        return args.seed
    info = Path(args.weights) / "run.json"
    if info.is_file():
        try:
            return int(json.loads(info.read_text())["seed"])
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{info}: unreadable seed; give --seed") from None
    return default


def measure(analysis, ratios):
    """``(baseline accuracy, baseline (params, macs), points)``, every group at every ratio."""
    baseline = analysis.validation_accuracy()
    base_costs = analysis.costs()
    points = []
    for number, group in enumerate(analysis.groups, 1):
        name = "+".join(group)
        for ratio in ratios:
            analysis.prune({group: ratio})
            acc = analysis.validation_accuracy()
            removed = {k: v.copy() for k, v in analysis.network.removed_channels.items()}
            points.append(Point(name, ratio, acc, baseline - acc, *analysis.costs(), removed))
            analysis.restore()
        log.info("sensitivity %d/%d %s: %s", number, len(analysis.groups), name,
                 " ".join(f"{p.ratio:g}:{p.accuracy:.4f}" for p in points if p.group == name))
    return baseline, base_costs, points


def write_csv(path, points, kind, dense):
    """One row per point; costs are the whole network's, of ``kind``, and their
    fraction of ``dense`` (``(params, macs)``)."""
    fields = ["group", "ratio", "accuracy", "accuracy_drop", f"params_{kind}", f"macs_{kind}",
              f"macs_{kind}_fraction"]
    lines = [fields] + [[p.group, f"{p.ratio:g}", f"{p.accuracy:.6f}", f"{p.drop:.6f}",
                         p.params, p.macs, f"{p.macs / dense[1]:.6f}"] for p in points]
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(lines)


def plot(path, points, baseline):
    """``sensitivity.png`` when matplotlib is installed; False (a notice) when not."""
    if importlib.util.find_spec("matplotlib") is None:
        log.info("notice: %s not drawn: plots need matplotlib: pip install 'n2prune[plot]'", path)
        return False
    from n2prune.plots import plot_sensitivity
    plot_sensitivity(points, baseline, path)
    return True


def budget_text(choice, notes, unstructured):
    """The INI override file: one section per chosen cell (``--set-file``)."""
    pattern = "Unstructured" if unstructured else "Channel"
    lines = [f"; {note}" for note in notes]
    for group, ratio in choice.items():
        for name in group if ratio > 0 else ():
            lines += ["", f"[{name}]", "QWeight=Prune", "QWeight.PruningMode=Static",
                      f"QWeight.Pattern={pattern}", f"QWeight.Threshold={ratio:g}"]
    return "\n".join(lines) + "\n"


def run_sensitivity(args, default_seed, load_weights, format_rows):
    """The ``sensitivity`` verb: measure, write CSV (and picture), print, budget. The
    loader, default seed and table printer are ``commands``' (passed: no import cycle)."""
    analysis = Analysis(args, run_seed(args, default_seed), load_weights)
    ratios = args.ratios or list(DEFAULT_RATIOS)
    out = Path(args.out) if args.out else _default_out(args.weights)
    out.mkdir(parents=True, exist_ok=True)
    total = totals(cell_costs(analysis.network))
    dense = (total["params_dense"], total["macs_dense"])
    log.info("sensitivity of %d groups at %d ratios on %d validation images",
             len(analysis.groups), len(ratios), analysis.model.partition_size("validation"))
    baseline, base_costs, points = measure(analysis, ratios)
    write_csv(out / "sensitivity.csv", points, analysis.kind, dense)
    drawn = plot(out / "sensitivity.png", points, baseline)
    print(f"validation accuracy {baseline:.4f} unpruned; accuracy with each group pruned alone:")
    print(format_rows(_table(points, ratios, dense)))
    print(f"wrote {out / 'sensitivity.csv'}" + (f" and {out / 'sensitivity.png'}" if drawn else ""))
    if args.target_macs is not None or args.target_params is not None:
        _budget(args, analysis, points, dense, base_costs, baseline, out)
    return 0


def _budget_notes(what, limit, kind, predicted, measured):
    """The comment lines of ``budget.ini``: ``predicted`` is (cost fraction, drop),
    ``measured`` (cost fraction, accuracy, baseline accuracy) with the ratios at once."""
    label = {"macs": "MACs", "params": "parameters"}[what]
    kept, accuracy_now, baseline = measured
    return [
        (f"n2prune sensitivity --target-{what} {limit:g} ({kind} {label} kept, of dense); "
         "load with: n2prune train MODEL.ini --weights RUN --set-file THIS"),
        (f"predicted: {predicted[0]:.1%} of dense {label} kept, accuracy drop "
         f"{predicted[1]:.4f} (the sum of each group's own drop)"),
        (f"measured with these ratios at once, before fine-tuning: {kept:.1%} kept, "
         f"validation accuracy {accuracy_now:.4f} (drop {baseline - accuracy_now:.4f})")]


def _default_out(weights):
    weights = Path(weights)
    return (weights if weights.is_dir() else weights.parent) / "sensitivity"


def _table(points, ratios, dense):
    rows = [("group", f"MACs kept at {ratios[-1]:g}", *(f"{r:g}" for r in ratios))]
    for name in dict.fromkeys(p.group for p in points):
        mine = [p for p in points if p.group == name]
        rows.append((name, f"{mine[-1].macs / dense[1]:.1%}", *(f"{p.accuracy:.4f}" for p in mine)))
    return rows


def budget_cost(analysis, points, base_costs, dense, what):
    """``cost(choice)``: the fraction of dense ``what`` ("params" or "macs", index 0 or 1)
    kept with each group at its chosen ratio. Channels: the union of the groups'
    removed channels, counted as shrunk (exact); weights: per-cell sums (exact too,
    a cell's non-zeros are its own)."""
    index = ("params", "macs").index(what)
    by_point = {(p.group, p.ratio): p for p in points}

    def additive(choice):
        saved = sum(base_costs[index] - by_point[("+".join(g), r)].costs[index]
                    for g, r in choice.items() if r > 0)
        return (base_costs[index] - saved) / dense[index]

    def shrunk(choice):
        removed = {}
        for group, ratio in choice.items():
            for cell, channels in (by_point[("+".join(group), ratio)].removed if ratio else {}).items():
                removed[cell] = np.union1d(removed.get(cell, []), channels).astype(np.intp)
        kept, analysis.network.removed_channels = analysis.network.removed_channels, removed
        try:
            return shrunk_totals(analysis.network)[index] / dense[index]
        finally:
            analysis.network.removed_channels = kept

    return additive if analysis.unstructured else shrunk


def _budget(args, analysis, points, dense, base_costs, baseline, out):
    what, limit = ("macs", args.target_macs) if args.target_macs is not None \
        else ("params", args.target_params)
    curves = {group: [(p.ratio, p.drop) for p in points if p.group == "+".join(group)]
              for group in analysis.groups}
    choice, predicted = choose_ratios(curves, budget_cost(analysis, points, base_costs, dense, what),
                                      limit)
    analysis.prune(choice)
    measured, costs = analysis.validation_accuracy(), analysis.costs()
    analysis.restore()
    index = ("params", "macs").index(what)
    if costs[index] / dense[index] > limit + 1e-9:  # the union of removed channels is exact
        log.warning("the chosen ratios keep %.1f%% measured at once, over the budget",
                    100 * costs[index] / dense[index])
    notes = _budget_notes(what, limit, analysis.kind, (predicted, predicted_drop(curves, choice)),
                          (costs[index] / dense[index], measured, baseline))
    atomic_write_text(out / "budget.ini", budget_text(choice, notes, analysis.unstructured))
    for group, ratio in choice.items():
        print(f"{'+'.join(group)}: ratio {ratio:g}")
    print("\n".join(notes[1:]))
    print(f"wrote {out / 'budget.ini'}")
