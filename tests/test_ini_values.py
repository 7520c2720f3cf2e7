"""Typed readers: whole value consumed, `,` grouping, bool 0/1, exact enums."""

import pytest

from n2prune.ini import values


@pytest.mark.parametrize("text, expected", [
    ("12", 12), ("-3", -3), ("+7", 7), ("1,000,000", 1_000_000),
    ("2,147,483,647", 2**31 - 1), ("-2147483648", -2**31), (" 5 ", 5), ("0", 0),
])
def test_as_int_accepts(text, expected):
    assert values.as_int(text) == expected


@pytest.mark.parametrize("text", ["six", "5.0", "1,00", "1,0000", ",100", "5 5", "", "0x10", "1e3"])
def test_as_int_refuses(text):
    with pytest.raises(ValueError, match="^expected an integer, got "):
        values.as_int(text)


def test_as_int_message_quotes_the_value():
    with pytest.raises(ValueError) as info:
        values.as_int("six")
    assert str(info.value) == "expected an integer, got 'six'"


@pytest.mark.parametrize("reader", [values.as_int, values.as_uint])
@pytest.mark.parametrize("text", ["22500.0", "0.3515625", "1e3", ".5"])
def test_a_number_with_a_point_is_refused_saying_what_to_write(reader, text):
    # N2D2's ``stream >> value`` stops at the point and its eof() check refuses
    # the rest: "22500.0" is not 22500 there either.
    with pytest.raises(ValueError) as info:
        reader(text)
    assert str(info.value) == (
        f"expected an integer, got {text!r}; N2D2 refuses a decimal point here too: "
        "write a whole number (in $(...), divide with // or wrap it in int(...))")


def test_as_uint_rejects_leading_minus_even_zero():
    assert values.as_uint("1,024") == 1024
    for text in ["-1", "-0", " -5"]:
        with pytest.raises(ValueError, match="non-negative integer"):
            values.as_uint(text)


@pytest.mark.parametrize("text, expected", [
    ("0.5", 0.5), ("-1.0", -1.0), ("1e-3", 1e-3), (".5", 0.5), ("3.", 3.0),
    ("1,000.5", 1000.5), ("2", 2.0), ("+2E+2", 200.0),
])
def test_as_float_accepts(text, expected):
    assert values.as_float(text) == expected


@pytest.mark.parametrize("text", ["abc", "inf", "nan", "1.0.0", "1,00.5", "0.5 0.5", "", "1e"])
def test_as_float_refuses(text):
    with pytest.raises(ValueError, match="^expected a number, got "):
        values.as_float(text)


def test_as_bool_only_zero_or_one():
    assert values.as_bool("1") is True
    assert values.as_bool("0") is False
    for text in ["true", "True", "2", "yes", ""]:
        with pytest.raises(ValueError, match="^expected 0 or 1, got "):
            values.as_bool(text)


def test_as_str_returns_text_unchanged():
    assert values.as_str(" a b ") == " a b "


def test_enum_exact_case_and_message_lists_names():
    pooling = values.enum("Max", "Average")
    assert pooling("Max") == "Max"
    assert pooling.names == ("Max", "Average")
    with pytest.raises(ValueError) as info:
        pooling("max")
    assert str(info.value) == "expected one of Max, Average; got 'max'"
    with pytest.raises(ValueError):
        pooling("Max Average")


def test_vector_reads_whitespace_separated_items():
    dims = values.vector(values.as_uint)
    assert dims("5 5") == [5, 5]
    assert dims(" 1\t2  3 ") == [1, 2, 3]
    assert dims("") == []
    assert values.vector(values.as_float)("0.5 1,000") == [0.5, 1000.0]


def test_vector_errors_name_the_item_and_check_length():
    with pytest.raises(ValueError, match=r"^item 2 of '5 x': expected an integer, got 'x'$"):
        values.vector(values.as_int)("5 x")
    with pytest.raises(ValueError, match="expected 2 values, got 3"):
        values.vector(values.as_int, length=2)("5 5 5")


@pytest.mark.parametrize("reader, text", [
    (values.as_int, "2147483648"), (values.as_int, "-2,147,483,649"),
    (values.as_uint, "4294967296"), (values.as_int, "9" * 400), (values.as_uint, "1" * 5000),
])
def test_integers_beyond_32_bits_are_refused_as_n2d2(reader, text):
    with pytest.raises(ValueError, match="integer out of range") as info:
        reader(text)
    assert len(str(info.value)) < 200  # a 400-digit value is not echoed whole


@pytest.mark.parametrize("text", ["1e400", "9" * 400, "-" + "9" * 400])
def test_floats_beyond_a_double_are_refused(text):
    with pytest.raises(ValueError, match="number out of range"):
        values.as_float(text)
