"""Activation functions, fillers and solvers read from a cell section."""

import logging

from n2prune.cells import activations as act
from n2prune.cells import fillers
from n2prune.graph.keys import construct, place, read_keys, read_member
from n2prune.ini import values
from n2prune.solvers import SOLVERS

log = logging.getLogger("n2prune")


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


def _solver_class(ini, cell, key):
    """``(name, class)`` of the solver ``key`` names in ``cell``, or None when it is absent."""
    if not ini.section(cell).has(key):
        return None
    name = ini.read(cell, key, values.as_str)
    return name, SOLVERS.lookup(name, place(ini, cell, key), what=key)


def build_solvers(ini, cell, routed, stand_in_notes=None):
    """The (weights, biases) solvers of a cell, as configured.

    ``WeightsSolver=`` / ``BiasSolver=`` win over ``Solvers=``; without any,
    SGD (N2D2's default). Each reads its routed keys against its key table.
    ``stand_in_notes`` is a set when ``[sp]_EpochSize`` is the stand-in 1 (no
    database: nothing trains); it collects the lines already noted.
    """
    generic = _solver_class(ini, cell, "Solvers") or ("SGD", SOLVERS["SGD"])
    solvers = []
    for key, refs in (("WeightsSolver", routed.weights_solver), ("BiasSolver", routed.bias_solver)):
        name, solver = _solver_class(ini, cell, key) or generic
        kwargs, located = read_keys(ini, refs, solver.key_table, f"{name} solver parameter")
        if stand_in_notes is not None:
            _lift_stand_in_zero(ini, refs.get("MaxIterations"), kwargs, stand_in_notes)
        # A refused setting left unwritten (PolyDecay without MaxIterations) is
        # reported at the policy that needs it, else at the cell.
        fallback = located.get("learning_rate_policy", ini.where(cell, "Type"))
        solvers.append(construct(solver, kwargs, located, fallback))
    return tuple(solvers)


def _lift_stand_in_zero(ini, ref, kwargs, noted):
    """``MaxIterations`` 0 only because it scales ``[sp]_EpochSize``'s stand-in 1: use 1.

    N2D2's models write ``$([sp]_EpochSize * EPOCHS // BATCH)``, 0 when the
    epoch size is 1, which PolyDecay refuses. N2D2 itself only fails at the
    first update; without a database nothing updates, so the check goes on,
    saying so. A literal 0 (no ``_EpochSize`` in the value) is still refused.
    """
    if ref is None or kwargs.get("max_iterations") != 0:
        return
    section, key = ref
    if "_EpochSize" not in ini.section(section).entry(key).value:
        return
    kwargs["max_iterations"] = 1
    where = ini.where(section, key)
    if where not in noted:
        noted.add(where)
        log.info("notice: %s is 0 with the stand-in [sp]_EpochSize=1 (no database); "
                 "checked as 1, training computes it from the learn set", where)
