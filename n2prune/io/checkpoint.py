"""Snapshots: everything needed to continue a run exactly where it stopped.

One ``.npz`` file holds every parameter, every cell state (BatchNorm
statistics), every solver state, the run's random generator state and the
position in the current epoch. Keys are ``param/<name>``, ``cell/<cell>/<key>``,
``quant/<cell>/<key>``, ``solver/<cell>/<role>/<key>``, ``epoch_order`` and
``meta`` (a JSON string). Everything read is checked before the network is
touched, so a damaged file is refused with one line and changes nothing.
"""

import io
import json
from pathlib import Path

import numpy as np

from n2prune.errors import UserError
from n2prune.io.arraycheck import (
    check_count,
    check_floats,
    check_known,
    check_mask,
    check_shape,
)
from n2prune.io.atomic import atomic_open
from n2prune.io.npz import read_npz, with_hint
from n2prune.io.snapshot_meta import check_epoch_order, read_meta

WEIGHTS_HINT = "export the weights again, or point --weights at another file"
SNAPSHOT_HINT = "the run cannot continue from it: start a new run (or restore the file from a copy)"
SOLVER_FIELDS = ("iteration_pass", "nb_iterations", "velocity", "accumulated")
QUANT_COUNTERS = ("counter", "delay_left", "fire_index")
QUANT_REQUIRED = ("target", "schedule_start", *QUANT_COUNTERS)


def network_arrays(network):
    """Parameter values, cell states and quantizer states (masks) as a flat dict."""
    arrays = {f"param/{p.name}": p.value for p in network.params()}
    for cell in network.cells:
        for key, value in cell.state().items():
            arrays[f"cell/{cell.name}/{key}"] = value
        quantizer = getattr(cell, "quantizer", None)
        if quantizer is not None:
            for key, value in quantizer.state().items():
                arrays[f"quant/{cell.name}/{key}"] = np.asarray(value)
    return arrays


def byte_budget(network, epoch_size=0):
    """The most bytes a weights file or snapshot of ``network`` can hold.

    Parameters, masks and cell states once, solver buffers (velocity,
    accumulated) twice more, soft masks once more; the epoch order (int64 per
    learn image, unknown to ``inspect``) within the fixed 64 MiB slack.
    """
    arrays = sum(np.asarray(a).nbytes for a in network_arrays(network).values())
    return 4 * arrays + 8 * epoch_size + (64 << 20)


def load_weights_file(path, network):
    """Load a weights ``.npz`` into ``network``; returns the arrays read."""
    arrays = read_npz(path, "weights file", WEIGHTS_HINT, max_bytes=byte_budget(network))
    try:
        load_network_arrays(network, arrays, path)
    except UserError as exc:
        raise with_hint(exc, WEIGHTS_HINT) from None
    return arrays


def _sub_dict(arrays, prefix):
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def load_network_arrays(network, arrays, source):
    """Copy arrays saved by ``network_arrays`` back into ``network``.

    Shapes, dtypes, finiteness and masks are checked for every cell first: a
    refused file leaves the network as it was.
    """
    for p in network.params():
        key = f"param/{p.name}"
        if key not in arrays:
            raise UserError(f"{source}: no values for {p.name}; was it saved from another model?")
        check_shape(arrays[key], p.value.shape, p.name, source)
        check_floats(arrays[key], p.name, source, p.value.dtype)
    for cell in network.cells:
        _check_cell_state(cell, _sub_dict(arrays, f"cell/{cell.name}/"), source)
        _check_quantizer_state(cell, _quantizer_state(arrays, cell), source)
    for p in network.params():
        p.value[...] = arrays[f"param/{p.name}"]
        p.changed()
    for cell in network.cells:
        state = _sub_dict(arrays, f"cell/{cell.name}/")
        if state:
            cell.load_state(state)
        state = _quantizer_state(arrays, cell)
        if state:
            cell.quantizer.load_state(state)


# Snapshots written before the prune schedule was a composed object name two
# quantizer entries otherwise and keep two that are now derived.
RENAMED_QUANT_STATE = {"fires": "fire_index", "ramp_start": "schedule_start"}
DERIVED_QUANT_STATE = ("threshold", "version")


def _check_cell_state(cell, state, source):
    expected = cell.state()
    for key, value in state.items():
        check_known(key, expected, f"[{cell.name}]", source)
        check_shape(value, np.shape(expected[key]), f"{key} of [{cell.name}]", source)
        check_floats(value, f"{key} of [{cell.name}]", source)


def _quantizer_state(arrays, cell):
    """The ``quant/<cell>/`` entries; those of a snapshot in the previous layout
    translated, so that a run interrupted before an upgrade resumes."""
    state = _sub_dict(arrays, f"quant/{cell.name}/")
    if not any(name in state for name in RENAMED_QUANT_STATE):
        return state
    return {RENAMED_QUANT_STATE.get(name, name): value for name, value in state.items()
            if name not in DERIVED_QUANT_STATE}


def _check_quantizer_state(cell, state, source):
    """Masks of the weights' shapes holding 0/1, whole-number counters, finite scalars."""
    if not state:
        return
    owner = f"the pruning state of [{cell.name}]"
    quantizer = getattr(cell, "quantizer", None)
    if quantizer is None:
        raise UserError(f"{source}: holds {owner}, but [{cell.name}] is not pruned in this model")
    shapes = [np.shape(quantizer.mask(k)) for k in range(len(cell.weights))]
    masks = {f"{kind}{k}": s for kind in ("mask", "soft") for k, s in enumerate(shapes)}
    known = {*masks, *quantizer.state()}
    for key, value in state.items():
        check_known(key, known, owner, source)
        name = f"{key} of [{cell.name}]"
        if key.startswith("mask"):
            check_mask(value, masks[key], name, source)
        elif key in masks:
            check_shape(value, masks[key], name, source)
            check_floats(value, name, source)
        elif key in QUANT_COUNTERS:
            check_count(value, name, source)
        else:
            check_shape(value, (), name, source)
            check_floats(value, name, source)
    missing = [k for k in (*masks, *QUANT_REQUIRED) if k not in state and not k.startswith("soft")]
    if missing:
        raise UserError(f"{source}: {owner} lacks {', '.join(missing)}")


def _solver_arrays(network):
    arrays = {}
    for cell, solvers in network.solvers.items():
        for role, solver in zip(("weights", "biases"), solvers):
            for key, value in solver.state().items():
                arrays[f"solver/{cell}/{role}/{key}"] = np.asarray(value)
    return arrays


def _solver_states(network, arrays, source):
    """``(solver, state)`` pairs read from ``arrays``, every entry checked."""
    pairs = []
    for name, solvers in network.solvers.items():
        cell = network.cell(name)
        for role, solver in zip(("weights", "biases"), solvers):
            state = _sub_dict(arrays, f"solver/{name}/{role}/")
            # The weights solver updates role "weights" params, the other the rest.
            params = {p.name: p for p in cell.params() if (p.role == "weights") == (role == "weights")}
            for key, value in state.items():
                _check_solver_entry(key, value, params, f"the {role} solver of [{name}]", source)
            pairs.append((solver, state))
    return pairs


def _check_solver_entry(key, value, params, owner, source):
    field, _, param = key.partition(".")
    check_known(field, SOLVER_FIELDS, owner, source)
    check_known(param, params, owner, source)
    if field in ("velocity", "accumulated"):
        check_shape(value, params[param].value.shape, f"{key} of {owner}", source)
        check_floats(value, f"{key} of {owner}", source)
    else:
        check_count(value, f"{key} of {owner}", source)


def snapshot_arrays(network, meta, extra=None):
    """Every array a snapshot holds, ``meta`` (JSON-serialisable) as a 0-d string."""
    arrays = {**network_arrays(network), **_solver_arrays(network), **(extra or {})}
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def save_snapshot(path, network, meta, extra=None):
    """Write the snapshot atomically; ``meta`` must be JSON-serialisable."""
    arrays = snapshot_arrays(network, meta, extra)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())


def load_snapshot(path, network, epoch_size=None):
    """Restore ``network`` and its solvers from ``path``; returns ``(meta, arrays)``.

    ``meta`` is checked (run state, random generator states) and so is
    ``arrays["epoch_order"]`` (a permutation of ``epoch_size`` indices).
    """
    if not Path(path).exists():
        raise UserError(f"{path}: no snapshot here (was the run started?)")
    arrays = read_npz(path, "snapshot", SNAPSHOT_HINT, text_keys=("meta",),
                      max_bytes=byte_budget(network, epoch_size or 0))
    return restore_arrays(network, arrays, path, epoch_size)


def restore_arrays(network, arrays, source, epoch_size=None):
    """``load_snapshot`` from ``snapshot_arrays`` output held in memory (``source``
    names them in messages); ``arrays`` loses its ``meta``."""
    try:
        meta = read_meta(arrays.pop("meta", None), source)
        check_epoch_order(arrays.get("epoch_order"), epoch_size, source)
        solver_states = _solver_states(network, arrays, source)
        load_network_arrays(network, arrays, source)
    except UserError as exc:
        raise with_hint(exc, SNAPSHOT_HINT) from None
    for solver, state in solver_states:
        solver.load_state(state)
    return meta, arrays
