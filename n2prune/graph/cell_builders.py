"""One builder per N2D2 ``Type=``: INI keys in, a plain cell object out.

Each builder reads the keys of its cell section through a ``SectionReader``
(declaring them) and the cell parameters routed from ``ConfigSection``
(declared in a table), then calls the cell constructor with PEP 8 kwargs.
"""

from n2prune import cells
from n2prune.errors import IniError
from n2prune.graph.config import read_params
from n2prune.graph.mappings import read_mappings
from n2prune.graph.objects import read_activation, read_filler
from n2prune.graph.reader import read_dims
from n2prune.ini import values

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
    return reader.get("NbOutputs", _uint)


def _check_subsample(reader):
    if read_dims(reader, "SubSample", default=(1, 1)) != (1, 1):
        raise reader.error("SubSample", "SubSample other than 1 is not supported")


@register_builder("Conv")
def build_conv(ctx, name, inputs, shapes):
    r = ctx.reader(name)
    nb_outputs = _nb_outputs(r)
    _check_subsample(r)
    return cells.Conv(
        name, shapes, nb_outputs,
        kernel=read_dims(r, "Kernel"),
        stride=read_dims(r, "Stride", (1, 1)),
        padding=read_dims(r, "Padding", (0, 0)),
        dilation=read_dims(r, "Dilation", (1, 1)),
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
    return cells.Fc(
        name, shapes, _nb_outputs(r),
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
    return cells.Pool(
        name, shapes, nb_outputs,
        pool=read_dims(r, "Pool"),
        stride=read_dims(r, "Stride", (1, 1)),
        padding=read_dims(r, "Padding", (0, 0)),
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
    return cells.Padding(name, shapes, _nb_outputs(r), **sides)


@register_builder("Activation")
def build_activation(ctx, name, inputs, shapes):
    r = ctx.reader(name)
    _params(ctx, name, {})  # this type has no ConfigSection parameters
    return cells.Activation(name, shapes, _nb_outputs(r), activation=read_activation(r))
