"""INI text -> raw sections, following N2D2's ``IniParser::load`` line by line.

Per physical line, in this order (the order matters, see the spec §1.1):
BOM strip, ``\\`` continuation (on the *raw* line, before comments), comment
strip outside double quotes, trim, then a section header or a property.
Nothing is evaluated here; values stay raw text with their line numbers.
"""

from dataclasses import dataclass, field

from n2prune.errors import IniError

# C's isspace(): Python's str.strip() would also eat Unicode spaces.
WHITESPACE = " \t\n\r\v\f"
BOM = "\ufeff"


@dataclass
class RawEntry:
    """One ``key=value`` line; ``line`` is the first physical line (1-based)."""

    key: str
    value: str
    line: int


@dataclass
class RawSection:
    """A ``[name] parent1 parent2`` header and its entries in file order.

    The global section (lines before the first header) has name ``""`` and
    line 1.
    """

    name: str
    parents: list
    line: int
    entries: list = field(default_factory=list)


def logical_lines(text):
    """Yield ``(line_number, line)`` after BOM removal and ``\\`` continuation.

    A continued line is reported at its first physical line. Splitting only on
    ``\\n`` keeps a CRLF file's ``\\r``, which (as in N2D2) disables
    continuation. A continuation still pending at end of file is kept rather
    than silently dropped.
    """
    pending, start = "", None
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removeprefix(BOM)
        if line.endswith("\\"):
            if start is None:
                start = number
            pending += line[:-1]
            continue
        if start is not None:
            yield start, pending + line
            pending, start = "", None
        else:
            yield number, line
    if start is not None:
        yield start, pending


def strip_comment(line, where):
    """Cut ``line`` at the first ``;`` or ``#`` outside a double-quoted span.

    Raises IniError (prefixed by ``where``) on an unterminated ``"``.
    """
    pos = 0
    while pos < len(line):
        char = line[pos]
        if char == '"':
            close = line.find('"', pos + 1)
            if close < 0:
                raise IniError("unterminated double quote (malformed property)", where)
            pos = close + 1
        elif char in ";#":
            return line[:pos]
        else:
            pos += 1
    return line


def parse_header(line, where):
    """``[name] p1 p2`` or ``[name]p1`` -> (name, parents). Name is not trimmed.

    A template section's name keeps its ``@file.tpl`` (``n2prune.ini.templates``).
    """
    close = line.index("]")
    return line[1:close], line[close + 1:].split()


def parse_property(line, where):
    """``key = value`` -> (key, value): split at the first ``=``.

    The key is right-trimmed, the value left-trimmed, and a value that starts
    and ends with ``"`` loses those two quotes.
    """
    key, sep, value = line.partition("=")
    key = key.rstrip(WHITESPACE)
    if not sep:
        raise IniError(f"missing '=' (no value) in line {line!r}", where)
    return key, value_text(value)


def value_text(raw):
    """The value as written after ``=``: left-trimmed, without one pair of enclosing quotes."""
    value = raw.lstrip(WHITESPACE)
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def clean_line(line, where):
    """The significant text of one logical line: comment cut, then trimmed."""
    return strip_comment(line, where).strip(WHITESPACE)


def is_header(line):
    return line.startswith("[") and "]" in line


def lex(text, file, where_of=None):
    """Split INI ``text`` into raw sections, the global one (``""``) first.

    ``file`` is only used in error messages (``file:line``); ``where_of(number)``,
    when given, names line ``number`` instead (a template's rendered text).
    Duplicate section names and parent checks are left to the caller, which
    knows section order.
    """
    sections = [RawSection("", [], 1)]
    for number, line in logical_lines(text):
        where = where_of(number) if where_of else f"{file}:{number}"
        if "\0" in line:
            # Text files have none; a NUL means a binary file (or a broken one).
            raise IniError("NUL character in the line: a binary file, not INI text?", where)
        line = clean_line(line, where)
        if not line:
            continue
        if is_header(line):
            name, parents = parse_header(line, where)
            sections.append(RawSection(name, parents, number))
        else:
            key, value = parse_property(line, where)
            sections[-1].entries.append(RawEntry(key, value, number))
    return sections
