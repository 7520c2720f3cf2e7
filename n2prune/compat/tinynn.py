"""TinyNN's ``OneShotChannelPruner`` (``tinynn.prune.oneshot_pruner``) over an n2prune model.

TinyNN traces a torch module, groups coupled channels into subgraphs named
by their "center" (a Conv or Linear that is not depthwise), masks the
least important channels of each at one sparsity, then shrinks the module.
Here the config configures ``PruneCell`` quantizers (``Pattern=Channel``,
``PruningMode=Static``) on the producers of n2prune's channel groups
(``prune.channel_graph``), the decisions are ``prune.channels``', and
``prune()`` builds the shrunk network from the INI as ``n2prune shrink``
rewrites it. No pruning logic lives here.
"""

import logging
from pathlib import Path

import numpy as np

from n2prune.cells import Conv, Fc
from n2prune.compat import attach_quantizers, ini_values
from n2prune.compat.tinynn_config import WHERE, read_config, write_config
from n2prune.errors import UserError
from n2prune.graph.builder import build_network
from n2prune.ini import parse_ini_text
from n2prune.io.checkpoint import load_network_arrays, network_arrays
from n2prune.io.syntxt import export_network
from n2prune.prune.channel_graph import ChannelGraph
from n2prune.prune.channels import channel_cells, zero_removed_channels
from n2prune.prune.costs import cell_costs, totals
from n2prune.prune.pruned_cells import initialize_masks
from n2prune.prune.shrink import kept_channels, shrunk_arrays
from n2prune.registry import unknown_message
from n2prune.shrink import TOLERANCE, cell_edits, rewrite_ini
from n2prune.train.model import Model

log = logging.getLogger("n2prune")


class OneShotChannelPruner:
    """TinyNN's ``OneShotChannelPruner(model, dummy_input, config)`` on an n2prune model.

    ``model``: a ``Model`` (``n2prune.train.model``) or the path of its INI
    file (built with ``need_data=False``); the INI is what ``prune()``
    rewrites. ``dummy_input``: a batch-first array, (N, C, H, W), run once
    to check the network. ``config``: a dict or a JSON file
    (``compat.tinynn_config``). The channel decisions are made here, from
    the current weights (TinyNN makes them in ``prune()``), with the
    model's generator and epoch size, as the same ``QWeight`` keys in the
    INI file would (``ini_keys()``).

    Raises UserError for a config key or value TinyNN does not know, a
    dummy input of another shape, cells sharing channels with different
    sparsities (TinyNN asserts one per subgraph), or a model that already
    prunes channels in its INI file.

    Attributes: ``network`` (the masked network, then the shrunk one),
    ``sparsity`` (``{cell: sparsity}`` of every prunable cell),
    ``quantizers`` (``{cell: PruneCell}`` of those with sparsity > 0).
    """

    def __init__(self, model, dummy_input, config):
        if not isinstance(model, (Model, str, Path)):
            raise TypeError("OneShotChannelPruner takes a Model (n2prune.train.model) or the path "
                            f"of its INI file, not {type(model).__name__}: prune() rewrites the INI")
        self.model = model if isinstance(model, Model) else Model(model, need_data=False)
        self.network = self.model.network
        self.masked_network = self.ini_text = None
        self.dummy_input = checked_input(self.network, dummy_input)
        self.config = read_config(config)
        taken = [c.name for c in channel_cells(self.network)]
        if taken:
            raise UserError(f"{', '.join(taken)} already prune channels in {self.model.path}: "
                            "shrink that run with `n2prune shrink`, or remove their QWeight keys")
        self.sparsity = plan_sparsities(self.network, self.config)
        self._kwargs = {name: channel_kwargs(s, self.config.criterion)
                        for name, s in self.sparsity.items() if s > 0}
        self.quantizers = attach_quantizers(self.network, self._kwargs, self.model.rng,
                                            self.model.epoch_size)

    def calc_flops(self):
        """MACs per sample of ``network``: the dense model before ``prune()``, the shrunk
        one after (``prune.costs``; TinyNN's count adds BatchNorm, ReLU and pooling)."""
        return totals(cell_costs(self.network))["macs_dense"]

    def prune(self, out=None):
        """Remove the pruned channels: ``network`` becomes the shrunk network, checked to
        give the masked network's outputs (to 1e-5), and ``masked_network`` the one before.

        Logs ``cell: before -> after`` for each cell whose outputs shrink. With ``out``
        (a folder, empty or new) writes ``model.ini``, ``weights.npz`` and N2D2's
        ``weights/`` there, as ``n2prune shrink`` (refused before anything changes when
        the folder is not empty). ``ini_text`` is the shrunk INI. Returns the shrunk network.
        """
        if self.masked_network is not None:
            raise UserError("prune() was already called: the network is shrunk")
        if out is not None and Path(out).exists() and any(Path(out).iterdir()):
            raise UserError(f"{out}: exists and is not empty; give another folder")
        masked = self.network
        zero_removed_channels(masked)  # weights trained since the decisions leak no bias
        shrunk, self.ini_text = shrink_model(self.model, list(self._kwargs))
        difference = max(output_difference(masked, shrunk, x)
                         for x in (self.dummy_input, random_input(masked)))
        if not difference <= TOLERANCE:
            raise UserError(f"the shrunk network's outputs differ from the masked one's by "
                            f"{difference:.3g} (> {TOLERANCE}); this is a bug, please report it")
        for cell in masked.cells:
            after = shrunk.cell(cell.name).output_shape[0]
            if after != cell.output_shape[0]:
                log.info("%s: %d -> %d", cell.name, cell.output_shape[0], after)
        self.masked_network, self.network = masked, shrunk
        if out is not None:
            save_model(Path(out), self.ini_text, shrunk)
        return shrunk

    def generate_config(self, path):
        """Write the config with every prunable cell's sparsity (JSON) to edit and pass
        back as ``config``: TinyNN's ``generate_config``."""
        write_config(path, self.config, self.sparsity)

    def ini_keys(self):
        """``{cell: {"QWeight": "Prune", "QWeight.X": "value"}}``: the same decisions in INI."""
        return {name: ini_values(kwargs) for name, kwargs in self._kwargs.items()}


def channel_kwargs(sparsity, criterion):
    """PruneCell keyword arguments: channels removed once, at initialisation."""
    return {"prune_mode": "Static", "pattern": "Channel", "criterion": criterion,
            "threshold": sparsity}


def center_cells(network):
    """TinyNN's center nodes: Conv (not depthwise) and Fc cells, in network order."""
    return [c.name for c in network.cells if isinstance(c, Fc) or (
        isinstance(c, Conv) and not all(k.kind == "depthwise" for k in c.connections))]


def plan_sparsities(network, config):
    """``{cell: sparsity}`` for the producers of every channel group, in network order.

    A cell gets its ``per_cell`` value or the default; with ``skip_last_fc`` the
    last center cell, when an Fc the config does not name, gets 0 (TinyNN). A
    group with an ``exclude_ops`` cell among its cells or their consumers gets 0,
    and so does every group sharing a producer with it.
    """
    centers = center_cells(network)
    _check_names(network, config, centers)
    wanted = {name: config.per_cell.get(name, config.default) for name in centers}
    last = centers[-1] if centers else None
    if config.skip_last_fc and last and isinstance(network.cell(last), Fc) \
            and last not in config.per_cell:
        wanted[last] = 0.0
    groups = ChannelGraph(network).groups
    _check_prunable(config, groups)
    off = _excluded_groups(network, groups, set(config.exclude_ops))
    plan = {}
    for i, group in enumerate(groups):
        values = {p: wanted[p] for p in group.producers}
        if i not in off and len(set(values.values())) > 1:
            raise UserError("cells sharing channels must share one sparsity (TinyNN prunes one "
                            "per subgraph): " + ", ".join(f"{p}={v:g}" for p, v in values.items()))
        plan.update({p: 0.0 if i in off else v for p, v in values.items()})
    return {name: plan[name] for name in centers if name in plan}


def _check_names(network, config, centers):
    for name in config.per_cell:
        if name not in centers:
            raise UserError(unknown_message(f"sparsity cell {name!r}", name, centers, WHERE)
                            + " (Conv and Fc cells that are not depthwise)")
    names = [c.name for c in network.cells]
    for name in config.exclude_ops:
        if name not in names:
            raise UserError(unknown_message(f"exclude_ops cell {name!r}", name, names, WHERE))


def _check_prunable(config, groups):
    producers = {p for g in groups for p in g.producers}
    for name, value in config.per_cell.items():
        if value > 0 and name not in producers:
            raise UserError(f"sparsity[{name!r}]: none of {name}'s channels can be removed (they "
                            "reach a target, a Softmax, a channel-mixing Pool, or an activation "
                            "that does not keep 0)")


def _excluded_groups(network, groups, exclude):
    """Indices of the groups that touch an excluded cell, closed over shared producers."""
    off = set()
    for i, group in enumerate(groups):
        cells = {name for unit in group.units for name, _ in unit.channels}
        consumers = {c.name for c in network.cells if cells & set(network.inputs[c.name])}
        if exclude & (cells | consumers):
            off.add(i)
    grown = True
    while grown:
        frozen = {p for i in off for p in groups[i].producers}
        more = {i for i, g in enumerate(groups) if frozen & set(g.producers)} - off
        off |= more
        grown = bool(more)
    return off


def checked_input(network, dummy_input):
    """``dummy_input`` as float32 (N, C, H, W), run once through ``network`` (TinyNN traces
    with it); UserError when its shape is not the network's input."""
    x = np.asarray(dummy_input, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1:] != tuple(network.input_shape) or not len(x):
        channels, height, width = network.input_shape
        raise UserError(f"dummy_input has shape {np.shape(dummy_input)}; the network reads "
                        f"batch-first (N, {channels}, {height}, {width})")
    network.predict(x)
    return x


def shrink_model(model, pruned):
    """``(shrunk Network, its INI text)``: ``model``'s INI rewritten by ``n2prune.shrink``
    (``pruned`` cells' quantizer states dropped), built, with the cut arrays loaded."""
    network = model.network
    edits = cell_edits(network, kept_channels(network), ())  # the INI has no QWeight keys to drop
    text = rewrite_ini(model.ini.dumps(), edits, set(), model.path)
    arrays = shrunk_arrays(network, network_arrays(network), pruned)
    shrunk, _provider, ctx = build_network(parse_ini_text(text, f"{model.path} (shrunk)"),
                                           model.seed, model.epoch_size if model.database else None)
    initialize_masks(shrunk, ctx.rng, model.epoch_size)  # other QWeight cells, then their masks
    load_network_arrays(shrunk, arrays, "the shrunk arrays")
    return shrunk, text


def random_input(network, n=8):
    return np.random.default_rng(0).standard_normal((n, *network.input_shape)).astype(np.float32)


def output_difference(masked, shrunk, x):
    """Largest difference of the two networks' outputs on batch-first ``x``, relative to
    the masked output's magnitude when above 1."""
    y_masked, y_shrunk = masked.predict(x), shrunk.predict(x)
    scale = max(1.0, float(np.abs(y_masked).max()))
    return float(np.abs(y_masked - y_shrunk).max()) / scale


def save_model(out, text, network):
    """``model.ini``, ``weights.npz`` and ``weights/`` of the shrunk model into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.ini").write_text(text, encoding="utf-8")
    np.savez(out / "weights.npz", **network_arrays(network))
    export_network(network, out / "weights")
