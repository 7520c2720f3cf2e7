"""Channel pruning across cells: one decision per unit of coupled channels.

The cells with ``QWeight.Pattern=Channel`` do not choose their channels
alone: ``resolve_channels`` ranks the units of each dependency group
(``channel_graph``) by the scores of all the group's producers, removes the
lowest at the producers' target (``RoundTo``, never a cell without a
channel) and hands each producer the rows it keeps through its quantizer's
seam (``PruneCell.keep_channels``). ``zero_removed_channels`` then keeps
every removed channel exactly 0 wherever it flows: biases, BatchNorm scale
and shift, the rows of depthwise cells, so that removing the channels
(``shrink``) changes no output.
"""

import math

import numpy as np

from n2prune.errors import CellError, UserError
from n2prune.prune import criteria, scope
from n2prune.prune.channel_graph import ChannelGraph, zeroed_parameters
from n2prune.prune.pattern_base import kept_count

_REDUCE = {"Sum": np.sum, "Mean": np.mean, "Max": np.max}


def channel_cells(network):
    """Cells whose quantizer prunes whole channels, in build order."""
    return [c for c in network.cells if getattr(c, "quantizer", None) is not None
            and c.quantizer.options.pattern == "Channel"]


def resolve_channels(network, cells=None):
    """The decision of every channel group (of those ``cells`` produce for, default all),
    from its producers' current scores and target; then ``network.removed_channels``
    follows the masks (``refresh_removed_channels``) and the removed channels are zeroed.
    """
    wanted = {c.name for c in channel_cells(network)}
    if cells is not None:
        wanted &= {c.name for c in cells}
    if not wanted:
        return
    graph = ChannelGraph(network)
    groups = [g for g in graph.groups if wanted & set(g.producers)]
    everyone = {c.name for c in channel_cells(network)}
    _check_members(network, graph, groups, everyone)
    scores = [_unit_scores(network, group) for group in groups]
    fractions = _group_fractions(network, groups, scores)
    for group, unit_scores, fraction in zip(groups, scores, fractions):
        removed = _removed_units(group, unit_scores, fraction, network)
        # Producers, and the depthwise cells that follow them when they carry a
        # channel quantizer too (their rows go with their input channel).
        for name in sorted(everyone & {n for unit in group.units for n, _ in unit.channels}):
            cell = network.by_name[name]
            keep = np.ones(cell.output_shape[0], dtype=bool)
            keep[[c for unit in removed for c in unit.of(name)]] = False
            cell.quantizer.keep_channels(keep)
    refresh_removed_channels(network, graph)
    zero_removed_channels(network)


def _check_members(network, graph, groups, wanted):
    """Every producer of a pruned group must prune channels, with one target; a channel
    quantizer elsewhere must sit on a cell some group's channels pass through."""
    grouped = {name for g in graph.groups for unit in g.units for name, _ in unit.channels}
    for name in wanted - grouped:
        raise CellError(name, "QWeight", "Pattern=Channel, but none of its channels can be "
                        "removed (they reach a target, a Softmax, a channel-mixing Pool, or "
                        "an activation that does not keep 0)")
    for group in groups:
        missing = [p for p in group.producers if p not in wanted]
        if missing:
            raise UserError(f"[{group.producers[0]}] shares its channels with "
                            f"{', '.join(f'[{m}]' for m in missing)}: give "
                            f"{'them' if len(missing) > 1 else 'it'} QWeight=Prune with "
                            "QWeight.Pattern=Channel too (one decision per channel)")
        targets = {network.by_name[p].quantizer.target for p in group.producers}
        if len(targets) > 1:
            raise UserError(f"cells sharing channels ({', '.join(group.producers)}) must share "
                            f"one target; got {', '.join(f'{t:g}' for t in sorted(targets))}")


def producer_scores(cell):
    """One score per output channel of ``cell``: the sum of its criterion scores over
    every weight tensor (one per input), or the channel score of a per-channel criterion."""
    q = cell.quantizer
    rows = [q.scores(k).reshape(cell.output_shape[0], -1) for k in range(len(cell.weights))]
    if criteria.is_channel_only(q.options.criterion):
        return rows[0].mean(axis=1)
    return sum(r.sum(axis=1) for r in rows)


def _unit_scores(network, group):
    """One score per unit: its producers' channel scores, reduced per ``GroupReduction``."""
    first = network.by_name[group.producers[0]].quantizer.options
    reduce = _REDUCE[first.group_reduction]
    per_cell = {p: producer_scores(network.by_name[p]) for p in group.producers}
    return np.array([reduce([per_cell[p][c] for p in group.producers for c in unit.of(p)])
                     for unit in group.units])


def _group_fractions(network, groups, scores):
    """Each group's removed fraction: its producers' target (Layer scope), or its share of
    one cut-off over the z-scored unit scores of the Global-scope groups (as TI)."""
    options = [network.by_name[g.producers[0]].quantizer for g in groups]
    fractions = [q.target for q in options]
    pooled = [i for i, q in enumerate(options) if q.options.scope == "Global"]
    if pooled:
        targets = {options[i].target for i in pooled}
        if len(targets) > 1:
            raise UserError("cells with QWeight.Scope=Global must share one target")
        shares = scope.global_sparsities(
            [scope.zscore(scores[i]) for i in pooled], targets.pop(),
            [options[i].options.min_sparsity for i in pooled],
            [options[i].options.max_sparsity for i in pooled],
            ["+".join(groups[i].producers) for i in pooled])
        for i, share in zip(pooled, shares):
            fractions[i] = share
    return fractions


def kept_units(total, fraction, round_to):
    """How many of ``total`` units stay: ⌊(1−s)·n⌋ rounded up to a multiple of
    ``round_to`` (hardware lanes), at least one, at most ``total``."""
    kept = max(1, kept_count(total, fraction))
    return min(total, math.ceil(kept / round_to) * round_to)


def _removed_units(group, unit_scores, fraction, network):
    round_to = network.by_name[group.producers[0]].quantizer.options.round_to
    kept = kept_units(len(group.units), fraction, round_to)
    order = np.argsort(-unit_scores, kind="stable")  # ties keep the lower channel
    return [group.units[i] for i in sorted(order[kept:])]


def refresh_removed_channels(network, graph=None):
    """``network.removed_channels`` from the masks (decided, or just loaded from a weights
    file or snapshot): a unit is removed when every producer's rows of it are masked."""
    wanted = {c.name for c in channel_cells(network)}
    removed = {}
    for group in (graph or ChannelGraph(network)).groups if wanted else []:
        if not wanted & set(group.producers):
            continue
        if any(not network.by_name[p].quantizer.masks for p in group.producers):
            continue  # masks still to be computed (initialize_masks refreshes after)
        rows = {p: _masked_rows(network.by_name[p]) for p in group.producers}
        for unit in group.units:
            if all(rows[p][c] for p in group.producers for c in unit.of(p)):
                for name, channel in unit.channels:
                    removed.setdefault(name, []).append(channel)
    network.removed_channels = {name: np.array(sorted(c)) for name, c in removed.items()}


def _masked_rows(cell):
    """True for each output channel whose weights are masked in every tensor. Under soft
    masks (TI's Blend and Sigmoid before the knee) a channel is scaled, not removed yet."""
    q = cell.quantizer
    if q.soft is not None:
        return np.zeros(cell.output_shape[0], dtype=bool)
    return np.logical_and.reduce([~q.mask(k).reshape(cell.output_shape[0], -1).any(axis=1)
                                  for k in range(len(cell.weights))])


def zero_removed_channels(network):
    """Set every removed channel's bias, BatchNorm scale and shift and depthwise rows to 0.

    Called after each solver step: the producers' weight rows are masked by
    their quantizers, and these keep the channel exactly 0 downstream.
    """
    for name, channels in network.removed_channels.items():
        cell = network.by_name.get(name)
        if cell is None:
            continue
        params = list(zeroed_parameters(cell))
        if getattr(cell, "quantizer", None) is None:  # a depthwise cell following its producer
            params += getattr(cell, "weights", [])
        for param in params:
            param.value[channels] = 0
            param.changed()
