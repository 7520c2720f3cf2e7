"""Writing an IniFile back as INI text (the "resolved INI" of a run folder).

Inheritance is flattened (each section lists all its keys, no parents) and,
with ``resolved=True``, each value is written evaluated, or raw when it cannot
be evaluated yet (e.g. ``[sp]_EpochSize`` before the data are loaded). Values
are quoted only when needed to read back identically. What a generator wrote
(the sections of an imported ONNX graph) is left out: reading the dump
generates it again.
"""

import logging

from n2prune.errors import IniError
from n2prune.ini.evaluate import evaluate_key
from n2prune.ini.lexer import clean_line, is_header, parse_property

_log = logging.getLogger("n2prune.ini")


def dumps(ini, resolved=True):
    """INI text of ``ini``: global keys first, then every section in file order."""
    source = ini.path if ini.path is not None else "text"
    lines = [f"; n2prune {'resolved ' if resolved else ''}INI from {source}"]
    lines += _key_lines(ini, ini.global_section, resolved)
    for section in ini.sections():
        if section.generated:
            continue
        lines += ["", f"[{section.name}]"]
        lines += _key_lines(ini, section, resolved)
    return "\n".join(lines) + "\n"


def _key_lines(ini, section, resolved):
    lines, keys = [], section.keys()
    for key in keys:
        if section.entry(key).generated:
            continue
        value = section.raw(key)
        if resolved:
            try:
                value = evaluate_key(ini, section, key)
            except IniError:
                pass
        lines.append(_encode(key, value, section))
    return lines


def _encode(key, value, section):
    """``key=value``, or ``key="value"`` when comments/quotes/``\\`` would alter it."""
    for line in (f"{key}={value}", f'{key}="{value}"'):
        if _reads_back(line, key, value):
            return line
    _log.warning("[%s] %s: value %r cannot be written exactly in INI syntax",
                 section.name, key, value)
    return line


def _reads_back(line, key, value):
    if line.endswith("\\"):
        return False
    try:
        cleaned = clean_line(line, "dump")
        return not is_header(cleaned) and parse_property(cleaned, "dump") == (key, value)
    except IniError:
        return False
