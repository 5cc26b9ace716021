"""YAML 1.1 surprises: each one is either read as written or rejected with a hint."""

import pytest

from engine.cli import main
from engine.errors import SpecError
from engine.loader import parse_treaty_text
from engine.yaml_loader import load_yaml
from helpers import TWO_PARTY_TREATY

TREATY = TWO_PARTY_TREATY.replace("  - name: A\n    discount: 0.9\n", "  - name: {first}\n    discount: {discount}\n", 1)


def treaty(first: str = "A", discount: str = "0.9") -> str:
    return TREATY.format(first=first, discount=discount)


def run_check(tmp_path, capsys, text: str) -> tuple[int, list[str]]:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    code = main(["check", str(path)])
    err = capsys.readouterr().err.replace(str(path), "t.yaml")
    return code, err.splitlines()


@pytest.mark.parametrize("word", ["NO", "no", "No", "yes", "Yes", "on", "off", "OFF", "y", "n"])
def test_norway_names_stay_text(word):
    spec = parse_treaty_text(treaty(first=word))

    assert spec.parties[0].name == word


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("1:30", "1:30"),  # YAML 1.1: base 60, 90
        ("010", "010"),  # YAML 1.1: octal, 8
        ("2024-01-01", "2024-01-01"),  # YAML 1.1: a date
        ("0x1F", "0x1F"),
        ("1_000", "1_000"),
        ('"2030"', "2030"),
    ],
)
def test_number_like_names_stay_text(written, name):
    assert parse_treaty_text(treaty(first=written)).parties[0].name == name


@pytest.mark.parametrize("written", ["true", "True", "FALSE", "12", "0.5", "~"])
def test_non_text_names_rejected(tmp_path, capsys, written):
    code, err = run_check(tmp_path, capsys, treaty(first=written))

    assert code == 2
    assert len(err) == 1
    assert err[0].startswith("t.yaml:4:11: error: parties[0].name: expected text")


def test_boolean_name_hint_quotes():
    with pytest.raises(SpecError) as raised:
        parse_treaty_text(treaty(first="true"), "t.yaml")

    assert "put it in quotes to use it as text (got true)" in str(raised.value)


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("9e-1", 0.9),  # PyYAML's own resolver reads this as text
        ("9.0e-1", 0.9),
        ("0.9", 0.9),
        (".9", 0.9),
        ("+0.9", 0.9),
        ("0", 0.0),
    ],
)
def test_exponent_numbers_accepted(written, value):
    assert parse_treaty_text(treaty(discount=written)).parties[0].discount == value


@pytest.mark.parametrize(
    ("written", "fragment"),
    [
        ("yes", 'expected a number (got "yes"; allowed: a number)'),
        ("on", 'expected a number (got "on"; allowed: a number)'),
        ("true", "expected a number; true/false is not a number (got true; allowed: a number)"),
        ("90%", 'write a percentage as a fraction, such as 0.9 for 90% (got "90%"; allowed: a number)'),
        ("0:54", "YAML 1.1 reads this as a base-60 number but this format reads it as text"),
        ("00.9", None),  # a float with a leading zero is unambiguous, so it is accepted
        ("010", "a leading zero is ambiguous (YAML 1.1 reads 010 as octal 8, YAML 1.2 as 10)"),
        ("0x1", "only decimal numbers are accepted"),
        ("0_9", "underscores in numbers are not accepted"),
        ("1_0", "underscores in numbers are not accepted"),
        ("2024-01-01", 'expected a number (got "2024-01-01"; allowed: a number)'),
        (".nan", "NaN and infinity are not allowed"),
        (".inf", "NaN and infinity are not allowed"),
        ("1e400", "the number is far outside the range of every field"),
        ("", "expected a number; the value is empty (got an empty value; allowed: a number)"),
    ],
)
def test_number_surprises(tmp_path, capsys, written, fragment):
    if fragment is None:
        assert parse_treaty_text(treaty(discount=written)).parties[0].discount == 0.9
        return

    code, err = run_check(tmp_path, capsys, treaty(discount=written))

    assert code == 2
    assert len(err) == 1
    # An empty value sits right after `discount: `, one column before a written one.
    column = 14 if written == "" else 15
    assert err[0].startswith(f"t.yaml:5:{column}: error: parties[0].discount: ")
    assert fragment in err[0]


def test_integer_field_rejects_float_spelling():
    text = treaty() + "model: {grid: 1e3}\n"

    with pytest.raises(SpecError) as raised:
        parse_treaty_text(text, "t.yaml")

    assert "model.grid: expected a whole number; write it without a decimal point or exponent (got 1000.0; allowed: a whole number)" in str(
        raised.value
    )


def test_state_keys_are_text():
    # Keys are always the text written, so numbers, dates and yes/no name states.
    text = treaty().replace(
        "parties:",
        "environment:\n  start: 2030\n  persistence: 0.5\n  states: {2030: 0.5, no: 0.25, 2040-01-01: 0.25}\nparties:",
    ).replace("defection_value: 0.3", "defection_value: {2030: 0.3, no: 0.1, 2040-01-01: 0.2}")

    with pytest.raises(SpecError) as raised:
        parse_treaty_text(text, "t.yaml")

    # `start: 2030` is a value, so it is a number; the key `2030` is the text "2030".
    assert str(raised.value).startswith("t.yaml:4:10: error: environment.start: expected text")

    spec = parse_treaty_text(text.replace("start: 2030", 'start: "2030"'))
    assert spec.state_names == ("2030", "no", "2040-01-01")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a: true", True),
        ("a: False", False),
        ("a: yes", "yes"),
        ("a: 1:30", "1:30"),
        ("a: 010", "010"),
        ("a: 10", 10),
        ("a: -0", 0),
        ("a: 1e3", 1000.0),
        ("a: 2024-01-01", "2024-01-01"),
        ("a: ~", None),
        ("a: null", None),
        ("a:", None),
        ("a: !!str 12", "12"),
        ("a: !!float 1", 1.0),
        ("a: !!int '12'", 12),
    ],
)
def test_scalar_resolution(text, value):
    assert load_yaml(text).data == {"a": value}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: !!bool yes", "not a boolean; write true or false"),
        ("a: !!int 0x10", "not a decimal integer"),
        ("a: !!float abc", "not a decimal number"),
        ("a: !!timestamp 2024-01-01", "YAML tag `!!timestamp` is not allowed"),
        ("a: !!binary aGVsbG8=", "YAML tag `!!binary` is not allowed"),
        ("a: !custom 1", "YAML tag `!custom` is not allowed"),
        ("a: !!null x", "`!!null` needs an empty value"),
    ],
)
def test_explicit_tags(text, fragment):
    with pytest.raises(SpecError) as raised:
        load_yaml(text, "t.yaml")

    assert str(raised.value).startswith("t.yaml:1:4: error: ")
    assert fragment in str(raised.value)
