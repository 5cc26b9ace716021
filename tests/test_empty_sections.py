"""An optional section written empty counts as left out; an empty number or name is rejected."""

import json

import pytest

from engine.cli import main, schema_text
from engine.loader import parse_treaty_text
from helpers import TWO_PARTY_TREATY

TREATY = TWO_PARTY_TREATY

SUNSET = "provisions:\n  - kind: duration\n    term: 10 years\n"


@pytest.mark.parametrize("empty", ["", " ~", " null"])
@pytest.mark.parametrize("section", ["model", "provisions", "sources", "terms", "environment"])
def test_empty_top_level_section_is_left_out(section, empty):
    written = parse_treaty_text(TREATY + f"{section}:{empty}\n")

    assert written == parse_treaty_text(TREATY)


def test_empty_section_inside_a_provision_is_left_out():
    written = parse_treaty_text(TREATY + SUNSET + "    renegotiation:\n    extensions: ~\n")

    assert written == parse_treaty_text(TREATY + SUNSET)


def test_empty_beliefs_are_left_out():
    written = parse_treaty_text(TREATY.replace("  - name: B\n", "    beliefs:\n  - name: B\n"))

    assert written == parse_treaty_text(TREATY)


@pytest.mark.parametrize(
    "text, line, column, fragment",
    [
        (TREATY.replace("name: Test treaty", "name:"), 2, 6, "name: expected text (got an empty value"),
        (TREATY + "period:\n", 12, 8, "period: "),
        (TREATY.replace("discount: 0.9\n    defection_value: 0.3\n    regime_value: [[0, 0.2]",
                        "discount:\n    defection_value: 0.3\n    regime_value: [[0, 0.2]", 1),
         5, 14, "parties[0].discount: expected a number; the value is empty"),
        (TREATY + SUNSET.replace("10 years", ""), 14, 10, "provisions[0].term: "),
        (TREATY + "model: {grid: }\n", 12, 14, "model.grid: "),
    ],
)
def test_empty_value_is_rejected(tmp_path, capsys, text, line, column, fragment):
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")

    assert main(["check", str(path)]) == 2

    err = capsys.readouterr().err.replace(str(path), "t.yaml").splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"t.yaml:{line}:{column}: error: {fragment}")
    assert "an empty value" in err[0]


ESCAPE = "provisions:\n  - kind: escape_hatch\n    trigger: {states: [now]}\n    suspension: 1 year\n"
STICKY = """environment:
  start: a
  persistence: 0.5
  states: {a: 0.5, b: 0.5}
"""


@pytest.mark.parametrize(
    "text, line, column, path",
    [
        # Left out, max_uses means no limit, so an empty value must not mean that quietly.
        (TREATY + ESCAPE + "    max_uses:\n", 16, 14, "provisions[0].max_uses"),
        (TREATY + "model:\n  horizon: ~\n", 13, 12, "model.horizon"),
        (TREATY + "description:\n", 12, 13, "description"),
        (TREATY.replace("defection_value: 0.3", "defection_value: {a: 0.3, b: 0.3}")
         + STICKY.replace("persistence: 0.5", "persistence:"), 14, 15, "environment.persistence"),
    ],
)
def test_empty_optional_value_is_rejected(tmp_path, capsys, text, line, column, path):
    file = tmp_path / "t.yaml"
    file.write_text(text, encoding="utf-8")

    assert main(["check", str(file)]) == 2

    err = capsys.readouterr().err.replace(str(file), "t.yaml").splitlines()
    assert err == [f"t.yaml:{line}:{column}: error: {path}: the value is empty; write a value, or leave "
                   "the field out where the format allows it (got an empty value; allowed: a value, or no key)"]


def test_schema_accepts_empty_sections_only():
    schema = json.loads(schema_text())
    top = schema["properties"]
    renegotiation = schema["$defs"]["DurationProvision"]["properties"]["renegotiation"]

    for entry in (top["model"], top["provisions"], top["sources"], top["terms"], renegotiation):
        assert {"type": "null"} in entry["anyOf"]
    assert "anyOf" not in top["name"]
    assert "anyOf" not in top["period"]
    assert top["description"]["type"] == "string"
    assert schema["$defs"]["EscapeHatchProvision"]["properties"]["max_uses"]["type"] == "integer"
    horizon = schema["$defs"]["ModelSettings"]["properties"]["horizon"]
    assert "anyOf" not in horizon
    # The field's own description, not the generic one of durations.
    assert horizon["description"].startswith("Length of reported payoff streams")


@pytest.mark.parametrize(
    "written, message",
    [
        ("", "expected a duration; the value is empty (got an empty value;"),
        ("10", "a duration needs a unit, e.g. `10 years` (got 10;"),
        ("'10'", 'a duration needs a unit, e.g. `10 years` (got "10";'),
        ("true", "expected a duration written as text: a number and a unit such as `90 days`"),
        ("{years: 10}", "expected a duration written as text: a number and a unit such as `90 days`"),
        # No unit makes these valid, so no value with a unit is suggested.
        ("-5", "a duration needs a unit: write a number and a unit such as `90 days`"),
        ("0", "a duration needs a unit: write a number and a unit such as `90 days`"),
        ("1000000", "a duration needs a unit: write a number and a unit such as `90 days`"),
    ],
)
def test_duration_message_by_form(tmp_path, capsys, written, message):
    # A number and the same number quoted get the same advice, and an empty
    # duration reads as empty, like an empty number.
    file = tmp_path / "t.yaml"
    file.write_text(TREATY + SUNSET.replace("10 years", written), encoding="utf-8")

    assert main(["check", str(file)]) == 2

    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert f"error: provisions[0].term: {message}" in err[0]


@pytest.mark.parametrize("states", ["", "  states:\n"])
def test_environment_without_states_named_at_key(tmp_path, capsys, states):
    # Left out or empty, the missing states are reported at the `environment`
    # key, and no value is quoted, because none was written.
    file = tmp_path / "t.yaml"
    file.write_text(TREATY + "environment:\n  start: a\n  persistence: 0.5\n" + states, encoding="utf-8")

    assert main(["check", str(file)]) == 2

    err = capsys.readouterr().err.replace(str(file), "t.yaml").splitlines()
    assert err[0] == "t.yaml:12:1: error: environment: missing `states` (with `persistence`) or `transitions`"
