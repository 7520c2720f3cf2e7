"""Typed reads of one INI section, remembering which key names a section may hold.

Builders declare every key they understand by reading it through a
``SectionReader``; what nothing declared is later reported as unknown, with a
did-you-mean drawn from the declared names (darknet's ``option_find``).
"""

from n2prune.errors import IniError
from n2prune.ini import MISSING, did_you_mean, values

# Keys N2D2 accepts on every cell or section that have no effect on a CPU
# float32 run (device model, data type): read them so they are never "unknown".
IGNORED_CELL_KEYS = ("Model", "DataType")


class SectionReader:
    """Reads keys of ``section`` in ``ini`` and records the names it was asked for."""

    def __init__(self, ini, section, known=None):
        self.ini = ini
        self.section = section
        self.known = known if known is not None else set()

    def has(self, key):
        self.known.add(key)
        return self.ini.section(self.section).has(key)

    def get(self, key, reader, default=MISSING):
        self.known.add(key)
        return self.ini.read(self.section, key, reader, default)

    def first_of(self, keys, reader, default=MISSING):
        """The value of the first key present among alternatives (N2D2 spellings)."""
        for key in keys:
            if self.has(key):
                return self.get(key, reader)
        if default is MISSING:
            where = self.ini.where(self.section, keys[0])
            raise IniError(f"{where}: missing required key (one of {', '.join(keys)})")
        return default

    def where(self, key):
        return self.ini.where(self.section, key)

    def error(self, key, message):
        return IniError(f"{self.where(key)}: {message}")

    def keys_with_prefix(self, prefix):
        return [k for k in self.ini.section(self.section) if k.startswith(prefix)]

    def ignore(self, *keys):
        for key in keys:
            self.known.add(key)
            if self.ini.section(self.section).has(key):
                self.ini.mark_used(self.section, key)


# N2D2's spellings of a 2-D size: "<X>Dims=W H", a single "<X>" (or
# "<X>Size"), or separate height/width keys. Values come back (height, width).
DIM_SPELLINGS = {
    "Kernel": ("KernelDims", ("KernelSize",), ("KernelHeight", "KernelWidth")),
    "Pool": ("PoolDims", ("PoolSize",), ("PoolHeight", "PoolWidth")),
    "Stride": ("StrideDims", ("Stride",), ("StrideY", "StrideX")),
    "Padding": ("PaddingDims", ("Padding",), ("PaddingY", "PaddingX")),
    "Dilation": ("DilationDims", ("Dilation",), ("DilationY", "DilationX")),
    "SubSample": ("SubSampleDims", ("SubSample",), ("SubSampleY", "SubSampleX")),
}


def dims_key(reader, name):
    """The spelling of ``name`` (see ``DIM_SPELLINGS``) the section uses, for messages."""
    dims_key_, single_keys, pair_keys = DIM_SPELLINGS[name]
    present = [k for k in (dims_key_, *single_keys, *pair_keys) if reader.has(k)]
    return present[0] if present else dims_key_


def read_dims(reader, name, default=MISSING, minimum=0):
    """A (height, width) pair written in any of N2D2's spellings of ``name``.

    Values below ``minimum`` (a kernel of 0) are refused at their key.
    """
    dims = _read_dims(reader, name, default)
    if min(dims) < minimum:
        raise reader.error(dims_key(reader, name), f"must be at least {minimum}, got "
                           f"{dims[1]}x{dims[0]} (width x height)")
    return dims


def _read_dims(reader, name, default):
    dims_key_, single_keys, (key_h, key_w) = DIM_SPELLINGS[name]
    item = values.as_uint
    if reader.has(dims_key_):
        dims = reader.get(dims_key_, values.vector(item))
        if len(dims) not in (1, 2):
            raise reader.error(dims_key_, f"expected 2 values (width height), got {len(dims)}")
        return (dims[-1], dims[0])
    for key in single_keys:
        if reader.has(key):
            size = reader.get(key, item)
            return (size, size)
    has_h, has_w = reader.has(key_h), reader.has(key_w)
    if has_h or has_w:
        fallback = default if default is not MISSING else (MISSING, MISSING)
        return (reader.get(key_h, item, fallback[0]), reader.get(key_w, item, fallback[1]))
    if default is MISSING:
        raise IniError(
            f"{reader.where(dims_key_)}: missing required key "
            f"({dims_key_}, {single_keys[0]} or {key_w}+{key_h})"
        )
    return tuple(default)


def unknown_key_message(ini, section, key, known):
    if key in known:  # declared, but a key of higher precedence was used instead
        return f"{ini.where(section, key)}: key not used (another key sets the same thing)"
    hint = did_you_mean(key, sorted(known))
    suffix = f"; did you mean {hint}?" if hint else ""
    return f"{ini.where(section, key)}: unknown key{suffix}"
