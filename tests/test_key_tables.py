"""Every key table: declared once, bound to its constructor, and documented from the code."""

import importlib
import pkgutil
from pathlib import Path

import pytest

import n2prune
from n2prune import reference
from n2prune.registry import FLOAT, Key, Registry, signature_parameters

DOCS = Path(__file__).resolve().parents[1] / "docs" / "ini-reference.rst"


def package_registries():
    """Every ``Registry`` a module of the package defines at top level."""
    found = {}
    for info in pkgutil.walk_packages(n2prune.__path__, "n2prune."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, Registry):
                found[id(value)] = (f"{info.name}.{name}", value)
    return list(found.values())


def every_table():
    """(label, KeyTable) of every registered member and every standalone table."""
    tables = [(f"{label}[{name}]", member.key_table)
              for label, registry in package_registries() for name, member in registry.items()]
    tables += list(reference.key_tables().items())
    return tables


def test_every_registry_is_in_the_reference():
    listed = {id(r) for r in reference.registries().values()}
    missing = [label for label, registry in package_registries() if id(registry) not in listed]
    assert not missing


@pytest.mark.parametrize("label, table", every_table(), ids=lambda v: v if isinstance(v, str) else "")
def test_each_default_is_written_once(label, table):
    for key in table:
        with_default = [source for source in table.sources
                        if key.attr in signature_parameters(source)
                        and signature_parameters(source)[key.attr].default is not
                        signature_parameters(source)[key.attr].empty]
        assert len(with_default) <= 1, f"{label} {key.name}: default in {with_default}"
        assert key.doc and "\n" not in key.doc, f"{label} {key.name} needs a one-line doc"


def test_the_reference_is_generated_from_the_tables():
    text = DOCS.read_text(encoding="utf-8")
    _regenerated, found = reference.regenerate(text)
    assert sorted(found) == sorted(reference.blocks()), "a table has no block in the docs"


@pytest.mark.parametrize("page", sorted(DOCS.parent.glob("*.rst")), ids=lambda p: p.name)
def test_every_generated_block_is_current(page):
    text = page.read_text(encoding="utf-8")
    regenerated, _found = reference.regenerate(text)
    assert regenerated == text, f"run: python -m n2prune.reference docs/{page.name} --write"


def test_every_registered_name_is_documented():
    text = "".join(path.read_text(encoding="utf-8") for path in DOCS.parent.glob("*.rst"))
    missing = [f"{label}: {name}" for label, registry in package_registries()
               for name in registry if f"``{name}``" not in text]
    assert not missing


def test_a_key_naming_no_parameter_is_refused_at_registration():
    family = Registry("Thing")

    class Thing:
        def __init__(self, size=1):
            self.size = size

    with pytest.raises(TypeError, match="no parameter 'width'"):
        family.register("Thing", Key("Width", "width", FLOAT, "the width"))(Thing)
    assert "Thing" not in family


def test_the_default_is_the_constructors():
    family = Registry("Thing")

    @family.register("Thing", Key("Size", "size", FLOAT, "the size"), Key("Name", "name", FLOAT, "n"))
    class Thing:
        def __init__(self, name, size=2.5):
            self.size = size

    assert Thing.key_table["Size"].default == 2.5
    assert Thing.key_table["Name"].required
    assert Thing.key_table.defaults() == {"size": 2.5}
