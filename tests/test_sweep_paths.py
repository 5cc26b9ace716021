"""Sweep axes: grid parsing, path resolution and writing values into a treaty mapping."""

import copy

import numpy as np
import pytest

from engine.durations import parse_duration, whole_periods
from engine.sweep_axes import SweepError, apply_values, build_axes, parse_axis, resolve_path

TREATY = {
    "schema": "treaty/v1",
    "name": "Path test",
    "period": "1 year",
    "environment": {"start": "today", "persistence": 0.8, "states": {"today": 0.6, "later": 0.4}},
    "parties": [
        {
            "name": "United States",
            "discount": 0.95,
            "defection_value": {"today": 0.4, "later": 0.9},
            "regime_value": [[0, 0.2], [1, 0.75]],
        },
        {
            "name": "Russia",
            "discount": 0.9,
            "defection_value": {"today": 0.5, "later": 0.7},
            "regime_value": [[0, 0.7], [1, 0.25]],
            "breach_cost": 0,
        },
    ],
    "provisions": [
        {"kind": "duration", "term": "10 years", "extensions": {"length": "P5Y", "max": 1}},
        {"kind": "withdrawal", "notice": "6 months", "cost": 0.1},
    ],
}


def test_parse_axis_linspace():
    path, values = parse_axis("environment.persistence=0.5:0.9:5")
    assert path == "environment.persistence"
    np.testing.assert_array_equal(values, np.linspace(0.5, 0.9, 5))
    assert values[0] == 0.5
    assert values[-1] == 0.9


def test_parse_axis_negative_and_descending():
    path, values = parse_axis("x.y=1:-1:3")
    assert path == "x.y"
    np.testing.assert_array_equal(values, [1.0, 0.0, -1.0])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("environment.persistence", "expected PATH=START:STOP:N"),
        ("=0:1:3", "expected PATH=START:STOP:N"),
        ("a.b=0:1", "expected START:STOP:N"),
        ("a.b=0:one:3", "invalid STOP 'one'"),
        ("a.b=0:inf:3", "must be finite"),
        ("a.b=0:1:2.5", "invalid N '2.5'"),
        ("a.b=0:1:1", "at least 2 points"),
        ("a.b=0:1:0", "at least 2 points"),
    ],
)
def test_parse_axis_errors(text, fragment):
    with pytest.raises(SweepError) as caught:
        parse_axis(text)
    assert fragment in str(caught.value)


def test_resolve_environment_field():
    (target,) = resolve_path(TREATY, "environment.persistence")
    assert target.keys == ("environment", "persistence")
    assert target.unit is None


def test_resolve_party_by_name_with_space():
    (target,) = resolve_path(TREATY, "parties.United States.discount")
    assert target.keys == ("parties", 0, "discount")


def test_resolve_party_state_value():
    (target,) = resolve_path(TREATY, "parties.Russia.defection_value.today")
    assert target.keys == ("parties", 1, "defection_value", "today")


def test_resolve_all_parties():
    targets = resolve_path(TREATY, "parties.*.discount")
    assert [target.keys for target in targets] == [
        ("parties", 0, "discount"),
        ("parties", 1, "discount"),
    ]


def test_resolve_list_index():
    (target,) = resolve_path(TREATY, "parties.Russia.regime_value.1.1")
    assert target.keys == ("parties", 1, "regime_value", 1, 1)
    assert target.integer is False


def test_resolve_provision_by_kind():
    (target,) = resolve_path(TREATY, "provisions.withdrawal.cost")
    assert target.keys == ("provisions", 1, "cost")


def test_resolve_duration_units():
    (term,) = resolve_path(TREATY, "provisions.duration.term")
    assert term.unit == "years"
    (notice,) = resolve_path(TREATY, "provisions.withdrawal.notice")
    assert notice.unit == "months"
    (length,) = resolve_path(TREATY, "provisions.duration.extensions.length")
    assert length.unit == "years"


def test_resolve_integer_field():
    (target,) = resolve_path(TREATY, "provisions.duration.extensions.max")
    assert target.integer


def test_resolve_missing_leaf_is_created():
    # An optional field that the file leaves out can still be swept.
    (target,) = resolve_path(TREATY, "parties.United States.breach_cost")
    edited = apply_values(TREATY, [((target,), 0.25)])
    assert edited["parties"][0]["breach_cost"] == 0.25


def test_field_of_an_empty_section_is_created():
    # `model:` written empty counts as left out, like `model: {}`.
    treaty = {**TREATY, "model": None}

    (target,) = resolve_path(treaty, "model.grid")
    edited = apply_values(treaty, [((target,), 41.0)])

    assert edited["model"] == {"grid": 41}
    assert treaty["model"] is None


def test_new_state_row_is_not_a_misspelling():
    # State names are the file's own, so a new one is not a misspelt field.
    treaty = {**TREATY, "environment": {"start": "a", "transitions": {"a": {"a": 1.0}}}}

    with pytest.raises(SweepError) as caught:
        resolve_path(treaty, "environment.transitions.c.a")

    assert "environment.transitions has no field 'c' (fields: a); to set a field inside 'c'" in str(caught.value)


def test_empty_whole_number_field_is_integer():
    # `max_uses:` written empty: the grid value replaces it, as a whole number.
    treaty = {**TREATY, "provisions": [{"kind": "escape_hatch", "max_uses": None}]}

    (target,) = resolve_path(treaty, "provisions.escape_hatch.max_uses")

    assert target.integer
    assert apply_values(treaty, [((target,), 2.0)])["provisions"][0]["max_uses"] == 2


def test_deeper_field_of_an_empty_section_is_named():
    with pytest.raises(SweepError) as caught:
        resolve_path({**TREATY, "model": None}, "model.horizon.years")
    assert "model has no field 'horizon' (it is empty)" in str(caught.value)


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("parties.France.discount", "no party named 'France'"),
        ("provisions.review.every", "no provision of kind 'review'"),
        ("environment.states.today.x", "single value"),
        ("environmnt.persistence", "has no field 'environmnt'"),
        ("parties.Russia.regime_value.5.1", "expected an index from 0 to 1"),
        ("parties.Russia.regime_value", "contains a list"),
        ("name", "neither a number nor a duration"),
        ("environment..persistence", "dot-separated"),
        ("parties.Russia", "whole item"),
    ],
)
def test_resolve_errors(path, fragment):
    with pytest.raises(SweepError) as caught:
        resolve_path(TREATY, path)
    assert fragment in str(caught.value)


def test_boolean_field_rejected():
    data = copy.deepcopy(TREATY)
    data["flag"] = True
    with pytest.raises(SweepError, match="boolean"):
        resolve_path(data, "flag")


def test_duplicate_provision_kind_needs_index():
    data = copy.deepcopy(TREATY)
    data["provisions"].append({"kind": "withdrawal", "notice": "1 year"})
    with pytest.raises(SweepError, match="provisions.1.cost"):
        resolve_path(data, "provisions.withdrawal.cost")
    (target,) = resolve_path(data, "provisions.2.notice")
    assert target.keys == ("provisions", 2, "notice")


def test_apply_values_leaves_original_untouched():
    axes = build_axes(TREATY, ["parties.*.discount=0.5:0.9:3", "environment.persistence=0:1:2"])
    edited = apply_values(TREATY, [(axes[0].targets, 0.7), (axes[1].targets, 1.0)])
    assert [party["discount"] for party in edited["parties"]] == [0.7, 0.7]
    assert edited["environment"]["persistence"] == 1.0
    assert TREATY["parties"][0]["discount"] == 0.95


def test_apply_duration_keeps_unit():
    (target,) = resolve_path(TREATY, "provisions.duration.term")
    assert apply_values(TREATY, [((target,), 7.5)])["provisions"][0]["term"] == "7.5 years"
    assert apply_values(TREATY, [((target,), 1.0)])["provisions"][0]["term"] == "1 year"
    assert apply_values(TREATY, [((target,), 12.0)])["provisions"][0]["term"] == "12 years"



def test_apply_duration_thirds_whole_months():
    # 10/3 years is 40 months and 11/3 years is 44 months. The written text
    # must keep enough decimals to stay within the relative 1e-9 that
    # whole_periods allows, since 3.33 years would be 39.96 months.
    (target,) = resolve_path(TREATY, "provisions.duration.term")
    month = parse_duration("1 month")
    for years, months in ((10 / 3, 40), (11 / 3, 44)):
        written = apply_values(TREATY, [((target,), years)])["provisions"][0]["term"]
        assert whole_periods(parse_duration(written), month) == months, written

def test_apply_integer_field_stays_integer():
    (target,) = resolve_path(TREATY, "provisions.duration.extensions.max")
    value = apply_values(TREATY, [((target,), 3.0)])["provisions"][0]["extensions"]["max"]
    assert value == 3
    assert isinstance(value, int)
    fraction = apply_values(TREATY, [((target,), 2.5)])["provisions"][0]["extensions"]["max"]
    assert fraction == 2.5


def test_axes_writing_same_field_rejected():
    # The field is named with the party's name, as the user writes it.
    with pytest.raises(SweepError, match="both set parties.Russia.discount"):
        build_axes(TREATY, ["parties.*.discount=0.5:0.9:3", "parties.Russia.discount=0.5:0.9:3"])


def test_unclosed_quote_position_counts_whole_path():
    with pytest.raises(SweepError, match="at character 9 is not closed"):
        build_axes(TREATY, ['parties."Russia.discount=0.5:0.9:3'])
