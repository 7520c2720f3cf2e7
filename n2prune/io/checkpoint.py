"""Snapshots: everything needed to continue a run exactly where it stopped.

One ``.npz`` file holds every parameter, every cell state (BatchNorm
statistics), every solver state, the run's random generator state and the
position in the current epoch. Keys are ``param/<name>``, ``cell/<cell>/<key>``,
``solver/<cell>/<role>/<key>`` and ``meta`` (a JSON string).
"""

import io
import json

import numpy as np

from n2prune.errors import UserError
from n2prune.io.atomic import atomic_open


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


def _sub_dict(arrays, prefix):
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def load_network_arrays(network, arrays, source):
    """Copy arrays saved by ``network_arrays`` back into ``network`` (shapes checked)."""
    for p in network.params():
        key = f"param/{p.name}"
        if key not in arrays:
            raise UserError(f"{source}: no values for {p.name}; was it saved from another model?")
        if arrays[key].shape != p.value.shape:
            raise UserError(f"{source}: {p.name} has shape {arrays[key].shape}, "
                            f"the model expects {p.value.shape}")
        p.value[...] = arrays[key]
        p.changed()
    for cell in network.cells:
        state = _sub_dict(arrays, f"cell/{cell.name}/")
        if state:
            cell.load_state(state)
        quantizer = getattr(cell, "quantizer", None)
        state = _sub_dict(arrays, f"quant/{cell.name}/")
        if quantizer is not None and state:
            quantizer.load_state(state)


def _solver_arrays(network):
    arrays = {}
    for cell, solvers in network.solvers.items():
        for role, solver in zip(("weights", "biases"), solvers):
            for key, value in solver.state().items():
                arrays[f"solver/{cell}/{role}/{key}"] = np.asarray(value)
    return arrays


def _load_solvers(network, arrays):
    for cell, solvers in network.solvers.items():
        for role, solver in zip(("weights", "biases"), solvers):
            prefix = f"solver/{cell}/{role}/"
            state = {k[len(prefix):]: arrays[k] for k in arrays if k.startswith(prefix)}
            solver.load_state(state)


def save_snapshot(path, network, meta, extra=None):
    """Write the snapshot atomically; ``meta`` must be JSON-serialisable."""
    arrays = {**network_arrays(network), **_solver_arrays(network), **(extra or {})}
    arrays["meta"] = np.array(json.dumps(meta))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())


def load_snapshot(path, network):
    """Restore ``network`` and its solvers from ``path``; returns ``(meta, arrays)``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise UserError(f"{path}: no snapshot here (was the run started?)") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable snapshot ({exc})") from None
    load_network_arrays(network, arrays, path)
    _load_solvers(network, arrays)
    return json.loads(str(arrays.pop("meta"))), arrays
