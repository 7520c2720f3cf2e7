"""One builder per N2D2 ``Type=``: INI keys in, a plain cell object out.

Each builder reads the keys of its cell section through a ``SectionReader``
(declaring them) and the cell parameters routed from ``ConfigSection``
(declared in a table), then calls the cell constructor with PEP 8 kwargs.
"""

import math

from n2prune import cells
from n2prune.errors import IniError
from n2prune.graph import sizes
from n2prune.graph.config import read_params
from n2prune.graph.mappings import read_mappings
from n2prune.graph.objects import read_activation, read_filler
from n2prune.graph.reader import dims_key, read_dims
from n2prune.ini import values
from n2prune.kernels import conv_out_size

BUILDERS = {}


def register_builder(type_name):
    def decorate(fn):
        BUILDERS[type_name] = fn
        return fn
    return decorate


_bool, _float, _uint = values.as_bool, values.as_float, values.as_uint

# Cell parameters N2D2 only takes from a ConfigSection: name -> (kwarg, reader, default).
# Parameters n2prune accepts but that change nothing on CPU carry kwarg None.
WEIGHT_CELL_PARAMS = {
    "NoBias": ("no_bias", _bool, False),
    "BackPropagate": ("back_propagate", _bool, True),
    "WeightsExportFormat": (None, values.enum("OCHW", "HWCO"), "OCHW"),
    "WeightsExportFlip": (None, _bool, False),
}
FC_PARAMS = {**WEIGHT_CELL_PARAMS, "Normalize": ("normalize", _bool, False)}
# Parameters accepted only at their default: other values would change training.
UNSUPPORTED_VALUES = {"back_propagate": False, "normalize": True}
DROPOUT_PARAMS = {"Dropout": ("dropout", _float, 0.5)}
BATCHNORM_PARAMS = {
    "Epsilon": ("epsilon", _float, 1e-5),
    "MovingAverageMomentum": ("moving_average_momentum", _float, 0.1),
}


def _params(ctx, name, table):
    routed = ctx.routed(name)
    kwargs = read_params(ctx.ini, name, routed, table)
    for py_name, bad in UNSUPPORTED_VALUES.items():
        if kwargs.pop(py_name, None) is bad:
            key = next(k for k, v in table.items() if v[0] == py_name)
            raise IniError(f"{ctx.ini.where(*routed.params[key])}: {key}={int(bad)} is not supported")
    return {k: v for k, v in kwargs.items() if k is not None}


def _nb_outputs(reader):
    nb_outputs = reader.get("NbOutputs", _uint)
    if nb_outputs == 0:
        raise reader.error("NbOutputs", "must be at least 1")
    return nb_outputs


def charge_cell(ctx, name, key, nb_params, output_shape, workspace=0, connections=0):
    """Charge cell ``name``'s training bytes (``sizes.cell_bytes``) to the budget.

    Builders of cells that allocate in their constructor call this first, so
    an oversized cell is refused at ``key`` before any array exists.
    """
    batch = ctx.budget.batch_size
    shape = "x".join(map(str, output_shape))
    detail = f"[{name}]: {nb_params:,} parameters, {shape} outputs x batch {batch}"
    if workspace:
        detail += f", {workspace:,} values of workspace per sample"
    nbytes = sizes.cell_bytes(nb_params, output_shape, batch, workspace, connections)
    ctx.budget.charge(name, nbytes, ctx.reader(name).where(key), detail)


def _plane(shapes, dims):
    """Output (H, W) of a Conv/Pool window on the first input, or None if it does not
    fit (the cell's constructor then says why)."""
    try:
        return tuple(conv_out_size(size, *args) for size, *args in zip(shapes[0][1:], *dims))
    except ValueError:
        return None


def _check_subsample(reader):
    if read_dims(reader, "SubSample", default=(1, 1)) != (1, 1):
        raise reader.error("SubSample", "SubSample other than 1 is not supported")


def _charge_conv(ctx, name, shapes, nb_outputs, geometry):
    """Charge a Conv from its keys, before its mappings and weights are made."""
    kernel = geometry[0]
    plane = _plane(shapes, geometry)
    if plane is None:
        return
    r, batch = ctx.reader(name), ctx.budget.batch_size
    channels = sum(s[0] for s in shapes)
    taps = channels * kernel[0] * kernel[1]
    workspace = taps * plane[0] * plane[1]  # im2col columns
    # Name the key that makes the cell big: NbOutputs for the weights or the
    # outputs, the kernel for the im2col columns, the padding if it enlarged the plane.
    weights = sizes.PARAM_COPIES * nb_outputs * taps
    outputs = sizes.ACTIVATION_COPIES * batch * nb_outputs * plane[0] * plane[1]
    columns = sizes.WORKSPACE_COPIES * batch * workspace
    key = "NbOutputs"
    if max(outputs, columns) > weights:
        key = _padding_key(r, shapes, plane, dims_key(r, "Kernel") if columns > outputs else key)
    charge_cell(ctx, name, key, nb_outputs * (taps + 1), (nb_outputs, *plane), workspace,
                connections=channels * nb_outputs)


def _padding_key(reader, shapes, plane, key):
    """The padding key if it made the output plane larger than the input's, else ``key``."""
    grown = plane[0] * plane[1] > shapes[0][1] * shapes[0][2]
    return dims_key(reader, "Padding") if grown else key


@register_builder("Conv")
def build_conv(ctx, name, inputs, shapes):
    r = ctx.reader(name)
    nb_outputs = _nb_outputs(r)
    _check_subsample(r)
    geometry = (read_dims(r, "Kernel", minimum=1), read_dims(r, "Stride", (1, 1), minimum=1),
                read_dims(r, "Padding", (0, 0)), read_dims(r, "Dilation", (1, 1), minimum=1))
    _charge_conv(ctx, name, shapes, nb_outputs, geometry)
    return cells.Conv(
        name, shapes, nb_outputs, *geometry,
        mappings=read_mappings(r, inputs, [s[0] for s in shapes], nb_outputs),
        weights_filler=read_filler(r, "WeightsFiller"),
        bias_filler=read_filler(r, "BiasFiller"),
        activation=read_activation(r),
        rng=ctx.rng,
        **_params(ctx, name, WEIGHT_CELL_PARAMS),
    )


@register_builder("Fc")
def build_fc(ctx, name, inputs, shapes):
    r = ctx.reader(name)
    for key in ("InputOffsetX", "InputOffsetY", "InputWidth", "InputHeight"):
        if r.has(key):
            raise r.error(key, "Fc input cropping is not supported")
    params = _params(ctx, name, FC_PARAMS)
    nb_outputs = _nb_outputs(r)
    features = sum(math.prod(s) for s in shapes)
    charge_cell(ctx, name, "NbOutputs", nb_outputs * (features + 1), (nb_outputs, 1, 1),
                workspace=features)
    return cells.Fc(
        name, shapes, nb_outputs,
        weights_filler=read_filler(r, "WeightsFiller"),
        bias_filler=read_filler(r, "BiasFiller"),
        activation=read_activation(r),
        rng=ctx.rng,
        **params,
    )


@register_builder("Pool")
def build_pool(ctx, name, inputs, shapes):
    r = ctx.reader(name)
    _params(ctx, name, {})  # this type has no ConfigSection parameters
    nb_outputs = _nb_outputs(r)
    pool, stride = read_dims(r, "Pool", minimum=1), read_dims(r, "Stride", (1, 1), minimum=1)
    padding = read_dims(r, "Padding", (0, 0))
    plane = _plane(shapes, (pool, stride, padding, (1, 1)))
    if plane is not None:
        charge_cell(ctx, name, _padding_key(r, shapes, plane, "NbOutputs"), 0, (nb_outputs, *plane),
                    connections=sum(s[0] for s in shapes) * nb_outputs)
    return cells.Pool(
        name, shapes, nb_outputs, pool=pool, stride=stride, padding=padding,
        pooling=r.get("Pooling", values.enum("Max", "Average")),
        mappings=read_mappings(r, inputs, [s[0] for s in shapes], nb_outputs),
        activation=read_activation(r),
    )


@register_builder("BatchNorm")
def build_batchnorm(ctx, name, inputs, shapes):
    r = ctx.reader(name)
    return cells.BatchNorm(name, shapes, _nb_outputs(r), activation=read_activation(r),
                           **_params(ctx, name, BATCHNORM_PARAMS))


@register_builder("Dropout")
def build_dropout(ctx, name, inputs, shapes):
    r = ctx.reader(name)
    return cells.Dropout(name, shapes, _nb_outputs(r), rng=ctx.rng,
                         **_params(ctx, name, DROPOUT_PARAMS))


@register_builder("Softmax")
def build_softmax(ctx, name, inputs, shapes):
    r = ctx.reader(name)
    _params(ctx, name, {})  # this type has no ConfigSection parameters
    return cells.Softmax(name, shapes, _nb_outputs(r),
                         with_loss=r.get("WithLoss", _bool, False),
                         group_size=r.get("GroupSize", _uint, 0))


@register_builder("ElemWise")
def build_elemwise(ctx, name, inputs, shapes):
    r = ctx.reader(name)
    _params(ctx, name, {})  # this type has no ConfigSection parameters
    return cells.ElemWise(
        name, shapes, _nb_outputs(r),
        operation=r.get("Operation", values.enum("Sum", "AbsSum", "EuclideanSum", "Prod", "Max")),
        coefficients=r.get("Weights", values.vector(_float), None),
        shifts=r.get("Shifts", values.vector(_float), None),
        coeff_mode=r.get("CoeffMode", values.enum("PerLayer", "PerInput", "PerChannel"), "PerInput"),
        activation=read_activation(r),
    )


@register_builder("Padding")
def build_padding(ctx, name, inputs, shapes):
    r = ctx.reader(name)
    _params(ctx, name, {})  # this type has no ConfigSection parameters
    sides = {k.lower(): r.get(f"{k}Padding", values.as_int, 0)
             for k in ("Top", "Bottom", "Left", "Right")}
    nb_outputs = _nb_outputs(r)
    _, height, width = shapes[0]
    plane = (height + sides["top"] + sides["bottom"], width + sides["left"] + sides["right"])
    widest = max(sides, key=sides.get)
    charge_cell(ctx, name, f"{widest.capitalize()}Padding", 0,
                (nb_outputs, max(plane[0], 0), max(plane[1], 0)))
    return cells.Padding(name, shapes, nb_outputs, **sides)


@register_builder("Activation")
def build_activation(ctx, name, inputs, shapes):
    r = ctx.reader(name)
    _params(ctx, name, {})  # this type has no ConfigSection parameters
    return cells.Activation(name, shapes, _nb_outputs(r), activation=read_activation(r))
