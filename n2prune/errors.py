"""The one exception type the CLI turns into a one-line message and exit code 2."""


class UserError(Exception):
    """A mistake in the user's input (INI file, command line, data files).

    ``str(error)`` is a single line that names where (``file:line [section] Key``
    or the cell) and what to do. The CLI prints it without a traceback.
    """

    def __init__(self, message, where=None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class IniError(UserError):
    """An INI file that cannot be read as written."""


class ShapeError(UserError):
    """Cells whose inputs do not fit together."""


class DataError(UserError):
    """Missing or malformed data files."""
