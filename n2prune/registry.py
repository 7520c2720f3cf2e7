"""Named families (cell types, fillers, patterns...) and the keys of their members.

``Registry`` maps the names a user writes (``Type=Conv``,
``QWeight.Pattern=NM``) to classes or functions, filled with
``@FAMILY.register(name, Key(...), ...)``. ``lookup(name, where)`` gives
every unknown name the one wording::

    unknown Type=Convv in [conv1] (model.ini:12); did you mean Conv? known: Conv, Fc, ...

``Key`` declares one setting of a member: its INI name, its Python keyword,
its kind and a one-line doc. Its default is not written in the key: it is
the constructor's (the signature is the one place a default is written, so
``help()`` and the INI reader cannot disagree). ``KeyTable`` binds the keys
to the signature when the member is registered and refuses, at import, a
key whose keyword the constructor does not take.

This module is data only (stdlib): the graph parses values by kind
(``graph/keys.py``), the docs list the tables (``docs/ini-reference.rst``).
"""

import dataclasses
import difflib
import inspect

from n2prune.errors import UserError


class _Required:
    def __repr__(self):
        return "REQUIRED"


REQUIRED = _Required()
"""Default of a key whose constructor parameter has none: the key must be written."""


class UnknownName(UserError, ValueError):
    """A name no member of a registry has (one line: what, where, did you mean, known)."""


@dataclasses.dataclass(frozen=True)
class Kind:
    """How a key's text is read: ``name`` is one of float, uint, int, bool, str, size,
    choice (``choices``: names, or a Registry read when parsing), vector (of
    ``item``) or text (``check(str)`` raises ValueError on a bad value)."""

    name: str
    choices: object = None
    item: object = None
    check: object = None

    def names(self):
        """The accepted names of a choice, in registration order."""
        return tuple(self.choices)

    def describe(self):
        """A few words for the docs: ``float``, ``one of Max, Average``, ``list of float``."""
        if self.name == "choice":
            return "one of " + ", ".join(self.names())
        if self.name == "vector":
            return f"list of {self.item.describe()}"
        if self.name == "dims":
            return f"``W H`` ({self.item.describe()})"
        return _KIND_WORDS.get(self.name, self.name)


_KIND_WORDS = {"uint": "integer >= 0", "int": "integer", "size": "integer >= 1",
               "bool": "0 or 1", "str": "text", "text": "text",
               "mappings": "see Mapping keys"}

FLOAT, UINT, INT, BOOL, STR, SIZE = (Kind(n) for n in ("float", "uint", "int", "bool", "str", "size"))


def choice(choices):
    """A key taking one name of ``choices`` (a tuple, or a Registry: its names when read)."""
    return Kind("choice", choices=choices)


def vector(item):
    """A key taking a space-separated list of ``item`` values."""
    return Kind("vector", item=item)


def text(check):
    """A key whose text ``check(text)`` validates (raising ValueError) and which is kept as text."""
    return Kind("text", check=check)


@dataclasses.dataclass(frozen=True)
class Key:
    """One setting: INI ``name``, Python keyword ``attr``, ``kind``, ``doc``; ``default``
    is filled from the constructor by ``KeyTable`` (never written here)."""

    name: str
    attr: str
    kind: Kind
    doc: str
    default: object = REQUIRED

    @property
    def required(self):
        return self.default is REQUIRED


class KeyTable:
    """The keys of one registered member, with their defaults bound from ``sources``.

    ``sources``: the callables (a class means its ``__init__``) whose
    parameters the keys set; the first one that names ``attr`` gives the
    default. A key no source names is a ``TypeError`` at import.
    """

    def __init__(self, keys=(), sources=()):
        self.sources = tuple(sources)
        self._keys = {k.name: dataclasses.replace(k, default=self._default(k)) for k in keys}
        if len(self._keys) != len(keys):
            raise TypeError(f"a key is declared twice in {[k.name for k in keys]}")

    def _default(self, key):
        for source in self.sources:
            parameter = signature_parameters(source).get(key.attr)
            if parameter is not None:
                empty = parameter.default is inspect.Parameter.empty
                return REQUIRED if empty else parameter.default
        names = ", ".join(getattr(s, "__qualname__", repr(s)) for s in self.sources)
        raise TypeError(f"key {key.name}: no parameter {key.attr!r} in {names or 'no source'}")

    def __iter__(self):
        return iter(self._keys.values())

    def __len__(self):
        return len(self._keys)

    def __contains__(self, name):
        return name in self._keys

    def __getitem__(self, name):
        return self._keys[name]

    def names(self):
        return list(self._keys)

    def defaults(self):
        """``{attr: default}`` of the keys that have one."""
        return {k.attr: k.default for k in self if not k.required}


def signature_parameters(source):
    """``{name: inspect.Parameter}`` of the named (not ``*args``/``**kwargs``) parameters."""
    function = source.__init__ if inspect.isclass(source) else source
    skipped = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {name: p for name, p in inspect.signature(function).parameters.items()
            if p.kind not in skipped and name != "self"}


class Registry(dict):
    """Names -> members of one family; ``what`` is how a user names a member (``Type``).

    A dict, so ``name in REGISTRY`` and iteration (registration order) work
    as before; ``lookup`` is the one way to resolve a name a user wrote.
    """

    def __init__(self, what):
        super().__init__()
        self.what = what
        # Names of the reference system n2prune knows and declines: name -> why.
        self.refused = {}

    def register(self, name, *keys, sources=()):
        """Decorator filing ``obj`` under ``name``, with ``obj.key_table`` its ``KeyTable``.

        The keys' defaults come from ``obj``'s signature, then from ``sources``.
        """
        def decorate(obj):
            self.add(name, obj, keys, sources)
            return obj
        return decorate

    def add(self, name, obj, keys=(), sources=()):
        """File ``obj`` (already wrapped if the family wraps) under ``name``; returns it."""
        if name in self:
            raise ValueError(f"{self.what}={name} is registered twice")
        obj.key_table = KeyTable(keys, (obj, *sources))
        self[name] = obj
        return obj

    def lookup(self, name, where=None, what=None):
        """The member ``name``, else ``UnknownName``: "unknown Type=Convv in [conv1]
        (model.ini:12); did you mean Conv? known: ...". ``what`` overrides the key word
        (``BiasFiller`` for the fillers' ``WeightsFiller``)."""
        if name in self:
            return self[name]
        written = f"{what or self.what}={name}"
        if name in self.refused:
            place = f" in {where}" if where else ""
            raise UnknownName(f"{written}{place}: {self.refused[name]}")
        raise UnknownName(unknown_message(written, name, list(self), where))

    def refuse(self, names, why):
        """Names a user may write (N2D2 has them) that ``lookup`` declines with ``why``
        ("... are not supported; ...") instead of "unknown ... did you mean"."""
        for name in names:
            if name in self:
                raise ValueError(f"{self.what}={name} is registered and refused")
            self.refused[name] = why

    def names(self):
        return tuple(self)


def closest(word, candidates):
    """The candidate closest to ``word`` (difflib), or None: the "did you mean" of every message."""
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1)
    return close[0] if close else None


def unknown_message(written, name, known, where=None):
    """``unknown <written>[ in <where>]; [did you mean X? ]known: a, b`` (one line)."""
    close = closest(name, known)
    place = f" in {where}" if where else ""
    hint = f"; did you mean {close}? " if close else "; "
    return f"unknown {written}{place}{hint}known: {', '.join(map(str, known)) or 'none'}"
