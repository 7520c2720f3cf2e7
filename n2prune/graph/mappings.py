"""Reading ``Mapping*`` keys into 0/1 connection matrices, as N2D2's MappingGenerator.

For each input parent P of a Conv or Pool cell, in this order of precedence:
``Mapping.NbGroups`` / ``Mapping.ChannelsPerGroup`` (grouped, depthwise);
an explicit matrix ``Mapping(P)=`` (rows = P's channels, columns = outputs);
a generator (``Mapping.Size|SizeX|SizeY``, ``Stride*``, ``Offset*``,
``NbIterations``, each overridable per parent as ``Mapping(P).Size``...);
nothing: ``None``, meaning every channel feeds every output.
"""

import numpy as np

from n2prune.cells import mapping as maps
from n2prune.errors import IniError
from n2prune.ini import values

GENERATOR_FIELDS = ("Size", "SizeX", "SizeY", "Stride", "StrideX", "StrideY",
                    "Offset", "OffsetX", "OffsetY", "NbIterations")


def _generator_value(reader, prefixes, axis_key, both_key, default):
    for prefix in prefixes:  # per-parent keys first, then the generic ones
        if reader.has(f"{prefix}.{both_key}"):
            return reader.get(f"{prefix}.{both_key}", values.as_uint)
        if reader.has(f"{prefix}.{axis_key}"):
            return reader.get(f"{prefix}.{axis_key}", values.as_uint)
    return default


def _generated(reader, parent_keys, nb_channels, nb_outputs):
    prefixes = [f"Mapping({p})" for p in parent_keys] + ["Mapping"]
    get = lambda axis, both, default: _generator_value(reader, prefixes, axis, both, default)
    return maps.generated_mapping(
        nb_channels, nb_outputs,
        size_y=get("SizeY", "Size", 1), size_x=get("SizeX", "Size", 1),
        stride_y=get("StrideY", "Stride", 1), stride_x=get("StrideX", "Stride", 1),
        offset_y=get("OffsetY", "Offset", 0), offset_x=get("OffsetX", "Offset", 0),
        nb_iterations=get("NbIterations", "NbIterations", 0),
    )


def _explicit(reader, key, nb_channels, nb_outputs):
    flat = reader.get(key, values.vector(values.as_uint))
    if len(flat) != nb_channels * nb_outputs:
        raise reader.error(
            key, f"expected {nb_channels}x{nb_outputs} = {nb_channels * nb_outputs} "
            f"values (input channels x outputs), got {len(flat)}"
        )
    if any(v not in (0, 1) for v in flat):
        raise reader.error(key, "a mapping matrix holds only 0 and 1")
    return np.array(flat, dtype=np.int8).reshape(nb_channels, nb_outputs)


def _grouped(reader, nb_channels, nb_outputs):
    if reader.has("Mapping.NbGroups") and reader.has("Mapping.ChannelsPerGroup"):
        raise reader.error("Mapping.NbGroups",
                           "Mapping.NbGroups and Mapping.ChannelsPerGroup are mutually exclusive")
    if reader.has("Mapping.NbGroups"):
        key, groups = "Mapping.NbGroups", reader.get("Mapping.NbGroups", values.as_uint)
    else:
        key = "Mapping.ChannelsPerGroup"
        per_group = reader.get(key, values.as_uint)
        groups = nb_channels // per_group if per_group else 0
    if groups == 0 or nb_channels % groups:
        raise reader.error(key, f"{nb_channels} input channels do not split into equal groups")
    return maps.group_mapping(nb_channels, nb_outputs, groups)


def read_mappings(reader, input_names, input_channels, nb_outputs):
    """One matrix (or ``None`` for full) per input, from the cell's ``Mapping*`` keys."""
    has_generator = any(reader.has(f"Mapping.{f}") for f in GENERATOR_FIELDS)
    grouped = reader.has("Mapping.NbGroups") or reader.has("Mapping.ChannelsPerGroup")
    result = []
    for name, nb_channels in zip(input_names, input_channels):
        parent_keys = _parent_keys(name)
        explicit = [k for k in (f"Mapping({p})" for p in parent_keys) if reader.has(k)]
        per_parent_gen = any(
            reader.has(f"Mapping({p}).{f}") for p in parent_keys for f in GENERATOR_FIELDS
        )
        try:
            if grouped:
                result.append(_grouped(reader, nb_channels, nb_outputs))
            elif explicit:
                result.append(_explicit(reader, explicit[0], nb_channels, nb_outputs))
            elif has_generator or per_parent_gen:
                result.append(_generated(reader, parent_keys, nb_channels, nb_outputs))
            else:
                result.append(None)
        except ValueError as exc:
            raise IniError(f"{reader.where('Mapping')}: {exc}") from None
    return result


def mapping_keys(input_names):
    """Every ``Mapping*`` key name a cell reading ``input_names`` may hold."""
    parents = [p for name in input_names for p in _parent_keys(name)]
    prefixes = ["Mapping", *(f"Mapping({p})" for p in parents)]
    return {"Mapping.NbGroups", "Mapping.ChannelsPerGroup",
            *(f"Mapping({p})" for p in parents),
            *(f"{prefix}.{field}" for prefix in prefixes for field in GENERATOR_FIELDS)}


def _parent_keys(name):
    """The names a parent is written as in mapping keys: N2D2 names the stimuli
    provider "env"; "sp" is accepted too."""
    return [name] if name not in ("sp", "env") else ["env", "sp"]
