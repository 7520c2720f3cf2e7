"""From a parsed INI file to a ``Network``: N2D2's DeepNetGenerator, in short.

A section is a cell iff it has ``Input=``. Cells are built by level
(1 + the highest level of their inputs), in file order within a level, each
by the builder registered for its ``Type=``. Shapes flow from the stimuli
provider; generated keys (``_NbOutputs``, ``_OutputsWidth``...) are injected
as each cell is built so that later sections can reference them.
"""

import logging

import numpy as np

from n2prune.errors import IniError, ShapeError, UserError
from n2prune.graph.cell_builders import BUILDERS, charge_cell
from n2prune.graph.config import config_sections, route_cell_config
from n2prune.graph.network import PROVIDER, Network
from n2prune.graph.objects import build_solvers
from n2prune.graph.pruning_section import pruning_section_refs
from n2prune.graph.qweight import attach_prune_quantizer
from n2prune.graph.reader import IGNORED_CELL_KEYS, SectionReader, unknown_key_message
from n2prune.graph.stimuli import PROVIDER_SECTIONS, build_provider
from n2prune.graph.targets import Target
from n2prune.ini import did_you_mean, values
from n2prune.prune.pruned_cells import feeding_batchnorm
from n2prune.registry import UnknownName

log = logging.getLogger("n2prune")

QUANTIZERS = ("Prune",)
QUANTIZED_TYPES = ("Conv", "Fc")  # N2D2: only these generators read QWeight=
GLOBAL_KEYS = {"DefaultModel", "DefaultDataType", "InsertBatchNormAfterConv", "CheckWeightRange"}


class BuildContext:
    """What builders share: the INI, the seeded generator, declared keys, routing."""

    def __init__(self, ini, rng):
        self.ini = ini
        self.rng = rng
        self.known_keys = {}
        self._routed = {}
        self.budget = None  # a sizes.MemoryBudget, set once the provider is read

    def reader(self, section):
        return SectionReader(self.ini, section, self.known_keys.setdefault(section, set()))

    def routed(self, cell):
        if cell not in self._routed:
            self._routed[cell] = route_cell_config(self.ini, cell)
        return self._routed[cell]


def check_global(ini):
    """Global keys: CPU float32 only; a CUDA model runs here on CPU with a notice."""
    sec = ini.global_section
    if sec.has("DefaultModel"):
        model = ini.read("", "DefaultModel", values.as_str)
        if model.startswith(("Transcode", "Spike")):
            raise IniError(f"{ini.where('', 'DefaultModel')}: spiking models ({model}) are not supported")
        if model.endswith("_CUDA"):
            log.info("notice: DefaultModel=%s: n2prune runs on CPU (numpy/numba)", model)
    if sec.has("DefaultDataType") and ini.read("", "DefaultDataType", values.as_str) != "Float32":
        raise IniError(f"{ini.where('', 'DefaultDataType')}: only Float32 is supported")
    if sec.has("InsertBatchNormAfterConv") and ini.read("", "InsertBatchNormAfterConv", values.as_bool):
        raise IniError(f"{ini.where('', 'InsertBatchNormAfterConv')}: not supported; "
                       "add BatchNorm cells explicitly")
    if sec.has("CheckWeightRange"):
        ini.mark_used("", "CheckWeightRange")


def cell_sections(ini):
    """Cell sections (those with ``Input=``) sorted by level, then file order."""
    cells = {s.name: s for s in ini.sections() if s.has("Input")}
    inputs = {}
    for name in cells:
        names = ini.value(name, "Input").split(",")
        for parent in names:
            if parent not in cells and parent not in PROVIDER_SECTIONS:
                hint = did_you_mean(parent, list(cells))
                extra = f"; did you mean {hint}?" if hint else ""
                raise IniError(f"{ini.where(name, 'Input')}: unknown input {parent!r}{extra}")
        inputs[name] = [PROVIDER if p in PROVIDER_SECTIONS else p for p in names]
    levels = {}

    def level(name, seen=()):
        if name == PROVIDER:
            return 0
        if name in seen:
            raise IniError(f"{ini.where(name, 'Input')}: cycle through [{name}]")
        if name not in levels:
            levels[name] = 1 + max(level(p, seen + (name,)) for p in inputs[name])
        return levels[name]

    position = {name: i for i, name in enumerate(cells)}
    order = sorted(cells, key=lambda n: (level(n), position[n]))
    return order, inputs


def _inject_shape_keys(ini, name, input_shapes, output_shape):
    channels = sum(s[0] for s in input_shapes)
    out_c, out_h, out_w = output_shape
    for key, value in (("_NbOutputs", out_c), ("_OutputsHeight", out_h), ("_OutputsWidth", out_w),
                       ("_NbChannels", channels), ("_ChannelsHeight", input_shapes[0][1]),
                       ("_ChannelsWidth", input_shapes[0][2])):
        ini.inject(name, key, str(value))


def _check_quantizer(ctx, reader, name, type_name):
    """``QWeight=``: a known quantizer, on a cell type that has weights to quantize."""
    if not reader.has("QWeight"):
        return
    ctx.routed(name)  # QWeight.* keys are routed and kept for the quantizer
    kind = reader.get("QWeight", values.as_str)
    if kind not in QUANTIZERS:
        raise reader.error("QWeight", f"weight quantizer {kind} is not supported "
                           f"(known: {', '.join(QUANTIZERS)})")
    if type_name not in QUANTIZED_TYPES:
        raise reader.error("QWeight", f"QWeight is only read on {' and '.join(QUANTIZED_TYPES)} "
                           f"cells, not on Type={type_name}")


def build_cell(ctx, name, inputs, shapes):
    reader = ctx.reader(name)
    type_name = reader.get("Type", values.as_str)
    reader.ignore("Input", "ConfigSection", *IGNORED_CELL_KEYS)
    if type_name not in BUILDERS:
        hint = did_you_mean(type_name, list(BUILDERS))
        extra = f"did you mean {hint}? " if hint else ""
        raise reader.error("Type", f"unknown Type={type_name} ({extra}known: {', '.join(BUILDERS)})")
    _check_quantizer(ctx, reader, name, type_name)
    try:
        cell = BUILDERS[type_name](ctx, name, inputs, shapes)
    except (IniError, UnknownName):
        raise  # already says where
    except (UserError, ValueError) as exc:
        # Cells and the objects they take know nothing of the INI: name the
        # section the cell was written in, keeping the error's own class.
        kind = ShapeError if isinstance(exc, ShapeError) else IniError
        raise kind(f"{ini_where_section(ctx.ini, name)}: {_without_cell_name(exc, name)}") from None
    cell.type_name = type_name
    return cell


def charge_built(ctx, cell):
    """Charge a cell whose builder did not (its constructor allocates little: no
    weights beyond per-channel ones), from its own output shape and parameters."""
    if cell.name in ctx.budget.items:
        return
    nb_params = sum(p.value.size for p in cell.params())
    charge_cell(ctx, cell.name, "NbOutputs", nb_params, cell.output_shape)


def _without_cell_name(exc, name):
    """The message of ``exc`` without the ``[name] `` prefix cells put (it is in the where)."""
    return str(exc).removeprefix(f"[{name}] ")


def ini_where_section(ini, name):
    sec = ini.section(name)
    return f"{sec.file}:{sec.line} [{name}]"


def read_targets(ini, cell_shapes, known_keys):
    """The ``[<cell>.Target*]`` sections, in file order (at least one).

    ``cell_shapes`` maps each cell, in build order, to its output shape.
    """
    order = list(cell_shapes)
    targets = []
    for sec in ini.sections():
        if ".Target" not in sec.name:
            continue
        cell = sec.name[: sec.name.index(".Target")]
        if cell not in cell_shapes:
            raise IniError(f"{sec.file}:{sec.line} [{sec.name}]: no cell [{cell}] to attach this target to")
        reader = SectionReader(ini, sec.name, known_keys.setdefault(sec.name, set()))
        kind = reader.get("Type", values.as_str, "TargetScore")
        if kind != "TargetScore":
            raise reader.error("Type", f"target type {kind} is not supported (known: TargetScore)")
        if reader.has("LabelsMapping"):
            raise reader.error("LabelsMapping", "LabelsMapping is not supported")
        if cell_shapes[cell][1:] != (1, 1):
            raise ShapeError(f"{sec.file}:{sec.line} [{sec.name}]: a target needs a cell with 1x1 "
                             f"outputs, [{cell}] gives {'x'.join(map(str, cell_shapes[cell]))}")
        targets.append(Target(cell, reader.get("TargetValue", values.as_float, 1.0),
                              reader.get("DefaultValue", values.as_float, 0.0),
                              reader.get("TopN", values.as_uint, 1)))
    if not targets:
        last = order[-1] if order else None
        where = ini_where_section(ini, last) if last else ini.end_where()
        raise IniError(f"{where}: no target cell: add a [{last or '<cell>'}.Target] section "
                       "naming the cell the loss is computed on")
    return targets


def build_network(ini, seed=0, epoch_size=None, max_memory=None, images=None):
    """Build the network of ``ini``; returns ``(network, provider, context)``.

    ``epoch_size`` (learn stimuli per epoch) is injected as ``[sp]_EpochSize``
    before any cell reads it (solver step sizes). Training memory is
    estimated before each cell allocates (``ctx.budget``); over
    ``max_memory`` bytes (default: ``sizes.default_max_memory()``) the build
    stops with a ``UserError`` naming the key. ``images`` is ``(count,
    shape)`` of the database's images, for the data path's share.
    """
    ctx = BuildContext(ini, np.random.default_rng(seed))
    check_global(ini)
    sp_name, provider, ctx.budget = build_provider(ini, ctx.known_keys, max_memory, images)
    ini.inject(sp_name, "_EpochSize", str(epoch_size if epoch_size else 1))
    order, inputs = cell_sections(ini)
    shapes = {PROVIDER: (provider.size[2], provider.size[0], provider.size[1])}
    cells = []
    for name in order:
        in_shapes = [shapes[p] for p in inputs[name]]
        cell = build_cell(ctx, name, inputs[name], in_shapes)
        charge_built(ctx, cell)
        shapes[name] = cell.output_shape
        _inject_shape_keys(ini, name, in_shapes, cell.output_shape)
        cells.append(cell)
    network = Network(cells, inputs, shapes[PROVIDER], read_targets(ini, {n: shapes[n] for n in order}, ctx.known_keys))
    section_refs = pruning_section_refs(ini, ctx, cells)
    for cell in cells:
        # After the network exists: BN criteria score with the BatchNorm the cell feeds.
        if ctx.reader(cell.name).has("QWeight") or cell.name in section_refs:
            refs = {**section_refs.get(cell.name, {}), **ctx.routed(cell.name).quantizer}
            attach_prune_quantizer(ini, cell, refs, feeding_batchnorm(network, cell.name))
    for cell in cells:
        if cell.params():
            network.solvers[cell.name] = build_solvers(ini, cell.name, ctx.routed(cell.name))
    network.quantizer_keys = _quantizer_keys(ini, ctx, section_refs)
    return network, provider, ctx


def _quantizer_keys(ini, ctx, section_refs):
    """``{cell: {Param: (section, key)}}`` of the ``QWeight.*`` keys of quantized cells.

    As N2D2, ``QWeight.X`` (in the cell or its ConfigSection) without
    ``QWeight=`` in the cell is an error, not a silently unquantized cell.
    """
    keys = {cell: dict(refs) for cell, refs in section_refs.items()}
    for cell, routed in ctx._routed.items():
        if not routed.quantizer:
            continue
        if cell in section_refs:  # selected by [Pruning]: its own keys override
            keys[cell].update(routed.quantizer)
            continue
        if not ini.section(cell).has("QWeight"):
            section, key = next(iter(routed.quantizer.values()))
            raise IniError(f"{ini.where(section, key)}: {key} is given for cell [{cell}], "
                           f"which has no QWeight= (e.g. QWeight=Prune in [{cell}])")
        keys[cell] = routed.quantizer
    return keys


def unknown_keys(ini, ctx):
    """Messages for keys nothing read, in sections something read (file order)."""
    known = {name: set(keys) for name, keys in ctx.known_keys.items()}
    known.setdefault("", set()).update(GLOBAL_KEYS)
    for cell in ctx._routed:
        for name in config_sections(ini, cell):
            known.setdefault(name, set())
    # A key written in a template section is read through the cells that
    # inherit it: judge it against what those cells know.
    for name in list(known):
        for parent in _ancestors(ini, name):
            known.setdefault(parent, set()).update(known[name])
    return [unknown_key_message(ini, sec.name, key, known[sec.name])
            for sec, key in ini.unused_keys()
            if sec.name in known and not _overridden(ini, sec, key, known[sec.name])]


def _overridden(ini, template, key, known):
    """True for a known key of a template section that an inheriting section rewrote.

    Such a key is a default nobody needed, not a misspelling.
    """
    own = template.own(key)
    return key in known and any(
        template.name in _ancestors(ini, sec.name) and sec.entry(key) is not own
        for sec in ini.sections())


def _ancestors(ini, name):
    if not name or not ini.has_section(name):
        return []
    parents = list(ini.section(name).parents)
    return parents + [a for p in parents for a in _ancestors(ini, p)]
