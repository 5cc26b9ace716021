"""Score and compare text at the edges: values that round to zero, and no treaty concluded."""

from __future__ import annotations

import re

import pytest

from engine.build import build_game
from engine.loader import parse_treaty_text
from engine.report import format_comparison, format_score
from engine.score import PartyScore, Score, score_game

# With discount factors of 0 neither party values the future, so neither
# complies, and the proposal is rejected: no treaty is concluded.
NO_AGREEMENT_PROPOSAL = """
schema: treaty/v1
name: Bilateral fishing accord
period: 1 year
environment:
  start: normal
  persistence: 0.8
  states: {normal: 0.7, scarce: 0.3}
parties:
  - name: Norway
    discount: 0
    defection_value: {normal: 0.3, scarce: 0.8}
    regime_value: [[0, 0.4], [1, 0.6]]
    breach_cost: 0.2
  - name: Iceland
    discount: 0
    defection_value: {normal: 0.35, scarce: 0.7}
    regime_value: [[0, 0.6], [1, 0.35]]
terms: {strictness: 0.5}
"""


def near_zero_score() -> Score:
    """Build a score whose margin, value and slack are negative but round to zero at 4 decimals."""
    party = PartyScore(
        name="Japan", accepts=(0.0, 1.0), value_with_treaty=-0.00003, value_without_treaty=0.5,
        margin=-0.00002, binding={"state": "calm", "constraint": "incentive", "slack": -1e-9},
    )
    return Score(
        treaty="T", schema="treaty/v1", agreement=True, zone=(0.0, 1.0), terms=0.5, parties=[party],
        proposal=None, streams={}, renegotiation_periods=[], survival=[0.9],
        expected_lifetime_years=10.0, settings={"bargaining": "nash-patience"}, converged=True,
        solver={}, evaluated_strictness=0.5,
    )


def test_score_near_zero_prints_unsigned():
    text = format_score(near_zero_score())
    row = next(line for line in text.splitlines() if line.startswith("Japan"))

    assert "-0.0000" not in row
    assert "(slack 0.0000)" in row
    assert re.split(r"\s{2,}", row)[2:5] == ["0.0000", "0.5000", "0.0000"]


def test_compare_near_zero_margin_unsigned():
    score = near_zero_score()

    rows = format_comparison([score, score]).splitlines()
    margin_row = next(line for line in rows if line.startswith("Japan margin"))

    assert re.split(r"\s{2,}", margin_row) == ["Japan margin", "0.0000", "0.0000"]


@pytest.fixture(scope="module")
def no_treaty() -> Score:
    score = score_game(build_game(parse_treaty_text(NO_AGREEMENT_PROPOSAL)))
    assert not score.agreement
    assert not score.proposal["accepted"]
    return score


def test_no_treaty_json_has_no_lifetime(no_treaty):
    result = no_treaty.to_dict()

    assert result["expected_lifetime_years"] is None
    assert set(result["survival"]) == {0.0}


def test_no_treaty_text_has_no_survival(no_treaty):
    lines = format_score(no_treaty).splitlines()

    assert not any("alive after" in line for line in lines)
    assert not any("evaluated at" in line for line in lines)
    assert "  expected lifetime: - (no treaty is concluded, so there is no survival curve)" in lines


def test_no_treaty_compare_has_no_survival(no_treaty):
    rows = format_comparison([no_treaty, no_treaty]).splitlines()

    for label in ("evaluated at", "alive after 10 years", "alive after 25 years"):
        row = next(line for line in rows if line.startswith(label))
        assert re.split(r"\s{2,}", row)[1:] == ["-", "-"], row
