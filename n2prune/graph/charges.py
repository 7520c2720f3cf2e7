"""A cell's training memory, charged to the budget before its constructor allocates.

The cells that allocate with their keys (Conv and Deconv: weights, outputs and
im2col columns; Fc: weights and features; Pool and Padding: outputs) are charged
from the keys already read, so an oversized cell is refused at the key that
makes it big before any array exists. The others allocate little: they are
charged from their own numbers once built (``charge_built``). One formula,
``sizes.cell_bytes``.
"""

import math

from n2prune.cells import Conv, Deconv, Fc, Padding, Pool
from n2prune.cells.deconv import deconv_out_size
from n2prune.graph import sizes
from n2prune.kernels import conv_out_size


def charge_cell(ctx, name, where, nb_params, output_shape, workspace=0, connections=0):
    """Charge cell ``name``'s training bytes (``sizes.cell_bytes``), refused at ``where``."""
    batch = ctx.budget.batch_size
    shape = "x".join(map(str, output_shape))
    detail = f"[{name}]: {nb_params:,} parameters, {shape} outputs x batch {batch}"
    if workspace:
        detail += f", {workspace:,} values of workspace per sample"
    nbytes = sizes.cell_bytes(nb_params, output_shape, batch, workspace, connections)
    ctx.budget.charge(name, nbytes, where, detail)


def charge_before(ctx, name, cls, settings, located, shapes):
    """Charge a cell of class ``cls`` from its ``settings`` (keyword -> value, defaults
    included) before it is built; ``located``: keyword -> where its key was written."""
    names = {key.attr: key.name for key in cls.key_table}

    def where(attr):
        return located.get(attr) or ctx.ini.where(name, names[attr])

    for klass, charge in _CHARGES.items():
        if issubclass(cls, klass):
            charge(ctx, name, settings, where, shapes)
            return


def charge_built(ctx, cell):
    """Charge a cell not charged before it was built, from its output shape and parameters."""
    if cell.name in ctx.budget.items:
        return
    nb_params = sum(p.value.size for p in cell.params())
    charge_cell(ctx, cell.name, ctx.ini.where(cell.name, "NbOutputs"), nb_params, cell.output_shape)


def _plane(shapes, geometry):
    """Output (H, W) of a Conv/Pool window on the first input, or None if it does not
    fit (the cell's constructor then says why)."""
    try:
        return tuple(conv_out_size(size, *args) for size, *args in zip(shapes[0][1:], *geometry))
    except ValueError:
        return None


def _grown(shapes, plane):
    """True when the padding made the output plane larger than the input's."""
    return plane[0] * plane[1] > shapes[0][1] * shapes[0][2]


def _charge_conv(ctx, name, s, where, shapes):
    nb_outputs, kernel = s["nb_outputs"], s["kernel"]
    plane = _plane(shapes, (kernel, s["stride"], s["padding"], s["dilation"]))
    if plane is None:
        return
    batch = ctx.budget.batch_size
    channels = sum(shape[0] for shape in shapes)
    taps = channels * kernel[0] * kernel[1]
    workspace = taps * plane[0] * plane[1]  # im2col columns
    # Blame the key that makes the cell big: NbOutputs for the weights or the
    # outputs, the kernel for the im2col columns, the padding if it enlarged the plane.
    weights = sizes.PARAM_COPIES * nb_outputs * taps
    outputs = sizes.ACTIVATION_COPIES * batch * nb_outputs * plane[0] * plane[1]
    columns = sizes.WORKSPACE_COPIES * batch * workspace
    attr = "nb_outputs"
    if max(outputs, columns) > weights:
        attr = "padding" if _grown(shapes, plane) else ("kernel" if columns > outputs else attr)
    charge_cell(ctx, name, where(attr), nb_outputs * (taps + 1), (nb_outputs, *plane), workspace,
                connections=channels * nb_outputs)


def _charge_deconv(ctx, name, s, where, shapes):
    """Weights, the (upsampled) outputs and the im2col columns of the output's gradient."""
    nb_outputs, kernel = s["nb_outputs"], s["kernel"]
    geometry = (kernel, s["stride"], s["padding"], s["dilation"])
    plane = tuple(deconv_out_size(size, *args) for size, *args in zip(shapes[0][1:], *geometry))
    if min(plane) < 1:
        return  # the cell's constructor says why
    batch = ctx.budget.batch_size
    channels = sum(shape[0] for shape in shapes)
    taps = kernel[0] * kernel[1]
    workspace = nb_outputs * taps * shapes[0][1] * shapes[0][2]
    weights = sizes.PARAM_COPIES * nb_outputs * channels * taps
    outputs = sizes.ACTIVATION_COPIES * batch * nb_outputs * plane[0] * plane[1]
    # The stride is what upsamples: blame it when the outputs dominate and it is > 1.
    attr = "stride" if outputs > weights and max(s["stride"]) > 1 else "nb_outputs"
    charge_cell(ctx, name, where(attr), nb_outputs * (channels * taps + 1), (nb_outputs, *plane),
                workspace, connections=channels * nb_outputs)


def _charge_fc(ctx, name, s, where, shapes):
    nb_outputs = s["nb_outputs"]
    features = sum(math.prod(shape) for shape in shapes)
    charge_cell(ctx, name, where("nb_outputs"), nb_outputs * (features + 1), (nb_outputs, 1, 1),
                workspace=features)


def _charge_pool(ctx, name, s, where, shapes):
    plane = _plane(shapes, (s["pool"], s["stride"], s["padding"], (1, 1)))
    if plane is not None:
        nb_outputs = s["nb_outputs"]
        charge_cell(ctx, name, where("padding" if _grown(shapes, plane) else "nb_outputs"), 0,
                    (nb_outputs, *plane), connections=sum(shape[0] for shape in shapes) * nb_outputs)


def _charge_padding(ctx, name, s, where, shapes):
    sides = {side: s[side] for side in ("top", "bottom", "left", "right")}
    _, height, width = shapes[0]
    plane = (height + sides["top"] + sides["bottom"], width + sides["left"] + sides["right"])
    charge_cell(ctx, name, where(max(sides, key=sides.get)), 0,
                (s["nb_outputs"], max(plane[0], 0), max(plane[1], 0)))


_CHARGES = {Conv: _charge_conv, Deconv: _charge_deconv, Fc: _charge_fc, Pool: _charge_pool, Padding: _charge_padding}
