"""The IniFile object: sections, lazy evaluation, typed reads, used-key tracking.

Semantics follow N2D2's ``IniParser`` (its ``src/utils/IniParser.cpp``; docs/ini-reference.rst).
Two deliberate differences: a key written in a child section that replaces an
inherited one is not warned about (that is what template sections are for),
and inheritance is resolved at lookup so ``--set`` on a parent reaches its
children.
"""

import logging
from pathlib import Path

from n2prune.errors import IniError
from n2prune.ini.dump import dumps
from n2prune.ini.evaluate import evaluate_key
from n2prune.ini.lexer import lex
from n2prune.ini.overrides import parse_override
from n2prune.ini.section import (
    GENERATED_ORIGIN,
    MISSING,
    SET_ORIGIN,
    Entry,
    Section,
)
from n2prune.registry import closest

_log = logging.getLogger("n2prune.ini")


def load_ini(path, overrides=()):
    """Read the INI file at ``path`` (UTF-8, else Latin-1) into an IniFile."""
    if not str(path):
        raise IniError("the INI file name is empty")
    return IniFile(_read_text(Path(path)), path, overrides)


# Far above any real model; stops /dev/zero-like or multi-GB inputs early.
MAX_INI_BYTES = 64 * 2 ** 20


def _read_text(path):
    """The text of ``path``; every way of failing is an IniError naming the file."""
    try:
        if path.is_dir():
            raise IniError("is a folder, not an INI file", str(path))
        if not path.exists():
            raise IniError("no such INI file", str(path))
        if not path.is_file():
            raise IniError("not a regular file", str(path))
        if path.stat().st_size > MAX_INI_BYTES:
            raise IniError(f"larger than {MAX_INI_BYTES >> 20} MiB: not an INI file", str(path))
        data = path.read_bytes()
    except OSError as error:
        # ENAMETOOLONG, EACCES...: is_dir() and exists() raise them too.
        raise IniError(f"cannot read INI file: {error.strerror}", str(path)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_ini_text(text, path="<string>", overrides=()):
    """An IniFile from INI ``text``; ``path`` names it in messages."""
    return IniFile(text, path, overrides)


class IniFile:
    """A parsed INI file. Values are evaluated when read, not when parsed.

    ``overrides`` are ``"section.Key=value"`` strings (``--set``), applied
    after parsing; the K-th records ``("--set", K)`` as its origin.
    """

    def __init__(self, text, path=None, overrides=()):
        self.path = Path(path) if path is not None else None
        self.warnings = []
        self._file = str(path) if path is not None else "<string>"
        self._by_name = {}
        self._sections = []
        # The last line, where a missing section is reported (1 for an empty file).
        self.end_line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
        for raw in lex(text, self._file):
            self._add_section(raw)
        self.global_section = self._sections.pop(0)
        for number, override in enumerate(overrides, 1):
            self._apply_override(override, number)

    # -- building -------------------------------------------------------

    def _add_section(self, raw):
        where = f"{self._file}:{raw.line}"
        if raw.name in self._by_name:
            first = self._by_name[raw.name].line
            raise IniError(f"section [{raw.name}] already exists (line {first})", where)
        parents = [self._parent(raw, name, where) for name in raw.parents]
        section = Section(raw.name, parents, self._file, raw.line)
        for entry in raw.entries:
            old = section.own(entry.key)
            if old is not None:
                self._warn(f"{self._file}:{entry.line} [{raw.name}] {entry.key}: overriding "
                           f"property (previous value {old.value!r} at line {old.line})")
            used = entry.key.startswith("$")  # variables are never reported unused
            section.set_own(entry.key, Entry(entry.value, self._file, entry.line, used))
        self._by_name[raw.name] = section
        self._sections.append(section)

    def _parent(self, raw, name, where):
        if name not in self._by_name:
            hint = closest(name, [s for s in self._by_name if s])
            extra = f"; did you mean [{hint}]?" if hint else ""
            raise IniError(f"[{raw.name}] inherits from [{name}], which is not defined "
                           f"before it{extra}", where)
        return self._by_name[name]

    def _apply_override(self, text, number):
        name, key, value = parse_override(text, [s.name for s in self._sections])
        self.section(name).set_own(key, Entry(value, SET_ORIGIN, number))

    def _warn(self, message):
        self.warnings.append(message)
        _log.warning(message)

    # -- sections -------------------------------------------------------

    def sections(self):
        """Sections in file order, without the global one."""
        return list(self._sections)

    def has_section(self, name):
        """True for a section of the file; ``""`` is the global section."""
        return name in self._by_name

    def section(self, name):
        if name not in self._by_name:
            hint = closest(name, [s.name for s in self._sections])
            extra = f"; did you mean [{hint}]?" if hint else ""
            raise IniError(f"unknown section [{name}]{extra}", self._file)
        return self._by_name[name]

    def where(self, section, key):
        """``file:line [section] Key`` (the header's line if the key is absent)."""
        return self.section(section).where(key)

    def end_where(self):
        """``file:line`` of the end of the file, where a missing section is reported."""
        return f"{self._file}:{self.end_line}"

    # -- values ---------------------------------------------------------

    def value(self, section, key):
        """The fully evaluated text of ``key``; marks it used."""
        sec = self.section(section)
        entry = sec.entry(key)
        if entry is None:
            raise IniError("missing required key", sec.where(key))
        entry.used = True
        return evaluate_key(self, sec, key)

    def read(self, section, key, reader, default=MISSING):
        """``reader(value(section, key))``; ``default`` (as is) if the key is absent.

        A ValueError of ``reader`` becomes an IniError at ``file:line [section] Key``.
        """
        sec = self.section(section)
        if sec.entry(key) is None:
            if default is MISSING:
                raise IniError("missing required key", sec.where(key))
            return default
        text = self.value(section, key)
        try:
            return reader(text)
        except ValueError as error:
            raise IniError(str(error), sec.where(key)) from None

    def mark_used(self, section, key):
        entry = self.section(section).entry(key)
        if entry is not None:
            entry.used = True

    def is_used(self, section, key):
        entry = self.section(section).entry(key)
        return entry is not None and entry.used

    def inject(self, section, key, value):
        """Set a generator key (``_EpochSize``, ``_NbOutputs``...) read via ``[sec]key``.

        ``value`` is stored as text (bools as 0/1); it is never reported unused.
        """
        text = str(int(value)) if isinstance(value, bool) else str(value)
        self.section(section).inject(key, Entry(text, GENERATED_ORIGIN, 0, used=True))

    def unused_keys(self):
        """(Section, key) for every written non-``$`` key nothing read, in file order.

        A key is reported once, in the section where it is written, even if
        several sections inherit it.
        """
        return [(section, key)
                for section in [self.global_section] + self._sections
                for key, entry in section.own_items() if not entry.used]

    def dumps(self, resolved=True):
        """Valid INI text with inheritance flattened; see ``n2prune.ini.dump``."""
        return dumps(self, resolved)
