"""N2D2's SGD solver (``Solvers=SGD``), as ``SGDSolver_Frame<float>::update``.

N2D2 works on ``diff = -(gradient summed over the batch)`` and does, per
element, in the parameter's precision (float32)::

    rate_diff = rate / (batch_size * iteration_size)
    v = momentum * v + rate_diff * diff - decay * rate * w
    w = clamp(w + v, lo, hi)

Weight decay uses the undivided ``rate``. With ``momentum == decay == 0`` N2D2
keeps no velocity and does ``w = clamp(w + rate_diff * diff)``. Our cells
write the gradient of the batch-*mean* loss, so ``diff = -batch_size * grad``.

``IterationSize=k``: N2D2's solver returns rate 0 (no update) on k-1 calls
out of k, while the cell keeps summing batch gradients; the k-th call
updates with the sum, normalised by ``batch_size * k``. We keep that sum
here. ``PolyakMomentum`` is accepted and, as in N2D2 (Frame and CUDA), has
no effect. ``Solver::mGlobalLearningRate`` (a command-line override) is not
reproduced.

N2D2 clones the solver for every weight tensor of a cell, so every tensor
has its own counters; an ``SGD`` object plays that role for all the params
of one (cell, role), keyed by ``param.name``.
"""

import numpy as np

from n2prune.errors import SettingError
from n2prune.kernels.sgd import sgd_step, sgd_step_at
from n2prune.registry import (
    BOOL,
    FLOAT,
    UINT,
    Key,
    Registry,
    choice,
    text,
    unknown_message,
)
from n2prune.solvers.lr_policy import (
    LR_POLICIES,
    LrSchedule,
    check_schedule,
    policy_rate,
)

SOLVERS = Registry("Solvers")

_CLAMPING_HINT = "expected 'min:max' with either side optional (e.g. -1.0:1.0, :1, -1:)"


def parse_clamping(text):
    """``(lo, hi)`` from N2D2's ``Clamping`` value; a missing side is ``None``.

    An empty text means no clamping: ``(None, None)``. Unlike N2D2's ``atof``
    (which reads "abc" as 0), a side that is not a number is an error.
    """
    if text is None or not text.strip():
        return None, None
    sides = text.split(":")
    if len(sides) != 2:
        raise SettingError("clamping", f"Clamping={text}: {_CLAMPING_HINT}")
    try:
        lo, hi = (float(side) if side.strip() else None for side in sides)
    except ValueError:
        raise SettingError("clamping", f"Clamping={text}: {_CLAMPING_HINT}") from None
    if lo is not None and hi is not None and lo > hi:
        raise SettingError("clamping", f"Clamping={text}: min is larger than max")
    return lo, hi


# What ``SGD.state`` writes per param, as ``<field>.<param name>``.
_STATE_FIELDS = ("iteration_pass", "nb_iterations", "velocity", "accumulated")


class _Slot:
    """What the solver keeps for one param: counters and float32 buffers."""

    def __init__(self):
        self.iteration_pass = 0  # calls since the last update (IterationSize)
        self.nb_iterations = 0  # updates done, N2D2 mNbIterations
        self.velocity = None  # N2D2 mMomentumData
        self.accumulated = None  # sum of batch_size * grad over the pass
        self.scratch = None  # temporary, never saved


@SOLVERS.register(
    "SGD",
    Key("LearningRate", "learning_rate", FLOAT, "base rate lr (0: the solver never updates)"),
    Key("Momentum", "momentum", FLOAT, "momentum m"),
    Key("Decay", "decay", FLOAT, "weight decay λ"),
    Key("LearningRatePolicy", "learning_rate_policy", choice(LR_POLICIES),
        "how the rate evolves with the updates"),
    Key("LearningRateStepSize", "learning_rate_step_size", UINT, "S, in stimuli"),
    Key("LearningRateDecay", "learning_rate_decay", FLOAT, "γ, the policies' decay factor"),
    Key("Power", "power", FLOAT, "p (PolyDecay, InvDecay)"),
    Key("MaxIterations", "max_iterations", UINT,
        "T: updates for PolyDecay, steps for CosineDecay; when > 0, the update counter stops at T"),
    Key("WarmUpDuration", "warm_up_duration", UINT, "W: CosineDecay warm-up, in steps"),
    Key("WarmUpLRFrac", "warm_up_lr_frac", FLOAT, "f: the warm-up's first rate, as a fraction of lr"),
    Key("MinDecay", "min_decay", FLOAT, "CosineDecay floor, as a fraction of lr"),
    Key("IterationSize", "iteration_size", UINT, "k: batches whose gradients are summed per update"),
    Key("Clamping", "clamping", text(parse_clamping),
        "``min:max``; either side may be empty (``:1``); none: no clamping"),
    Key("PolyakMomentum", "polyak_momentum", BOOL, "accepted, no effect (as in N2D2)"),
    Key("QuantizationLevels", "quantization_levels", UINT,
        "accepted, no effect (N2D2's quantized solvers)"),
)
class SGD:
    """Stochastic gradient descent with N2D2's keys, defaults and quirks.

    ``polyak_momentum`` and ``quantization_levels`` are accepted so that
    N2D2 files load; neither changes a float32 run.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, decay=0.0, power=0.0, iteration_size=1,
                 max_iterations=0, warm_up_duration=0, warm_up_lr_frac=0.25,
                 learning_rate_policy="None", learning_rate_step_size=1, learning_rate_decay=0.1,
                 clamping=None, polyak_momentum=True, min_decay=0.0, quantization_levels=0):
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        self.decay = float(decay)
        self.policy = learning_rate_policy
        self.schedule = LrSchedule(
            step_size=int(learning_rate_step_size), decay=float(learning_rate_decay),
            power=float(power), max_iterations=int(max_iterations),
            warm_up_duration=int(warm_up_duration), warm_up_lr_frac=float(warm_up_lr_frac),
            min_decay=float(min_decay), iteration_size=int(iteration_size))
        check_schedule(self.policy, self.schedule)
        if isinstance(clamping, str) or clamping is None:
            clamping = parse_clamping(clamping)
        self.clamp_lo, self.clamp_hi = clamping
        self.polyak_momentum = bool(polyak_momentum)  # no effect, as in N2D2
        self._slots = {}

    def current_learning_rate(self, batch_size):
        """The rate of the next update (most advanced param), without side effects."""
        done = max((slot.nb_iterations for slot in self._slots.values()), default=0)
        return self.rate(done, batch_size)

    def rate(self, nb_iterations, batch_size):
        """The rate of the update that follows ``nb_iterations`` updates of ``batch_size``."""
        return policy_rate(self.policy, self.learning_rate, nb_iterations, batch_size,
                           self.schedule)

    def _next_rate(self, slot, batch_size):
        """N2D2 ``getLearningRate``: 0 on the first k-1 calls of k, else the rate.

        Advances the counters; ``nb_iterations`` stops at ``max_iterations``
        (when > 0) whatever the policy.
        """
        if slot.iteration_pass < self.schedule.iteration_size - 1:
            slot.iteration_pass += 1
            return 0.0
        slot.iteration_pass = 0
        rate = self.rate(slot.nb_iterations, batch_size)
        max_iterations = self.schedule.max_iterations
        if max_iterations == 0 or slot.nb_iterations < max_iterations:
            slot.nb_iterations += 1
        return rate

    def update(self, param, batch_size):
        """Update ``param.value`` in place from ``param.grad`` (batch-mean gradient)."""
        if self.learning_rate == 0.0:
            return  # N2D2 returns before touching any counter
        slot = self._slot(param)
        k = self.schedule.iteration_size
        dtype = param.value.dtype.type
        if k > 1:
            np.multiply(param.grad, dtype(batch_size), out=slot.scratch)
            slot.accumulated += slot.scratch
        rate = dtype(self._next_rate(slot, batch_size))
        if slot.iteration_pass:
            return  # mid-pass: keep summing
        # A rate that is 0 in float32 skips the update, as N2D2's ``rate == 0``.
        if rate != 0:
            rate_diff = rate / dtype(batch_size * k)
            if k > 1:
                summed, coef = slot.accumulated, -rate_diff
            else:
                summed, coef = param.grad, -rate_diff * dtype(batch_size)
            self._step(param, summed, dtype(coef), -dtype(self.decay) * rate, slot)
        if k > 1:
            slot.accumulated.fill(0)  # N2D2's next backward overwrites the sum

    def _step(self, param, summed, coef, alpha, slot):
        """``v = m v + coef * summed + alpha * w; w += v`` (or without v), then clamp.

        With ``param.active`` (flat positions, set by a ``HardZero`` cell on
        the skip kernels) only those elements change.
        """
        w = param.value
        param.changed()
        if self.momentum == 0.0 and self.decay == 0.0:
            np.multiply(summed, coef, out=slot.scratch)
            if param.active is not None:
                flat = w.reshape(-1)
                flat[param.active] += slot.scratch.reshape(-1)[param.active]
            else:
                w += slot.scratch
            if self.clamp_lo is not None or self.clamp_hi is not None:
                np.clip(w, self.clamp_lo, self.clamp_hi, out=w)
            return
        args = (coef, self.momentum, alpha, self.clamp_lo, self.clamp_hi)
        if param.active is not None:
            sgd_step_at(w, slot.velocity, summed, param.active, *args)
        else:
            sgd_step(w, slot.velocity, summed, *args)

    def _slot(self, param):
        """The param's slot, with buffers allocated once at its first update."""
        slot = self._slots.setdefault(param.name, _Slot())
        shape, dtype = param.value.shape, param.value.dtype
        if slot.scratch is None:
            slot.scratch = np.zeros(shape, dtype)
        if slot.velocity is None and (self.momentum != 0.0 or self.decay != 0.0):
            slot.velocity = np.zeros(shape, dtype)
        if slot.accumulated is None and self.schedule.iteration_size > 1:
            slot.accumulated = np.zeros(shape, dtype)
        for buffer in (slot.velocity, slot.accumulated):
            if buffer is not None and buffer.shape != shape:
                raise ValueError(f"solver state of {param.name} has shape {buffer.shape}, "
                                 f"param has {shape}")
        return slot

    def state(self):
        """Flat dict: ``velocity.<name>``, ``accumulated.<name>`` (float arrays),
        ``iteration_pass.<name>``, ``nb_iterations.<name>`` (ints)."""
        out = {}
        for name, slot in self._slots.items():
            out[f"iteration_pass.{name}"] = slot.iteration_pass
            out[f"nb_iterations.{name}"] = slot.nb_iterations
            if slot.velocity is not None:
                out[f"velocity.{name}"] = slot.velocity.copy()
            if slot.accumulated is not None:
                out[f"accumulated.{name}"] = slot.accumulated.copy()
        return out

    def load_state(self, state):
        """Restore what ``state()`` returned (values may be 0-d arrays, as from npz)."""
        self._slots = {}
        for key, value in state.items():
            field, _, name = key.partition(".")
            if field not in _STATE_FIELDS:
                raise ValueError(unknown_message(f"SGD state entry {key}", field, _STATE_FIELDS))
            slot = self._slots.setdefault(name, _Slot())
            if field in ("iteration_pass", "nb_iterations"):
                setattr(slot, field, int(value))
            else:
                setattr(slot, field, np.array(value, dtype=np.float32))
