"""n2prune's additions to N2D2's prune quantizer, validated once.

N2D2's ``QWeight.*`` keys keep their meaning (``quantizer.PruneCell``); these
add *what* is kept (``pattern`` with its sizes, ``criterion``), *when*
(``schedule``, ``schedule_delay``, ``schedule_length``, ``restore_sparsity``,
``fix_sparsity``), *across which cells* (``scope`` with its caps) and the
slimming penalty. ``MaskRule`` is the seam from scores to a mask of a pattern.
"""

from dataclasses import dataclass

import numpy as np

from n2prune.prune import criteria, patterns, schedules

SCOPES = ("Layer", "Global")
# Patterns whose kept count is fixed by N and M, not by the scheduled sparsity.
FIXED_RATIO_PATTERNS = ("NM", "NMFlat")


@dataclass
class PruneOptions:
    """Keyword arguments of ``PruneCell`` beyond N2D2's (INI names in docs/ini-reference.rst).

    ``pattern`` None keeps N2D2's pruning filler; otherwise the mask is
    ``patterns.make_mask(pattern, criteria.score(criterion, W), sparsity)``.
    ``schedule_delay`` and ``schedule_length`` count stimuli, like N2D2's
    ``StepSizeThreshold`` (the period between fires).
    """

    pattern: str = None
    criterion: str = "Magnitude"
    n: int = 2
    m: int = 4
    bank_size: int = 64
    bank_interleave: int = 1
    block_outputs: int = 4
    block_inputs: int = 1
    schedule: str = schedules.GAMMA
    schedule_delay: int = 0
    schedule_length: int = 0
    restore_sparsity: bool = False
    fix_sparsity: bool = False
    scope: str = "Layer"
    min_sparsity: float = 0.0
    max_sparsity: float = 1.0
    gamma_penalty: float = 0.0

    def __post_init__(self):
        if self.pattern is not None and self.pattern not in patterns.PATTERNS:
            raise ValueError(f"pattern must be one of {', '.join(patterns.PATTERNS)}, "
                             f"got {self.pattern!r}")
        _choice("criterion", self.criterion, tuple(criteria.CRITERIA))
        _choice("schedule", self.schedule, schedules.schedule_names())
        _choice("scope", self.scope, SCOPES)
        self._check_numbers()
        self._check_combinations()

    def _check_numbers(self):
        for name in ("n", "m", "bank_size", "bank_interleave", "block_outputs", "block_inputs",
                     "schedule_delay", "schedule_length"):
            value = getattr(self, name)
            low = 0 if name in ("n", "schedule_delay", "schedule_length") else 1
            if int(value) != value or value < low:
                raise ValueError(f"{name} must be a whole number >= {low}, got {value}")
            setattr(self, name, int(value))
        if self.n > self.m:
            raise ValueError(f"n must be <= m (keep N of every M), got N={self.n} > M={self.m}")
        for name in ("min_sparsity", "max_sparsity"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a fraction in [0, 1], got {getattr(self, name)}")
        if self.min_sparsity > self.max_sparsity:
            raise ValueError(f"min_sparsity {self.min_sparsity} is above max_sparsity "
                             f"{self.max_sparsity}")
        if not self.gamma_penalty >= 0:
            raise ValueError(f"gamma_penalty must be >= 0, got {self.gamma_penalty}")

    def _check_combinations(self):
        if criteria.is_channel_only(self.criterion) and self.pattern != "Channel":
            raise ValueError(f"criterion {self.criterion} scores whole channels: it needs "
                             f"pattern Channel, got {self.pattern}")
        if self.pattern is None:
            # N2D2's PruningFiller has its own rule; ramps only move its threshold.
            for name, default in (("criterion", "Magnitude"), ("scope", "Layer")):
                if getattr(self, name) != default:
                    raise ValueError(f"{name} {getattr(self, name)} needs a pattern")
            if self.schedule in schedules.SOFT_SCHEDULES:
                raise ValueError(f"schedule {self.schedule} needs a pattern")

    @property
    def rule(self):
        return None if self.pattern is None else MaskRule(self)

    @property
    def is_ramp(self):
        """A closed-form schedule (everything but N2D2's Gamma)."""
        return self.schedule != schedules.GAMMA


class MaskRule:
    """Scores (criterion) -> mask (pattern) for one weight tensor."""

    def __init__(self, options):
        self.pattern, self.criterion = options.pattern, options.criterion
        self.params = patterns.PatternParams(
            n=options.n, m=options.m, bank_size=options.bank_size,
            interleave=options.bank_interleave, block_outputs=options.block_outputs,
            block_inputs=options.block_inputs)

    def check_shape(self, shape):
        """Raises ValueError when the pattern cannot apply to weights of ``shape``."""
        patterns.validate(self.pattern, shape, self.params)

    def scores(self, weights, context):
        return criteria.score(self.criterion, weights, context)

    def mask(self, scores, sparsity):
        """The pattern's uint8 mask; N:M patterns apply once the target is above 0."""
        if self.pattern in FIXED_RATIO_PATTERNS and not sparsity > 0:
            return np.ones(scores.shape, dtype=np.uint8)
        return patterns.make_mask(self.pattern, scores, float(sparsity), self.params)

    def check(self, mask):
        """Violations of the pattern in ``mask`` (empty when it follows it)."""
        return patterns.check_mask(self.pattern, mask, self.params)


def _choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
