"""A section read against a key table (``registry.Key``): the one typed, checked read.

A member's keys reach it two ways: prefixed in the cell section
(``ActivationFunction.LeakSlope``) or routed from a ``ConfigSection``
(``QWeight.Threshold``, ``Solvers.LearningRate``, ``NoBias``). Both become
references ``{name: (section, key)}``, read here in one pass: a name the
table lacks is an error listing the table's keys, a value is parsed by its
key's kind, an absent key is left to the constructor's default.
"""

from n2prune.errors import IniError, SettingError
from n2prune.ini import values
from n2prune.registry import closest, unknown_message

_PARSERS = {"float": values.as_float, "uint": values.as_uint, "int": values.as_int,
            "bool": values.as_bool, "str": values.as_str, "size": values.as_size}


def parser(kind):
    """The ``ini.values`` reader of a ``registry.Kind``."""
    if kind.name == "choice":
        return values.enum(*kind.names())
    if kind.name == "vector":
        return values.vector(parser(kind.item))
    if kind.name == "text":
        def read_text(text):
            kind.check(text)
            return text
        return read_text
    return _PARSERS[kind.name]


def place(ini, section, key):
    """``[section] (file:line)``: where a name was written, for ``Registry.lookup``."""
    sec = ini.section(section)
    found = sec.entry(key)
    return f"[{section}] ({(found or sec).location})"


def prefixed_refs(ini, section, prefix):
    """``{name: (section, prefix.name)}`` of the ``prefix.*`` keys of ``section``."""
    start = prefix + "."
    return {key[len(start):]: (section, key) for key in ini.section(section) if key.startswith(start)}


def read_keys(ini, refs, table, what="key", required_at=None):
    """``(kwargs, located)`` from references ``{name: (section, key)}`` per ``table``.

    ``kwargs``: ``{attr: value}`` of the keys written (defaults stay the
    constructor's); ``located``: ``{attr: file:line [section] Key}``. A name
    the table lacks is an IniError at its line ("unknown <what> X; did you
    mean ...; known: ..."). A required key not written is an error at
    ``required_at`` (``(section, key)`` it belongs under).
    """
    kwargs, located = {}, {}
    for name, (section, key) in refs.items():
        if name not in table:
            message = unknown_message(f"{what} {name}", name, table.names())
            raise IniError(message, ini.where(section, key))
        entry = table[name]
        kwargs[entry.attr] = ini.read(section, key, parser(entry.kind))
        located[entry.attr] = ini.where(section, key)
    for entry in table:
        if entry.required and entry.attr not in kwargs:
            section, key = required_at
            raise IniError(f"missing required key {entry.name}", ini.where(section, key))
    return kwargs, located


def construct(build, kwargs, located, fallback):
    """``build(**kwargs)``; a refused value becomes an IniError at the key it blames.

    ``SettingError.setting`` names the keyword; its key's ``file:line`` is in
    ``located``. Any other ValueError is reported at ``fallback``.
    """
    try:
        return build(**kwargs)
    except SettingError as exc:
        raise IniError(str(exc), located.get(exc.setting, fallback)) from None
    except ValueError as exc:
        raise IniError(str(exc), fallback) from None


def read_member(ini, section, key, registry):
    """``(member, kwargs, located)``: the member ``key`` names in ``section`` (looked up
    in ``registry``) and its ``key.*`` settings; None when ``key`` is absent."""
    refs = prefixed_refs(ini, section, key)
    if not ini.section(section).has(key):
        for sec, sub in refs.values():
            raise IniError(f"{sub} given without {key}=", ini.where(sec, sub))
        return None
    name = ini.read(section, key, values.as_str)
    member = registry.lookup(name, place(ini, section, key), what=key)
    kwargs, located = read_keys(ini, refs, member.key_table, f"{name} parameter", (section, key))
    return member, kwargs, located


def misspelt_hint(ini, section, names, known):
    """``"; is KernelDim (line 23) a misspelling of KernelDims?"``: a written key that
    is not ``known`` and is close to one of the missing ``names``; else empty."""
    sec = ini.section(section)
    written = [key for key in sec if key not in known]
    for name in names:
        close = closest(name, written)
        if close is not None:
            return f"; is {close} (line {sec.entry(close).line}) a misspelling of {name}?"
    return ""
