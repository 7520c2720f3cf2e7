"""A small network with every way channels are shared, for the channel-pruning tests.

``c1`` (8 channels) feeds a depthwise ``dw``, a pointwise ``pw`` and its
BatchNorm ``bn``, which meet ``c1`` again at the residual ``add``: c1, dw,
pw, bn and add share one set of 8 channels (producers c1 and pw). ``cat``
reads ``add`` and ``c3`` (N2D2's implicit concatenation), ``pool`` passes
cat's channels through, and the Fc ``fc`` (the target) reads them flattened.
"""

import numpy as np

from n2prune.graph.builder import build_network
from n2prune.ini import parse_ini_text

PRUNE = """QWeight=Prune
QWeight.PruningMode=Static
QWeight.Pattern=Channel
QWeight.Threshold={threshold}
{extra}"""

NET = """
[sp]
SizeX=8
SizeY=8
BatchSize=4

[c1]
Input=sp
Type=Conv
KernelDims=3 3
Padding=1
NbOutputs=8
ActivationFunction=Rectifier
{c1}

[dw]
Input=c1
Type=Conv
KernelDims=3 3
Padding=1
NbOutputs=8
Mapping.ChannelsPerGroup=1
{dw}

[pw]
Input=dw
Type=Conv
KernelDims=1 1
NbOutputs=8
{pw}

[bn]
Input=pw
Type=BatchNorm
NbOutputs=8
ActivationFunction=Rectifier

[add]
Input=bn,c1
Type=ElemWise
NbOutputs=8
Operation=Sum

[c3]
Input=sp
Type=Conv
KernelDims=3 3
Padding=1
NbOutputs=4
ActivationFunction=Rectifier
{c3}

[cat]
Input=add,c3
Type=Conv
KernelDims=3 3
Padding=1
NbOutputs=6
ActivationFunction=Rectifier
{cat}

[pool]
Input=cat
Type=Pool
PoolDims=2 2
Stride=2
NbOutputs=6
Pooling=Max
Mapping.ChannelsPerGroup=1

[fc]
Input=pool
Type=Fc
NbOutputs=10

[fc.Target]
"""


def channel_net_text(threshold=0.5, pruned=("c1", "pw", "c3", "cat"), extra=""):
    keys = PRUNE.format(threshold=threshold, extra=extra)
    cells = ("c1", "dw", "pw", "c3", "cat")
    return NET.format(**{name: keys if name in pruned else "" for name in cells})


def channel_net(threshold=0.5, pruned=("c1", "pw", "c3", "cat"), extra="", seed=3):
    """The built network (masks not computed yet: ``initialize_masks``)."""
    network, _provider, _ctx = build_network(
        parse_ini_text(channel_net_text(threshold, pruned, extra)), seed=seed)
    return network


def random_batch(network, n=4, seed=0):
    """A (C, H, W, N) float32 batch of the network's input shape."""
    return np.random.default_rng(seed).standard_normal((*network.input_shape, n)).astype(np.float32)
