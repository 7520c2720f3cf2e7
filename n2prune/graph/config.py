"""ConfigSection merging and the routing of prefixed keys, as N2D2's CellGenerator.

A cell's configuration comes from two places: prefixed keys written in the
cell section itself (``QWeight.Threshold=0.3``) and the sections named by
``ConfigSection=a,b``, merged in order, later wins. Each key is routed:

* ``Solvers.X`` -> both the weights and the bias solver,
* ``WeightsSolver.X`` / ``BiasSolver.X`` -> that solver (wins over ``Solvers.X``),
* ``QWeight.X`` -> the weight quantizer (kept for it, see ``prune/``),
* anything else from a ConfigSection -> a cell parameter (``NoBias``, ``Dropout``...),
  read against the cell type's table (``graph/cell_keys.read_parameters``).

Keys are kept as ``(section, key)`` references, so a bad value is reported at
the line where it was written.
"""

from n2prune.errors import IniError
from n2prune.registry import unknown_message

SOLVER_PREFIXES = ("Solvers.", "WeightsSolver.", "BiasSolver.")
QUANTIZER_PREFIX = "QWeight."
UNSUPPORTED_PREFIXES = {
    "QAct": "activation quantization (QAct) is not supported",
    "QActSolver": "activation quantization (QAct) is not supported",
    "QWeightSolver": "trainable weight quantizers (QWeightSolver) are not supported",
}


class RoutedConfig:
    """Where each routed key of one cell comes from: ``{name: (section, key)}``."""

    def __init__(self):
        self.params = {}
        self.weights_solver = {}
        self.bias_solver = {}
        self.quantizer = {}
        self._generic_solver = {}

    def finish(self):
        # Specific solver keys win over Solvers.* whatever their order (N2D2
        # applies Solvers.* first, then WeightsSolver.* / BiasSolver.*).
        self.weights_solver = {**self._generic_solver, **self.weights_solver}
        self.bias_solver = {**self._generic_solver, **self.bias_solver}
        return self


def config_sections(ini, cell):
    """Names listed by ``ConfigSection=`` (comma separated, no spaces), checked."""
    sec = ini.section(cell)
    if not sec.has("ConfigSection"):
        return []
    names = [n for n in ini.value(cell, "ConfigSection").split(",") if n]
    for name in names:
        if not ini.has_section(name):
            known = [s.name for s in ini.sections()]
            message = unknown_message(f"section [{name}]", name, known)
            raise IniError(message, ini.where(cell, "ConfigSection"))
    return names


def _check_supported(ini, section, key):
    head = key.split(".", 1)[0]
    if head in UNSUPPORTED_PREFIXES:
        raise IniError(f"{ini.where(section, key)}: {UNSUPPORTED_PREFIXES[head]}")


def _route(routed, section, key, from_config):
    ref = (section, key)
    if key.startswith("Solvers."):
        routed._generic_solver[key[len("Solvers."):]] = ref
    elif key.startswith("WeightsSolver."):
        routed.weights_solver[key[len("WeightsSolver."):]] = ref
    elif key.startswith("BiasSolver."):
        routed.bias_solver[key[len("BiasSolver."):]] = ref
    elif key.startswith(QUANTIZER_PREFIX):
        routed.quantizer[key[len(QUANTIZER_PREFIX):]] = ref
    elif from_config:
        routed.params[key] = ref
    else:
        return False
    return True


def route_cell_config(ini, cell):
    """Collect the routed keys of ``cell`` (cell section first, ConfigSection after)."""
    routed = RoutedConfig()
    sec = ini.section(cell)
    for key in sec:
        _check_supported(ini, cell, key)
        if _route(routed, cell, key, from_config=False):
            ini.mark_used(cell, key)
    for name in config_sections(ini, cell):
        for key in ini.section(name):
            if key.startswith("$"):
                continue
            _check_supported(ini, name, key)
            _route(routed, name, key, from_config=True)
            ini.mark_used(name, key)
    return routed.finish()
