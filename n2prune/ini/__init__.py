"""N2D2 INI files: text -> sections -> evaluated, typed values (stdlib only).

Typical use::

    from n2prune.ini import load_ini, values
    ini = load_ini("LeNet.ini", overrides=["conv1.NbOutputs=8"])
    nb = ini.read("conv1", "NbOutputs", values.as_uint)
"""

from n2prune.ini import values
from n2prune.ini.inifile import IniFile, load_ini, parse_ini_text
from n2prune.ini.paths import expand_env_path
from n2prune.ini.section import MISSING, Section

__all__ = [
           "MISSING",
           "IniFile",
           "Section",
           "expand_env_path",
           "load_ini",
           "parse_ini_text",
           "values",
]
