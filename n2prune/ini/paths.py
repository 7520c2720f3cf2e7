"""Path-valued keys (``DataPath``, ``LabelPath``...): the one place env vars expand.

N2D2 expands environment variables only in such keys (``Utils::expandEnvVars``,
unknown variable -> empty) and reads relative paths from the INI file's folder.
"""

import os
import re
from pathlib import Path

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
