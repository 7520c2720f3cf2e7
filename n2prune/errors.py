"""The one exception type the CLI turns into a one-line message and exit code 2."""


def escape_text(text):
    """``text`` with every non-printable character written as a Python escape.

    Control characters (``\\r`` would hide the ``file:line`` prefix on a
    terminal, ``\\n`` would split the line, ESC starts terminal sequences),
    NUL, bidi overrides (U+202A-U+202E, U+2066-U+2069) and other format or
    separator characters become ``\\xNN``/``\\uNNNN``; printable text, é
    included, is kept. Already-escaped text is unchanged.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char)
                   for char in text)


def _escape(char):
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


class UserError(Exception):
    """A mistake in the user's input (INI file, command line, data files).

    ``str(error)`` is a single line that names where (``file:line [section] Key``
    or the cell) and what to do. The CLI prints it without a traceback. User
    text is escaped here (``escape_text``), so every raiser gets it.
    """

    def __init__(self, message, where=None):
        text = f"{where}: {message}" if where else f"{message}"
        super().__init__(escape_text(text))


class SettingError(UserError, ValueError):
    """A value a constructor refuses. ``setting`` is the keyword it blames, as data:
    the graph turns it into the ``file:line`` of the key that set it."""

    def __init__(self, setting, message):
        self.setting = setting
        super().__init__(message)


def non_negative(setting, value, label):
    """``float(value)``, or a SettingError on ``setting`` when it is below 0 (or NaN)."""
    if not value >= 0:
        raise SettingError(setting, f"{label} must be >= 0 (got {value})")
    return float(value)


class CellError(UserError):
    """A cell's settings that do not fit the network, found once it is built.
    ``cell`` and ``key`` are data: the model turns them into the ``file:line``
    of the key in the cell's section."""

    def __init__(self, cell, key, message):
        self.cell, self.key, self.message = cell, key, message
        super().__init__(f"[{cell}] {key}: {message}")


class IniError(UserError):
    """An INI file that cannot be read as written."""


class ShapeError(UserError):
    """Cells whose inputs do not fit together."""


class DataError(UserError):
    """Missing or malformed data files."""
