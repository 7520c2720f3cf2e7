"""Every registry and key table of the package, rendered for the docs and the CLI.

``docs/ini-reference.rst`` holds blocks between ``.. begin-keys <title>``
and ``.. end-keys`` comments; ``python -m n2prune.reference --write FILE``
regenerates them from the tables (``--check`` says which differ), so the
reference cannot drift from the code. ``n2prune keys [NAME]`` prints the
same tables as text.
"""

import argparse
import inspect
import re
import sys

from n2prune.cells.activations import ACTIVATIONS
from n2prune.cells.fillers import FILLERS
from n2prune.registry import REQUIRED


def registries():
    """``{title: Registry}`` of every family whose members a user names in an INI file."""
    return {
        "ActivationFunction": ACTIVATIONS,
        "WeightsFiller": FILLERS,
    }


def key_tables():
    """``{title: KeyTable}`` of the sections read against one table (no member to name)."""
    return {}


def summary(obj):
    """The first sentence of ``obj``'s docstring, on one line."""
    doc = inspect.getdoc(obj) or ""
    first = doc.split("\n\n")[0].replace("\n", " ").strip()
    return first


def format_default(key):
    """A key's default as the docs write it (bools as 0/1, as in an INI file)."""
    default = key.default
    if default is REQUIRED:
        return "required"
    if default is None:
        return "none"
    if isinstance(default, bool):
        return str(int(default))
    if isinstance(default, str):
        return f"``{default}``"
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def _key_rows(table):
    return [[f"``{k.name}``", k.kind.describe(), format_default(k), k.doc] for k in table]


def _list_table(header, rows):
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.extend(f"   {'*' if i == 0 else ' '} - {cell}".rstrip() for i, cell in enumerate(row))
    return lines


def render_registry(registry):
    """RST lines: a row per member (its docstring's first paragraph), then a row per key."""
    rows = []
    for name, member in registry.items():
        rows.append([f"``{name}``", "", "", "", summary(member)])
        rows.extend(["", *row] for row in _key_rows(member.key_table))
    return _list_table(["value", "key", "type", "default", "meaning"], rows)


def render_table(table):
    return _list_table(["key", "type", "default", "meaning"], _key_rows(table))


def blocks():
    """``{title: rendered RST lines}`` of every registry and key table."""
    rendered = {title: render_registry(r) for title, r in registries().items()}
    rendered.update({title: render_table(t) for title, t in key_tables().items()})
    return rendered


_BLOCK = re.compile(r"^\.\. begin-keys (?P<title>\S+)\n.*?^\.\. end-keys\n", re.DOTALL | re.MULTILINE)


def regenerate(text):
    """``(new text, titles found)``: every block of ``text`` rewritten from the tables."""
    rendered, found = blocks(), []

    def replace(match):
        title = match["title"]
        if title not in rendered:
            raise KeyError(f"no key table titled {title}; known: {', '.join(rendered)}")
        found.append(title)
        body = "\n".join(rendered[title])
        return f".. begin-keys {title}\n\n{body}\n\n.. end-keys\n"

    return _BLOCK.sub(replace, text), found


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m n2prune.reference", description=__doc__)
    parser.add_argument("file", help="an .rst file with begin-keys/end-keys blocks")
    parser.add_argument("--write", action="store_true", help="rewrite the file's blocks")
    args = parser.parse_args(argv)
    with open(args.file, encoding="utf-8") as f:
        text = f.read()
    new, found = regenerate(text)
    missing = sorted(set(blocks()) - set(found))
    if args.write:
        with open(args.file, "w", encoding="utf-8") as f:
            f.write(new)
    elif new != text:
        print(f"{args.file}: key tables differ from the code; run with --write", file=sys.stderr)
        return 1
    if missing:
        print(f"{args.file}: no block for {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
