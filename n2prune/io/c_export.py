"""``export --format c``: a network as one C99 header and one source file for microcontrollers.

``<name>.h`` declares ``void <name>_forward(const float *input, float *output)``:
``input`` is one image, (C, H, W) floats row-major (n2prune's (C, H, W, N)
without the batch), ``output`` the metric target cell's (C, H, W) outputs.
``<name>.c`` holds the weights as ``static const`` arrays, each weight
tensor in the smallest of its dense, bitmask and CSR forms (``c_weights``),
the helpers the cells use (``c_kernels``) and the forward pass, its
activations in one static arena shared by liveness (``c_plan``). The header
starts with the flash and RAM bytes per cell (``size_table``).
"""

import re
from collections import namedtuple
from pathlib import Path

import numpy as np

from n2prune.errors import UserError
from n2prune.io.atomic import atomic_write_text
from n2prune.io.c_kernels import kernel_source
from n2prune.io.c_plan import CONCATENATING, ArenaPlan, needed_cells
from n2prune.io.c_text import header_text, size_table, source_text, summary
from n2prune.io.c_weights import WeightForms, c_array, float_literal, indent

MODEL_NAME = "n2prune_model"

# One line of the size table: a weight tensor (``forms``) or a cell without one.
SizeRow = namedtuple("SizeRow", "cell forms other_bytes output_bytes storage")


class _Source:
    """What the cells' emitters collect: declarations, helpers used, size rows."""

    def __init__(self, form):
        self.form = form
        self.kernels, self.declarations, self.names = set(), [], {}
        self.forms, self.other = {}, {}  # cell -> [WeightForms]; cell -> bytes

    def ident(self, cell, suffix=None):
        """A C identifier ``<cell>_<suffix>`` (``<cell>`` without a suffix), unique
        even when two cell names sanitize alike."""
        if cell not in self.names:
            base = re.sub(r"\W", "_", cell)
            base = base if base[:1].isalpha() else f"c_{base}"
            taken, unique, n = set(self.names.values()), base, 0
            while unique in taken:
                n += 1
                unique = f"{base}_{n}"
            self.names[cell] = unique
        return self.names[cell] if suffix is None else f"{self.names[cell]}_{suffix}"

    def floats(self, cell, suffix, values):
        """A ``static const float`` array of the cell (counted in its other flash)."""
        name = self.ident(cell, suffix)
        values = np.asarray(values, dtype=np.float32).ravel()
        self.declarations.append(c_array("float", name, values, fmt=float_literal))
        self.other[cell] = self.other.get(cell, 0) + 4 * len(values)
        return name

    def weights(self, cell, k, matrix):
        """Input ``k``'s weight matrix in its form: arrays ``<cell>_w``, ``<cell>_bits``...
        (``<cell>_in<k>_...`` for a second input and on)."""
        prefix = self.ident(cell, f"in{k}") if k else self.ident(cell)
        forms = WeightForms(prefix, matrix, self.form)
        self.declarations.append(forms.arrays())
        self.forms.setdefault(cell, []).append(forms)
        return forms

    def window(self, cell, in_plane, out_plane, kernel, stride, padding, dilation=(1, 1)):
        """A ``static const n2p_window`` of the cell's geometry; its name."""
        self.kernels.add("window")
        name = self.ident(cell, "g")
        values = (*in_plane, *out_plane, *kernel, *stride, *padding, *dilation)
        self.declarations.append(f"static const n2p_window {name} = {{"
                                 f"{', '.join(str(int(v)) for v in values)}}};\n")
        return name

    def call(self, kernel, *args):
        self.kernels.add(kernel)
        return f"n2p_{kernel}({', '.join(str(a) for a in args)});"

    def bias(self, cell):
        return "NULL" if cell.bias is None else self.floats(cell.name, "b", cell.bias.value)

    def activation(self, cell_name, act, y, n):
        """The call applying ``act`` in place to ``n`` floats at ``y`` (none for the identity)."""
        kind = type(act).__name__
        if kind == "Linear" and not act.clipping:
            return []
        if kind in ("Linear", "Saturation"):
            bound = act.clipping if kind == "Linear" else act.threshold
            args = ("N2P_CLAMP", float_literal(bound), "0.0f")
        elif kind == "Rectifier":
            cap = float_literal(act.clipping) if act.clipping > 0 else "FLT_MAX"
            args = ("N2P_RECTIFIER", float_literal(act.leak_slope), cap)
        elif kind in ("Tanh", "TanhLeCun"):
            args = ("N2P_TANH", float_literal(act.alpha), "0.0f")
        elif kind in ("Logistic", "LogisticWithLoss", "Swish"):
            args = ("N2P_SWISH" if kind == "Swish" else "N2P_LOGISTIC", "0.0f", "0.0f")
        else:
            raise UserError(f"[{cell_name}] activation {kind} has no C export "
                            "(Linear, Saturation, Rectifier, Tanh, Logistic, Swish)")
        return [self.call("activate", y, f"{n}L", *args)]


def _plane(shape):
    return shape[1] * shape[2]


def _conv_matrix(cell, k):
    """Input ``k``'s (O, C*KH*KW) weights as the forward pass uses them: masked
    weights and the kernels a mapping table leaves unconnected are zeros."""
    w = np.array(cell.effective_weights(k), dtype=np.float32)
    mask = cell.connections[k].mask
    if mask is not None:
        w *= mask
    return w.reshape(cell.nb_outputs, -1)


def _conv(s, cell, xs, y):
    plane = _plane(cell.output_shape)
    g = s.window(cell.name, cell.input_shapes[0][1:], cell.output_shape[1:], cell.kernel,
                 cell.stride, cell.padding, cell.dilation)
    lines = [s.call("fill", y, cell.nb_outputs, plane, s.bias(cell))]
    s.kernels.add("conv_tap")
    for k, x in enumerate(xs):
        forms = s.weights(cell.name, k, _conv_matrix(cell, k))
        lines.append(forms.loop(f"float *yo = {y} + (long)o * {plane};",
                                f"n2p_conv_tap(yo, {x}, j, v, &{g});", ""))
    return lines + s.activation(cell.name, cell.activation, y, cell.nb_outputs * plane)


def _fc(s, cell, xs, y):
    if cell.normalize:
        raise UserError(f"[{cell.name}] Fc with Normalize=1 has no C export")
    lines = [s.call("fill", y, cell.nb_outputs, 1, s.bias(cell))]
    for k, x in enumerate(xs):
        forms = s.weights(cell.name, k, np.asarray(cell.effective_weights(k), np.float32))
        lines.append(forms.loop("float acc = 0.0f;", f"acc += v * {x}[j];", f"{y}[o] += acc;"))
    return lines + s.activation(cell.name, cell.activation, y, cell.nb_outputs)


def _pool(s, cell, xs, y):
    g = s.window(cell.name, cell.input_shapes[0][1:], cell.output_shape[1:], cell.pool,
                 cell.stride, cell.padding)
    start = src = "NULL"
    if not cell.identity:  # each output's source channels, as one table
        counts = cell.mapping.sum(axis=0)
        if cell.mapping.shape[0] > 0xFFFF or counts.sum() > 0xFFFF:
            raise UserError(f"[{cell.name}] Pool mapping too large for a C export")
        start, src = s.ident(cell.name, "start"), s.ident(cell.name, "src")
        s.declarations.append(c_array("uint16_t", start, np.concatenate([[0], np.cumsum(counts)]),
                                      per_line=16))
        s.declarations.append(c_array("uint16_t", src, np.nonzero(cell.mapping.T)[1], per_line=16))
        s.other[cell.name] = s.other.get(cell.name, 0) + 2 * (len(counts) + 1 + int(counts.sum()))
    size = cell.nb_outputs * _plane(cell.output_shape)
    lines = [s.call("pool", xs[0], y, cell.nb_outputs, int(cell.pooling == "Max"), f"&{g}",
                    start, src)]
    return lines + s.activation(cell.name, cell.activation, y, size)


def _batchnorm(s, cell, xs, y):
    """Folded as n2prune's inference does: ``x * scale + shift`` per channel."""
    inv_std = 1.0 / np.sqrt(cell.variance.astype(np.float64) + cell.epsilon)
    scale = cell.scale.value * inv_std
    shift = cell.bias.value - cell.mean * scale
    channels, plane = cell.output_shape[0], _plane(cell.output_shape)
    lines = [s.call("scale_shift", xs[0], y, channels, f"{plane}L",
                    s.floats(cell.name, "scale", scale), s.floats(cell.name, "shift", shift))]
    return lines + s.activation(cell.name, cell.activation, y, channels * plane)


def _elemwise(s, cell, xs, y):
    op, channels, plane = cell.operation, cell.output_shape[0], _plane(cell.output_shape)
    size = channels * plane
    if op in ("Prod", "Max"):  # no coefficients, as n2prune
        lines = [f"memcpy({y}, {xs[0]}, sizeof(float) * {size});"]
        lines += [s.call("prod_max", y, x, f"{size}L", int(op == "Max")) for x in xs[1:]]
    elif op == "Sum":
        per_channel = cell.coeff_mode == "PerChannel"
        if per_channel:  # n2prune: the first C values, for every input
            w = s.floats(cell.name, "w", cell.coefficients[:channels])
            b = s.floats(cell.name, "s", cell.shifts[:channels])
        lines = []
        for k, x in enumerate(xs):
            if not per_channel:
                w = f"(const float[]){{{float_literal(cell.coefficients[k])}}}"
                b = f"(const float[]){{{float_literal(cell.shifts[k])}}}"
            lines.append(s.call("sum", y, x, channels, f"{plane}L", w, b, int(per_channel),
                                int(k > 0)))
    else:
        raise UserError(f"[{cell.name}] ElemWise Operation={op} has no C export "
                        "(Sum, Prod, Max only)")
    return lines + s.activation(cell.name, cell.activation, y, size)


def _padding(s, cell, xs, y):
    (in_rows, out_rows), (in_cols, out_cols) = cell.rows, cell.cols
    channels, height, width = cell.output_shape[0], *cell.input_shapes[0][1:]
    top, left = out_rows.start - in_rows.start, out_cols.start - in_cols.start
    return [s.call("pad", xs[0], y, channels, height, width, *cell.output_shape[1:], top, left)]


def _softmax(s, cell, xs, y):
    channels, plane = cell.output_shape[0], _plane(cell.output_shape)
    return [s.call("softmax", xs[0], y, channels, f"{plane}L", cell.group_size)]


def _copy_then_activate(s, cell, xs, y):
    """Dropout (the identity at inference) and Activation cells."""
    size = int(np.prod(cell.output_shape))
    lines = ([f"/* the identity: reads {xs[0]} */"] if xs[0] == y
             else [f"memcpy({y}, {xs[0]}, sizeof(float) * {size});"])
    if cell.type_name != "Activation":
        return lines
    return lines + s.activation(cell.name, cell.activation, y, size)


EMITTERS = {"Conv": _conv, "Fc": _fc, "Pool": _pool, "BatchNorm": _batchnorm,
            "ElemWise": _elemwise, "Padding": _padding, "Softmax": _softmax,
            "Dropout": _copy_then_activate, "Activation": _copy_then_activate}


def output_cell(network):
    return network.metric_target.cell if network.metric_target else network.cells[-1].name


def _concatenated(plan, cell, xs):
    """``(C pointer, copy lines)``: the inputs side by side in the cell's temporary."""
    temp, lines, at = plan.pointer(f"{cell.name}#concat"), [], 0
    for x, shape in zip(xs, cell.input_shapes):
        size = int(np.prod(shape))
        lines.append(f"memcpy({temp} + {at}, {x}, sizeof(float) * {size});")
        at += size
    return temp, lines


def _forward_body(network, s, plan, cells):
    """The statements of the forward function, one commented block per cell."""
    blocks = []
    for cell in cells:
        emit = EMITTERS.get(cell.type_name)
        if emit is None:
            raise UserError(f"[{cell.name}] cell type {cell.type_name} has no C export")
        xs = [plan.tensor(name) for name in network.inputs[cell.name]]
        lines = []
        if cell.type_name in CONCATENATING and len(xs) > 1:
            temp, lines = _concatenated(plan, cell, xs)
            xs = [temp]
        y = plan.tensor(cell.name)
        lines += emit(s, cell, xs, y)
        shape = "x".join(str(d) for d in cell.output_shape)
        blocks.append(f"/* [{cell.name}] {cell.type_name} -> {shape} */\n" + "\n".join(lines))
    return "\n\n".join(blocks)


CExport = namedtuple("CExport", "header source rows arena_bytes")


def build_c(network, name=MODEL_NAME, form=None):
    """The C text of ``network`` (its current, masked weights) as a ``CExport``.

    ``form`` (``"dense"``, ``"bitmask"``, ``"csr"``) forces every weight
    tensor into one form; by default each gets its smallest. ``name`` prefixes
    the files and the C function (``<name>_forward``).
    """
    if not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise UserError(f"C export name {name!r} is not a C identifier")
    output = output_cell(network)
    cells = needed_cells(network, output)
    plan = ArenaPlan(network, cells, output)
    s = _Source(form)
    body = _forward_body(network, s, plan, cells)
    rows = [SizeRow(c.name, s.forms.get(c.name, []), s.other.get(c.name, 0),
                    4 * int(np.prod(c.output_shape)), plan.storage[c.name]) for c in cells]
    arena_bytes = 4 * plan.floats
    out_shape = network.by_name[output].output_shape
    table = size_table(rows, arena_bytes)
    header = header_text(name, network.input_shape, out_shape, table)
    source = source_text(name, kernel_source(s.kernels), "".join(s.declarations),
                         max(plan.floats, 1), indent(body))
    return CExport(header, source, rows, arena_bytes)


def export_c(network, folder, name=MODEL_NAME, form=None):
    """``<name>.h`` and ``<name>.c`` written into ``folder``; returns the ``CExport``."""
    result = build_c(network, name, form)
    folder = Path(folder)
    atomic_write_text(folder / f"{name}.h", result.header)
    atomic_write_text(folder / f"{name}.c", result.source)
    return result


def write_c(network, out, _run):
    """``export --format c``: the two files in folder ``out``; the lines the verb prints."""
    result = export_c(network, out)
    return f"wrote {Path(out) / MODEL_NAME}.h and .c: {summary(result.rows, result.arena_bytes)}"
