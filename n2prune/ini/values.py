"""Typed readers: evaluated INI text -> Python value, as N2D2's ``getProperty<T>``.

N2D2 reads with a C++ stream whose locale groups digits with ``,``
(``PeriodMin=1,000,000``), and fails unless the whole value is consumed.
Every reader takes the evaluated string and returns the value, or raises
ValueError with a short message (``expected an integer, got 'six'``) that
``IniFile.read`` prefixes with ``file:line [section] Key``.
"""

import math
import re

_DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
_INT = re.compile(rf"[+-]?{_DIGITS}")
_FLOAT = re.compile(rf"[+-]?(?:{_DIGITS}(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# N2D2 reads ``int`` and ``unsigned int`` keys: 32-bit, whatever Python allows.
INT_RANGE = (-2**31, 2**31 - 1)
UINT_RANGE = (0, 2**32 - 1)


def _bounded_int(text, low, high):
    token = text.strip()
    if not _INT.fullmatch(token):
        raise ValueError(f"expected an integer, got {_short(text)}{_fraction_hint(token)}")
    digits = token.replace(",", "")
    # Length first: a 400-digit value is refused without building the number.
    value = int(digits) if len(digits) <= 12 else None
    if value is None or not low <= value <= high:
        raise ValueError(f"integer out of range: {_short(text)} (N2D2 reads a 32-bit "
                         f"integer here: {low}..{high})")
    return value


def _fraction_hint(token):
    """What to write instead of a number with a point or exponent (``22500.0``).

    N2D2's ``stream >> value`` stops at the ``.`` and its ``eof()`` check
    refuses the rest, so ``22500.0`` is an error there too. Such values
    mostly come from ``$(a / b)``: Python 3's ``/`` always gives a float.
    """
    if not _FLOAT.fullmatch(token):
        return ""
    return ("; N2D2 refuses a decimal point here too: write a whole number "
            "(in $(...), divide with // or wrap it in int(...))")


def is_decimal(text):
    """Whether ``text`` is a finite number written with a point or an exponent."""
    token = text.strip()
    return bool(_FLOAT.fullmatch(token)) and not _INT.fullmatch(token)


def as_int(text):
    """``"12"``, ``"-3"``, ``"1,000,000"`` -> int, 32-bit signed as N2D2's ``int``.

    ``"5.0"`` is refused (not consumed).
    """
    return _bounded_int(text, *INT_RANGE)


def as_uint(text):
    """A non-negative 32-bit integer (N2D2's ``unsigned int``); a leading ``-`` is
    refused, even ``-0`` (N2D2's signChecked)."""
    if text.strip().startswith("-"):
        raise ValueError(f"expected a non-negative integer, got {_short(text)}")
    return _bounded_int(text, *UINT_RANGE)


def as_size(text):
    """A size: an ``unsigned int`` of at least 1 (a width, a count of outputs)."""
    value = as_uint(text)
    if value == 0:
        raise ValueError("must be at least 1")
    return value


def as_float(text):
    """``"0.5"``, ``"1e-3"``, ``".5"``, ``"1,000.5"`` -> float; no ``inf``/``nan``."""
    token = text.strip()
    if not _FLOAT.fullmatch(token):
        raise ValueError(f"expected a number, got {_short(text)}")
    value = float(token.replace(",", ""))
    if math.isinf(value):  # float() rounds a too-large decimal to inf
        raise ValueError(f"number out of range: {_short(text)} (beyond a double)")
    return value


def _short(text, limit=40):
    """``repr(text)``, cut to ``limit`` characters: a 400-digit value stays one short line."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def as_bool(text):
    """Only ``0`` and ``1``: N2D2 reads bools as numbers, so ``true`` is an error."""
    token = text.strip()
    if token not in ("0", "1"):
        raise ValueError(f"expected 0 or 1, got {text!r}")
    return token == "1"


def as_str(text):
    """The evaluated text unchanged."""
    return text


def enum(*names):
    """A reader accepting exactly one of ``names`` (case-sensitive), returned as str."""

    def read_enum(text):
        token = text.strip()
        if token not in names:
            raise ValueError(f"expected one of {', '.join(names)}; got {text!r}")
        return token

    read_enum.names = names
    return read_enum


def vector(item_reader, length=None):
    """A reader of whitespace-separated items, each read by ``item_reader``.

    Returns a list; with ``length`` the number of items must match exactly.
    """

    def read_vector(text):
        tokens = text.split()
        if length is not None and len(tokens) != length:
            raise ValueError(f"expected {length} values, got {len(tokens)} in {text!r}")
        items = []
        for index, token in enumerate(tokens, start=1):
            try:
                items.append(item_reader(token))
            except ValueError as error:
                raise ValueError(f"item {index} of {text!r}: {error}") from None
        return items

    return read_vector
