"""Declared INI keys of activations, fillers and solvers: N2D2 name -> Python kwarg.

Each entry is ``N2D2Key: (python_name, reader, default)``; a default of
``MISSING`` makes the key required. These tables are the only place the INI
spellings of these objects appear; the objects themselves take PEP 8 kwargs.
"""

from n2prune.ini import values
from n2prune.solvers.sgd import parse_clamping

_float = values.as_float
_uint = values.as_uint

LR_POLICIES = (
    "None", "StepDecay", "ExponentialDecay", "InvTDecay", "PolyDecay", "InvDecay", "CosineDecay",
)


def _clamping(text):
    parse_clamping(text)
    return text


SGD_KEYS = {
    "LearningRate": ("learning_rate", _float, 0.01),
    "Momentum": ("momentum", _float, 0.0),
    "Decay": ("decay", _float, 0.0),
    "Power": ("power", _float, 0.0),
    "IterationSize": ("iteration_size", _uint, 1),
    "MaxIterations": ("max_iterations", _uint, 0),
    "WarmUpDuration": ("warm_up_duration", _uint, 0),
    "WarmUpLRFrac": ("warm_up_lr_frac", _float, 0.25),
    "LearningRatePolicy": ("learning_rate_policy", values.enum(*LR_POLICIES), "None"),
    "LearningRateStepSize": ("learning_rate_step_size", _uint, 1),
    "LearningRateDecay": ("learning_rate_decay", _float, 0.1),
    "Clamping": ("clamping", _clamping, None),
    "PolyakMomentum": ("polyak_momentum", values.as_bool, True),
    "MinDecay": ("min_decay", _float, 0.0),
}

# SGD parameters of N2D2's quantization-aware solvers; accepted so that real
# files load, but they change nothing in a float32 run.
SGD_IGNORED_KEYS = ("QuantizationLevels",)
