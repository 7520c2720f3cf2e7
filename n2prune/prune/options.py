"""n2prune's additions to N2D2's prune quantizer, validated once.

N2D2's ``QWeight.*`` keys keep their meaning (``prune_cell.PruneCell``);
these add *what* is kept (``pattern``, its sizes in ``PatternParams``, and
``criterion``), *when* (``schedule``, ``schedule_delay``,
``schedule_length``, ``restore_sparsity``, ``fix_sparsity``), *across which
cells* (``scope`` with its caps) and the slimming penalty. A refused value
raises ``SettingError`` naming its keyword, so the INI reader can point at
the key's line.
"""

import dataclasses
from dataclasses import dataclass

from n2prune.errors import SettingError
from n2prune.prune import criteria, patterns
from n2prune.prune.schedules import SCHEDULES
from n2prune.registry import UnknownName, unknown_message

# How the scores of the cells that share channels add up (channel groups).
GROUP_REDUCTIONS = ("Sum", "Mean", "Max")
SCOPES = ("Layer", "Global")


@dataclass
class PruneOptions:
    """Keyword arguments of ``PruneCell`` beyond N2D2's and the pattern sizes.

    ``pattern`` None keeps N2D2's pruning filler; otherwise the mask is
    ``patterns.make_mask(pattern, criteria.score(criterion, W), target)``.
    ``schedule_delay`` and ``schedule_length`` count stimuli, like N2D2's
    ``StepSizeThreshold`` (the period between fires). From Python (not
    INI), ``criterion`` may be a function ``fn(w, context)`` and ``schedule``
    a schedule object (``schedules``' protocol: ``target``, ``fires_after``,
    ``soft_mask``...): the facades' per-epoch TI schedules are.
    """

    pattern: str = None
    criterion: str = "Magnitude"
    schedule: str = "Gamma"
    schedule_delay: int = 0
    schedule_length: int = 0
    restore_sparsity: bool = False
    fix_sparsity: bool = False
    scope: str = "Layer"
    min_sparsity: float = 0.0
    max_sparsity: float = 1.0
    gamma_penalty: float = 0.0
    group_reduction: str = "Sum"
    round_to: int = 1

    def __post_init__(self):
        if self.pattern is not None:
            member("pattern", patterns.PATTERNS, self.pattern)
        if not callable(self.criterion):
            member("criterion", criteria.CRITERIA, self.criterion)
        if isinstance(self.schedule, str):
            member("schedule", SCHEDULES, self.schedule)
        check_choice("scope", "QWeight.Scope", self.scope, SCOPES)
        check_choice("group_reduction", "QWeight.GroupReduction", self.group_reduction,
                     GROUP_REDUCTIONS)
        self._check_numbers()
        self._check_combinations()

    def _check_numbers(self):
        for name in ("schedule_delay", "schedule_length"):
            setattr(self, name, whole(name, getattr(self, name), 0))
        self.round_to = whole("round_to", self.round_to, 1)
        for name in ("min_sparsity", "max_sparsity"):
            check_fraction(name, getattr(self, name))
        if self.min_sparsity > self.max_sparsity:
            raise SettingError("min_sparsity", f"min_sparsity {self.min_sparsity} is above "
                                               f"max_sparsity {self.max_sparsity}")
        if not self.gamma_penalty >= 0:
            raise SettingError("gamma_penalty", f"gamma_penalty must be >= 0, "
                                                f"got {self.gamma_penalty}")

    def _check_combinations(self):
        if criteria.is_channel_only(self.criterion) and self.pattern != "Channel":
            raise SettingError("criterion", f"criterion {self.criterion} scores whole channels: "
                                            f"it needs pattern Channel, got {self.pattern}")
        if self.pattern is None:
            # N2D2's PruningFiller has its own rule; ramps only move its threshold.
            for name, default in (("criterion", "Magnitude"), ("scope", "Layer")):
                if getattr(self, name) != default:
                    raise SettingError(name, f"{name} {getattr(self, name)} needs a pattern")
            if schedule_is_soft(self.schedule):
                raise SettingError("schedule", f"schedule {self.schedule} needs a pattern")
        if self.fix_sparsity and self.scope == "Global":
            raise SettingError("fix_sparsity", "fix_sparsity locks each cell's own zeros: it "
                                               "cannot share a Global scope's target")


def schedule_is_soft(schedule):
    """Whether ``schedule`` (a ``SCHEDULES`` name or a schedule object) gives soft masks."""
    return (SCHEDULES[schedule] if isinstance(schedule, str) else schedule).soft


def checked_params(params):
    """``params`` (a ``PatternParams``) with whole-number sizes, else SettingError."""
    sizes = {}
    for field in dataclasses.fields(params):
        low = 0 if field.name == "n" else 1
        sizes[field.name] = whole(field.name, getattr(params, field.name), low)
    if sizes["n"] > sizes["m"]:
        raise SettingError("n", f"n must be <= m (keep N of every M), got N={sizes['n']} > "
                                f"M={sizes['m']}")
    return dataclasses.replace(params, **sizes)


def member(setting, registry, name):
    """``registry.lookup(name)``, its one wording blamed on keyword ``setting``."""
    try:
        return registry.lookup(name)
    except UnknownName as exc:
        raise SettingError(setting, str(exc)) from None


def check_choice(setting, key, value, choices):
    """``value`` if in ``choices``, else SettingError in ``Registry.lookup``'s wording."""
    if value not in choices:
        raise SettingError(setting, unknown_message(f"{key}={value}", value, choices))
    return value


def whole(setting, value, low):
    """``value`` as an int, else SettingError: not a whole number >= ``low``."""
    if int(value) != value or value < low:
        raise SettingError(setting, f"{setting} must be a whole number >= {low}, got {value}")
    return int(value)


def check_fraction(setting, value):
    if not 0 <= value <= 1:
        raise SettingError(setting, f"{setting} must be a fraction in [0, 1], got {value}")
