"""The package's import edges: one way, as docs/architecture.rst draws them."""

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "n2prune"
DOC = ROOT / "docs" / "architecture.rst"
# Modules that may not read INI text: everything below graph/, and what sits beside it.
NO_INI = ("cells", "kernels", "prune", "solvers", "data", "io", "registry", "errors")


def unit(path):
    """The package (``cells``) or top-level module (``registry``) a file belongs to."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def is_unit(name):
    """True for a package or module of n2prune (not a name ``n2prune/__init__.py`` defines)."""
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").exists()


def imported(path):
    """Dotted names of what ``path`` imports (``n2prune.x.y`` or third-party)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "n2prune":
                yield from (f"n2prune.{alias.name}" for alias in node.names)
            else:
                yield node.module


def package_edges():
    """``{unit: {units it imports}}`` over the package (module-level and deferred imports)."""
    edges = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        for name in imported(path):
            parts = name.split(".")
            if parts[0] == "n2prune" and len(parts) > 1 and parts[1] != unit(path):
                edges[unit(path)].add(parts[1] if is_unit(parts[1]) else "__init__")
    return edges


def documented_edges():
    block = re.search(r"^\.\. begin-edges\n(.*?)^\.\. end-edges", DOC.read_text(encoding="utf-8"),
                      re.DOTALL | re.MULTILINE)
    assert block, "docs/architecture.rst needs a begin-edges/end-edges block"
    edges = {}
    for line in block[1].splitlines():
        if "->" in line:
            source, targets = (part.strip() for part in line.split("->"))
            edges[source] = {t.strip() for t in targets.split(",")}
    return edges


def test_the_documented_edges_are_the_real_ones():
    real = {source: targets for source, targets in package_edges().items() if source != "__main__"}
    assert documented_edges() == real


def test_no_cycle_between_packages():
    edges = package_edges()

    def reaches(start, goal, seen=()):
        return any(t == goal or (t not in seen and reaches(t, goal, seen + (t,)))
                   for t in edges.get(start, ()))

    assert not [u for u in edges if reaches(u, u)]


def test_ini_and_numba_stay_in_their_layers():
    for path in PACKAGE.rglob("*.py"):
        names = set(imported(path))
        if unit(path) in NO_INI:
            assert not {n for n in names if n.startswith("n2prune.ini")}, path
        if unit(path) != "kernels":
            assert "numba" not in {n.split(".")[0] for n in names}, path
