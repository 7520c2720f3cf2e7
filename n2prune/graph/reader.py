"""Typed reads of one INI section, remembering which key names a section may hold.

Sections without a key table (the stimuli provider, the database,
``[Pruning]``) declare every key they understand by reading it through a
``SectionReader``; a cell section's names come from its type's table
(``graph/cell_keys.section_names``). What no declaration names is later
reported as unknown, with a did-you-mean drawn from the declared names
(darknet's ``option_find``).
"""

from n2prune.errors import IniError
from n2prune.ini import MISSING
from n2prune.registry import unknown_message


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

    def where(self, key):
        return self.ini.where(self.section, key)

    def error(self, key, message):
        return IniError(f"{self.where(key)}: {message}")

    def ignore(self, *keys):
        for key in keys:
            self.known.add(key)
            if self.ini.section(self.section).has(key):
                self.ini.mark_used(self.section, key)


def unknown_key_message(ini, section, key, known):
    """The report of a key nothing read: unknown (with the section's known names), or
    known but shadowed by a key of higher precedence.

    The per-input mapping keys (``Mapping(P)``, ``Mapping(P).Size``...) are
    not listed: they repeat the generic ``Mapping.*`` names for each input.
    """
    if key in known:
        return f"{ini.where(section, key)}: key not used (another key sets the same thing)"
    listed = sorted(name for name in known if not name.startswith("Mapping("))
    return f"{ini.where(section, key)}: {unknown_message(f'key {key}', key, listed)}"
