"""Cell pairs computed in one pass: Conv + ReLU + per-channel max Pool.

With the batch innermost, the direct kernels can pool a convolution's rows
while they are in cache, so the conv output (LeNet's largest array) is never
stored, and the ReLU and pool passes over it disappear. Since
``max(relu(a), relu(b)) = relu(max(a, b))``, forward and gradients are those
of the separate cells; ties pick the same first maximum.

A pair qualifies when the Conv has one input and a plain ``Rectifier``
(no leak, no clipping), the Pool is ``Max`` with the identity mapping, no
activation and no padding, and the Pool is the Conv's only reader (nor is
the Conv a target). Whether a forward pass actually fuses is decided per
call, and recorded in the pair (``ConvMaxPool.pooled``): only when the
direct kernels serve the Conv.
"""

from n2prune.cells.activations import Linear, Rectifier
from n2prune.cells.conv import Conv
from n2prune.cells.pool import Pool


class ConvMaxPool:
    """A Conv and the max Pool that alone reads it; both cells hold the pair as ``fusion``.

    The pair is where the two cells meet: ``pooled`` is the decision of the
    last forward pass. The Conv sets it (only the Conv knows whether its
    direct kernels serve this batch) and, when set, returns the pool's
    output; the Pool then passes that output, and in backward its gradient,
    through unchanged. Each backward follows its own forward's decision.
    """

    def __init__(self, conv, pool):
        self.conv, self.pool = conv, pool
        self.pooled = False


def _plain_rectifier(activation):
    return (isinstance(activation, Rectifier) and activation.leak_slope == 0
            and activation.clipping == 0)


def _fusable(conv, pool):
    return (isinstance(conv, Conv) and len(conv.input_shapes) == 1
            and _plain_rectifier(conv.activation) and pool.pooling == "Max" and pool.identity
            and not any(pool.padding) and isinstance(pool.activation, Linear)
            and not pool.activation.clipping)


def fuse_conv_max_pool(cells, inputs, targets):
    """Pair each qualifying Conv with the Pool reading it; returns the pairs' names.

    ``inputs[name]`` lists the cells ``name`` reads; ``targets`` the names
    a loss reads (their outputs must stay unpooled).
    """
    by_name = {cell.name: cell for cell in cells}
    readers = {}
    for name, sources in inputs.items():
        for source in sources:
            readers.setdefault(source, []).append(name)
    fused = []
    for pool in cells:
        sources = inputs.get(pool.name, [])
        if not isinstance(pool, Pool) or len(sources) != 1:
            continue
        conv = by_name.get(sources[0])
        if (conv is None or readers.get(conv.name) != [pool.name] or conv.name in targets
                or not _fusable(conv, pool)):
            continue
        conv.fusion = pool.fusion = ConvMaxPool(conv, pool)
        fused.append((conv.name, pool.name))
    return fused
