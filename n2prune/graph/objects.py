"""Activation functions, fillers and solvers read from a cell section."""

from n2prune.cells import activations as act
from n2prune.cells import fillers
from n2prune.errors import IniError
from n2prune.graph.tables import (
    ACTIVATION_KEYS,
    FILLER_KEYS,
    SGD_IGNORED_KEYS,
    SGD_KEYS,
)
from n2prune.ini import did_you_mean, known_hint, values
from n2prune.solvers.sgd import SGD


def _unknown_type(reader, key, name, known):
    hint = did_you_mean(name, known)
    extra = f"did you mean {hint}? " if hint else ""
    return reader.error(key, f"unknown {key}={name} ({extra}known: {', '.join(known)})")


def _read_sub_keys(reader, prefix, table):
    """Typed ``prefix.Key`` values per a declared table; unknown sub-keys are errors."""
    kwargs = {}
    for key in reader.keys_with_prefix(prefix + "."):
        sub = key[len(prefix) + 1:]
        if sub not in table:
            hint = did_you_mean(sub, sorted(table))
            extra = f"; did you mean {prefix}.{hint}?" if hint else ""
            known = ", ".join(sorted(table)) or "none"
            raise reader.error(key, f"unknown parameter{extra} (known: {known})")
    for sub, (py_name, reader_fn, default) in table.items():
        kwargs[py_name] = reader.get(f"{prefix}.{sub}", reader_fn, default)
    return kwargs


def _construct(reader, key, cls, kwargs):
    """``cls(**kwargs)``; a ValueError (bad value) becomes an IniError at the key's line.

    The line is that of the ``key.Sub`` the message names (``LeakSlope``), else ``key``'s.
    """
    try:
        return cls(**kwargs)
    except ValueError as exc:
        subs = [k for k in reader.keys_with_prefix(key + ".") if k[len(key) + 1:] in str(exc)]
        raise reader.error(subs[0] if subs else key, str(exc)) from None


def read_activation(reader):
    """The ``ActivationFunction`` object of a cell, or ``None`` (identity)."""
    if not reader.has("ActivationFunction"):
        for key in reader.keys_with_prefix("ActivationFunction."):
            raise reader.error(key, "ActivationFunction.* given without ActivationFunction=")
        return None
    known = list(ACTIVATION_KEYS)
    name = reader.get("ActivationFunction", values.as_str)
    if name not in ACTIVATION_KEYS:
        raise _unknown_type(reader, "ActivationFunction", name, known)
    kwargs = _read_sub_keys(reader, "ActivationFunction", ACTIVATION_KEYS[name])
    return _construct(reader, "ActivationFunction", act.ACTIVATIONS[name], kwargs)


def read_filler(reader, key):
    """A filler object for ``WeightsFiller`` / ``BiasFiller``, or ``None`` (default)."""
    if not reader.has(key):
        return None
    name = reader.get(key, values.as_str)
    if name not in FILLER_KEYS:
        raise _unknown_type(reader, key, name, list(FILLER_KEYS))
    kwargs = _read_sub_keys(reader, key, FILLER_KEYS[name])
    return _construct(reader, key, fillers.FILLERS[name], kwargs)


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
