"""``n2prune shrink RUN``: the run's network without its removed channels, as files.

Writes ``model.ini`` (the run's resolved INI with ``NbOutputs`` reduced,
mapping tables cut, the channel-pruning ``QWeight`` keys commented out,
every change explained in a comment), ``weights.npz`` and N2D2's
``weights/`` folder. The new model loads and trains on its own. Before
writing, the shrunk network is built from the new INI and checked: on a
random batch its outputs equal the masked network's (to 1e-5).
"""

import math
from pathlib import Path

import numpy as np

from n2prune.cells import Conv, Deconv, Pool
from n2prune.errors import UserError
from n2prune.ini import load_ini
from n2prune.inspect import load_run
from n2prune.io.atomic import atomic_open, atomic_write_text
from n2prune.io.checkpoint import load_network_arrays, network_arrays
from n2prune.io.syntxt import export_network
from n2prune.prune.channels import channel_cells
from n2prune.prune.shrink import kept_channels, kept_inputs, mapping_of, shrunk_arrays
from n2prune.train.model import Model

TOLERANCE = 1e-5


def shrink_run(run, out=None):
    """Write the shrunk model of run folder ``run`` into ``out`` (default ``RUN/shrunk``);
    returns ``(out, lines of what changed, largest output difference)``."""
    network, _source = load_run(run)
    out = Path(out) if out is not None else Path(run) / "shrunk"
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out}: exists and is not empty; give another --out")
    pruned = [c.name for c in channel_cells(network)]
    if not network.removed_channels:
        raise UserError(f"{run}: no channel was removed (no cell prunes with "
                        "QWeight.Pattern=Channel, or its target is still 0): nothing to shrink")
    kept = kept_channels(network)
    edits = cell_edits(network, kept, pruned)
    config = Path(run) / "config.ini"
    text = rewrite_ini(config.read_text(encoding="utf-8"), edits,
                       _quantizer_sections(load_ini(config), network, pruned), Path(run))
    arrays = shrunk_arrays(network, network_arrays(network), pruned)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "model.ini", text)
    shrunk = Model(out / "model.ini", need_data=False).network
    load_network_arrays(shrunk, arrays, out / "weights.npz")
    difference = _output_difference(network, shrunk, kept)
    if not difference <= TOLERANCE:
        raise UserError(f"{out}: the shrunk network's outputs differ from the run's by "
                        f"{difference:.3g} (> {TOLERANCE}); this is a bug, please report it")
    with atomic_open(out / "weights.npz", "wb") as handle:
        np.savez(handle, **network_arrays(shrunk))
    export_network(shrunk, out / "weights")
    return out, [line for lines in edits.values() for line in lines["notes"]], difference


def cell_edits(network, kept, pruned):
    """``{cell: {"keys": {key: new value}, "drop": prefixes, "notes": comment lines}}``."""
    edits = {}
    for cell in network.cells:
        keep_out, keep_in = kept[cell.name], kept_inputs(network, kept, cell)
        edit = {"keys": {}, "drop": [], "notes": []}
        if not keep_out.all():
            removed = " ".join(map(str, np.flatnonzero(~keep_out)))
            edit["keys"]["NbOutputs"] = str(int(keep_out.sum()))
            edit["notes"].append(f"[{cell.name}] NbOutputs {keep_out.size} -> {keep_out.sum()} "
                                 f"(removed output channels {removed})")
        if isinstance(cell, (Conv, Deconv, Pool)) and not (keep_out.all() and all(k.all() for k in keep_in)):
            _mapping_edits(network, cell, keep_out, keep_in, edit)
        if cell.name in pruned:
            edit["drop"].append("QWeight")
            edit["notes"].append(f"[{cell.name}] channel pruning done: QWeight keys commented out")
        if edit["keys"] or edit["drop"]:
            edits[cell.name] = edit
    return edits


def _mapping_edits(network, cell, keep_out, keep_in, edit):
    """Explicit ``Mapping(P)=`` tables, unless the mapping stays what its keys make:
    all ones, or one channel per output (depthwise, per-channel pool) on equal counts."""
    inputs = network.inputs[cell.name]
    tables = [_cut_mapping(cell, k, keep_out, keep_in) for k in range(len(inputs))]
    if all(t.all() for t in tables) or all(_is_identity(t) for t in tables):
        return
    edit["drop"].append("Mapping")
    for name, table in zip(inputs, tables):
        edit["keys"][f"Mapping({name})"] = " ".join(map(str, table.astype(int).ravel()))
    edit["notes"].append(f"[{cell.name}] mapping tables cut to the kept channels")


def _cut_mapping(cell, k, keep_out, keep_in):
    if isinstance(cell, (Conv, Deconv)):
        return mapping_of(cell, k)[keep_in[k]][:, keep_out]
    starts = np.cumsum([0] + [s[0] for s in cell.input_shapes])
    return cell.mapping[starts[k]:starts[k + 1]][keep_in[k]][:, keep_out]


def _is_identity(table):
    return table.shape[0] == table.shape[1] and np.array_equal(table != 0, np.eye(len(table)))


def _quantizer_sections(ini, network, pruned):
    """ConfigSections whose ``QWeight.*`` keys only channel-pruning cells read."""
    users = {}
    for cell in network.cells:
        if getattr(cell, "quantizer", None) is None or not ini.section(cell.name).has("ConfigSection"):
            continue
        for name in ini.value(cell.name, "ConfigSection").split(","):
            if any(key.startswith("QWeight.") for key in ini.section(name)):
                users.setdefault(name, set()).add(cell.name)
    shared = {name: cells - set(pruned) for name, cells in users.items() if cells & set(pruned)}
    for name, others in shared.items():
        if others:
            raise UserError(f"[{name}] gives QWeight keys to channel-pruned cells and to "
                            f"{', '.join(sorted(others))}: split it before shrinking")
    return set(shared)


def rewrite_ini(text, edits, quantizer_sections, run):
    """The resolved INI ``text`` with ``edits`` applied, line by line."""
    lines = [f"; n2prune shrink of {run}: the removed channels are gone from this model"]
    section = ""
    for line in text.splitlines():
        header = line.startswith("[") and line.endswith("]")
        if header:
            _add_keys(lines, edits.get(section))
            section = line[1:-1]
            lines.append(line)
            lines.extend(f"; {note}" for note in edits.get(section, {}).get("notes", []))
            continue
        key = line.split("=", 1)[0]
        edit = edits.get(section)
        if edit is not None and key in edit["keys"]:
            lines.append(f"{key}={edit['keys'].pop(key)}")
            continue
        dropped = edit is not None and key.split(".")[0].split("(")[0] in edit["drop"]
        if section in quantizer_sections and key.startswith("QWeight."):
            dropped = True
        lines.append(f"; (shrink) {line}" if dropped else line)
    _add_keys(lines, edits.get(section))
    return "\n".join(lines) + "\n"


def _add_keys(lines, edit):
    """The keys of ``edit`` the section did not write (explicit mapping tables), at its end."""
    if edit is None or not edit["keys"]:
        return
    while lines and not lines[-1]:
        lines.pop()
    lines.extend(f"{key}={value}" for key, value in edit["keys"].items())
    lines.append("")
    edit["keys"].clear()


def _output_difference(masked, shrunk, kept):
    """The largest difference between the two networks' target outputs on one random batch."""
    x = np.random.default_rng(0).standard_normal((*masked.input_shape, 8)).astype(np.float32)
    y_masked = masked.forward(x)
    y_shrunk = shrunk.forward(x)
    scale = max(1.0, float(np.abs(y_masked).max()))
    return float(np.abs(y_masked - y_shrunk).max()) / scale if math.isfinite(scale) else math.inf
