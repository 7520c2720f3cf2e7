"""Paths in INI files: env vars expand only here.

Path-valued keys (``DataPath``, ``LabelPath``...) and template files ``[name@file.tpl]``.

N2D2 expands environment variables only in such keys (``Utils::expandEnvVars``,
unknown variable -> empty) and reads relative paths from the INI file's folder.
"""

import os
import re
from pathlib import Path

from n2prune.errors import IniError

_ENV = re.compile(r"\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand_env_path(value, ini_dir):
    """Expand ``${VAR}``, ``$VAR`` (unknown -> empty) and ``~``; return a Path.

    A relative result is taken relative to ``ini_dir`` (the INI file's folder;
    None keeps it relative to the working directory).
    """
    expanded = _ENV.sub(lambda match: os.environ.get(match.group(1) or match.group(2), ""), value)
    path = Path(os.path.expanduser(expanded))
    if ini_dir is not None and not path.is_absolute():
        path = Path(ini_dir) / path
    return path


_BRACED = re.compile(r"\$\{([^}]*)\}")

# What to do when a variable of a template path is unset, by variable.
_UNSET_HINTS = {"N2D2_MODELS": "set N2D2_MODELS to the folder of N2D2's models/"}


def template_path(written, ini_file, where):
    """The file of a ``[name@written]`` section, as N2D2's ``IniParser::load``.

    Only ``${VAR}`` is expanded (N2D2's ``Utils::expandEnvVars``). N2D2 makes
    an unset variable empty, which turns ``${N2D2_MODELS}/x.tpl`` into
    ``/x.tpl``; here it is an IniError at ``where``. A relative path is taken
    from the folder of ``ini_file``: the top INI file, also for a template
    written inside a template (N2D2 keeps the top file's name while it loads
    a template's text).
    """
    for match in _BRACED.finditer(written):
        name = match.group(1)
        if name not in os.environ:
            hint = _UNSET_HINTS.get(name, f"set {name}, or write the path without it")
            raise IniError(f"environment variable {name} is not set: {hint}", where)
    path = Path(_BRACED.sub(lambda match: os.environ[match.group(1)], written))
    if not path.is_absolute():
        path = Path(ini_file).parent / path
    return path
