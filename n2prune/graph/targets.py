"""Targets: what a ``[<cell>.Target]`` section attaches to a cell (N2D2's Target and TargetScore).

A target section holds ``Type`` (default ``TargetScore``), ``DataAsTarget``
and the keys of its type's table; N2D2's ``LabelsMapping`` is refused.

* ``TargetScore`` puts a loss on the labels and scores the network
  (accuracy); ``Target`` (N2D2's base class) puts the same loss but scores
  nothing. On a cell that takes labels (TargetBias) either only hands the
  labels to the cell: N2D2's ``TargetBiasCell::applyLoss`` returns 0 and
  leaves no gradient.
* ``DataAsTarget=1`` (either type) makes the stimuli the target: the cell
  must output the input's shape, the loss is N2D2's distribution-weighted
  squared error and the score the mean squared error.

The output gradient is N2D2's ``target - output`` error with the sign of a
loss gradient, divided by the batch size (N2D2 divides the summed gradient
by the batch in its solver; we do it once here). A ``Softmax`` with
``WithLoss=1`` turns the label loss's into the softmax cross-entropy
gradient ``(p - onehot) / N``; the reported loss is then the cross-entropy,
otherwise half the squared error.
"""

import dataclasses
import functools

import numpy as np

from n2prune.errors import IniError, ShapeError
from n2prune.graph.keys import construct, place, read_keys
from n2prune.ini import values
from n2prune.registry import FLOAT, UINT, Key, Registry

TARGETS = Registry("Type")
"""Target types, by their ``Type=`` in a ``[<cell>.Target]`` section (N2D2's TargetScore, Target)."""


@dataclasses.dataclass(frozen=True)
class Metric:
    """What a target scores: ``column`` in logs and metrics.csv, ``key`` in summary.json
    (``test_<key>``), ``title`` in sentences, ``digits`` shown after the point; per
    sample, averaged over a partition."""

    column: str
    key: str
    title: str
    higher_is_better: bool
    digits: int = 4

    def format(self, value):
        """``value`` as logs show it; ``-`` for None."""
        return "-" if value is None else f"{value:.{self.digits}f}"

    def better(self, value, best):
        return best is None or (value > best if self.higher_is_better else value < best)


ACCURACY = Metric("acc", "accuracy", "accuracy", True)
MSE = Metric("mse", "mse", "mean squared error", False, digits=5)


class Target:
    """A loss (and maybe a score) on the outputs of cell ``cell`` (name)."""

    metric = None  # a Metric if the target scores the network
    uses_labels = True

    def __init__(self, cell):
        self.cell = cell

    def loss(self, cell, out, labels, stimuli):
        """``(batch-mean loss, d loss / d out or None, score)``: ``out`` is the cell's
        (C, H, W, N) output, ``stimuli`` the network's input; score as ``score``."""
        raise NotImplementedError

    def score(self, out, labels, stimuli):
        """The metric summed over the batch's samples (None here: no metric)."""


@TARGETS.register(
    "Target",
    Key("TargetValue", "target_value", FLOAT, "target output of the labelled class"),
    Key("DefaultValue", "default_value", FLOAT, "target output of the other classes"),
    Key("TopN", "top_n", UINT, "a sample is correct when its label is among the TopN best scores"),
)
class LabelTarget(Target):
    """A loss on the labels, no score (N2D2's base Target); feeds the labels to a TargetBias."""

    def __init__(self, cell, target_value=1.0, default_value=0.0, top_n=1):
        super().__init__(cell)
        self.target_value = float(target_value)
        self.default_value = float(default_value)
        self.top_n = int(top_n)

    def encode(self, labels, nb_outputs, dtype):
        """The (K, N) target matrix of ``labels``."""
        t = np.full((nb_outputs, len(labels)), self.default_value, dtype=dtype)
        t[labels, np.arange(len(labels))] = self.target_value
        return t

    def loss(self, cell, out, labels, stimuli):
        if out.shape[1:3] != (1, 1):
            raise ValueError(f"target [{self.cell}] must output 1x1 maps, got {out.shape[1:3]}")
        scores = out[:, 0, 0, :]
        score = self.score(out, labels, stimuli)
        if cell.takes_labels:  # the labels went to the cell's forward: no loss here
            return 0.0, None, score
        n = scores.shape[1]
        t = self.encode(labels, scores.shape[0], scores.dtype)
        grad = (scores - t) / n
        if getattr(cell, "with_loss", False):
            picked = scores[labels, np.arange(n)]
            loss = float(-np.mean(np.log(np.maximum(picked, 1e-30))))
        else:
            loss = float(0.5 * np.sum((scores - t) ** 2) / n)
        return loss, grad.reshape(out.shape), score

    def correct(self, scores, labels):
        """Samples whose label is among the ``top_n`` best of ``scores`` (K, N)."""
        if self.top_n == 1:
            return int(np.sum(np.argmax(scores, axis=0) == labels))
        top = np.argsort(-scores, axis=0)[: self.top_n]
        return int(np.sum(np.any(top == labels[None, :], axis=0)))


@TARGETS.register("TargetScore", *LabelTarget.key_table)
class ScoreTarget(LabelTarget):
    """The loss on the outputs of cell ``cell`` (name), and the accuracy, per N2D2's TargetScore."""

    metric = ACCURACY

    def score(self, out, labels, stimuli):
        return self.correct(out[:, 0, 0, :], labels)


class DataTarget(Target):
    """``DataAsTarget=1``: the cell's outputs regress onto the stimuli (an auto-encoder).

    The loss is N2D2's ``applyLossDistribWeighted(20, -1, 1)``: the target
    values are binned in 20 steps over [-1, 1] and each output's error is
    divided by the number of target values of the batch in its bin, so that
    the few ink pixels of a digit weigh as much as its background. The
    gradient is N2D2's, ``(y - t) / count / N``; the loss shown is the one it
    is the gradient of, ``sum((y - t)^2 / count) / 2N``. The score is the plain
    mean squared error per pixel.
    """

    metric = MSE
    uses_labels = False
    STEPS, LOW, HIGH = 20, -1.0, 1.0

    def check(self, shape, input_shape):
        if tuple(shape) != tuple(input_shape):
            raise ShapeError(f"DataAsTarget=1 compares [{self.cell}]'s outputs with the stimuli: "
                             f"[{self.cell}] gives {_dims(shape)}, the stimuli are "
                             f"{_dims(input_shape)}; make the cell output the input's shape")

    def weights(self, stimuli):
        """``1 / count`` of each target value's bin over the whole batch."""
        step = (self.STEPS - 1) * (stimuli - self.LOW) / (self.HIGH - self.LOW)
        bins = np.clip(np.floor(step + 0.5), 0, self.STEPS - 1).astype(np.intp)
        counts = np.bincount(bins.ravel(), minlength=self.STEPS)
        return (1.0 / counts[bins]).astype(stimuli.dtype)

    def loss(self, cell, out, labels, stimuli):
        self.check(out.shape, stimuli.shape)
        n = out.shape[3]
        weights = self.weights(stimuli)
        diff = out - stimuli
        loss = float(0.5 * np.sum(weights * diff * diff, dtype=np.float64) / n)
        return loss, weights * diff / n, self.score(out, labels, stimuli)

    def score(self, out, labels, stimuli):
        self.check(out.shape, stimuli.shape)
        diff = (out - stimuli).astype(np.float64)
        return float(np.sum(np.mean(diff * diff, axis=(0, 1, 2))))


def _dims(shape):
    return "x".join(map(str, shape))


def read_targets(ini, cell_shapes, known_keys, input_shape=None, aliases=None):
    """The ``[<cell>.Target*]`` sections, in file order (at least one, one that scores).

    ``cell_shapes`` maps each cell, in build order, to its output shape;
    ``input_shape`` is the stimuli's (C, H, W); ``known_keys[section]``
    receives the key names a target section may hold; ``aliases`` maps other
    names of a cell's output (an imported ONNX graph's tensors) to the cell.
    """
    sections = [sec for sec in ini.sections() if ".Target" in sec.name]
    targets = [_read_target(ini, sec, cell_shapes, input_shape,
                            known_keys.setdefault(sec.name, set()), aliases or {})
               for sec in sections]
    if not targets:
        last = list(cell_shapes)[-1] if cell_shapes else None
        sec = ini.section(last) if last else None
        where = f"{sec.location} [{last}]" if last else ini.end_where()
        raise IniError(f"{where}: no target cell: add a [{last or '<cell>'}.Target] section "
                       "naming the cell the loss is computed on")
    if all(t.metric is None for t in targets):
        sec = sections[0]
        raise IniError(f"{sec.location} [{sec.name}]: no target scores the network (Type=Target "
                       "does not); make one a TargetScore, the default Type")
    return targets


def _read_target(ini, sec, cell_shapes, input_shape, known, aliases):
    cell = sec.name[: sec.name.index(".Target")]
    cell = aliases.get(cell, cell)
    where = f"{sec.location} [{sec.name}]"
    if cell not in cell_shapes:
        raise IniError(f"{where}: no cell [{cell}] to attach this target to")
    kind = TARGETS.lookup(ini.read(sec.name, "Type", values.as_str, "TargetScore"),
                          place(ini, sec.name, "Type"))
    known.update(("Type", "LabelsMapping", "DataAsTarget", *kind.key_table.names()))
    if sec.has("LabelsMapping"):
        raise IniError("LabelsMapping is not supported", ini.where(sec.name, "LabelsMapping"))
    if ini.read(sec.name, "DataAsTarget", values.as_bool, False):
        target = DataTarget(cell)
        if input_shape is not None:
            try:
                target.check(cell_shapes[cell], input_shape)
            except ShapeError as exc:
                raise ShapeError(f"{ini.where(sec.name, 'DataAsTarget')}: {exc}") from None
        return target
    if cell_shapes[cell][1:] != (1, 1):
        raise ShapeError(f"{where}: a target needs a cell with 1x1 outputs, "
                         f"[{cell}] gives {_dims(cell_shapes[cell])}")
    refs = {key.name: (sec.name, key.name) for key in kind.key_table if sec.has(key.name)}
    kwargs, located = read_keys(ini, refs, kind.key_table, "target key")
    return construct(functools.partial(kind, cell), kwargs, located, where)
