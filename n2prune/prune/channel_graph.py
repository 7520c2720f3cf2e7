"""Which channels of a network must be pruned together: dependency groups on the cells.

Every output channel of every cell (and of the stimuli) is a node. Cells
that pass a channel through unchanged tie their input channel to their
output channel, so the two are kept or removed together:

* pass-through cells (BatchNorm, Activation, Dropout, Padding, a Pool whose
  mapping sends each channel to one output): output channel ``off_j + c``
  is input ``j``'s channel ``c`` (several inputs are concatenated);
* ElemWise (Sum, Prod, Max...): channel ``c`` of every input and of the
  output is one channel;
* a depthwise Conv: output channel ``o`` follows the input channel it reads;
* Normalize: channel ``c`` in and out (a removed channel is 0, adds nothing
  to the norm and stays 0, so the other outputs do not change);
* TargetBias: channel ``c`` in and out, but its channels are the classes
  its target labels, so they are locked with the target's.

Conv (other mappings), Deconv and Fc cells *produce* new channels from weights and
*consume* their inputs' channels through weight columns, which shrinking
removes, so they tie nothing. A connected set of nodes is a *unit*: one
decision, keep or remove. Units whose channels come from the same producers
form a *group*, ranked together (Torch-Pruning's dependency groups,
TinyNeuralNetwork's graph modifier, on N2D2's implicit concatenations).

Some channels cannot go: the stimuli's, a target's outputs, the inputs of a
Softmax or of a Pool that mixes channels, and the outputs of a cell whose
activation does not map 0 to 0 or whose ElemWise shifts are not 0 (the
removed channel would not be zero there), or per-channel ElemWise
coefficients. Their units are *locked*.
"""

from dataclasses import dataclass, field

import numpy as np

from n2prune.cells import BatchNorm, Conv, Deconv, ElemWise, Fc, Pool, Softmax

# Cells whose weights make new output channels (weights OCHW or (O, I): axis 0).
PRODUCERS = (Conv, Deconv, Fc)
# Cells whose output channels are their (concatenated) inputs' channels.
PASS_THROUGH = ("BatchNorm", "Activation", "Dropout", "Padding", "Normalize", "TargetBias")


@dataclass
class Unit:
    """Channels kept or removed together: ``(cell name, channel)`` pairs."""

    channels: list
    locked: bool = False

    def of(self, cell):
        """This unit's channels in the outputs of ``cell``."""
        return [c for name, c in self.channels if name == cell]


@dataclass
class ChannelGroup:
    """Units produced by the same Conv/Fc cells (``producers``), ranked together."""

    producers: tuple
    units: list = field(default_factory=list)


class ChannelGraph:
    """The units and groups of ``network`` (cells, ``inputs``, targets)."""

    def __init__(self, network):
        self.network = network
        self.sizes = {name: network.input_shape[0] for names in network.inputs.values()
                      for name in names if name not in network.by_name}
        self.sizes.update({cell.name: cell.output_shape[0] for cell in network.cells})
        self.base, total = {}, 0
        for name, size in self.sizes.items():
            self.base[name], total = total, total + size
        self.parent = np.arange(total)
        self.locked = np.zeros(total, dtype=bool)
        for name in self.sizes:
            if name not in network.by_name:
                self._lock(name)
        for cell in network.cells:
            self._couple(cell, network.inputs[cell.name])
        for target in network.targets:
            self._lock(target.cell)
        self.units = self._units()
        self.groups = self._groups()

    # -- building -----------------------------------------------------------
    def node(self, name, channel):
        return self.base[name] + channel

    def _find(self, a):
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:  # path compression
            self.parent[a], a = root, self.parent[a]
        return root

    def _union(self, a, b):
        self.parent[self._find(a)] = self._find(b)

    def _lock(self, name, channels=None):
        start = self.base[name]
        stop = start + self.sizes[name]
        if channels is None:
            self.locked[start:stop] = True
        else:
            self.locked[start + np.asarray(channels, dtype=np.intp)] = True

    def _couple(self, cell, inputs):
        kind = type(cell).__name__
        if kind in PASS_THROUGH:
            self._concatenate(cell, inputs)
        elif isinstance(cell, Pool):
            self._pool(cell, inputs)
        elif isinstance(cell, ElemWise):
            for name in inputs:
                for c in range(self.sizes[cell.name]):
                    self._union(self.node(name, c), self.node(cell.name, c))
            # A shifted channel is not 0; per-channel coefficients would need the
            # INI's Weights= list cut too (not done: such channels stay).
            if np.any(np.asarray(cell.shifts) != 0) or cell.coeff_mode == "PerChannel":
                self._lock(cell.name)
        elif isinstance(cell, Conv):
            self._conv(cell, inputs)
        elif isinstance(cell, Softmax):
            for name in inputs:
                self._lock(name)
            self._lock(cell.name)
        elif not isinstance(cell, (Fc, Deconv)):
            for name in (*inputs, cell.name):  # a cell this analysis does not know
                self._lock(name)
        activation = getattr(cell, "activation", None)
        if activation is not None and not activation.maps_zero_to_zero:
            self._lock(cell.name)

    def _concatenate(self, cell, inputs):
        offset = 0
        for name in inputs:
            for c in range(self.sizes[name]):
                self._union(self.node(name, c), self.node(cell.name, offset + c))
            offset += self.sizes[name]

    def _pool(self, cell, inputs):
        """A pool that sends each input channel to exactly one output passes channels
        through; any other mapping mixes them (an N2D2 Pool without mapping pools all)."""
        mapping = np.asarray(cell.mapping) != 0
        sources = self._concat_nodes(inputs)
        one_to_one = (mapping.sum(axis=0) == 1).all() and (mapping.sum(axis=1) <= 1).all()
        if not one_to_one:
            self.locked[sources] = True
            self._lock(cell.name)
            return
        for out, channel in enumerate(mapping.argmax(axis=0)):
            self._union(sources[channel], self.node(cell.name, out))
        unused = sources[~mapping.any(axis=1)]
        self.locked[unused] = True  # read by no output: removing it changes nothing, keep it simple

    def _conv(self, cell, inputs):
        for name, connection in zip(inputs, cell.connections):
            if connection.kind == "depthwise":
                for out, channel in enumerate(connection.source):
                    self._union(self.node(name, int(channel)), self.node(cell.name, out))

    def _concat_nodes(self, inputs):
        return np.concatenate([self.base[name] + np.arange(self.sizes[name]) for name in inputs])

    # -- reading ------------------------------------------------------------
    def _units(self):
        roots = np.array([self._find(a) for a in range(self.parent.size)])
        names = np.empty(self.parent.size, dtype=object)
        channels = np.empty(self.parent.size, dtype=np.intp)
        for name, start in self.base.items():
            names[start:start + self.sizes[name]] = name
            channels[start:start + self.sizes[name]] = np.arange(self.sizes[name])
        order = np.argsort(roots, kind="stable")
        cuts = np.flatnonzero(np.diff(roots[order])) + 1
        return [Unit([(names[m], int(channels[m])) for m in members],
                     bool(self.locked[members].any())) for members in np.split(order, cuts)]

    def producers(self, unit):
        """The Conv/Deconv/Fc cells (not depthwise) whose weights make the unit's channels."""
        found = []
        for name, _ in unit.channels:
            cell = self.network.by_name.get(name)
            if isinstance(cell, PRODUCERS) and not _is_depthwise(cell) and name not in found:
                found.append(name)
        return tuple(found)

    def _groups(self):
        groups = {}
        for unit in self.units:
            producers = self.producers(unit)
            if unit.locked or not producers:
                continue
            groups.setdefault(producers, ChannelGroup(producers)).units.append(unit)
        return list(groups.values())

    def group_of(self, cell_name):
        """The group ``cell_name`` produces channels for, or None."""
        return next((g for g in self.groups if cell_name in g.producers), None)


def _is_depthwise(cell):
    return isinstance(cell, Conv) and all(c.kind == "depthwise" for c in cell.connections)


def zeroed_parameters(cell):
    """The per-channel Params that must be 0 on a removed output channel of ``cell``
    besides the weight rows: its bias, a BatchNorm's scale and shift."""
    if isinstance(cell, BatchNorm):
        return [cell.scale, cell.bias]
    bias = getattr(cell, "bias", None)
    return [] if bias is None else [bias]
