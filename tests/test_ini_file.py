"""IniFile: sections, inheritance, evaluation, overrides, used keys, dump, real N2D2 files."""

import logging
import os
import time
from pathlib import Path

import pytest
from paths import N2D2_MODEL_FILES, N2D2_MODELS

from n2prune.errors import IniError
from n2prune.ini import (
    MISSING,
    IniFile,
    Section,
    expand_env_path,
    load_ini,
    parse_ini_text,
    values,
)

MODELS = N2D2_MODELS


def ini_of(text, overrides=()):
    return parse_ini_text(text, path="t.ini", overrides=overrides)


# -- structure ------------------------------------------------------------

def test_sections_in_file_order_and_global_section():
    ini = ini_of("$V=1\nDefaultModel=Frame\n[a]\nx=1\n[b.c]\n")
    assert isinstance(ini, IniFile)
    assert [s.name for s in ini.sections()] == ["a", "b.c"]
    assert isinstance(ini.sections()[0], Section)
    assert ini.global_section.name == "" and ini.global_section.keys() == ["$V", "DefaultModel"]
    assert ini.has_section("b.c") and not ini.has_section("B.c")
    assert ini.path == Path("t.ini")
    sec = ini.section("a")
    assert (sec.name, sec.parents, sec.file, sec.line) == ("a", [], "t.ini", 3)


def test_unknown_section_suggests_close_name():
    ini = ini_of("[conv1]\n[pool1]\n")
    with pytest.raises(IniError, match=r"^t\.ini: unknown section \[conv2\]; did you mean \[conv1\]\?$"):
        ini.section("conv2")


def test_duplicate_section_is_an_error():
    with pytest.raises(IniError, match=r"^t\.ini:3: section \[a\] already exists \(line 1\)"):
        ini_of("[a]\n[b]\n[a]\n")


def test_parent_must_be_defined_earlier():
    with pytest.raises(IniError, match=r"^t\.ini:1: \[child\] inherits from \[base\], which is not defined"):
        ini_of("[child] base\nx=1\n[base]\ny=2\n")


def test_inheritance_first_parent_wins_and_child_overrides():
    ini = ini_of("[p1]\nA=1\nB=1\n[p2]\nB=2\nC=2\n[child] p1 p2\nC=3\nD=3\n")
    child = ini.section("child")
    assert child.parents == ["p1", "p2"]
    assert child.keys() == ["A", "B", "C", "D"]
    assert [ini.value("child", k) for k in "ABCD"] == ["1", "1", "3", "3"]
    assert child.origin("B") == ("t.ini", 3) and child.origin("C") == ("t.ini", 8)
    assert child.has("A") and not ini.section("p1").has("C")
    assert ini.warnings == []


def test_duplicate_key_warns_and_last_wins(caplog):
    with caplog.at_level(logging.WARNING, logger="n2prune.ini"):
        ini = ini_of("[s]\nk=1\nk=2\n")
    assert ini.value("s", "k") == "2"
    assert ini.section("s").origin("k") == ("t.ini", 3)
    assert len(ini.warnings) == 1 and ini.warnings[0].startswith("t.ini:3 [s] k: overriding property")
    assert ini.warnings[0] in caplog.text


def test_quotes_stripped_and_case_sensitive_keys():
    ini = ini_of('[s]\nName="a ; b"\nname=x\n')
    assert ini.value("s", "Name") == "a ; b" and ini.value("s", "name") == "x"


def test_where_and_raw():
    ini = ini_of("[s]\n\nKey=[s]Other\nOther=3\n")
    assert ini.where("s", "Key") == "t.ini:3 [s] Key"
    assert ini.where("s", "Absent") == "t.ini:1 [s] Absent"
    assert ini.section("s").raw("Key") == "[s]Other"
    with pytest.raises(IniError, match=r"^t\.ini:1 \[s\] Nope: no such key"):
        ini.section("s").raw("Nope")


# -- evaluation -----------------------------------------------------------

def test_section_references_are_replaced_recursively():
    ini = ini_of("[sp]\nSizeX=32\n[t]\nW=[sp]SizeX\n[u]\nPool=[t]W [sp]SizeX\n")
    assert ini.value("u", "Pool") == "32 32"


def test_brackets_not_naming_a_section_are_left_verbatim():
    ini = ini_of("[s]\nA=[nosuch]X and [1 2]\n")
    assert ini.value("s", "A") == "[nosuch]X and [1 2]"


def test_reference_to_missing_key_names_both_places():
    ini = ini_of("[sp]\nSizeX=32\n[t]\nW=[sp]Missing\n")
    with pytest.raises(IniError) as info:
        ini.value("t", "W")
    message = str(info.value)
    assert message.startswith("t.ini:4 [t] W: [sp]Missing: section [sp] (t.ini:1)")
    assert "\n" not in message


def test_variables_section_then_global_and_unknown_verbatim():
    text = "$SIZE=24\n$M=${SIZE}\n[s]\n$SIZE=8\nA=${SIZE} ${M} ${NOPE}\n[t]\nB=${SIZE}\n"
    ini = ini_of(text)
    assert ini.value("s", "A") == "8 8 ${NOPE}"
    assert ini.value("t", "B") == "24"


def test_dollar_without_braces_is_not_substituted():
    assert ini_of("$X=1\n[s]\nA=$X\n").value("s", "A") == "$X"


def test_builtin_section_names():
    ini = ini_of("[first]\nP=${PREV_SECTION_NAME}\n[b]\nN=${SECTION_NAME}\nP=${PREV_SECTION_NAME}\n")
    assert ini.value("b", "N") == "b"
    assert ini.value("b", "P") == "first"
    assert ini.value("first", "P") == ""


def test_expressions_after_refs_and_variables():
    text = "$SIZE=24\n$MARGIN=4\n$ALPHA=0.75\n[sp]\nN=100\n[c]\nA=$(${SIZE} + ${MARGIN})\n" \
           "B=$(int(64 * ${ALPHA}))\nC=$([sp]N * 40)\nD=x $((1 + 2) * 2) y $(1/4)\n"
    ini = ini_of(text)
    assert [ini.value("c", k) for k in "ABCD"] == ["28", "48", "4000", "x 6 y 0.25"]


def test_unbalanced_expression_is_left_verbatim():
    assert ini_of("[s]\nA=$(1 + (2)\n").value("s", "A") == "$(1 + (2)"


def test_expression_refusals_carry_file_line(tmp_path):
    target = tmp_path / "pwned_xyz"
    ini = ini_of(f"[s]\nA=$(__import__('os').system('touch {target}'))\n"
                 "B=$(x + 1)\nC=$((1).real)\nD=$(open('f'))\n")
    for key, line in [("A", 2), ("B", 3), ("C", 4), ("D", 5)]:
        with pytest.raises(IniError, match=rf"^t\.ini:{line} \[s\] {key}: `\$\(.*\)` may only "
                                           "contain arithmetic: "):
            ini.value("s", key)
    assert not target.exists()


def test_self_reference_is_an_error_not_a_hang():
    ini = ini_of("$A=${B}\n$B=${A}\n[s]\nX=[s]Y\nY=[s]X\nZ=${A}\nW=[s]W\n")
    for key in "XZW":
        with pytest.raises(IniError, match="self-referencing value"):
            ini.value("s", key)


def test_exponential_reference_fanout_is_capped():
    lines = ["[s]", "K0=xxxxxxxxxx"] + [f"K{i}=[s]K{i - 1} [s]K{i - 1}" for i in range(1, 40)]
    ini = ini_of("\n".join(lines))
    with pytest.raises(IniError, match="value grows beyond"):
        ini.value("s", "K39")



def test_deep_reference_chain_is_an_error_not_a_recursion_error():
    lines = ["[s]"] + [f"K{i}=[s]K{i + 1}" for i in range(3000)] + ["K3000=1"]
    with pytest.raises(IniError, match=r"^t\.ini:\d+ \[s\] K\d+: references nested more than"):
        ini_of("\n".join(lines)).value("s", "K0")
    assert ini_of("[s]\nA=[s]B\nB=[s]C\nC=1\n").value("s", "A") == "1"


@pytest.mark.parametrize("body", [
    "[x" * 100_000 + "]",                      # one "]" after many "[": was rescanned per "["
    "$(1)" * 50_000,                           # was rebuilt per replacement
    "[s]A ${V} $(2 * ${V}) " * 10_000,
    "${U}" * 50_000,                           # unknown variables stay verbatim
    "$(" + "(" * 100_000 + "1" + ")" * 100_000,  # one expression: refused (too long), fast
], ids=["brackets", "expressions", "mixed", "unknown-variables", "one-long-expression"])
def test_long_values_evaluate_in_linear_time(body):
    assert len(body) >= 200_000
    ini = ini_of("[s]\nA=2\n$V=3\nK=" + body + "\n")
    start = time.perf_counter()
    try:
        ini.value("s", "K")
    except IniError as error:
        assert "too long" in str(error)
    # Generous: about 0.1-0.3 s here; the quadratic evaluation took 1.3-4 s.
    assert time.perf_counter() - start < 1.0

# -- typed reads and used keys ---------------------------------------------

def test_read_typed_default_and_missing():
    ini = ini_of("[s]\nN=1,000\nBad=six\n")
    assert ini.read("s", "N", values.as_int) == 1000
    assert ini.read("s", "Absent", values.as_int, default=7) == 7
    assert ini.read("s", "Absent", values.as_int, None) is None
    with pytest.raises(IniError, match=r"^t\.ini:1 \[s\] Absent: missing required key$"):
        ini.read("s", "Absent", values.as_int)
    with pytest.raises(IniError, match=r"^t\.ini:1 \[s\] Absent: missing required key$"):
        ini.value("s", "Absent")
    with pytest.raises(IniError, match=r"^t\.ini:3 \[s\] Bad: expected an integer, got 'six'$"):
        ini.read("s", "Bad", values.as_int, MISSING)


@pytest.mark.parametrize("value, reader, message", [
    ("1.5", values.as_int, "expected an integer"),
    ("x", values.as_float, "expected a number"),
    ("true", values.as_bool, "expected 0 or 1"),
    ("max", values.enum("Max", "Average"), "expected one of Max, Average"),
    ("5 x", values.vector(values.as_uint), "item 2"),
])
def test_bad_typed_values_give_one_line_errors(value, reader, message):
    ini = ini_of(f"[s]\nK={value}\n")
    with pytest.raises(IniError, match=rf"^t\.ini:2 \[s\] K: {message}"):
        ini.read("s", "K", reader)


def test_used_tracking_and_unused_keys_in_file_order():
    ini = ini_of("$V=1\nDefaultModel=F\n[base]\nA=1\nB=2\n[c] base\nC=3\nD=4\n[d]\nE=5\n")
    ini.read("c", "A", values.as_int)
    ini.value("c", "D")
    ini.mark_used("d", "E")
    assert ini.is_used("c", "A") and ini.is_used("base", "A") and not ini.is_used("c", "B")
    assert ini.is_used("", "$V") and not ini.is_used("d", "Nope")
    unused = [(s.name, k) for s, k in ini.unused_keys()]
    assert unused == [("", "DefaultModel"), ("base", "B"), ("c", "C")]


def test_inject_generator_keys_readable_never_unused():
    ini = ini_of("[sp]\nBatchSize=8\n[conv]\nStep=[sp]_EpochSize\nS=$([sp]_EpochSize * 2)\n")
    with pytest.raises(IniError, match="has no key '_EpochSize'"):
        ini.value("conv", "Step")
    ini.inject("sp", "_EpochSize", 48000)
    ini.inject("conv", "_Flag", True)
    assert ini.value("conv", "Step") == "48000" and ini.value("conv", "S") == "96000"
    assert ini.value("conv", "_Flag") == "1"
    sp_keys = ini.section("sp").keys()
    assert "_EpochSize" not in sp_keys and not ini.section("sp").has("_EpochSize")
    assert ("sp", "_EpochSize") not in [(s.name, k) for s, k in ini.unused_keys()]


# -- overrides ------------------------------------------------------------

def test_overrides_split_at_longest_section_name():
    text = "Top=1\n[sp]\nA=1\n[sp.Transformation_1]\nWidth=2\n[conv1]\nQWeight.Threshold=0.2\n"
    sets = ["sp.Transformation_1.Width=5", "conv1.QWeight.Threshold=0.3", "Top=2",
            ".Dotted.Key=3", "sp.New=\"a b\""]
    ini = ini_of(text, overrides=sets)
    assert ini.value("sp.Transformation_1", "Width") == "5"
    assert ini.value("conv1", "QWeight.Threshold") == "0.3"
    assert ini.value("", "Top") == "2" and ini.value("", "Dotted.Key") == "3"
    assert ini.value("sp", "New") == "a b"
    assert ini.section("conv1").origin("QWeight.Threshold") == ("--set", 2)
    assert ini.where("conv1", "QWeight.Threshold") == "--set:2 [conv1] QWeight.Threshold"
    assert ini.section("conv1").keys() == ["QWeight.Threshold"]


def test_override_on_parent_reaches_children():
    ini = ini_of("[base]\nK=1\n[c] base\n", overrides=["base.K=9"])
    assert ini.value("c", "K") == "9"


def test_override_errors():
    with pytest.raises(IniError, match=r"^--set: 'conv9\.K=1': unknown section \[conv9\]; "
                                       r"close names: \[conv1\]"):
        ini_of("[conv1]\n", overrides=["conv9.K=1"])
    with pytest.raises(IniError, match="expected section.Key=value"):
        ini_of("[conv1]\n", overrides=["conv1.K"])


# -- helpers --------------------------------------------------------------

def test_expand_env_path(tmp_path, monkeypatch):
    monkeypatch.setenv("N2PRUNE_TEST_DATA", "/data/x")
    monkeypatch.delenv("N2PRUNE_UNSET_VAR", raising=False)
    assert expand_env_path("${N2PRUNE_TEST_DATA}/mnist", tmp_path) == Path("/data/x/mnist")
    assert expand_env_path("$N2PRUNE_TEST_DATA/m", None) == Path("/data/x/m")
    assert expand_env_path("${N2PRUNE_UNSET_VAR}rel/db", tmp_path) == tmp_path / "rel/db"
    assert expand_env_path("~/db", tmp_path) == Path(os.path.expanduser("~")) / "db"


def test_env_vars_are_not_expanded_in_general_values(monkeypatch):
    monkeypatch.setenv("N2PRUNE_TEST_VAR", "oops")
    assert ini_of("[s]\nA=${N2PRUNE_TEST_VAR}\n").value("s", "A") == "${N2PRUNE_TEST_VAR}"


# -- dump -----------------------------------------------------------------

def _all_values(ini):
    result = {}
    for section in [ini.global_section] + ini.sections():
        keys = section.keys()
        for key in keys:
            try:
                result[section.name, key] = ini.value(section.name, key)
            except IniError:
                result[section.name, key] = "<error>"
    return result


def test_dumps_quotes_what_needs_it_and_flattens():
    text = '$X=2\n[base]\nA=$(${X} * 3)\n[c] base\nB="a ; b"\nC="  pad"\nD=x\\ \nE=[sp]_Gen\n'
    ini = ini_of(text)
    dumped = ini.dumps()
    assert "[c]\nA=6\nB=\"a ; b\"\nC=\"  pad\"\n" in dumped
    assert "E=[sp]_Gen" in dumped
    again = ini_of(dumped)
    assert _all_values(again) == _all_values(ini)
    assert again.section("c").parents == []
    assert "A=$(${X} * 3)" in ini.dumps(resolved=False)


@pytest.mark.n2d2_models
@pytest.mark.parametrize("name", N2D2_MODEL_FILES)
def test_real_files_load_and_dump_round_trip(name):
    ini = load_ini(MODELS / name)
    assert ini.sections() and ini.warnings == []
    again = parse_ini_text(ini.dumps(), path="dumped.ini")
    assert [s.name for s in again.sections()] == [s.name for s in ini.sections()]
    assert _all_values(again) == _all_values(ini)


# -- real N2D2 files ------------------------------------------------------

@pytest.mark.n2d2_models
def test_lenet_mapping_continuation_and_refs():
    ini = load_ini(MODELS / "LeNet.ini")
    mapping = ini.read("conv2", "Mapping(pool1)", values.vector(values.as_uint))
    assert len(mapping) == 96 and mapping[:7] == [1, 0, 0, 0, 1, 1, 1] and mapping[-3:] == [1, 1, 1]
    assert ini.where("conv2", "Mapping(pool1)").endswith("LeNet.ini:65 [conv2] Mapping(pool1)")
    assert ini.read("pool2", "NbOutputs", values.as_uint) == 16
    assert ini.value("sp.Transformation_1", "Width") == "32"
    assert ini.value("database", "Validation") == "0.2"
    ini.inject("sp", "_EpochSize", 48000)
    assert ini.read("common.config", "Solvers.LearningRateStepSize", values.as_uint) == 48000


@pytest.mark.n2d2_models
def test_lenet_quant_variables_and_inheritance():
    ini = load_ini(MODELS / "LeNet_quant.ini")
    assert ini.read("sp.config", "QuantizationLevels", values.as_int) == 8
    conv1 = ini.section("conv1")
    assert conv1.parents == ["quant"]
    assert ini.value("conv1", "ActivationFunction.QuantizationLevels") == "8"
    assert ini.section("fc2").parents == []
    assert not ini.section("fc2").has("ActivationFunction.QuantizationLevels")


@pytest.mark.n2d2_models
def test_lenet_spike_thousands_separators():
    ini = load_ini(MODELS / "LeNet_Spike.ini")
    assert ini.read("env.config", "PeriodMin", values.as_int) == 1_000_000
    # A 64-bit Time_T in N2D2: beyond the 32-bit keys n2prune reads, so only the text.
    assert ini.value("env.config", "PeriodMeanMax") == "100,000,000,000"


@pytest.mark.n2d2_models
def test_lenet_bn_sat_parent_without_space():
    ini = load_ini(MODELS / "tests_mnist_model_LeNet-bn-SAT.ini")
    assert ini.section("bn3").parents == ["Bn_def"]
    assert ini.value("bn3", "Type") == "BatchNorm"
    assert ini.read("bn3", "NbOutputs", values.as_uint) == 120
    assert ini.value("conv1", "QWeight.Range") == "255" and ini.value("conv2", "QWeight.Range") == "15"


def test_an_integer_key_whose_expression_prints_a_decimal_reads_the_floored_quotient(caplog):
    """N2D2's model files divide with ``/`` for integer keys, written for Python 2
    (``$([sp]_EpochSize * 90 / 256)``); a decimal written as such stays an error."""
    ini = ini_of("[s]\nA=$(1281167 * 90 / 256)\nB=450410.4\nC=$(-7 / 2)\n")
    with caplog.at_level(logging.INFO, logger="n2prune"):
        assert ini.read("s", "A", values.as_uint) == 450410
    assert "t.ini:2 [s] A: $(...) gave 450410.2734375; read as 450410" in caplog.text and "Python 2" in caplog.text
    assert ini.read("s", "C", values.as_int) == -4  # floored, as Python 2's -7 / 2
    with pytest.raises(IniError, match=r"^t.ini:3 \[s\] B: expected an integer"):
        ini.read("s", "B", values.as_uint)
    with pytest.raises(IniError, match=r"^t.ini:4 \[s\] C: expected a non-negative integer"):
        ini.read("s", "C", values.as_uint)  # -4 is no unsigned value
