"""Line handling and raw parsing, following N2D2's IniParser::load (spec §1.1)."""

import pytest

from n2prune.errors import IniError
from n2prune.ini.lexer import (
    lex,
    logical_lines,
    parse_header,
    parse_property,
    strip_comment,
)


def test_continuation_joins_lines_and_reports_first_line():
    text = "a=1 \\\n2 \\\n3\nb=4"
    assert list(logical_lines(text)) == [(1, "a=1 2 3"), (4, "b=4")]


def test_continuation_needs_backslash_as_last_raw_char():
    # A space or a CRLF's \r after the backslash disables continuation.
    assert list(logical_lines("a=1 \\ \nb=2")) == [(1, "a=1 \\ "), (2, "b=2")]
    assert list(logical_lines("a=1\\\r\nb=2")) == [(1, "a=1\\\r"), (2, "b=2")]


def test_continuation_pending_at_end_of_file_is_kept():
    assert list(logical_lines("a=1\\")) == [(1, "a=1")]


def test_bom_is_dropped_at_the_start_of_any_line():
    assert list(logical_lines("\ufeffa=1\n\ufeffb=2")) == [(1, "a=1"), (2, "b=2")]


def test_continuation_happens_before_comment_stripping():
    # The backslash ending a comment line swallows the next line into the comment.
    sections = lex("x=1 ; note \\\ny=2\nz=3", "f.ini")
    assert [(e.key, e.value, e.line) for e in sections[0].entries] == [("x", "1", 1), ("z", "3", 3)]


def test_comments_cut_outside_double_quotes_only():
    assert strip_comment('a="x;y#z" ; c', "f:1") == 'a="x;y#z" '
    assert strip_comment("a=1 # c ; d", "f:1") == "a=1 "
    assert strip_comment('a=b"c"d', "f:1") == 'a=b"c"d'


def test_unterminated_quote_is_an_error_with_file_and_line():
    with pytest.raises(IniError, match=r'^f\.ini:3: unterminated double quote'):
        lex('[s]\nx=1\ny="abc ; d\n', "f.ini")


def test_header_parents_with_or_without_space():
    assert parse_header("[child] p1 p2", "f:1") == ("child", ["p1", "p2"])
    assert parse_header("[bn3]Bn_def", "f:1") == ("bn3", ["Bn_def"])
    assert parse_header("[ a.b(c) ]", "f:1") == (" a.b(c) ", [])


def test_comment_after_header_is_not_a_parent():
    sections = lex("[quant]\n[fc2] ; quant\nx=1", "f.ini")
    assert sections[2].name == "fc2" and sections[2].parents == []


def test_template_section_keeps_its_file_in_the_name():
    # Expanded by n2prune.ini.templates, not by the lexer.
    sections = lex("x=1\n[block@res.ini.tpl] base\n", "m.ini")
    assert (sections[1].name, sections[1].parents) == ("block@res.ini.tpl", ["base"])


def test_property_split_trim_and_quotes():
    assert parse_property("Key = a = b", "f:1") == ("Key", "a = b")
    assert parse_property('Key="  spaced ; kept "', "f:1") == ("Key", "  spaced ; kept ")
    assert parse_property("Empty=", "f:1") == ("Empty", "")
    assert parse_property('Q="half', "f:1") == ("Q", '"half')


def test_missing_equal_sign_is_an_error():
    with pytest.raises(IniError, match=r"^f\.ini:2: missing '='"):
        lex("[s]\nNoValue\n", "f.ini")


def test_lex_global_section_first_then_sections_in_order():
    text = "$A=1\nDefaultModel=Frame\n\n[s1]\nk=v\n[s2] s1\n  k2 =  v2  \n"
    sections = lex(text, "f.ini")
    assert [(s.name, s.parents, s.line) for s in sections] == [
        ("", [], 1), ("s1", [], 4), ("s2", ["s1"], 6)]
    assert [(e.key, e.value) for e in sections[0].entries] == [("$A", "1"), ("DefaultModel", "Frame")]
    assert [(e.key, e.value, e.line) for e in sections[2].entries] == [("k2", "v2", 7)]


def test_keys_are_case_sensitive_and_kept_distinct():
    sections = lex("[s]\nkey=1\nKey=2\n", "f.ini")
    assert [e.key for e in sections[1].entries] == ["key", "Key"]
