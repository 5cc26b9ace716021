"""Hostile and broken files: rejected quickly, with one message naming a position."""

import os
import time

import pytest

from engine.cli import main
from engine.yaml_loader import MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES


def run_check(path, capsys) -> tuple[int, list[str]]:
    code = main(["check", str(path)])
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err.splitlines()


def assert_one_error(path, capsys, position: str, fragment: str) -> str:
    code, err = run_check(path, capsys)

    assert code == 2
    assert len(err) == 1, "\n".join(err)
    assert err[0].startswith(f"{path}:{position}: error: "), err[0]
    assert fragment in err[0]
    return err[0]


PARTIES_WITH_DEFECTION = """schema: treaty/v1
name: T
parties:
  - {{name: A, discount: 0.9, defection_value: {defection}, regime_value: [[0, 0.2], [1, 0.8]]}}
  - {{name: B, discount: 0.9, defection_value: 0.3, regime_value: [[0, 0.8], [1, 0.2]]}}
"""


def write(tmp_path, content, name="treaty.yaml"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_alias_bomb(tmp_path, capsys):
    # Nine levels of ten aliases each expand to 10**9 strings from a 1 KB file.
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [" + ", ".join([previous] * 10) + "]")
    path = write(tmp_path, "\n".join(lines) + "\n")

    started = time.perf_counter()
    code, err = run_check(path, capsys)
    elapsed = time.perf_counter() - started

    assert code == 2
    assert len(err) == 1
    assert f"aliases expand to more than {MAX_ALIAS_NODES} extra nodes" in err[0]
    assert err[0].startswith(f"{path}:")
    assert elapsed < 10


def test_recursive_alias(tmp_path, capsys):
    path = write(tmp_path, "a: &loop [1, *loop]\n")

    assert_one_error(path, capsys, "1:4", "an alias refers to a node that contains it")


def test_deep_nesting(tmp_path, capsys):
    depth = 100_000
    path = write(tmp_path, "schema: treaty/v1\nname: " + "[" * depth + "]" * depth + "\n")

    assert_one_error(path, capsys, f"2:{MAX_DEPTH + 6}", f"nesting is deeper than {MAX_DEPTH} levels")


def test_deep_block_nesting(tmp_path, capsys):
    text = "".join(" " * level + f"k{level}:\n" for level in range(MAX_DEPTH + 5))
    path = write(tmp_path, text)

    code, err = run_check(path, capsys)

    assert code == 2
    assert len(err) == 1
    assert f"nesting is deeper than {MAX_DEPTH} levels" in err[0]


def test_large_file(tmp_path, capsys):
    path = write(tmp_path, "schema: treaty/v1\n# " + "x" * MAX_FILE_BYTES + "\n")

    assert_one_error(path, capsys, "1:1", "file is larger than 1 MiB")


def test_python_object_tag_not_executed(tmp_path, capsys):
    marker = tmp_path / "executed"
    path = write(
        tmp_path,
        "schema: treaty/v1\n"
        f"name: !!python/object/apply:os.system ['touch {marker}']\n",
    )

    assert_one_error(path, capsys, "2:7", "YAML tag `!!python/object/apply:os.system` is not allowed")
    assert not marker.exists()


def test_python_name_tag(tmp_path, capsys):
    path = write(tmp_path, "schema: treaty/v1\nname: !!python/name:os.system ''\n")

    assert_one_error(path, capsys, "2:7", "YAML tag `!!python/name:os.system` is not allowed")


def test_binary_file(tmp_path, capsys):
    path = write(tmp_path, b"schema: treaty/v1\nname: \x00\x01\x02\x89PNG\n")

    assert_one_error(path, capsys, "2:7", "file is binary (contains a NUL byte), not YAML text")


def test_non_utf8_file(tmp_path, capsys):
    path = write(tmp_path, "schema: treaty/v1\nname: Traité\n".encode("latin-1"))

    assert_one_error(path, capsys, "2:12", "file is not valid UTF-8 text; save it as UTF-8")


def test_utf16_file(tmp_path, capsys):
    path = write(tmp_path, "schema: treaty/v1\n".encode("utf-16"))

    assert_one_error(path, capsys, "1:1", "file is UTF-16 or UTF-32; save it as UTF-8")


def test_utf8_bom_accepted(tmp_path, capsys):
    valid = (
        "schema: treaty/v1\nname: T\nparties:\n"
        "  - {name: A, discount: 0.9, defection_value: 0.3, regime_value: [[0, 0.2], [1, 0.8]]}\n"
        "  - {name: B, discount: 0.9, defection_value: 0.3, regime_value: [[0, 0.8], [1, 0.2]]}\n"
    )
    path = write(tmp_path, b"\xef\xbb\xbf" + valid.encode("utf-8"))

    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: ok\n"


def test_control_character(tmp_path, capsys):
    path = write(tmp_path, "schema: treaty/v1\nname: a\x07b\n")

    assert_one_error(path, capsys, "2:8", "character U+0007 is not allowed in YAML text")


@pytest.mark.parametrize("escape", ["\\u0007", "\\t"])
def test_escaped_control_character_in_key(tmp_path, capsys, escape):
    # A quoted key may spell a control character as an escape. The path and the
    # message then show the same escape, so both name the same key.
    text = PARTIES_WITH_DEFECTION.format(defection=0.3) + f'"k{escape}ey": 1\n'
    path = write(tmp_path, text)

    line = assert_one_error(path, capsys, "6:1", f'["k{escape}ey"]: unknown field `k{escape}ey`')

    assert "\\x" not in line


def test_directory(tmp_path, capsys):
    assert_one_error(tmp_path, capsys, "1:1", "is a directory, not a treaty file")


def test_missing_file(tmp_path, capsys):
    assert_one_error(tmp_path / "absent.yaml", capsys, "1:1", "file not found")


def test_empty_file_name(capsys):
    # An empty name must not fall back to the current directory.
    code, err = run_check("", capsys)

    assert code == 2
    assert err == ["'':1:1: error: the file name is empty; give the path of a treaty file"]


def test_standard_input_is_not_read(capsys):
    # A lone dash usually means standard input, which these commands do not read.
    assert_one_error("-", capsys, "1:1", "reading a treaty from standard input is not supported")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_not_read(tmp_path, capsys):
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)

    assert_one_error(path, capsys, "1:1", "is not a regular file")


@pytest.mark.parametrize(
    "content",
    ["", "\n\n", "   \n", "# only a comment\n", "---\n", "--- \n...\n"],
    ids=["empty", "newlines", "spaces", "comment", "document marker", "empty document"],
)
def test_empty_file(tmp_path, capsys, content):
    path = write(tmp_path, content)

    assert_one_error(path, capsys, "1:1", "file is empty; a treaty file starts with `schema: treaty/v1`")


@pytest.mark.parametrize(
    ("content", "got"),
    [
        ("- schema: treaty/v1\n- name: T\n", "got a list of 2 items"),
        ("just some text\n", 'got "just some text"'),
        ("42\n", "got 42"),
    ],
    ids=["list", "text", "number"],
)
def test_top_level_not_mapping(tmp_path, capsys, content, got):
    path = write(tmp_path, content)

    message = assert_one_error(path, capsys, "1:1", "the top level must be a mapping of fields")
    assert f"({got})" in message


def test_several_documents(tmp_path, capsys):
    path = write(tmp_path, "schema: treaty/v1\n---\nschema: treaty/v1\n")

    assert_one_error(path, capsys, "2:1", "invalid YAML: a treaty file holds one document, but another starts here")


def test_syntax_error(tmp_path, capsys):
    path = write(tmp_path, "schema: treaty/v1\nname: [unclosed\nparties: 1\n")

    code, err = run_check(path, capsys)

    assert code == 2
    assert len(err) == 1
    assert err[0].startswith(f"{path}:")
    assert "invalid YAML:" in err[0]


def test_tab_indentation(tmp_path, capsys):
    path = write(tmp_path, "schema: treaty/v1\nparties:\n\t- name: A\n")

    assert_one_error(path, capsys, "3:1", "invalid YAML: found character '\\t' that cannot start any token")


def test_huge_integer(tmp_path, capsys):
    path = write(tmp_path, "schema: treaty/v1\nname: T\nmodel: {grid: " + "9" * 5000 + "}\n")

    assert_one_error(path, capsys, "3:15", "model.grid: the integer has more than 4,300 digits")


def test_integer_beyond_float_range(tmp_path, capsys):
    # 400 digits parse as an integer but lie beyond every float, so no field can take them.
    path = write(tmp_path, PARTIES_WITH_DEFECTION.format(defection="9" * 400))

    assert_one_error(path, capsys, "4:47", "parties[0].defection_value: the number is far outside")


def test_negative_integer_beyond_float_range(tmp_path, capsys):
    path = write(tmp_path, PARTIES_WITH_DEFECTION.format(defection="-" + "9" * 400))

    assert_one_error(path, capsys, "4:47", "parties[0].defection_value: the number is far outside")


def test_decimal_beyond_float_range(tmp_path, capsys):
    # Without the check this would be read as infinity, which the file never wrote.
    path = write(tmp_path, PARTIES_WITH_DEFECTION.format(defection="9" * 400 + ".5"))

    message = assert_one_error(path, capsys, "4:47", "parties[0].defection_value: the number is far outside")
    assert "inf" not in message


def test_integer_just_inside_float_range(tmp_path, capsys):
    # 308 digits still make a float, so the field's own bound applies.
    path = write(tmp_path, PARTIES_WITH_DEFECTION.format(defection="9" * 308))

    assert_one_error(path, capsys, "4:47", "parties[0].defection_value: must be at most 1,000,000")


def test_duration_with_too_many_digits(tmp_path, capsys):
    text = PARTIES_WITH_DEFECTION.format(defection="0.3") + (
        "provisions:\n  - kind: duration\n    term: 1111111 years\n")
    path = write(tmp_path, text)

    assert_one_error(path, capsys, "8:11", "provisions[0].term: the number has more than 6 digits")


def test_duration_with_an_exponent(tmp_path, capsys):
    text = PARTIES_WITH_DEFECTION.format(defection="0.3") + (
        "provisions:\n  - kind: duration\n    term: 1e20 years\n")
    path = write(tmp_path, text)

    assert_one_error(path, capsys, "8:11", "provisions[0].term: write the number of a duration without an exponent")


def test_bad_float_tag_names_the_field(tmp_path, capsys):
    text = PARTIES_WITH_DEFECTION.format(defection="0.3").replace("discount: 0.9", 'discount: !!float "abc"', 1)
    path = write(tmp_path, text)

    assert_one_error(path, capsys, "4:25", 'parties[0].discount: not a decimal number (got "abc")')


def test_non_scalar_key(tmp_path, capsys):
    path = write(tmp_path, "schema: treaty/v1\n? [a, b]\n: 1\n")

    assert_one_error(path, capsys, "2:3", "a key must be plain text, not a list or a mapping")


def test_many_duplicate_keys_all_reported(tmp_path, capsys):
    path = write(tmp_path, "schema: treaty/v1\nname: A\nname: B\nperiod: 1 year\nperiod: 1 year\n")

    code, err = run_check(path, capsys)

    assert code == 2
    assert [line.split(": error: ")[0] for line in err] == [f"{path}:3:1", f"{path}:5:1"]
    assert [line.split(": error: ")[1].split(":")[0] for line in err] == ["name", "period"]


def test_duplicate_key_in_anchor_reported_once(tmp_path, capsys):
    # The anchored mapping is built three times (where it is written, through the
    # merge key and through the alias), but its duplicate key is one mistake.
    text = "schema: treaty/v1\nbase: &b {x: 1, x: 2}\nmerged: {<<: *b}\nalias: *b\n"
    path = write(tmp_path, text)

    assert_one_error(path, capsys, "2:17", "base.x: duplicate key `x`, first defined at line 2, column 11")
