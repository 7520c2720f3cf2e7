"""A cell section read against its type's key table (``cells.CELL_TYPES``), in one pass.

A cell class declares its keys (``registry.Key``) beside its constructor.
Each is read by its kind:

* a plain kind (uint, bool, a choice of names...): the key of that name;
* ``dims``: a 2-D size in any of N2D2's spellings (``DIM_SPELLINGS``);
* a choice of a Registry (``ActivationFunction``, the fillers): the member,
  built from its ``Key.*`` settings (``keys.read_member``);
* ``mappings``: the ``Mapping*`` keys (``graph/mappings``), which the
  builder reads after the memory charge;
* the class's ``config_keys`` (N2D2's cell parameters): from the
  ConfigSection only, an unknown one being an error listing the table's.

The keys every cell section holds (``SECTION_KEYS``) and the N2D2 keys
n2prune has no setting for (``UNSUPPORTED``, ``UNSUPPORTED_PARAMETERS``)
are declared here: read and checked, never passed to a cell.
"""

import dataclasses
import functools

from n2prune.cells import Conv, Fc
from n2prune.cells.base import Cell
from n2prune.cells.registry import MAPPINGS, dims
from n2prune.cells.weighted import WeightCell
from n2prune.errors import IniError
from n2prune.graph.keys import construct, misspelt_hint, parser, read_keys, read_member
from n2prune.graph.mappings import mapping_keys
from n2prune.ini import MISSING, values
from n2prune.registry import (
    BOOL,
    STR,
    UINT,
    KeyTable,
    Kind,
    Registry,
    choice,
    unknown_message,
)

SECTION_KEYS = {
    "Input": "comma-separated inputs: cells, or the stimuli provider (sp, env, cenv)",
    "Type": "the cell type, one of cells.CELL_TYPES",
    "ConfigSection": "comma-separated sections of cell parameters and prefixed keys",
}

# N2D2's spellings of a 2-D size besides ``<X>Dims=W H``: a single ``<X>``
# (or ``<X>Size``: square), or separate height and width keys.
DIM_SPELLINGS = {
    "KernelDims": ("KernelSize", ("KernelHeight", "KernelWidth")),
    "PoolDims": ("PoolSize", ("PoolHeight", "PoolWidth")),
    "StrideDims": ("Stride", ("StrideY", "StrideX")),
    "PaddingDims": ("Padding", ("PaddingY", "PaddingX")),
    "DilationDims": ("Dilation", ("DilationY", "DilationX")),
    "SubSampleDims": ("SubSample", ("SubSampleY", "SubSampleX")),
}


@dataclasses.dataclass(frozen=True)
class Unsupported:
    """An N2D2 key without an n2prune setting: read and checked, never passed to a cell.

    ``accepted``: the values that change nothing here (N2D2's default);
    None: any value (none changes a CPU float32 run); ``()``: no value.
    Another value is an error whose message is ``doc``.
    """

    name: str
    kind: Kind
    doc: str
    accepted: tuple = None

    @property
    def default(self):
        return self.accepted[0] if self.accepted else MISSING


_CROPPING = "Fc input cropping is not supported"
# Section keys, by the classes they apply to (subclasses included).
UNSUPPORTED = {
    Cell: (Unsupported("Model", STR, "N2D2's device model: accepted, no effect (n2prune runs on the CPU)"),
           Unsupported("DataType", STR, "N2D2's data type: accepted, no effect (n2prune is float32)")),
    Conv: (Unsupported("SubSampleDims", dims(UINT), "SubSample other than 1 is not supported", ((1, 1),)),),
    Fc: tuple(Unsupported(name, UINT, _CROPPING, ())
              for name in ("InputOffsetX", "InputOffsetY", "InputWidth", "InputHeight")),
}
# ConfigSection parameters, likewise.
UNSUPPORTED_PARAMETERS = {
    WeightCell: (
        Unsupported("BackPropagate", BOOL, "BackPropagate=0 (no gradient to the inputs) is not supported",
                    (True,)),
        Unsupported("WeightsExportFormat", choice(("OCHW", "HWCO")),
                    "layout of N2D2's weight export: accepted, no effect"),
        Unsupported("WeightsExportFlip", BOOL, "kernel flip of N2D2's weight export: accepted, no effect"),
    ),
}


def unsupported(table, cls):
    """The ``Unsupported`` keys of ``table`` that apply to cell class ``cls``."""
    return [entry for klass, entries in table.items() if issubclass(cls, klass) for entry in entries]


def spellings(name):
    """Every INI name a key may be written as (the dims' N2D2 spellings)."""
    if name not in DIM_SPELLINGS:
        return [name]
    single, pair = DIM_SPELLINGS[name]
    return [name, single, *pair]


def section_names(cls, input_names):
    """Every key name a section of cell class ``cls`` reading ``input_names`` may hold
    (prefixed ``Key.*`` settings and routed keys aside), for the unknown-key report."""
    names = set(SECTION_KEYS)
    for key in cls.key_table:
        if key.name in cls.config_keys:
            continue
        names.update(mapping_keys(input_names) if key.kind == MAPPINGS else spellings(key.name))
    for entry in unsupported(UNSUPPORTED, cls):
        names.update(spellings(entry.name))
    return names


def read_cell(ini, section, cls, type_name, params):
    """``(kwargs, located)`` of the cell ``section`` of class ``cls`` (mappings aside).

    ``params``: its routed ConfigSection parameters ``{name: (section, key)}``.
    ``located``: ``{attr: file:line [section] Key}`` of the keys written.
    """
    kwargs, located = read_parameters(ini, cls, type_name, params)
    for key in cls.key_table:
        if key.name in cls.config_keys or key.kind == MAPPINGS:
            continue
        found = _read_section_key(ini, section, key)
        if found is not None:
            kwargs[key.attr], located[key.attr] = found
        elif key.required:
            raise IniError(f"missing required key{_other_spellings(key.name)}"
                           f"{misspelt_hint(ini, section, spellings(key.name), section_names(cls, []))}",
                           ini.where(section, key.name))
    for entry in unsupported(UNSUPPORTED, cls):
        if any(ini.section(section).has(name) for name in spellings(entry.name)):
            _check_unsupported(ini, section, entry, entry.name)
    return kwargs, located


def _other_spellings(name):
    if name not in DIM_SPELLINGS:
        return ""
    single, (key_h, key_w) = DIM_SPELLINGS[name]
    return f" ({name}, {single} or {key_w}+{key_h})"


def _read_section_key(ini, section, key):
    """``(value, where)`` of ``key`` in ``section``, or None when it is not written."""
    kind = key.kind
    if kind.name == "dims":
        return read_dims(ini, section, key.name, kind.item, MISSING if key.required else key.default)
    if kind.name == "choice" and isinstance(kind.choices, Registry):
        found = read_member(ini, section, key.name, kind.choices)
        if found is None:
            return None
        member, member_kwargs, member_located = found
        where = ini.where(section, key.name)
        return construct(member, member_kwargs, member_located, where), where
    if not ini.section(section).has(key.name):
        return None
    return ini.read(section, key.name, parser(kind)), ini.where(section, key.name)


def read_dims(ini, section, name, item, default):
    """``((h, w), where)`` of the 2-D size ``name`` in whichever N2D2 spelling the section
    uses, or None when none is written. ``default`` fills a side the height/width
    spelling leaves out (``MISSING``: both are required)."""
    sec, read_item = ini.section(section), parser(item)
    single, (key_h, key_w) = DIM_SPELLINGS[name]
    if sec.has(name):
        sizes = ini.read(section, name, values.vector(read_item))
        if len(sizes) not in (1, 2):
            raise IniError(f"expected 2 values (width height), got {len(sizes)}", ini.where(section, name))
        return (sizes[-1], sizes[0]), ini.where(section, name)
    if sec.has(single):
        size = ini.read(section, single, read_item)
        return (size, size), ini.where(section, single)
    if sec.has(key_h) or sec.has(key_w):
        sides = (MISSING, MISSING) if default is MISSING else default
        dims_ = (ini.read(section, key_h, read_item, sides[0]), ini.read(section, key_w, read_item, sides[1]))
        return dims_, ini.where(section, key_h if sec.has(key_h) else key_w)
    return None


def _check_unsupported(ini, section, entry, key):
    """Read ``entry``, written as ``key`` (a dims entry: in any of its spellings), and
    refuse a value it does not accept."""
    if entry.kind.name == "dims":
        value, where = read_dims(ini, section, entry.name, entry.kind.item, entry.default)
    else:
        value, where = ini.read(section, key, parser(entry.kind)), ini.where(section, key)
    if entry.accepted is not None and value not in entry.accepted:
        raise IniError(entry.doc, where)


@functools.cache
def parameter_table(cls):
    """The ``KeyTable`` of the ``config_keys`` of cell class ``cls``."""
    return KeyTable([key for key in cls.key_table if key.name in cls.config_keys],
                    cls.key_table.sources)


def read_parameters(ini, cls, type_name, params):
    """``(kwargs, located)`` of the ConfigSection parameters ``{name: (section, key)}`` of
    a ``cls`` cell; a name neither its table nor ``UNSUPPORTED_PARAMETERS`` has is an error."""
    table = parameter_table(cls)
    ignored = {entry.name: entry for entry in unsupported(UNSUPPORTED_PARAMETERS, cls)}
    known = [*table.names(), *ignored]
    for name, (section, key) in params.items():
        if name in ignored:
            _check_unsupported(ini, section, ignored[name], key)
        elif name not in table:
            message = unknown_message(f"{type_name} parameter {name}", name, known)
            raise IniError(message, ini.where(section, key))
    refs = {name: ref for name, ref in params.items() if name in table}
    return read_keys(ini, refs, table, f"{type_name} parameter")
