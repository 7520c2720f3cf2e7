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
# Bracketed text up to this long is looked up as a section name directly.
SHORT_NAME = 256
# Chains of references deeper than this are surely a mistake; Python's own
# recursion limit would otherwise end them with a traceback.
MAX_REFERENCE_DEPTH = 100


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
        self._longest = None
        self._previous = None

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
        where = f"{entry.location} {label}"
        if any(seen is entry for seen, _ in stack):
            chain = " -> ".join([name for _, name in stack] + [label])
            raise IniError(f"self-referencing value: {chain}", where)
        if len(stack) >= MAX_REFERENCE_DEPTH:
            raise IniError(f"references nested more than {MAX_REFERENCE_DEPTH} deep "
                           f"(through {stack[0][1]})", where)
        value = self.evaluate(entry.value, where, stack + ((entry, label),))
        self.memo[id(entry)] = value
        return value

    def _references(self, text, where, stack):
        """Replace each ``[sec]Key`` naming an existing section; other brackets stay."""
        out = _Output(where)
        pos = done = 0
        close = -1
        while (start := text.find("[", pos)) >= 0:
            if close <= start:
                # The first "]" after each later "[" is the same until we pass it.
                close = text.find("]", start + 1)
                if close < 0:
                    break
            pos = start + 1
            # Longer than any section name: no slice, so "[[[[...]" stays linear.
            if close - start - 1 > SHORT_NAME and close - start - 1 > self._longest_section():
                continue
            name = text[start + 1:close]
            if not self.ini.has_section(name):
                continue
            end = _next_whitespace(text, close + 1)
            out.add(text, done, start, self._reference(name, text[close + 1:end], where, stack))
            pos = done = end
        return out.finish(text, done)

    def _reference(self, name, key, where, stack):
        section = self.ini.section(name)
        entry = section.entry(key)
        if entry is None:
            raise IniError(f"[{name}]{key}: section [{name}] ({section.location}) "
                           f"has no key {key!r}", where)
        return self.resolve(entry, f"[{name}] {key}", stack)

    def _variables(self, text, where, stack):
        """Replace known ``${NAME}``; returns (text, False) on a ``${`` with no ``}``."""
        out = _Output(where)
        pos = done = 0
        while (start := text.find("${", pos)) >= 0:
            close = text.find("}", start + 2)
            if close < 0:
                return out.finish(text, done), False
            value = self._variable(text[start + 2:close], stack)
            pos = close + 1
            if value is not None:
                out.add(text, done, start, value)
                done = pos
        return out.finish(text, done), True

    def _variable(self, name, stack):
        """Built-ins, then key ``$NAME`` of the current section, then global; else None."""
        if name == "SECTION_NAME":
            return self.current.name
        if name == "PREV_SECTION_NAME":
            return self._previous_section()
        key = "$" + name
        for section in (self.current, self.ini.global_section):
            entry = section.entry(key)
            if entry is not None:
                return self.resolve(entry, f"[{section.name}] {key}", stack)
        return None


    # Both computed once per read, on first need: a file may have many sections.
    def _longest_section(self):
        if self._longest is None:
            self._longest = max((len(s.name) for s in self.ini.sections()), default=0)
        return self._longest

    def _previous_section(self):
        if self._previous is None:
            names = [""] + [section.name for section in self.ini.sections()]
            index = names.index(self.current.name)
            # As N2D2: in a section written by a template, the template's own
            # section (its $PARENT_SECTION_NAME) is skipped when it comes just before.
            parent = self.current.entry("$PARENT_SECTION_NAME")
            if index > 1 and parent is not None and parent.value == names[index - 1]:
                index -= 1
            self._previous = names[index - 1] if index > 0 else ""
        return self._previous

class _Output:
    """The evaluated text built as a list of pieces: one pass, linear in its length."""

    def __init__(self, where):
        self.where = where
        self.pieces = []
        self.length = 0

    def add(self, text, done, start, value):
        """Append ``text[done:start]`` (kept verbatim) then ``value`` (a replacement)."""
        self.pieces += [text[done:start], value]
        self.length += start - done + len(value)
        if self.length > MAX_VALUE_CHARS:
            raise IniError(f"value grows beyond {MAX_VALUE_CHARS} characters", self.where)

    def finish(self, text, done):
        if not self.pieces:
            return text
        self.add(text, done, len(text), "")
        return "".join(self.pieces)


def _next_whitespace(text, pos):
    while pos < len(text) and text[pos] not in WHITESPACE:
        pos += 1
    return pos


def _expressions(text, where):
    """Replace each ``$( ... )`` (balanced parentheses) by its printed value."""
    out = _Output(where)
    pos = done = 0
    while (start := text.find("$(", pos)) >= 0:
        close = _matching_paren(text, start + 1)
        if close is None:
            break
        try:
            value = expr.format_result(expr.evaluate(text[start + 2:close]))
        except IniError as error:
            raise IniError(str(error), where) from None
        out.add(text, done, start, value)
        pos = done = close + 1
    return out.finish(text, done)


def _matching_paren(text, open_pos):
    """Index of the ``)`` closing the ``(`` at ``open_pos``, or None.

    Hops between parentheses with ``str.find``, each search starting where the
    last one of its kind stopped: linear, however the parentheses are laid out.
    """
    depth = 0
    opening, closing = open_pos, text.find(")", open_pos)
    while closing >= 0:
        if 0 <= opening < closing:
            depth += 1
            opening = text.find("(", opening + 1)
            continue
        depth -= 1
        if depth == 0:
            return closing
        closing = text.find(")", closing + 1)
    return None
