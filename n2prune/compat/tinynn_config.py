"""The config of TinyNN's ``OneShotChannelPruner``: read, checked, and written back.

TinyNN takes a dict or the path of a file it reads with a YAML loader; its
docstring calls it "the json file". n2prune reads a dict or a JSON file
(no YAML dependency), and ``write_config`` writes JSON, which TinyNN's YAML
loader also reads (JSON is a subset of YAML 1.2). Keys and values are
TinyNN's::

    {"sparsity": {"default": 0.5, "conv2": 0.25}, "metrics": "l2_norm",
     "skip_last_fc": true, "exclude_ops": ["fc1"]}

``exclude_ops`` names cells here (TinyNN's names operator types).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from n2prune.errors import UserError
from n2prune.registry import unknown_message

# TinyNN's metric names -> QWeight.Criterion (n2prune.prune.criteria). L2 scores
# w², whose per-channel sum ranks the channels as TinyNN's l2 norm does.
METRICS = {"l1_norm": "L1", "l2_norm": "L2", "fpgm": "FPGM", "random": "Random"}
# TinyNN's OneShotChannelPruner requires these two.
REQUIRED = ("sparsity", "metrics")
KNOWN_KEYS = (*REQUIRED, "skip_last_fc", "exclude_ops")
WHERE = "the OneShotChannelPruner config"


@dataclass
class PrunerConfig:
    """A checked config: ``default`` sparsity, ``per_cell`` ``{cell: sparsity}``,
    ``metrics`` (a key of ``METRICS``), ``skip_last_fc``, ``exclude_ops`` (cell names)."""

    default: float
    metrics: str
    per_cell: dict = field(default_factory=dict)
    skip_last_fc: bool = True
    exclude_ops: list = field(default_factory=list)

    @property
    def criterion(self):
        return METRICS[self.metrics]


def read_config(config):
    """A ``PrunerConfig`` from a dict or the path of a JSON file; UserError when a key or
    value is not TinyNN's (naming it and the known ones)."""
    if isinstance(config, (str, Path)):
        config = _load_json(Path(config))
    if not isinstance(config, dict):
        raise UserError(f"{WHERE} must be a dict or the path of a JSON file, "
                        f"got {type(config).__name__}")
    for key in config:
        if key not in KNOWN_KEYS:
            raise UserError(unknown_message(f"key {key!r}", key, KNOWN_KEYS, WHERE))
    missing = [key for key in REQUIRED if key not in config]
    if missing:
        raise UserError(f"{WHERE} needs {' and '.join(map(repr, missing))} (as TinyNN)")
    metrics = config["metrics"]
    if metrics not in METRICS:
        raise UserError(unknown_message(f"metrics {metrics!r}", metrics, list(METRICS), WHERE))
    default, per_cell = _sparsities(config["sparsity"])
    skip_last_fc = config.get("skip_last_fc", True)
    if not isinstance(skip_last_fc, bool):
        raise UserError(f"skip_last_fc must be true or false, got {skip_last_fc!r}")
    exclude = config.get("exclude_ops", [])
    if not isinstance(exclude, (list, tuple)) or not all(isinstance(n, str) for n in exclude):
        raise UserError(f"exclude_ops must be a list of cell names, got {exclude!r}")
    return PrunerConfig(default, metrics, per_cell, skip_last_fc, list(exclude))


def _sparsities(sparsity):
    """``(default, {cell: value})`` from a float or TinyNN's dict (``default`` required)."""
    if not isinstance(sparsity, dict):
        return _fraction("sparsity", sparsity), {}
    if "default" not in sparsity:
        raise UserError("sparsity: a per-cell dict needs a 'default' key for the cells it does "
                        "not name (as TinyNN)")
    per_cell = {str(name): _fraction(f"sparsity[{name!r}]", value)
                for name, value in sparsity.items() if name != "default"}
    return _fraction("sparsity['default']", sparsity["default"]), per_cell


def _fraction(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise UserError(f"{name} must be a number in [0, 1) (the fraction of channels "
                        f"removed), got {value!r}")
    return float(value)


def _load_json(path):
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the config ({exc.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: not JSON ({exc.msg}); n2prune reads the "
                        "config as JSON, not YAML") from None


def write_config(path, config, sparsities):
    """Write ``config`` as JSON with ``sparsities`` (``{cell: value}``) under ``sparsity``
    beside its ``default``: TinyNN's ``generate_config``, one line per cell to edit."""
    data = {"sparsity": {"default": config.default, **sparsities}, "metrics": config.metrics,
            "skip_last_fc": config.skip_last_fc, "exclude_ops": config.exclude_ops}
    Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
