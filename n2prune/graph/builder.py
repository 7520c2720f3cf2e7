"""From a parsed INI file to a ``Network``: N2D2's DeepNetGenerator, in short.

A section is a cell iff it has ``Input=``. Cells are built by level
(1 + the highest level of their inputs), in file order within a level. A
cell's ``Type=`` names its class in ``cells.CELL_TYPES``; its section and
ConfigSection are read against the class's key table
(``graph/cell_keys.read_cell``), its memory charged (``graph/charges``),
then the constructor is called with the keys' keywords. Shapes flow from
the stimuli provider; generated keys (``_NbOutputs``, ``_OutputsWidth``...)
are injected as each cell is built so that later sections can reference them.
"""

import functools
import logging

import numpy as np

from n2prune.cells import CELL_TYPES
from n2prune.cells.registry import MAPPINGS
from n2prune.cells.weighted import WeightCell
from n2prune.errors import IniError, ShapeError, UserError
from n2prune.graph.cell_keys import read_cell, section_names
from n2prune.graph.charges import charge_before, charge_built
from n2prune.graph.config import config_sections, route_cell_config
from n2prune.graph.keys import construct, place
from n2prune.graph.mappings import read_mappings
from n2prune.graph.network import PROVIDER, Network
from n2prune.graph.objects import build_solvers
from n2prune.graph.onnx_section import Imports, import_onnx
from n2prune.graph.pruning_section import pruning_section_refs
from n2prune.graph.qweight import attach_prune_quantizer
from n2prune.graph.reader import SectionReader, unknown_key_message
from n2prune.graph.refusals import REFUSED_QUANTIZERS
from n2prune.graph.stimuli import PROVIDER_SECTIONS, build_provider
from n2prune.graph.targets import read_targets
from n2prune.ini import values
from n2prune.prune.pruned_cells import feeding_batchnorm
from n2prune.registry import UnknownName, signature_parameters, unknown_message

log = logging.getLogger("n2prune")

QUANTIZERS = ("Prune",)
GLOBAL_KEYS = {"DefaultModel", "DefaultDataType", "InsertBatchNormAfterConv", "CheckWeightRange"}


class BuildContext:
    """What the build shares: the INI, the seeded generator, declared keys, routing."""

    def __init__(self, ini, rng):
        self.ini = ini
        self.rng = rng
        self.known_keys = {}
        self._routed = {}
        self.budget = None  # a sizes.MemoryBudget, set once the provider is read
        self.stimuli_stats = {}  # {StimuliData section: StimuliStats}
        # ConfigSection parameters a generator sets before the cell's own (an ONNX
        # graph's NoBias, Epsilon...): {cell: {name: (section, key)}}.
        self.preset_params = {}

    def reader(self, section):
        return SectionReader(self.ini, section, self.known_keys.setdefault(section, set()))

    def routed(self, cell):
        if cell not in self._routed:
            routed = route_cell_config(self.ini, cell)
            routed.params = {**self.preset_params.get(cell, {}), **routed.params}
            self._routed[cell] = routed
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


def refuse_declined_types(ini):
    """Raise the one-line refusal of the first cell (file order) whose ``Type=`` n2prune
    declines (``graph/refusals``), before anything else in the cells is judged.

    A later cell may read a cell the declined one would have made
    (``Input=anchors``): "unknown input" would hide the reason.
    """
    for sec in ini.sections():
        if sec.has("Input") and sec.has("Type"):
            type_name = ini.read(sec.name, "Type", values.as_str)
            if type_name in CELL_TYPES.refused:
                CELL_TYPES.lookup(type_name, place(ini, sec.name, "Type"))


def cell_sections(ini, imports=None):
    """Cell sections (those with ``Input=``) sorted by level, then file order.

    ``imports`` (``onnx_section.Imports``): its ``Type=ONNX`` sections are no
    cells (an ``Input=`` naming one only orders a cell after the import, as
    N2D2), and its aliases name the cells they stand for.
    """
    imports = imports or Imports()
    cells = {s.name: s for s in ini.sections() if s.has("Input") and s.name not in imports.sections}
    for name in cells.keys() & set(PROVIDER_SECTIONS):
        raise IniError(f"[{name}] is the stimuli provider, not a cell: it takes no Input= "
                       "(remove the key, or rename the section)", ini.where(name, "Input"))
    inputs = {}
    for name in cells:
        names = [imports.aliases.get(p, p) for p in ini.value(name, "Input").split(",")
                 if p not in imports.sections]
        if not names:
            raise IniError(f"{ini.where(name, 'Input')}: names only the ONNX import; name one of "
                           "its cells (the tensor names of the graph)")
        for parent in names:
            if parent not in cells and parent not in PROVIDER_SECTIONS:
                message = unknown_message(f"input {parent!r}", parent, [*cells, *PROVIDER_SECTIONS])
                raise IniError(message, ini.where(name, "Input"))
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


def _check_quantizer(ctx, name, cls, type_name):
    """``QWeight=``: a known quantizer, on a cell type that has weights to quantize."""
    reader = ctx.reader(name)
    if not reader.has("QWeight"):
        return
    ctx.routed(name)  # QWeight.* keys are routed and kept for the quantizer
    kind = reader.get("QWeight", values.as_str)
    if kind in REFUSED_QUANTIZERS:
        raise reader.error("QWeight", REFUSED_QUANTIZERS[kind])
    if kind not in QUANTIZERS:
        raise reader.error("QWeight", unknown_message(f"QWeight={kind}", kind, QUANTIZERS))
    if not issubclass(cls, WeightCell):
        weighted = [n for n, c in CELL_TYPES.items() if issubclass(c, WeightCell)]
        raise reader.error("QWeight", f"QWeight is only read on {' and '.join(weighted)} "
                           f"cells, not on Type={type_name}")


def build_cell(ctx, name, inputs, shapes):
    """The cell of section ``name`` reading ``inputs`` of (C, H, W) ``shapes``."""
    ini = ctx.ini
    type_name = ini.read(name, "Type", values.as_str)
    cls = CELL_TYPES.lookup(type_name, place(ini, name, "Type"))
    ctx.known_keys.setdefault(name, set()).update(section_names(cls, inputs))
    _check_quantizer(ctx, name, cls, type_name)
    where = ini_where_section(ini, name)
    try:
        kwargs, located = read_cell(ini, name, cls, type_name, ctx.routed(name).params)
        charge_before(ctx, name, cls, {**cls.key_table.defaults(), **kwargs}, located, shapes)
        if any(key.kind == MAPPINGS for key in cls.key_table):
            # After the charge: a generated mapping allocates channels x outputs.
            kwargs["mappings"] = read_mappings(ctx.reader(name), inputs, [s[0] for s in shapes],
                                               kwargs["nb_outputs"])
        if "rng" in signature_parameters(cls):
            kwargs["rng"] = ctx.rng
        return construct(functools.partial(cls, name, shapes), kwargs, located, where)
    except (IniError, UnknownName):
        raise  # already says where
    except UserError as exc:
        # Cells know nothing of the INI: name the section the cell was written
        # in, keeping the error's own class.
        kind = ShapeError if isinstance(exc, ShapeError) else IniError
        raise kind(f"{where}: {_without_cell_name(exc, name)}") from None


def _without_cell_name(exc, name):
    """The message of ``exc`` without the ``[name] `` prefix cells put (it is in the where)."""
    return str(exc).removeprefix(f"[{name}] ")


def ini_where_section(ini, name):
    sec = ini.section(name)
    return f"{sec.location} [{name}]"


def build_network(ini, seed=0, epoch_size=None, max_memory=None, images=None, stats_source=None):
    """Build the network of ``ini``; returns ``(network, provider, context)``.

    ``epoch_size`` (learn stimuli per epoch) is injected as ``[sp]_EpochSize``
    before any cell reads it (solver step sizes); None (no database) injects
    the stand-in 1, as N2D2 without a database. Training memory is
    estimated before each cell allocates (``ctx.budget``); over
    ``max_memory`` bytes (default: ``sizes.default_max_memory()``) the build
    stops with a ``UserError`` naming the key. ``images`` is the database's
    ``data.ImageInfo``, for the data path's share. ``stats_source`` computes
    StimuliData sections (``graph.stimuli_data``); their statistics end in
    ``context.stimuli_stats``.
    """
    ctx = BuildContext(ini, np.random.default_rng(seed))
    check_global(ini)
    refuse_declined_types(ini)
    sp_name, provider, ctx.budget, ctx.stimuli_stats = build_provider(
        ini, ctx.known_keys, max_memory, images, stats_source)
    ini.inject(sp_name, "_EpochSize", str(epoch_size if epoch_size else 1))
    shapes = {PROVIDER: (provider.size[2], provider.size[0], provider.size[1])}
    imports = import_onnx(ini, ctx, shapes[PROVIDER])
    order, inputs = cell_sections(ini, imports)
    cells = []
    for name in order:
        in_shapes = [shapes[p] for p in inputs[name]]
        cell = build_cell(ctx, name, inputs[name], in_shapes)
        imports.load(cell)  # an imported cell's weights, before any mask is drawn
        charge_built(ctx, cell)
        shapes[name] = cell.output_shape
        _inject_shape_keys(ini, name, in_shapes, cell.output_shape)
        cells.append(cell)
    targets = read_targets(ini, {n: shapes[n] for n in order}, ctx.known_keys, shapes[PROVIDER],
                           imports.aliases)
    _check_label_cells(ini, cells, targets)
    network = Network(cells, inputs, shapes[PROVIDER], targets)
    network.rng, network.log_period = ctx.rng, epoch_size or 0
    section_refs = pruning_section_refs(ini, ctx, cells)
    for cell in cells:
        # After the network exists: BN criteria score with the BatchNorm the cell feeds.
        if ctx.reader(cell.name).has("QWeight") or cell.name in section_refs:
            refs = {**section_refs.get(cell.name, {}), **ctx.routed(cell.name).quantizer}
            attach_prune_quantizer(ini, cell, refs, feeding_batchnorm(network, cell.name))
    stand_in_notes = set() if epoch_size is None else None
    for cell in cells:
        if cell.params():
            network.solvers[cell.name] = build_solvers(ini, cell.name, ctx.routed(cell.name),
                                                       stand_in_notes)
    network.quantizer_keys = _quantizer_keys(ini, ctx, section_refs)
    return network, provider, ctx


def _check_label_cells(ini, cells, targets):
    """A cell that takes labels (TargetBias) gets them from its own target, as in N2D2."""
    with_target = {t.cell for t in targets if t.uses_labels}
    for cell in cells:
        if cell.takes_labels and cell.name not in with_target:
            raise IniError(f"{ini_where_section(ini, cell.name)}: {cell.type_name} reads the labels "
                           f"of its target; add a [{cell.name}.Target] section with Type=Target")


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
