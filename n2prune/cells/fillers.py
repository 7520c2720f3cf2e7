"""Weight and bias initialisers (N2D2 ``WeightsFiller=`` / ``BiasFiller=``).

Formulas follow N2D2's ``include/Filler/*.hpp``. A filler draws from the
``numpy.random.Generator`` it is given, so the values differ from N2D2's
Mersenne twister but the distributions are the same.

Fan-in and fan-out are computed by the caller, as N2D2 does from the shape
of the filled tensor (``fanIn = size / dimB``, ``fanOut = size / dimZ``)::

    Conv weights (per input tensor, dims KW x KH x C x O):  see conv_fans
    Fc weights (per input tensor, dims 1 x 1 x C*H*W x O): see fc_fans
    Conv bias (dims 1 x 1 x O x 1):                         see conv_bias_fans
    Fc bias (dims O x 1 x 1 x 1):                           see fc_bias_fans

With a mapping matrix, fan-in counts *all* channels of the input, connected
or not: N2D2 fills the whole tensor and zeroes unconnected kernels after.
"""

import math

import numpy as np

from n2prune.errors import SettingError, non_negative
from n2prune.registry import FLOAT, Key, Registry, choice, unknown_message

FILLERS = Registry("WeightsFiller")

VARIANCE_NORMS = ("FanIn", "Average", "FanOut")
DISTRIBUTIONS = ("Uniform", "Normal")


def conv_fans(nb_outputs, channels_per_group, kernel_dims):
    """``(fan_in, fan_out)`` of one Conv weight tensor: (C*KH*KW, O*KH*KW).

    ``channels_per_group`` is the input tensor's channel count, divided by
    the number of groups for a grouped (depthwise) convolution.
    """
    kernel_size = math.prod(kernel_dims)
    return channels_per_group * kernel_size, nb_outputs * kernel_size


def fc_fans(nb_inputs, nb_outputs):
    """``(fan_in, fan_out)`` of one Fc weight tensor: (C*H*W of the input, O)."""
    return nb_inputs, nb_outputs


def conv_bias_fans(nb_outputs):
    """``(fan_in, fan_out)`` N2D2 sees for a Conv bias (dims 1x1xOx1): (O, 1)."""
    return nb_outputs, 1


def fc_bias_fans(nb_outputs):
    """``(fan_in, fan_out)`` N2D2 sees for an Fc bias (dims Ox1x1x1): (O, O)."""
    return nb_outputs, nb_outputs


def _variance_n(variance_norm, fan_in, fan_out):
    """N2D2's ``n``: fan-in, fan-out, or their mean for ``Average``."""
    if fan_in <= 0 or fan_out <= 0:
        raise ValueError(f"fan_in and fan_out must be > 0 (got {fan_in}, {fan_out})")
    if variance_norm == "FanIn":
        return float(fan_in)
    if variance_norm == "Average":
        return (fan_in + fan_out) / 2.0
    return float(fan_out)


def _check_choice(setting, value, choices):
    if value not in choices:
        raise SettingError(setting, unknown_message(f"{setting} {value}", value, choices))


@FILLERS.register(
    "HeFiller",
    Key("VarianceNorm", "variance_norm", choice(VARIANCE_NORMS), "the fan n: FanIn, (in+out)/2 or FanOut"),
    Key("MeanNorm", "mean_norm", FLOAT, "mean of the normal times n"),
    Key("Scaling", "scaling", FLOAT, "factor on every value"),
)
class HeFiller:
    """scaling * Normal(mean_norm / n, sqrt(2 / n)), n per ``variance_norm``."""

    def __init__(self, variance_norm="FanIn", mean_norm=0.0, scaling=1.0):
        _check_choice("variance_norm", variance_norm, VARIANCE_NORMS)
        self.variance_norm = variance_norm
        self.mean_norm = float(mean_norm)
        self.scaling = float(scaling)

    def fill(self, shape, fan_in, fan_out, rng):
        n = _variance_n(self.variance_norm, fan_in, fan_out)
        values = rng.normal(self.mean_norm / n, math.sqrt(2.0 / n), size=shape)
        return (self.scaling * values).astype(np.float32)


@FILLERS.register(
    "XavierFiller",
    Key("VarianceNorm", "variance_norm", choice(VARIANCE_NORMS), "the fan n: FanIn, (in+out)/2 or FanOut"),
    Key("Distribution", "distribution", choice(DISTRIBUTIONS), "uniform or normal, variance 1/n"),
    Key("Scaling", "scaling", FLOAT, "factor on every value"),
)
class XavierFiller:
    """Variance 1/n: Uniform(-sqrt(3/n), sqrt(3/n)) or Normal(0, sqrt(1/n)), times scaling."""

    def __init__(self, variance_norm="FanIn", distribution="Uniform", scaling=1.0):
        _check_choice("variance_norm", variance_norm, VARIANCE_NORMS)
        _check_choice("distribution", distribution, DISTRIBUTIONS)
        self.variance_norm = variance_norm
        self.distribution = distribution
        self.scaling = float(scaling)

    def fill(self, shape, fan_in, fan_out, rng):
        n = _variance_n(self.variance_norm, fan_in, fan_out)
        if self.distribution == "Uniform":
            bound = math.sqrt(3.0 / n)
            values = rng.uniform(-bound, bound, size=shape)
        else:
            values = rng.normal(0.0, math.sqrt(1.0 / n), size=shape)
        return (self.scaling * values).astype(np.float32)


@FILLERS.register(
    "NormalFiller",
    Key("Mean", "mean", FLOAT, "mean of the normal"),
    Key("StdDev", "std_dev", FLOAT, "standard deviation (>= 0)"),
)
class NormalFiller:
    """Normal(mean, std_dev); fans are ignored."""

    def __init__(self, mean=0.0, std_dev=1.0):
        self.mean = float(mean)
        self.std_dev = non_negative("std_dev", std_dev, "NormalFiller StdDev")

    def fill(self, shape, fan_in, fan_out, rng):
        return rng.normal(self.mean, self.std_dev, size=shape).astype(np.float32)


@FILLERS.register(
    "UniformFiller",
    Key("Min", "min", FLOAT, "lower bound"),
    Key("Max", "max", FLOAT, "upper bound (>= Min)"),
)
class UniformFiller:
    """Uniform(min, max); fans are ignored."""

    def __init__(self, min=0.0, max=1.0):  # shadow builtins to keep N2D2's key names
        if max < min:
            raise SettingError("max", f"UniformFiller Max ({max}) must be >= Min ({min})")
        self.min = float(min)
        self.max = float(max)

    def fill(self, shape, fan_in, fan_out, rng):
        return rng.uniform(self.min, self.max, size=shape).astype(np.float32)


@FILLERS.register("ConstantFiller", Key("Value", "value", FLOAT, "the value of every entry"))
class ConstantFiller:
    """Every value equal to ``value`` (N2D2 requires ``Value``); draws nothing."""

    def __init__(self, value):
        self.value = float(value)

    def fill(self, shape, fan_in, fan_out, rng):
        return np.full(shape, self.value, dtype=np.float32)


# What N2D2's Conv and Fc cells use when the INI gives no filler
# (ConvCell_Frame / FcCell_Frame constructors): Normal(0, 0.05) for both.
DEFAULT_WEIGHTS_FILLER = NormalFiller(0.0, 0.05)
DEFAULT_BIAS_FILLER = NormalFiller(0.0, 0.05)
