"""The IniFile object: sections, lazy evaluation, typed reads, used-key tracking.

Semantics follow N2D2's ``IniParser`` (its ``src/utils/IniParser.cpp``; docs/ini-reference.rst).
Two deliberate differences: a key written in a child section that replaces an
inherited one is not warned about (that is what template sections are for),
and inheritance is resolved at lookup so ``--set`` on a parent reaches its
children.
"""

import logging
import math
from pathlib import Path

from n2prune.errors import IniError
from n2prune.ini import values
from n2prune.ini.dump import dumps
from n2prune.ini.evaluate import evaluate_key
from n2prune.ini.lexer import lex
from n2prune.ini.overrides import parse_override
from n2prune.ini.paths import template_path
from n2prune.ini.section import (
    GENERATED_ORIGIN,
    MISSING,
    SET_ORIGIN,
    Entry,
    Section,
)
from n2prune.ini.templates import Source, render_file, split_template_name
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
    after parsing; the K-th records ``("--set", K)`` as its origin. Template
    sections (``[name@file.tpl]``, ``n2prune.ini.templates``) are expanded
    while parsing; the overrides of the global section and of a template
    section are applied before its template is rendered, so they reach it.
    """

    def __init__(self, text, path=None, overrides=()):
        self.path = Path(path) if path is not None else None
        self.warnings = []
        self._file = str(path) if path is not None else "<string>"
        self._overrides = list(overrides)
        self.global_section = Section("", [], self._file, 1)
        self._by_name = {"": self.global_section}
        self._sections = []
        # The last line, where a missing section is reported (1 for an empty file).
        self.end_line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
        self._load(lex(text, self._file), Source(self._file))
        for number, override in enumerate(self._overrides, 1):
            self._apply_override(override, number)

    # -- building -------------------------------------------------------

    def _load(self, raws, source, template_of=None):
        """Add lexed sections; ``template_of`` names the section whose template wrote them."""
        for raw in raws:
            if raw.name:
                self._add_section(raw, source, template_of)
            else:  # as N2D2, a template's lines before its first header are global
                self._add_entries(self.global_section, raw, source)

    def _add_section(self, raw, source, template_of):
        where = source.where(raw.line)
        name, written = split_template_name(raw.name, where)
        if name in self._by_name:
            raise IniError(f"section [{name}] already exists "
                           f"({self._short(self._by_name[name])})", where)
        parents = [self._parent(name, parent, where) for parent in raw.parents]
        file, line = source.locate(raw.line)
        section = Section(name, parents, file, line, source.via)
        if template_of is not None:
            # As N2D2: read by ${PREV_SECTION_NAME}, visible to nested templates.
            section.set_own("$PARENT_SECTION_NAME", Entry(template_of, file, line, True, source.via))
        self._add_entries(section, raw, source)
        self._by_name[name] = section
        self._sections.append(section)
        if written is not None:
            self._expand(section, raw, written, source)

    def _add_entries(self, section, raw, source):
        for entry in raw.entries:
            file, line = source.locate(entry.line)
            old = section.own(entry.key)
            if old is not None:
                self._warn(f"{source.where(entry.line)} [{section.name}] {entry.key}: overriding "
                           f"property (previous value {old.value!r} at {self._short(old)})")
            used = entry.key.startswith("$")  # variables are never reported unused
            section.set_own(entry.key, Entry(entry.value, file, line, used, source.via))

    def _short(self, written):
        """``line N`` for a Section or Entry of the INI file itself, else its location."""
        if written.file == self._file and not written.via:
            return f"line {written.line}"
        return written.location

    def _expand(self, section, raw, written, source):
        """Render the template of ``section`` (header ``raw``) and add the sections it writes."""
        where = f"{source.where(raw.line)} [{raw.name}]"
        path = template_path(written, self._file, where)
        inner = source.included(path, raw.line, raw.name)
        self._apply_early_overrides(section)
        text, inner.origins, read = render_file(path, self._template_params(section, path),
                                                inner, where)
        for key in read:
            self.mark_used(section.name, key)
        self._load(lex(text, str(path), inner.where), inner, section.name)

    def _template_params(self, section, path):
        """As N2D2's ``loadTplIni``: SECTION_NAME, SECTION_FILE_NAME and the section's
        keys (own and inherited), evaluated."""
        params = {"SECTION_NAME": section.name, "SECTION_FILE_NAME": str(path)}
        for key in section:
            if key in params:
                raise IniError(f"{key} is set by the template itself; rename this key",
                               section.where(key))
            params[key] = evaluate_key(self, section, key)
        return params

    def _parent(self, name, parent, where):
        if parent not in self._by_name:
            hint = closest(parent, [s for s in self._by_name if s])
            extra = f"; did you mean [{hint}]?" if hint else ""
            raise IniError(f"[{name}] inherits from [{parent}], which is not defined "
                           f"before it{extra}", where)
        return self._by_name[parent]

    def _apply_early_overrides(self, section):
        """Apply now the overrides of the global section and of ``section``.

        An override that names a section not written yet is left for the end.
        """
        names = [s.name for s in self._sections]
        for number, text in enumerate(self._overrides, 1):
            try:
                name, key, value = parse_override(text, names)
            except IniError:
                continue  # reported when all overrides are applied
            if name in ("", section.name):
                self._by_name[name].set_own(key, Entry(value, SET_ORIGIN, number))

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
            floored = _python2_quotient(sec, key, text, reader)
            if floored is None:
                raise IniError(str(error), sec.where(key)) from None
            return floored

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

    def add_generated_section(self, name, parents, after, where):
        """A new section ``[name]`` made by a generator, inheriting ``parents`` (names), placed
        after section ``after`` in file order; ``where`` is ``(file, line, via)`` its
        entries are reported at. Not dumped (``Section.generated``)."""
        if name in self._by_name:
            raise IniError(f"section [{name}] already exists", f"{where[0]}:{where[1]}{where[2]}")
        section = Section(name, [self._by_name[p] for p in parents], *where, generated=True)
        self._by_name[name] = section
        self._sections.insert(self._sections.index(self._by_name[after]) + 1, section)
        return section

    def generate(self, section, key, value, where):
        """Write ``key=value`` in ``section`` for a generator (``Entry.generated``: read as
        written, never reported unused, not dumped); ``where`` as ``add_generated_section``."""
        file, line, via = where
        self.section(section).set_own(key, Entry(str(value), file, line, True, via, generated=True))

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


def _python2_quotient(sec, key, text, reader):
    """An integer key whose ``$(...)`` printed a decimal (``$(a * b / c)``), read as the
    Python 2 of N2D2's model files did: the quotient floored. None if not that case.

    N2D2 pastes what ``python -c print(...)`` prints and reads it with ``>>``:
    under Python 3 ``/`` prints ``450410.39`` and N2D2 refuses it, so
    ResNet-18.ini's ``MaxIterations`` loads only where ``python`` is Python 2.
    The files are N2D2's own; they should load.
    """
    if reader not in (values.as_int, values.as_uint, values.as_size):
        return None
    if "$(" not in sec.entry(key).value or not values.is_decimal(text):
        return None
    floored = str(math.floor(float(text)))
    try:
        value = reader(floored)
    except ValueError:
        return None
    _log.info("notice: %s: $(...) gave %s; read as %s, the floored quotient of the Python 2 "
             "N2D2's models were written for (N2D2 under Python 3 refuses it)",
             sec.where(key), text.strip(), floored)
    return value
