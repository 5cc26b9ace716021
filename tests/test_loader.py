"""Loading valid treaty files: parsed values, defaults, positions and the public API."""

from fractions import Fraction
from pathlib import Path

import pytest

from engine.durations import Duration
from engine.errors import SpecError
from engine.loader import format_path, load_treaty, parse_treaty_text, validate_treaty_data
from engine.spec import SINGLE_STATE
from engine.yaml_loader import load_yaml, load_yaml_file
from provisions.escape_hatch import StatesTrigger, ThresholdTrigger

DATA = Path(__file__).parent / "data"

MINIMAL = (DATA / "minimal.yaml").read_text()


def test_minimal_file_defaults():
    spec = load_treaty(DATA / "minimal.yaml")

    assert spec.schema_version == "treaty/v1"
    assert spec.period.text == "1 year"
    assert spec.environment is None
    assert spec.state_names == (SINGLE_STATE,)
    assert spec.start_state == SINGLE_STATE
    assert spec.provisions == []
    assert spec.terms is None
    assert spec.model.bargaining == "nash-patience"
    assert spec.model.grid == 101
    assert spec.model.horizon is None
    assert spec.parties[0].breach_cost == 0.0
    assert spec.parties[0].negotiation_cost == 0.0


def test_full_file_values():
    spec = load_treaty(DATA / "full.yaml")

    assert spec.period.text == "3 months"
    assert spec.state_names == ("today", "breakthrough", "obsolete")
    assert spec.start_state == "today"
    assert spec.environment.persistence == 0.85
    assert [party.name for party in spec.parties] == ["United States", "Russia", "China"]
    assert spec.parties[0].beliefs.persistence == 0.95
    assert spec.parties[2].regime_value == ((0.0, 0.6), (0.5, 0.55), (1.0, 0.3))
    assert spec.terms.strictness == 0.55
    assert [provision.kind for provision in spec.provisions] == [
        "duration",
        "withdrawal",
        "escape_hatch",
        "review",
    ]
    assert spec.provisions[0].extensions.max == 1
    assert spec.provisions[2].trigger == ThresholdTrigger(defection_value_at_least=0.8)
    assert spec.model.horizon.text == "50 years"


def test_defection_value_plain_number_one_state():
    spec = parse_treaty_text(MINIMAL)

    assert spec.parties[0].defection_value == 0.3
    assert spec.parties[0].defection_by_state(spec.state_names) == [0.3]


def test_trigger_forms():
    base = (DATA / "full.yaml").read_text()
    old = "trigger: {defection_value_at_least: 0.8}"

    by_states = parse_treaty_text(base.replace(old, "trigger: {states: [breakthrough]}"))
    discretionary = parse_treaty_text(base.replace(old, "trigger: discretionary"))

    assert by_states.provisions[2].trigger == StatesTrigger(states=["breakthrough"])
    assert discretionary.provisions[2].trigger == "discretionary"


def test_explicit_transitions_accepted():
    text = MINIMAL.replace(
        "parties:",
        "environment:\n"
        "  start: calm\n"
        "  transitions:\n"
        "    calm: {calm: 0.9, crisis: 0.1}\n"
        "    crisis: {crisis: 1.0}\n"
        "parties:",
    ).replace("defection_value: 0.3", "defection_value: {calm: 0.3, crisis: 0.5}")

    spec = parse_treaty_text(text)

    assert spec.state_names == ("calm", "crisis")
    assert not spec.environment.sticky


def test_state_with_zero_probability_allowed():
    # A declared state that the chain never reaches is legal; only the start must exist.
    text = MINIMAL.replace(
        "parties:",
        "environment:\n"
        "  start: calm\n"
        "  persistence: 0.9\n"
        "  states: {calm: 1.0, never: 0.0}\n"
        "parties:",
    ).replace("defection_value: 0.3", "defection_value: {calm: 0.3, never: 0.9}")

    assert parse_treaty_text(text).state_names == ("calm", "never")


def test_iso_durations_accepted():
    base = (DATA / "full.yaml").read_text()
    text = base.replace("term: 10 years", "term: P10Y").replace("notice: 6 months", "notice: P6M")

    spec = parse_treaty_text(text)

    assert spec.provisions[0].term == Duration("P10Y", Fraction(10))
    assert spec.provisions[1].notice == Duration("P6M", Fraction(1, 2))



def test_iso_comma_decimal_accepted():
    # ISO 8601 allows a comma as the decimal sign. P10,5Y is 10.5 years, which
    # is 42 periods of the file's 3 months, and P0,5Y is 6 months.
    base = (DATA / "full.yaml").read_text()
    text = base.replace("term: 10 years", "term: P10,5Y").replace("notice: 6 months", "notice: P0,5Y")

    spec = parse_treaty_text(text)

    assert spec.provisions[0].term == Duration("P10,5Y", Fraction(21, 2))
    assert spec.provisions[1].notice == Duration("P0,5Y", Fraction(1, 2))

def test_positions_are_one_based():
    loaded = load_yaml("schema: treaty/v1\nparties:\n  - name: A\n    discount: 0.9\n")

    assert loaded.positions[("schema",)].key.line == 1
    assert loaded.positions[("schema",)].key.column == 1
    assert loaded.positions[("schema",)].value.column == 9
    assert loaded.positions[("parties", 0)].value.line == 3
    assert loaded.positions[("parties", 0, "discount")].key.line == 4
    assert loaded.positions[("parties", 0, "discount")].key.column == 5
    assert loaded.positions[("parties", 0, "discount")].value.column == 15


def test_merge_keys_apply():
    text = (
        "base: &base {a: 1, b: 2}\n"
        "other:\n"
        "  <<: *base\n"
        "  b: 3\n"
    )

    data = load_yaml(text).data

    assert data["other"] == {"a": 1, "b": 3}


def test_validate_data_roundtrip():
    spec = load_treaty(DATA / "full.yaml")
    data = spec.model_dump(mode="json", by_alias=True, exclude_none=True)

    again = validate_treaty_data(data)

    assert again == spec


def test_validate_data_edit_reports_position():
    loaded = load_yaml_file(DATA / "minimal.yaml")
    loaded.data["parties"][1]["discount"] = 1.5

    with pytest.raises(SpecError) as raised:
        validate_treaty_data(loaded.data, "minimal.yaml", loaded.positions)

    assert str(raised.value).startswith("minimal.yaml:9:15: error: parties[1].discount: must be below 1")


def test_validate_data_without_positions():
    data = load_yaml(MINIMAL).data
    data["parties"][0]["discount"] = -0.1

    with pytest.raises(SpecError) as raised:
        validate_treaty_data(data)

    assert str(raised.value).startswith("<data>: error: parties[0].discount: must be below 1")


def test_parse_text_names_file():
    with pytest.raises(SpecError) as raised:
        parse_treaty_text(MINIMAL.replace("discount: 0.9", "discount: 2", 1), "draft.yaml")

    assert str(raised.value).startswith("draft.yaml:5:15: error: parties[0].discount")


def test_all_problems_reported_together():
    text = (
        MINIMAL.replace("discount: 0.9", "discount: 1.5", 1).replace("defection_value: 0.3", "defection_value: -1", 1)
        + "model: {grid: 2, bargaining: nash}\n"
    )

    with pytest.raises(SpecError) as raised:
        parse_treaty_text(text, "t.yaml")

    paths = [problem.path for problem in raised.value.problems]
    assert paths == ["parties[0].discount", "parties[0].defection_value", "model.grid", "model.bargaining"]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("parties", 1, "discount"), "parties[1].discount"),
        (("environment", "states", "two words"), 'environment.states["two words"]'),
        ((), ""),
        (("provisions", 0, "trigger", "states", 2), "provisions[0].trigger.states[2]"),
    ],
)
def test_format_path(path, text):
    assert format_path(path) == text


def test_single_state_environment_needs_no_start():
    text = MINIMAL.replace("parties:", "environment:\n  states: {calm: 1.0}\nparties:")

    spec = parse_treaty_text(text)

    assert spec.state_names == ("calm",)
    assert spec.start_state == "calm"
    assert spec.environment.persistence is None
