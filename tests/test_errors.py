"""Every user error is one escaped line naming file:line (or the file), exit code 2."""

import pytest

from n2prune import cli
from n2prune.errors import IniError, UserError, escape_text

NET = "[sp]\nSize=28 28 1\n[fc]\nType=Fc\nNbOutputs=10\nInput=sp\n[fc.Target]\n"


def check(tmp_path, text, capsys, name="model.ini"):
    """``n2prune check`` on a file holding ``text``: (exit code, stderr lines)."""
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code = cli.main(["check", str(path)])
    return code, capsys.readouterr().err.splitlines()


def one_error_line(code, err):
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]
    return err[0]


# -- escaping ---------------------------------------------------------------

@pytest.mark.parametrize("raw, shown", [
    ("a\rb", "a\\x0db"),
    ("a\nb", "a\\x0ab"),
    ("nul\0", "nul\\x00"),
    ("\x1b[31mred", "\\x1b[31mred"),
    ("\u202eevil\u202c", "\\u202eevil\\u202c"),
    ("\u2066x\u2069", "\\u2066x\\u2069"),
    ("tab\there", "tab\\x09here"),
    ("\u2028", "\\u2028"),
    ("café ≥ 3 µm 日本", "café ≥ 3 µm 日本"),
])
def test_escape_text_shows_controls_and_keeps_printable_unicode(raw, shown):
    assert escape_text(raw) == shown
    assert escape_text(shown) == shown


def test_user_error_is_one_printable_line_where_included():
    error = IniError("unknown Type=Fo\ro\n", "m.ini:4 [c\u202eell] Type")
    assert str(error) == "m.ini:4 [c\\u202eell] Type: unknown Type=Fo\\x0do\\x0a"
    assert str(error).isprintable()
    assert str(UserError("plain é")) == "plain é"


def test_cli_error_with_control_characters_keeps_its_prefix(tmp_path, capsys):
    text = "[sp]\nSize=28 28 1\n[c\u202eell]\nType=Fo\x1bo\rX\nInput=sp\n"
    line = one_error_line(*check(tmp_path, text, capsys))
    assert line.startswith(f"error: unknown Type=Fo\\x1bo\\x0dX in [c\\u202eell] ({tmp_path / 'model.ini'}:4); ")
    assert "Fo\\x1bo\\x0dX" in line and line.isprintable()


def test_cli_warning_with_control_characters_is_escaped(tmp_path, capsys):
    code, err = check(tmp_path, NET.replace("Input=sp\n", "Input=sp\nKe\x1by\u2066=1\n"), capsys)
    assert code == 0
    assert len(err) == 1
    assert err[0].startswith(f"warning: {tmp_path / 'model.ini'}:7 [fc] Ke\\x1by\\u2066: unknown key Ke\\x1by\\u2066; ")


# -- file:line where there was none ---------------------------------------

@pytest.mark.parametrize("text, line", [
    ("", 1),
    ("; just a comment", 1),
    ("[fc]\nType=Fc\nNbOutputs=10\n", 3),
    ("[fc]\nType=Fc\n\n\n", 4),
], ids=["empty", "comment", "no-sp", "trailing-blank-lines"])
def test_missing_sp_points_at_the_end_of_the_file(tmp_path, text, line, capsys):
    message = one_error_line(*check(tmp_path, text, capsys))
    assert message.startswith(f"error: {tmp_path / 'model.ini'}:{line}: missing [sp] section")


def test_very_deep_data_path_is_one_line_even_in_check(tmp_path, capsys):
    deep = "/".join(["a"] * 3000)
    text = f"[database]\nType=MNIST_IDX_Database\nDataPath={deep}\n" + NET
    code, err = check(tmp_path, text, capsys)
    assert code == 0  # check goes on without data, with a notice
    assert len(err) == 1 and err[0].startswith(f"notice: {tmp_path / 'model.ini'}:3 "
                                               "[database] DataPath: cannot read the data")
    path = tmp_path / "model.ini"
    assert cli.main(["train", str(path), "--steps", "1", "--out", str(tmp_path / "run")]) == 2
    line = one_error_line(2, capsys.readouterr().err.splitlines())
    assert line.startswith(f"error: {path}:3 [database] DataPath: cannot read the data")


# -- model files that are not INI text ----------------------------------------

def test_empty_model_name_is_one_line(capsys):
    assert cli.main(["check", ""]) == 2
    assert capsys.readouterr().err.splitlines() == ["error: the INI file name is empty"]


def test_model_that_is_a_folder_is_one_line(tmp_path, capsys):
    assert cli.main(["check", str(tmp_path)]) == 2
    line = one_error_line(2, capsys.readouterr().err.splitlines())
    assert line == f"error: {tmp_path}: is a folder, not an INI file"


def test_model_name_too_long_is_one_line(tmp_path, capsys):
    path = tmp_path / ("a" * 300 + ".ini")
    assert cli.main(["check", str(path)]) == 2
    line = one_error_line(2, capsys.readouterr().err.splitlines())
    assert line.endswith(": cannot read INI file: File name too long")


@pytest.mark.parametrize("data, line, says", [
    (bytes(range(256)) * 4, 1, "NUL character"),
    (NET.encode().replace(b"Input=sp", b"Input=s\0p"), 6, "NUL character"),
    (b"[sp]\nSize=\xff\xfe 28 1\n", 2, "expected an integer"),  # read as Latin-1
    (b"\x89PNG\r\n\x1a\n\x00\x00", 1, "missing '='"),
], ids=["random-bytes", "nul", "invalid-utf8", "png"])
def test_binary_or_broken_model_files_are_one_line(tmp_path, data, line, says, capsys):
    message = one_error_line(*check(tmp_path, data, capsys))
    assert message.startswith(f"error: {tmp_path / 'model.ini'}:{line}")
    assert says in message and message.isprintable()
