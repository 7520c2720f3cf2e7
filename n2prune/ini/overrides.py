"""Command-line overrides ``--set section.Key=value``.

Section names may contain dots (``sp.Transformation_1``) and keys too
(``QWeight.Threshold``), so the text is split after the *longest* section name
that is followed by a ``.``. A bare ``Key=value`` or ``.Key=value`` targets the
global section.
"""

import difflib

from n2prune.errors import IniError
from n2prune.ini.lexer import WHITESPACE, value_text
from n2prune.ini.section import SET_ORIGIN


def parse_override(text, section_names):
    """``"conv1.QWeight.Threshold=0.3"`` -> ``("conv1", "QWeight.Threshold", "0.3")``.

    ``section_names`` are the names of the file's sections (not ``""``). The
    value is left-trimmed and loses surrounding double quotes, as in a file.
    Raises IniError for a missing ``=``, an empty key or an unknown section.
    """
    target, sep, value = text.partition("=")
    target = target.strip(WHITESPACE)
    if not sep:
        raise IniError(f"{text!r}: expected section.Key=value", SET_ORIGIN)
    section, key = _split_target(target, section_names, text)
    if not key:
        raise IniError(f"{text!r}: empty key name", SET_ORIGIN)
    return section, key, value_text(value)


def _split_target(target, section_names, text):
    if target.startswith("."):
        return "", target[1:]
    matches = [name for name in section_names if target.startswith(name + ".")]
    if matches:
        section = max(matches, key=len)
        return section, target[len(section) + 1:]
    if "." not in target:
        return "", target
    head = target.split(".", 1)[0]
    close = difflib.get_close_matches(head, list(section_names), n=3)
    hint = f"; close names: {', '.join(f'[{name}]' for name in close)}" if close else ""
    raise IniError(f"{text!r}: unknown section [{head}]{hint} "
                   f"(use .Key=value for a global key)", SET_ORIGIN)


def file_overrides(path):
    """Every key of the INI file ``path`` as a ``section.Key=value`` override, in file
    order (``--set-file``); keys before the first section as ``.Key=value``."""
    from n2prune.ini.inifile import load_ini  # inifile imports this module
    ini = load_ini(path)
    found = [f".{key}={ini.global_section.raw(key)}" for key in ini.global_section]
    for section in ini.sections():
        found += [f"{section.name}.{key}={section.raw(key)}" for key in section]
    return found
