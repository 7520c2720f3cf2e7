"""ini.templates: [name@file.tpl] sections expanded as N2D2 does, keys located in the template."""

import os
import re
from pathlib import Path

import pytest

from n2prune.errors import IniError
from n2prune.graph.builder import build_network
from n2prune.ini import load_ini, parse_ini_text

# A local N2D2 checkout (models/, tests/tests_data/), read in place.
N2D2_CHECKOUT = os.environ.get("N2D2_CHECKOUT")

BLOCK = """\
; a residual-like block
[{{SECTION_NAME}}_a]
Input={{IN}}
NbOutputs={{N}}
{% if SHORTCUT exists %}
[{{SECTION_NAME}}_proj]
Input={{IN}}
{% set IN %}{{SECTION_NAME}}_proj{% endset %}
{% endif %}
[{{SECTION_NAME}}_sum]
Input={{SECTION_NAME}}_a,{{IN}}
"""

MAIN = """\
$W=4
[first]
x=1
[b1@block.tpl]
IN=first
N=$(2 * ${W})
SHORTCUT=1
[b2@block.tpl]
IN=b1_sum
N=3
[last]
Input=b2_sum
"""


def write(folder, name, text):
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load(tmp_path, main=MAIN, template=BLOCK, overrides=()):
    write(tmp_path, "block.tpl", template)
    return load_ini(write(tmp_path, "m.ini", main), overrides)


def error(tmp_path, main=MAIN, template=BLOCK, overrides=()):
    with pytest.raises(IniError) as info:
        load(tmp_path, main, template, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def names(ini):
    return [section.name for section in ini.sections()]


# -- expansion ------------------------------------------------------------

def test_sections_follow_their_template_section_in_order(tmp_path):
    ini = load(tmp_path)
    assert names(ini) == ["first", "b1", "b1_a", "b1_proj", "b1_sum",
                          "b2", "b2_a", "b2_sum", "last"]


def test_section_keys_are_variables_evaluated_before_rendering(tmp_path):
    ini = load(tmp_path)
    assert ini.section("b1_a").raw("NbOutputs") == "8"  # $(2 * ${W}) evaluated first
    assert ini.value("b2_a", "NbOutputs") == "3"
    assert ini.value("b1_a", "Input") == "first"


def test_set_changes_the_variable_for_the_rest_of_the_template(tmp_path):
    ini = load(tmp_path)
    assert ini.value("b1_sum", "Input") == "b1_a,b1_proj"
    assert ini.value("b2_sum", "Input") == "b2_a,b1_sum"  # no SHORTCUT: IN unchanged


def test_keys_know_their_template_line_and_the_including_line(tmp_path):
    ini = load(tmp_path)
    tpl = tmp_path / "block.tpl"
    section = ini.section("b2_sum")
    assert (section.file, section.line) == (str(tpl), 10)
    via = f" (included from {tmp_path / 'm.ini'}:8 [b2@block.tpl])"
    assert section.where("Input") == f"{tpl}:11{via} [b2_sum] Input"
    assert ini.section("b1_proj").where("Input") == (
        f"{tpl}:7 (included from {tmp_path / 'm.ini'}:4 [b1@block.tpl]) [b1_proj] Input")
    assert ini.section("b1").where("IN") == f"{tmp_path / 'm.ini'}:5 [b1] IN"


def test_template_section_keys_read_by_the_template_are_used(tmp_path):
    main = MAIN.replace("N=3\n", "N=3\nUNREAD=1\n")
    ini = load(tmp_path, main)
    assert ini.is_used("b1", "IN") and ini.is_used("b1", "SHORTCUT")
    assert not ini.is_used("b2", "UNREAD")


def test_inherited_keys_and_builtin_variables(tmp_path):
    main = ("[base]\nK=7\n[blk@t.tpl] base\n")
    write(tmp_path, "t.tpl", "[out]\nk={{K}}\nname={{SECTION_NAME}}\nfile={{SECTION_FILE_NAME}}\n")
    ini = load_ini(write(tmp_path, "m.ini", main))
    assert ini.value("out", "k") == "7"
    assert ini.value("out", "name") == "blk"
    assert ini.value("out", "file") == str(tmp_path / "t.tpl")


@pytest.mark.parametrize("test, expected", [
    ("X exists", "yes"), ("Y exists", "no"), ("Y not_exists", "yes"),
    ("X == 1", "yes"), ("X != 1", "no"), ("X == 2", "no"),
])
def test_if_else(tmp_path, test, expected):
    template = f"[out]\n{{% if {test} %}}\nr=yes\n{{% else %}}\nr=no\n{{% endif %}}\n"
    write(tmp_path, "t.tpl", template)
    ini = load_ini(write(tmp_path, "m.ini", "[blk@t.tpl]\nX=1\n"))
    assert ini.value("out", "r") == expected


def test_else_is_tested_again_after_the_if_branch_ran(tmp_path):
    # N2D2 makes {% else %} a second if with the opposite test: once the first
    # branch has set the variable, the else branch runs too.
    template = ("[out]\n{% if V not_exists %}{% set V %}1{% endset %}a=1\n"
                "{% else %}b=1\n{% endif %}")
    write(tmp_path, "t.tpl", template)
    ini = load_ini(write(tmp_path, "m.ini", "[blk@t.tpl]\n"))
    assert ini.section("out").keys() == ["$PARENT_SECTION_NAME", "a", "b"]


def test_for_range_and_multiline_set_keep_lines(tmp_path):
    # {% set %} renders its text when reached, as N2D2: {{N}} is read there.
    template = ("{% set BODY %}\nk=1\nn={{N}}\n{% endset %}"
                "{% for i in range(1, N) %}\n[s{{i}}]\nw={{i}}\n{{BODY}}{% endfor %}\n")
    write(tmp_path, "t.tpl", template)
    ini = load_ini(write(tmp_path, "m.ini", "[blk@t.tpl]\nN=3\n"))
    assert names(ini) == ["blk", "s1", "s2"]
    assert (ini.value("s2", "w"), ini.value("s2", "n")) == ("2", "3")
    # Lines of a {{BODY}} are located where {{BODY}} is written.
    assert [ini.section("s2").entry(key).line for key in ("w", "k", "n")] == [6, 7, 7]
    assert ini.section("s2").line == 5


def test_include_is_read_from_the_working_directory(tmp_path, monkeypatch):
    write(tmp_path / "parts", "part.tpl", "[{{SECTION_NAME}}_p]\nv={{V}}\n")
    write(tmp_path, "t.tpl", "[x]\n{% include parts/part.tpl %}\n")
    monkeypatch.chdir(tmp_path)
    ini = load_ini(write(tmp_path, "m.ini", "[blk@t.tpl]\nV=5\n"))
    assert ini.value("blk_p", "v") == "5"
    assert ini.section("blk_p").file == "parts/part.tpl"


def test_lines_before_the_first_header_go_to_the_global_section(tmp_path):
    write(tmp_path, "t.tpl", "$G=9\n[out]\nv=${G}\n")
    ini = load_ini(write(tmp_path, "m.ini", "[blk@t.tpl]\n"))
    assert ini.global_section.raw("$G") == "9"
    assert ini.value("out", "v") == "9"


def test_template_comments_are_stripped_after_rendering(tmp_path):
    write(tmp_path, "t.tpl", "[out] ; {{SECTION_NAME}}\nv=1 ; x\n")
    ini = load_ini(write(tmp_path, "m.ini", "[blk@t.tpl]\n"))
    assert ini.value("out", "v") == "1"


# -- paths and nesting ----------------------------------------------------

def test_n2d2_models_variable_in_the_template_path(tmp_path, monkeypatch):
    write(tmp_path / "zoo", "t.tpl", "[out]\nv={{V}}\n")
    monkeypatch.setenv("N2D2_MODELS", str(tmp_path / "zoo"))
    ini = load_ini(write(tmp_path / "elsewhere", "m.ini", "[blk@${N2D2_MODELS}/t.tpl]\nV=2\n"))
    assert ini.value("out", "v") == "2"


def test_unset_n2d2_models_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("N2D2_MODELS", raising=False)
    path = write(tmp_path, "m.ini", "[a]\n[blk@${N2D2_MODELS}/t.tpl]\n")
    with pytest.raises(IniError) as info:
        load_ini(path)
    assert str(info.value) == (f"{path}:2 [blk@${{N2D2_MODELS}}/t.tpl]: environment variable "
                               "N2D2_MODELS is not set: set N2D2_MODELS to the folder of "
                               "N2D2's models/")


def test_relative_paths_come_from_the_top_ini_folder_also_when_nested(tmp_path, monkeypatch):
    # As N2D2: a template's own [x@file] is relative to the top INI file, not
    # to the template's folder.
    write(tmp_path / "t", "outer.tpl", "[{{SECTION_NAME}}_o]\n[inner@t/inner.tpl]\nV={{SECTION_NAME}}\n")
    write(tmp_path / "t", "inner.tpl", "[deep]\nv={{V}}\np=${PREV_SECTION_NAME}\n")
    monkeypatch.chdir(tmp_path / "t")
    ini = load_ini(write(tmp_path, "m.ini", "[blk@t/outer.tpl]\n"))
    assert names(ini) == ["blk", "blk_o", "inner", "deep"]
    assert ini.value("deep", "v") == "blk"
    # ${PREV_SECTION_NAME} skips the template's own section, as N2D2.
    assert ini.value("deep", "p") == "blk_o"
    assert ini.section("deep").where("v") == (
        f"{tmp_path / 't' / 'inner.tpl'}:2 (included from {tmp_path / 't' / 'outer.tpl'}:2 "
        f"[inner@t/inner.tpl], from {tmp_path / 'm.ini'}:1 [blk@t/outer.tpl]) [deep] v")


def test_set_overrides_reach_the_template(tmp_path):
    ini = load(tmp_path, overrides=["$W=10", "b2.N=5", "b2_a.Input=first"])
    assert ini.value("b1_a", "NbOutputs") == "20"
    assert ini.value("b2_a", "NbOutputs") == "5"
    assert ini.value("b2_a", "Input") == "first"
    assert ini.section("b2").origin("N") == ("--set", 2)


def test_dump_reads_back_as_the_same_sections(tmp_path):
    ini = load(tmp_path)
    again = parse_ini_text(ini.dumps(), "config.ini")
    assert names(again) == names(ini)
    assert again.value("b1_sum", "Input") == "b1_a,b1_proj"


def test_a_template_network_builds_and_errors_name_the_template(tmp_path):
    template = ("[{{SECTION_NAME}}_c]\nInput={{IN}}\nType=Conv\nKernelDims={{K}} {{K}}\n"
                "NbOutputs=4\n")
    main = ("[sp]\nSizeX=8\nSizeY=8\nNbChannels=2\n[blk@t.tpl]\nIN=sp\nK=3\n"
            "[fc]\nInput=blk_c\nType=Fc\nNbOutputs=3\n[fc.Target]\n")
    write(tmp_path, "t.tpl", template)
    network, _, _ = build_network(load_ini(write(tmp_path, "m.ini", main)), 0, 10)
    assert network.cell("blk_c").output_shape == (4, 6, 6)
    write(tmp_path, "m.ini", main.replace("K=3", "K=x"))
    with pytest.raises(IniError) as info:
        build_network(load_ini(tmp_path / "m.ini"), 0, 10)
    assert str(info.value).startswith(
        f"{tmp_path / 't.tpl'}:4 (included from {tmp_path / 'm.ini'}:5 [blk@t.tpl]) "
        "[blk_c] KernelDims")


# -- errors: one line, template file:line and the including line ----------

def via(tmp_path, line):
    return f" (included from {tmp_path / 'm.ini'}:{line} [blk@block.tpl])"


@pytest.mark.parametrize("template, line, message", [
    ("[a]\n{% fi X exists %}\n", 2, "unknown template directive {% fi %} (known: "),
    ("[a]\n\n{% if X exists %}\nv=1\n", 3, "{% if %} is never closed by {% endif %}"),
    ("[a]\n{% set X %}\nv=1\n", 2, "{% set %} is never closed by {% endset %}"),
    ("[a]\nv=1\n{% endif %}\n", 3, "{% endif %} without an open {% if %}"),
    ("[a]\n{% if X is 1 %}{% endif %}\n", 2, "write {% if VAR exists %}"),
    ("[a]\nv={{X\n", 2, "'{{' without a closing '}}'"),
    ("[a]\n{% if X\n", 2, "'{%' without a closing '%}'"),
    ("[a]\nv={{NN}}\n", 2, "undefined template variable 'NN'; did you mean N? defined: N, "),
    ("[a]\n{% block B %}\n", 2, "{% block %} is not supported"),
    ("[a]\nno equal sign\n", 2, "missing '=' (no value)"),
    ("[{{SECTION_NAME}}_x@block.tpl]\nN=1\n", 1, "include loop: "),
])
def test_template_errors_name_the_template_line_and_the_including_line(
        tmp_path, template, line, message):
    main = "[a0]\n[blk@block.tpl]\nN=1\n"
    found = error(tmp_path, main, template)
    assert found.startswith(f"{tmp_path / 'block.tpl'}:{line}{via(tmp_path, 2)}")
    assert message in found


def test_missing_template_file_is_blamed_on_the_including_line(tmp_path):
    path = write(tmp_path, "m.ini", "[a]\n[blk@nowhere.tpl]\n")
    with pytest.raises(IniError) as info:
        load_ini(path)
    assert str(info.value) == (f"{path}:2 [blk@nowhere.tpl]: cannot read template file "
                               f"{tmp_path / 'nowhere.tpl'}: No such file or directory")


def test_duplicate_section_from_a_template_names_both_places(tmp_path):
    found = error(tmp_path, "[blk_a]\n[blk@block.tpl]\nIN=x\nN=1\n")
    assert found == (f"{tmp_path / 'block.tpl'}:2{via(tmp_path, 2)}: section [blk_a] "
                     "already exists (line 1)")


@pytest.mark.parametrize("header", ["[a@b@c.tpl]", "[@x.tpl]"])
def test_malformed_template_header(tmp_path, header):
    found = error(tmp_path, f"{header}\n")
    assert found == f"{tmp_path / 'm.ini'}:1: malformed template section {header}: " \
                    "write [name@file.tpl]"


def test_key_named_like_a_builtin_variable(tmp_path):
    found = error(tmp_path, "[blk@block.tpl]\nSECTION_NAME=x\n")
    assert found == (f"{tmp_path / 'm.ini'}:2 [blk] SECTION_NAME: SECTION_NAME is set by "
                     "the template itself; rename this key")


# -- N2D2's own files -----------------------------------------------------

@pytest.mark.skipif(not N2D2_CHECKOUT, reason="set N2D2_CHECKOUT to a checkout of N2D2")
def test_n2d2_model_files_with_templates_expand(monkeypatch):
    root = Path(N2D2_CHECKOUT)
    monkeypatch.setenv("N2D2_MODELS", str(root / "models"))
    files = [path for path in sorted(root.glob("models/*.ini")) + sorted(
        root.glob("tests/tests_data/**/*.ini"))
        if re.search(r"^\[[^]\n]*@", path.read_text(errors="replace"), re.MULTILINE)]
    expanded = {}
    for path in files:
        ini = load_ini(path)
        written = [s for s in ini.sections() if s.file.endswith(".tpl")]
        expanded[path.relative_to(root).as_posix()] = len(written)
        assert all("(included from " in s.location for s in written)
    assert expanded.get("models/ResNet-18.ini"), expanded
    assert min(expanded.values()) > 0, expanded
    ini = load_ini(root / "models" / "ResNet-18.ini")
    blocks = [f"conv{stage}.{block}" for stage in (2, 3, 4, 5) for block in (1, 2)]
    for block in blocks:
        assert ini.has_section(f"{block}_3x3_1") and ini.has_section(f"{block}_sum")
        assert ini.has_section(f"{block}_1x1_proj") == block.endswith(".1")
    assert ini.value("conv3.1_sum", "Input") == "conv3.1_3x3_2,conv3.1_1x1_proj"
    assert ini.value("conv3.2_sum", "Input") == "conv3.2_3x3_2,conv3.1_sum"
    assert ini.value("conv5.2_3x3_1", "NbOutputs") == "512"
