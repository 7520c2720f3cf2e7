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
from n2prune.cells.registry import CELL_TYPES
from n2prune.data.mnist import DATABASES
from n2prune.data.transforms import TRANSFORMATIONS
from n2prune.graph import cell_keys
from n2prune.graph.onnx_section import ONNX_KEYS
from n2prune.graph.stimuli import PROVIDER_KEYS
from n2prune.graph.stimuli_data import STIMULI_DATA_KEYS
from n2prune.graph.targets import TARGETS
from n2prune.prune.criteria import CRITERIA
from n2prune.prune.mask_methods import PRUNING_FILLERS
from n2prune.prune.pattern_base import PATTERNS
from n2prune.prune.prune_keys import PRUNE_KEYS
from n2prune.prune.schedules import SCHEDULES
from n2prune.registry import REQUIRED
from n2prune.solvers.lr_policy import LR_POLICIES
from n2prune.solvers.sgd import SOLVERS


def registries():
    """``{title: Registry}`` of every family whose members a user names in an INI file.

    Cell types get a block each (``cell-Conv``...), not one table.
    """
    return {
        "ActivationFunction": ACTIVATIONS,
        "WeightsFiller": FILLERS,
        "cell-types": CELL_TYPES,
        "databases": DATABASES,
        "transformations": TRANSFORMATIONS,
        "targets": TARGETS,
        "solvers": SOLVERS,
        "LearningRatePolicy": LR_POLICIES,
        "QWeight.PruningFiller": PRUNING_FILLERS,
        "QWeight.Pattern": PATTERNS,
        "QWeight.Criterion": CRITERIA,
        "QWeight.Schedule": SCHEDULES,
    }


def key_tables():
    """``{title: KeyTable}`` of the sections read against one table (no member to name)."""
    return {"sp": PROVIDER_KEYS, "sp.StimuliData": STIMULI_DATA_KEYS, "QWeight=Prune": PRUNE_KEYS,
            "Type=ONNX": ONNX_KEYS}


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
        return f"``{default}``" if default else "empty"  # ```` is not valid RST
    if isinstance(default, float):
        return f"{default:g}"
    if key.kind.name == "dims":
        return format_dims(default)
    return str(default)


def format_dims(value):
    """An ``(h, w)`` pair as the INI writes it: ``W H``."""
    return " ".join(str(v) for v in reversed(value))


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


def render_cell(cls):
    """RST lines of a cell type: its keys, then the N2D2 keys it reads without a setting."""
    rows = _key_rows(cls.key_table)
    for table in (cell_keys.UNSUPPORTED, cell_keys.UNSUPPORTED_PARAMETERS):
        for entry in cell_keys.unsupported(table, cls):
            rows.append([f"``{entry.name}``", entry.kind.describe(), _accepted(entry), entry.doc])
    return _list_table(["key", "type", "default", "meaning"], rows)


def _accepted(entry):
    """What an unsupported key accepts: any value, or only N2D2's default."""
    if entry.accepted is None:
        return "any"
    shown = [format_dims(v) if entry.kind.name == "dims" else str(int(v)) if isinstance(v, bool)
             else str(v) for v in entry.accepted]
    return "only " + ", ".join(shown) if shown else "refused"


def blocks():
    """``{title: rendered RST lines}`` of every registry and key table."""
    # A family without keys (learning-rate policies...) is documented in prose;
    # test_key_tables checks its names are.
    rendered = {title: render_registry(r) for title, r in registries().items()
                if r is not CELL_TYPES and any(len(m.key_table) for m in r.values())}
    rendered.update({f"cell-{name}": render_cell(cls) for name, cls in CELL_TYPES.items()})
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
    new, _found = regenerate(text)
    if args.write:
        with open(args.file, "w", encoding="utf-8") as f:
            f.write(new)
    elif new != text:
        print(f"{args.file}: key tables differ from the code; run with --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
