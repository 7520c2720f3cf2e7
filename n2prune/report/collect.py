"""Everything the report shows, read from a run folder: facts, metrics, costs, masks.

The network is rebuilt from the run's own ``config.ini`` with its latest
weights and masks (``inspect.load_run``); the costs are ``prune.costs``'s
(dense, effective) and, when ``n2prune shrink`` wrote ``RUN/shrunk``, the
shrunk model's own counts.
"""

import dataclasses
import datetime
import json
from pathlib import Path

import numpy as np

from n2prune.cells import Conv, Deconv
from n2prune.errors import UserError
from n2prune.inspect import cell_row, load_run
from n2prune.prune.costs import cell_costs, totals
from n2prune.prune.pruned_cells import pruned_cells
from n2prune.report.metrics import read_metrics
from n2prune.train.runfolder import RunFolder

# States of one weight in a mask picture.
PRUNED, KEPT, UNCONNECTED = 0, 1, 2


@dataclasses.dataclass
class RunData:
    """What one report shows; ``shrunk`` is ``{cell: (params, MACs)}`` of the shrunk model
    (None without ``RUN/shrunk``), ``masks`` ``{cell: (outputs, inputs) states}``."""

    path: Path
    info: dict
    summary: dict
    metrics: object
    config_text: str
    weights: Path
    costs: list
    total: dict
    shrunk: dict
    pruned: list
    masks: dict
    started: str
    finished: str


def collect(run):
    """The ``RunData`` of run folder ``run``; a UserError if it is not one or a file is bad."""
    path = Path(run)
    if not path.is_dir():
        problem = "not a folder" if path.exists() else "no such run folder"
        raise UserError(f"{path}: {problem} (give the folder n2prune train wrote, its --out)")
    info = RunFolder(path).run_info()
    metrics = read_metrics(path)
    network, weights = load_run(path)
    costs = cell_costs(network)
    cells = pruned_cells(network)
    return RunData(path=path, info=info, summary=_summary(path), metrics=metrics,
                   config_text=_text(path / "config.ini"), weights=weights, costs=costs,
                   total=totals(costs), shrunk=_shrunk(path / "shrunk"),
                   pruned=[cell_row(c) for c in cells],
                   masks={c.name: mask_states(c) for c in cells},
                   started=_modified(path / "config.ini"), finished=_modified(path / "summary.json"))


def _text(path):
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable ({exc.__class__.__name__})") from None


def _summary(path):
    """``summary.json`` (written when training ends), ``{}`` while the run is unfinished."""
    file = path / "summary.json"
    if not file.exists():
        return {}
    try:
        summary = json.loads(_text(file))
    except (ValueError, RecursionError):
        summary = None
    if not isinstance(summary, dict):
        raise UserError(f"{file}: not a JSON object; delete it (the report then shows the run "
                        "as unfinished) or train the run again")
    return summary


def _modified(path):
    """The time ``path`` was last written, local and to the second; None if absent."""
    if not path.exists():
        return None
    moment = datetime.datetime.fromtimestamp(path.stat().st_mtime).astimezone()
    return moment.isoformat(sep=" ", timespec="seconds")


def _shrunk(folder):
    """``{cell: (params, MACs)}`` of the model ``n2prune shrink`` wrote, or None."""
    if not (folder / "model.ini").is_file():
        return None
    network, _weights = load_run(folder)
    return {r["cell"]: (r["params_dense"], r["macs_dense"]) for r in cell_costs(network)}


def mask_states(cell):
    """``(outputs, inputs)`` uint8 array of ``KEPT``, ``PRUNED`` and ``UNCONNECTED`` (a Conv
    mapping's absent kernels), inputs in (input tensor, channel, ky, kx) order."""
    parts = []
    for k in range(len(cell.weights)):
        mask = cell.quantizer.mask(k)
        states = np.where(mask != 0, KEPT, PRUNED).astype(np.uint8)
        if isinstance(cell, (Conv, Deconv)) and cell.connections[k].mask is not None:
            absent = np.broadcast_to(cell.connections[k].mask == 0, states.shape)
            states = np.where(absent, UNCONNECTED, states).astype(np.uint8)
        parts.append(states.reshape(states.shape[0], -1))
    return np.concatenate(parts, axis=1)
