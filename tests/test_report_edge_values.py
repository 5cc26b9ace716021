"""Score and compare text for values that round to zero."""

from __future__ import annotations

import re

from engine.report import format_comparison, format_score
from engine.score import PartyScore, Score


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
