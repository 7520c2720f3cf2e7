"""Sections and their keys, with inheritance and where each key was written."""

from n2prune.errors import IniError

# An overridden value is located as "--set:K": the K-th --set of the command line.
SET_ORIGIN = "--set"
GENERATED_ORIGIN = "<generated>"


class _Missing:
    def __repr__(self):
        return "MISSING"


MISSING = _Missing()
"""Default of ``IniFile.read`` meaning "the key is required"."""


class Entry:
    """A raw value, where it was written, and whether anything read it.

    ``used`` belongs to the written line, so a key inherited by several
    sections counts as used once any of them reads it. A ``generated`` entry
    was written by a generator (an imported ONNX graph), not by the user: it
    is read like any other but never dumped, since the generator writes it
    again when the dumped file is read.
    """

    def __init__(self, value, file, line, used=False, via="", generated=False):
        self.value = value
        self.file = file
        self.line = line
        self.used = used
        self.via = via
        self.generated = generated

    @property
    def location(self):
        """``file:line``, followed for a template's key by the line that included it."""
        return f"{self.file}:{self.line}{self.via}"


class Section:
    """One ``[name] parent1 parent2`` section.

    Own keys override inherited ones; among parents the first listed wins
    (N2D2's ``IniParser::load``). Inheritance is resolved when a key is looked
    up, so a ``--set`` on a parent also reaches its children. Keys injected by
    generators (``_EpochSize``...) are readable but not part of ``keys()``.
    A section written in a template has ``via`` set: `` (included from
    file:line [name@file.tpl])``. A ``generated`` section holds only
    generated entries (``Entry.generated``) and is not dumped.
    """

    def __init__(self, name, parents, file, line, via="", generated=False):
        self.name = name
        self.generated = generated
        self.parents = [parent.name for parent in parents]
        self.file = file
        self.line = line
        self.via = via
        self._parents = list(parents)
        self._own = {}
        self._injected = {}

    def __repr__(self):
        return f"Section({self.name!r})"

    @property
    def location(self):
        """``file:line`` of the header (with `` (included from ...)`` for a template's)."""
        return f"{self.file}:{self.line}{self.via}"

    def entry(self, key):
        """The Entry a read of ``key`` sees (injected, own, inherited), or None."""
        return self._injected.get(key) or self._written(key)

    def _written(self, key):
        found = self._own.get(key)
        for parent in self._parents:
            if found is not None:
                break
            found = parent._written(key)
        return found

    def own(self, key):
        """The Entry written in this very section (not inherited), or None."""
        return self._own.get(key)

    def own_items(self):
        """(key, Entry) pairs written in this section, in file order."""
        return list(self._own.items())

    def set_own(self, key, entry):
        """Add or replace an own key (keeps its position when replaced)."""
        self._own[key] = entry

    def inject(self, key, entry):
        self._injected[key] = entry

    def __iter__(self):
        """Iterate over ``keys()``: own and inherited keys, in order."""
        return iter(self.keys())

    def keys(self):
        """Own and inherited keys: inherited ones first, in parent order."""
        ordered = {}
        for parent in self._parents:
            ordered.update(dict.fromkeys(parent.keys()))
        ordered.update(dict.fromkeys(self._own))
        return list(ordered)

    def has(self, key):
        """True if ``key`` is written here or inherited (not if only injected)."""
        return self._written(key) is not None

    def raw(self, key):
        """The unevaluated value of ``key``."""
        return self._require(key).value

    def origin(self, key):
        """(file, line) where ``key`` was written (``("--set", K)`` for the K-th override)."""
        found = self._require(key)
        return found.file, found.line

    def where(self, key):
        """``file:line [name] Key``; the header's line when the key is absent."""
        found = self.entry(key)
        return f"{(found or self).location} [{self.name}] {key}"

    def _require(self, key):
        found = self.entry(key)
        if found is None:
            raise IniError("no such key", self.where(key))
        return found
