"""How well a network does on a whole partition, in inference mode.

The metric is its ``metric_target``'s: accuracy for a TargetScore, mean
squared error for a ``DataAsTarget=1`` target (``graph.targets``).
"""

import numpy as np

from n2prune.errors import UserError
from n2prune.graph.targets import ACCURACY

EVAL_BATCH = 1000


def evaluate(network, model, part, batch_size=EVAL_BATCH, ranks=None):
    """The metric target's score per sample over ``part`` (dropout off); None if empty.

    ``ranks`` (a distributed run's ``World``) deal the batches out, one in
    ``ranks.size`` each, and add up the scores: every rank gets the total.
    """
    images, labels = model.stimuli(part)
    if len(labels) == 0:
        return None
    target = network.metric_target
    # Random transformations applied to this partition draw the same numbers every time.
    rng = np.random.default_rng(0)
    starts = range(0, len(labels), batch_size)
    if ranks is not None:
        starts = starts[ranks.rank::ranks.size]
    total = 0.0
    for start in starts:
        idx = np.arange(start, min(start + batch_size, len(labels)))
        batch = model.provider.batch(images, idx, rng, part)
        out = network.forward(batch, train=False)
        total += target.score(out, labels[idx], batch)
    if ranks is not None:
        total = ranks.sum(total)
    return total / len(labels)


def require_accuracy(network, what):
    """``UserError`` unless the network is scored by accuracy (``what`` ranks by it)."""
    target = network.metric_target
    if target.metric is not ACCURACY:
        raise UserError(f"{what} ranks by accuracy; [{target.cell}]'s target measures the "
                        f"{target.metric.title} (DataAsTarget=1)")


def accuracy(network, model, part, batch_size=EVAL_BATCH):
    """Fraction of ``part`` the metric target classifies right (dropout off)."""
    require_accuracy(network, "this command")
    return evaluate(network, model, part, batch_size)
