"""Learning-rate policies of N2D2's SGD solver (``LearningRatePolicy=``).

Each policy is a pure function ``f(base_lr, iteration, batch_size, schedule)``
registered under its N2D2 name in the ``LR_POLICIES`` registry.
``iteration`` is N2D2's ``mNbIterations``: the number of weight updates
already applied (0 for the first one); one update covers
``iteration_size * batch_size`` stimuli.

As in N2D2's ``SGDSolver::getLearningRate`` (its file src/Solver/SGDSolver.cpp):

* StepDecay, ExponentialDecay, InvTDecay and CosineDecay count in *steps*:
  ``step = floor(iteration * iteration_size * batch_size / step_size)``, where
  ``LearningRateStepSize`` is a number of stimuli;
* PolyDecay and InvDecay count in updates (``iteration``);
* warm-up (``WarmUpDuration``, ``WarmUpLRFrac``) and ``MinDecay`` exist only
  in CosineDecay, and its ``MaxIterations`` and ``WarmUpDuration`` are then in
  steps too. The other policies ignore them.
"""

import math
from dataclasses import dataclass

from n2prune.errors import SettingError
from n2prune.registry import Registry

LR_POLICIES = Registry("LearningRatePolicy")

# Policies that N2D2 computes from the stimuli step and that need StepSize > 0.
_STEP_POLICIES = ("StepDecay", "ExponentialDecay", "InvTDecay", "CosineDecay")


@dataclass(frozen=True)
class LrSchedule:
    """The SGD settings that shape the learning rate (N2D2 names in comments).

    No field has a default: ``SGD`` builds every schedule from its own
    keywords, whose signature holds the defaults.
    """

    step_size: int  # LearningRateStepSize, in stimuli
    decay: float  # LearningRateDecay
    power: float  # Power
    max_iterations: int  # MaxIterations
    warm_up_duration: int  # WarmUpDuration, in steps
    warm_up_lr_frac: float  # WarmUpLRFrac
    min_decay: float  # MinDecay, floor of the cosine factor
    iteration_size: int  # IterationSize, batches per update


def stimuli_step(iteration, batch_size, schedule):
    """How many ``step_size`` blocks of stimuli the updates so far covered."""
    stimuli = iteration * schedule.iteration_size * batch_size
    return stimuli // schedule.step_size


@LR_POLICIES.register("None")
def constant(base_lr, iteration, batch_size, schedule):
    return base_lr


@LR_POLICIES.register("StepDecay")
def step_decay(base_lr, iteration, batch_size, schedule):
    """lr * decay ** step."""
    return base_lr * schedule.decay ** stimuli_step(iteration, batch_size, schedule)


@LR_POLICIES.register("ExponentialDecay")
def exponential_decay(base_lr, iteration, batch_size, schedule):
    """lr * exp(-decay * step)."""
    step = stimuli_step(iteration, batch_size, schedule)
    return base_lr * math.exp(-schedule.decay * step)


@LR_POLICIES.register("InvTDecay")
def inv_t_decay(base_lr, iteration, batch_size, schedule):
    """lr / (1 + decay * step)."""
    step = stimuli_step(iteration, batch_size, schedule)
    return base_lr / (1.0 + schedule.decay * step)


@LR_POLICIES.register("PolyDecay")
def poly_decay(base_lr, iteration, batch_size, schedule):
    """lr * (1 - iteration / max_iterations) ** power.

    The solver stops counting at ``max_iterations``, so the base never goes
    negative there; the rate ends at 0 (or stays lr when power is 0).
    """
    return base_lr * (1.0 - iteration / schedule.max_iterations) ** schedule.power


@LR_POLICIES.register("InvDecay")
def inv_decay(base_lr, iteration, batch_size, schedule):
    """lr * (1 + decay * iteration) ** -power."""
    return base_lr * (1.0 + schedule.decay * iteration) ** -schedule.power


@LR_POLICIES.register("CosineDecay")
def cosine_decay(base_lr, iteration, batch_size, schedule):
    """Linear warm-up from ``warm_up_lr_frac * lr`` then a cosine to ``min_decay * lr``.

    As N2D2, the cosine runs over ``max_iterations - warm_up_duration``
    *steps* and is not stopped at its end: past it the factor rises again
    (it is only floored at 0).
    """
    step = stimuli_step(iteration, batch_size, schedule)
    warm_up = schedule.warm_up_duration
    if step < warm_up:
        frac = schedule.warm_up_lr_frac
        return base_lr * ((1.0 - frac) * (step / warm_up) + frac)
    span = schedule.max_iterations - warm_up
    factor = 0.5 * (1.0 + math.cos(math.pi * (step - warm_up) / span))
    floored = (1.0 - schedule.min_decay) * factor + schedule.min_decay
    return base_lr * max(0.0, floored)


def check_schedule(policy, schedule):
    """Raise ``SettingError`` for settings N2D2 rejects or silently breaks on.

    ``policy`` must be a name of ``LR_POLICIES`` (``UnknownName`` otherwise).
    The setting blamed is ``SGD``'s keyword, as ``SGD`` builds every
    schedule. N2D2 throws at the first update for StepSize 0 and for
    PolyDecay without MaxIterations. For CosineDecay with MaxIterations <=
    WarmUpDuration it divides by zero (or wraps an unsigned) and trains at
    rate 0 or a constant rate without a word; we refuse instead.
    """
    LR_POLICIES.lookup(policy)
    if policy in _STEP_POLICIES and schedule.step_size <= 0:
        raise SettingError("learning_rate_step_size",
                           f"LearningRatePolicy={policy} needs LearningRateStepSize > 0")
    if policy == "PolyDecay" and schedule.max_iterations <= 0:
        raise SettingError("max_iterations", "LearningRatePolicy=PolyDecay needs MaxIterations > 0")
    if policy == "CosineDecay" and schedule.max_iterations <= schedule.warm_up_duration:
        raise SettingError("max_iterations",
                           "LearningRatePolicy=CosineDecay needs MaxIterations > WarmUpDuration")
    if schedule.iteration_size < 1:
        raise SettingError("iteration_size", "IterationSize must be >= 1")


def policy_rate(policy, base_lr, iteration, batch_size, schedule):
    """The rate of the update that follows ``iteration`` updates (N2D2 ``getLearningRate``).

    A ``base_lr`` of 0 gives 0 whatever the policy, as in N2D2.
    """
    if base_lr == 0.0:
        return 0.0
    return LR_POLICIES[policy](base_lr, iteration, batch_size, schedule)
