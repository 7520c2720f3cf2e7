"""Targets: what a ``[<cell>.Target]`` section attaches to a cell (N2D2's TargetScore).

A target section holds ``Type`` (default ``TargetScore``) and the keys of
its type's table; N2D2's ``LabelsMapping`` is refused.

The output gradient is N2D2's ``target - output`` error with the sign of a
loss gradient, divided by the batch size (N2D2 divides the summed gradient
by the batch in its solver; we do it once here). A ``Softmax`` with
``WithLoss=1`` turns this into the softmax cross-entropy gradient
``(p - onehot) / N``; the reported loss is then the cross-entropy, otherwise
half the squared error.
"""

import functools

import numpy as np

from n2prune.errors import IniError, ShapeError
from n2prune.graph.keys import construct, place, read_keys
from n2prune.ini import values
from n2prune.registry import FLOAT, UINT, Key, Registry

TARGETS = Registry("Type")
"""Target types, by their ``Type=`` in a ``[<cell>.Target]`` section (N2D2's TargetScore only)."""


@TARGETS.register(
    "TargetScore",
    Key("TargetValue", "target_value", FLOAT, "target output of the labelled class"),
    Key("DefaultValue", "default_value", FLOAT, "target output of the other classes"),
    Key("TopN", "top_n", UINT, "a sample is correct when its label is among the TopN best scores"),
)
class Target:
    """The loss on the outputs of cell ``cell`` (name), per N2D2's TargetScore."""

    def __init__(self, cell, target_value=1.0, default_value=0.0, top_n=1):
        self.cell = cell
        self.target_value = float(target_value)
        self.default_value = float(default_value)
        self.top_n = int(top_n)

    def encode(self, labels, nb_outputs, dtype):
        """The (K, N) target matrix of ``labels``."""
        t = np.full((nb_outputs, len(labels)), self.default_value, dtype=dtype)
        t[labels, np.arange(len(labels))] = self.target_value
        return t

    def loss(self, cell, out, labels):
        """``(batch-mean loss, d loss / d out, number correct)`` for ``out`` (K, H, W, N)."""
        if out.shape[1:3] != (1, 1):
            raise ValueError(f"target [{self.cell}] must output 1x1 maps, got {out.shape[1:3]}")
        scores = out[:, 0, 0, :]
        n = scores.shape[1]
        t = self.encode(labels, scores.shape[0], scores.dtype)
        grad = (scores - t) / n
        if getattr(cell, "with_loss", False):
            picked = scores[labels, np.arange(n)]
            loss = float(-np.mean(np.log(np.maximum(picked, 1e-30))))
        else:
            loss = float(0.5 * np.sum((scores - t) ** 2) / n)
        return loss, grad.reshape(out.shape), self.correct(scores, labels)

    def correct(self, scores, labels):
        """Samples whose label is among the ``top_n`` best scores."""
        if self.top_n == 1:
            return int(np.sum(np.argmax(scores, axis=0) == labels))
        top = np.argsort(-scores, axis=0)[: self.top_n]
        return int(np.sum(np.any(top == labels[None, :], axis=0)))


def read_targets(ini, cell_shapes, known_keys):
    """The ``[<cell>.Target*]`` sections, in file order (at least one).

    ``cell_shapes`` maps each cell, in build order, to its output shape;
    ``known_keys[section]`` receives the key names a target section may hold.
    """
    targets = [_read_target(ini, sec, cell_shapes, known_keys.setdefault(sec.name, set()))
               for sec in ini.sections() if ".Target" in sec.name]
    if not targets:
        last = list(cell_shapes)[-1] if cell_shapes else None
        sec = ini.section(last) if last else None
        where = f"{sec.location} [{last}]" if last else ini.end_where()
        raise IniError(f"{where}: no target cell: add a [{last or '<cell>'}.Target] section "
                       "naming the cell the loss is computed on")
    return targets


def _read_target(ini, sec, cell_shapes, known):
    cell = sec.name[: sec.name.index(".Target")]
    where = f"{sec.location} [{sec.name}]"
    if cell not in cell_shapes:
        raise IniError(f"{where}: no cell [{cell}] to attach this target to")
    kind = TARGETS.lookup(ini.read(sec.name, "Type", values.as_str, "TargetScore"),
                          place(ini, sec.name, "Type"))
    known.update(("Type", "LabelsMapping", *kind.key_table.names()))
    if sec.has("LabelsMapping"):
        raise IniError("LabelsMapping is not supported", ini.where(sec.name, "LabelsMapping"))
    if cell_shapes[cell][1:] != (1, 1):
        raise ShapeError(f"{where}: a target needs a cell with 1x1 outputs, "
                         f"[{cell}] gives {'x'.join(map(str, cell_shapes[cell]))}")
    refs = {key.name: (sec.name, key.name) for key in kind.key_table if sec.has(key.name)}
    kwargs, located = read_keys(ini, refs, kind.key_table, "target key")
    return construct(functools.partial(kind, cell), kwargs, located, where)
