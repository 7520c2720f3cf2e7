"""Activation functions, fillers and solvers read from a cell section."""

from n2prune.cells import activations as act
from n2prune.cells import fillers
from n2prune.errors import IniError
from n2prune.graph.keys import construct, read_member
from n2prune.graph.tables import SGD_IGNORED_KEYS, SGD_KEYS
from n2prune.ini import known_hint, values
from n2prune.solvers.sgd import SGD


def _read_object(reader, key, registry):
    """The object ``key`` names in the reader's section, built from its ``key.*`` settings,
    or None when the key is absent."""
    found = read_member(reader.ini, reader.section, key, registry)
    reader.has(key)  # declares the key for the unknown-key report
    if found is None:
        return None
    member, kwargs, located = found
    return construct(member, kwargs, located, reader.where(key))


def read_activation(reader):
    """The ``ActivationFunction`` object of a cell, or ``None`` (identity)."""
    return _read_object(reader, "ActivationFunction", act.ACTIVATIONS)


def read_filler(reader, key):
    """A filler object for ``WeightsFiller`` / ``BiasFiller``, or ``None`` (default)."""
    return _read_object(reader, key, fillers.FILLERS)


def read_solver_kwargs(ini, refs):
    """SGD keyword arguments from routed ``(section, key)`` references."""
    kwargs = {}
    for name, (section, key) in refs.items():
        if name in SGD_IGNORED_KEYS:
            continue
        if name not in SGD_KEYS:
            raise IniError(f"{ini.where(section, key)}: unknown SGD solver parameter {name} "
                           f"{known_hint(name, SGD_KEYS)}")
        py_name, reader_fn, _default = SGD_KEYS[name]
        kwargs[py_name] = ini.read(section, key, reader_fn)
    return kwargs


def build_solvers(ini, cell, routed):
    """The (weights, biases) SGD solvers of a cell, as configured."""
    sec = ini.section(cell)
    for key in ("Solvers", "WeightsSolver", "BiasSolver"):
        if sec.has(key):
            kind = ini.read(cell, key, values.as_str)
            if kind != "SGD":
                raise IniError(f"{ini.where(cell, key)}: solver {kind} is not supported (known: SGD)")
    solvers = []
    for refs in (routed.weights_solver, routed.bias_solver):
        try:
            solvers.append(SGD(**read_solver_kwargs(ini, refs)))
        except ValueError as exc:  # settings that cannot work together
            where = ini.where(*next(iter(refs.values()))) if refs else ini.where(cell, "Type")
            raise IniError(f"{where}: {exc}") from None
    return tuple(solvers)
