"""Physical removal of the channels a channel group removed: smaller arrays, same outputs.

``kept_channels`` says which output channels of each cell stay;
``shrunk_arrays`` cuts every array of a network (``io.checkpoint``'s
``network_arrays`` layout) to them: the removed rows of producers, the
columns of consumers (a flattened Fc input loses a block of H·W columns per
channel), BatchNorm statistics, masks of the cells that keep pruning. The
INI side (``NbOutputs``, mapping tables) is ``n2prune.shrink``'s.
"""

import numpy as np

from n2prune.cells import BatchNorm, Conv, Deconv, Fc


def kept_channels(network):
    """``{name: bool array}``: the output channels of every cell (and of the stimuli) kept."""
    kept = {name: np.ones(network.input_shape[0], dtype=bool)
            for names in network.inputs.values() for name in names if name not in network.by_name}
    for cell in network.cells:
        keep = np.ones(cell.output_shape[0], dtype=bool)
        keep[network.removed_channels.get(cell.name, [])] = False
        kept[cell.name] = keep
    return kept


def kept_inputs(network, kept, cell):
    """Per input of ``cell``, the kept channels of that input."""
    return [kept[name] for name in network.inputs[cell.name]]


def mapping_of(cell, k):
    """The (C_k, O) 0/1 connection matrix of input ``k`` of a Conv or Deconv (all ones when dense)."""
    connection = cell.connections[k]
    channels = cell.input_shapes[k][0]
    if connection.mask is None:
        return np.ones((channels, cell.nb_outputs), dtype=np.int8)
    return connection.mask[:, :, 0, 0].T.astype(np.int8)


def _cut_weights(cell, k, array, keep_out, keep_in):
    """Tensor ``k`` of a Conv or Deconv (O, C, kh, kw) or an Fc (O, C·H·W) cut to the kept channels."""
    if isinstance(cell, Fc):
        _, height, width = cell.input_shapes[k]
        return array[keep_out][:, np.repeat(keep_in, height * width)]
    return array[keep_out][:, keep_in]


def shrunk_arrays(network, arrays, removed_quantizers=()):
    """``arrays`` (``network_arrays`` of ``network``) cut to the kept channels.

    The quantizer states of ``removed_quantizers`` (the channel-pruning cells,
    which the shrunk model no longer prunes) are left out.
    """
    kept = kept_channels(network)
    out = {}
    for key, value in arrays.items():
        kind, rest = key.split("/", 1)
        name = rest.split(".", 1)[0] if kind == "param" else rest.split("/", 1)[0]
        cell = network.by_name.get(name)
        if cell is None:
            out[key] = value
        elif kind == "quant" and name in removed_quantizers:
            continue
        else:
            out[key] = _cut(cell, key, value, kept[name], kept_inputs(network, kept, cell))
    return out


def _cut(cell, key, value, keep_out, keep_in):
    """One array of ``cell`` cut: weights (and their masks) by output and input channels,
    per-channel vectors by output channel, scalars as they are."""
    last = key.rsplit("/", 1)[-1]
    tensor = _tensor_index(cell, key, last)
    if tensor is not None:
        return _cut_weights(cell, tensor, value, keep_out, keep_in[tensor])
    if np.ndim(value) == 1 and (isinstance(cell, (BatchNorm, Conv, Deconv, Fc)) and
                                np.shape(value)[0] == keep_out.size):
        return value[keep_out]  # biases, BatchNorm scales, shifts, mean, variance
    return value


def _tensor_index(cell, key, last):
    """k when ``key`` is weight tensor k (``param/c.weights[k]``) or its mask or soft mask."""
    if key.startswith("param/") and ".weights[" in key:
        return int(key[key.index("[") + 1:-1])
    if key.startswith("quant/") and last.startswith(("mask", "soft")) and last[4:].isdigit():
        return int(last[4:])
    return None
