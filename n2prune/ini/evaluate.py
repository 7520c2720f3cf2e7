"""Read-time evaluation of a raw value, N2D2's ``IniParser::getPropertyValue``.

Three passes, in this order: ``[section]Key`` references, ``${NAME}``
variables, ``$(expr)`` arithmetic. Referenced values and variables are
evaluated recursively with the *reading* section as current section, as N2D2
does. A value that refers back to itself is an error instead of a hang.
"""

from n2prune.errors import IniError
from n2prune.ini import expr
from n2prune.ini.lexer import WHITESPACE

# With fan-out a value can still double per level: cap its length.
MAX_VALUE_CHARS = 1_000_000


def evaluate_key(ini, section, key):
    """The evaluated value of ``key`` (present) as read in Section ``section``."""
    return _Evaluation(ini, section).resolve(section.entry(key), f"[{section.name}] {key}", ())


class _Evaluation:
    """One top-level read: the current section and a memo of values already evaluated.

    The memo is sound because, within one read, an entry always evaluates to
    the same text (the current section does not change); it keeps fan-out
    (A=[s]B [s]B, B=[s]C [s]C, ...) linear instead of exponential.
    """

    def __init__(self, ini, current):
        self.ini = ini
        self.current = current
        self.memo = {}

    def evaluate(self, text, where, stack):
        """Evaluate raw ``text``; ``where`` prefixes errors, ``stack`` holds
        the (Entry, label) pairs being evaluated, to detect cycles."""
        text = self._references(text, where, stack)
        text, closed = self._variables(text, where, stack)
        if not closed:
            # N2D2 returns as soon as a "${" has no "}", skipping the expressions.
            return text
        return _expressions(text, where)

    def resolve(self, entry, label, stack):
        """The evaluated value of ``entry``, refusing a cycle through it."""
        if id(entry) in self.memo:
            return self.memo[id(entry)]
        where = f"{entry.file}:{entry.line} {label}"
        if any(seen is entry for seen, _ in stack):
            chain = " -> ".join([name for _, name in stack] + [label])
            raise IniError(f"self-referencing value: {chain}", where)
        value = self.evaluate(entry.value, where, stack + ((entry, label),))
        self.memo[id(entry)] = value
        return value

    def _references(self, text, where, stack):
        """Replace each ``[sec]Key`` naming an existing section; other brackets stay."""
        pos = 0
        while (start := text.find("[", pos)) >= 0:
            close = text.find("]", start + 1)
            if close < 0:
                break
            name = text[start + 1:close]
            if not self.ini.has_section(name):
                pos = start + 1
                continue
            end = _next_whitespace(text, close + 1)
            key = text[close + 1:end]
            section = self.ini.section(name)
            entry = section.entry(key)
            if entry is None:
                raise IniError(f"[{name}]{key}: section [{name}] ({section.file}:{section.line}) "
                               f"has no key {key!r}", where)
            value = self.resolve(entry, f"[{name}] {key}", stack)
            text = _replace(text, start, end, value, where)
            pos = start + len(value)
        return text

    def _variables(self, text, where, stack):
        """Replace known ``${NAME}``; returns (text, False) on a ``${`` with no ``}``."""
        pos = 0
        while (start := text.find("${", pos)) >= 0:
            close = text.find("}", start + 2)
            if close < 0:
                return text, False
            value = self._variable(text[start + 2:close], stack)
            if value is None:
                pos = close + 1
                continue
            text = _replace(text, start, close + 1, value, where)
            pos = start + len(value)
        return text, True

    def _variable(self, name, stack):
        """Built-ins, then key ``$NAME`` of the current section, then global; else None."""
        if name == "SECTION_NAME":
            return self.current.name
        if name == "PREV_SECTION_NAME":
            names = [""] + [section.name for section in self.ini.sections()]
            index = names.index(self.current.name)
            return names[index - 1] if index > 0 else ""
        key = "$" + name
        for section in (self.current, self.ini.global_section):
            entry = section.entry(key)
            if entry is not None:
                return self.resolve(entry, f"[{section.name}] {key}", stack)
        return None


def _replace(text, start, end, value, where):
    text = text[:start] + value + text[end:]
    if len(text) > MAX_VALUE_CHARS:
        raise IniError(f"value grows beyond {MAX_VALUE_CHARS} characters", where)
    return text


def _next_whitespace(text, pos):
    while pos < len(text) and text[pos] not in WHITESPACE:
        pos += 1
    return pos


def _expressions(text, where):
    """Replace each ``$( ... )`` (balanced parentheses) by its printed value."""
    pos = 0
    while (start := text.find("$(", pos)) >= 0:
        close = _matching_paren(text, start + 1)
        if close is None:
            break
        try:
            value = expr.format_result(expr.evaluate(text[start + 2:close]))
        except IniError as error:
            raise IniError(str(error), where) from None
        text = _replace(text, start, close + 1, value, where)
        pos = start + len(value)
    return text


def _matching_paren(text, open_pos):
    """Index of the ``)`` closing the ``(`` at ``open_pos``, or None."""
    depth = 0
    for pos in range(open_pos, len(text)):
        if text[pos] == "(":
            depth += 1
        elif text[pos] == ")":
            depth -= 1
            if depth == 0:
                return pos
    return None
