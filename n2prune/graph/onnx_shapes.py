"""Window geometry of ONNX Conv and pooling nodes, in n2prune's (h, w) pairs.

ONNX writes ``pads`` as ``(top, left, bottom, right)`` and may ask for
``auto_pad``; n2prune's Conv and Pool pad symmetrically. Asymmetric padding
becomes a Padding cell named ``<output>_padding`` before the cell, as N2D2
does, which is exact for a convolution and an average counting the padding.
"""

import numpy as np

from n2prune.graph.onnx_graph import Unsupported


def pairs(node, name, default=1):
    """A 2-D attribute (``strides``, ``dilations``) as an ``(h, w)`` pair."""
    value = tuple(int(v) for v in node.attrs.get(name, (default, default)))
    if len(value) != 2:
        raise Unsupported(node, f"{name} {list(value)}: only 2-D windows are supported")
    return value


def window_pads(node, plane, window, stride, dilation):
    """``(top, left, bottom, right)`` from ``pads`` or ``auto_pad`` over an (H, W) ``plane``."""
    if len(window) != 2:
        raise Unsupported(node, f"a {len(window)}-D window: only 2-D windows are supported")
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = tuple(int(p) for p in node.attrs.get("pads", (0, 0, 0, 0)))
        if len(pads) != 4 or min(pads) < 0:
            raise Unsupported(node, f"pads {list(pads)}: expected 4 values >= 0")
        return pads
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise Unsupported(node, f"auto_pad={auto} is not an ONNX value")
    begin, end = [], []
    for size, k, s, d in zip(plane, window, stride, dilation):
        # ONNX: the output is ceil(size / stride); the extra padding goes at the end (UPPER).
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        first = total // 2 if auto == "SAME_UPPER" else total - total // 2
        begin.append(first)
        end.append(total - first)
    return (*begin, *end)


def window_out(node, plane, window, stride, pads, dilation=(1, 1), ceil=False):
    """Output (H, W) of a window over ``plane`` padded by ``pads`` (top, left, bottom, right)."""
    out = []
    for a in (0, 1):
        span = plane[a] + pads[a] + pads[a + 2] - (dilation[a] * (window[a] - 1) + 1)
        if span < 0:
            raise Unsupported(node, f"its {window[0]}x{window[1]} window does not fit the "
                              f"{plane[0]}x{plane[1]} input")
        out.append((-(-span // stride[a]) if ceil else span // stride[a]) + 1)
    return tuple(out)


def pad_first(t, node, x, pads):
    """``(input, (ph, pw))`` of a windowed cell: symmetric ``pads`` stay the cell's,
    others become a Padding cell ``<output>_padding`` in front of it (as N2D2)."""
    top, left, bottom, right = pads
    if (top, left) == (bottom, right):
        return x, (top, left)
    keys = {"TopPadding": top, "BottomPadding": bottom, "LeftPadding": left,
            "RightPadding": right}
    shape = (x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right)
    return t.add_cell(node, "Padding", [x], shape, keys, name=f"{node.outputs[0]}_padding"), (0, 0)


def dense_group_weights(w, group, channels):
    """ONNX's grouped (O, C/group, KH, KW) weights as n2prune's dense (O, C, KH, KW),
    zero outside the groups (the Conv's ``Mapping.NbGroups`` keeps them zero)."""
    if group == 1:
        return np.ascontiguousarray(w, np.float32)
    per_out, per_in = w.shape[0] // group, channels // group
    dense = np.zeros((w.shape[0], channels, *w.shape[2:]), np.float32)
    for g in range(group):
        outs = slice(g * per_out, (g + 1) * per_out)
        dense[outs, g * per_in:(g + 1) * per_in] = w[outs]
    return dense
