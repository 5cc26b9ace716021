"""Intervals in the text output, rounded inwards so that every printed point lies inside.

The zone, each party's accepted set and the zone column of a sweep table are
printed with 4 decimals, the lower end rounded up and the upper end down, as
JSON rounds them at 8 decimals. An interval too narrow for 4 decimals gets
more, and the printed terms stay inside the printed zone.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from engine.build import build_game
from engine.loader import parse_treaty_text
from engine.report import format_comparison, format_score
from engine.score import PartyScore, Score, _intervals_text, score_game
from engine.sweep_axes import Axis
from engine.sweep_results import SweepResult, format_table

# The zone of this treaty is about [0.47645322, 0.77547619]. Nearest rounding
# prints its upper end as 0.7755, a proposal the treaty rejects.
TWO_PARTIES = """
schema: treaty/v1
name: Two-party sketch
environment:
  start: today
  persistence: 0.5
  states: {today: 0.5, later: 0.5}
parties:
  - name: A
    discount: 0.3428571
    defection_value: {today: 0.3, later: 0.1}
    regime_value: [[0, 0], [1, 1]]
  - name: B
    discount: 0.95
    defection_value: {today: 0.3, later: 0.1}
    regime_value: [[0, 1], [1, 0]]
"""

INTERVAL = re.compile(r"\[(\d+\.\d+), (\d+\.\d+)\]")


def make_score(zone: tuple[float, float], terms: float, accepts: tuple[float, float]) -> Score:
    party = PartyScore(name="A", accepts=accepts, value_with_treaty=1.0, value_without_treaty=0.5,
                       margin=0.5, binding=None)
    return Score(
        treaty="T", schema="treaty/v1", agreement=True, zone=zone, terms=terms, parties=[party],
        proposal=None, streams={}, renegotiation_periods=[], survival=[0.9],
        expected_lifetime_years=10.0, settings={"bargaining": "nash-patience"}, converged=True,
        solver={}, evaluated_strictness=terms,
    )


def printed_ends(text: str) -> tuple[str, str]:
    match = INTERVAL.search(text)
    assert match, f"no interval in {text!r}"
    return match.group(1), match.group(2)


def zone_line(text: str) -> str:
    return next(line for line in text.splitlines() if "zone of agreement:" in line)


def terms_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("  terms ("))


@pytest.mark.parametrize(
    "zone, expected",
    [
        # Nearest rounding would print 0.5018 and 0.7755, past the upper ends.
        ((0.21406752, 0.50176044), ("0.2141", "0.5017")),
        ((0.47645322, 0.77547619), ("0.4765", "0.7754")),
        # Ends that are already whole 4-decimal values stay as they are.
        ((0.2, 0.5), ("0.2000", "0.5000")),
        ((0.0, 1.0), ("0.0000", "1.0000")),
    ],
)
def test_score_zone_rounded_inwards(zone, expected):
    text = format_score(make_score(zone, zone[0], zone))

    assert printed_ends(zone_line(text)) == expected


@pytest.mark.parametrize(
    "zone, expected",
    [
        # At 4 decimals the ends would cross (0.4344 > 0.4343), so 6 are printed.
        ((0.434361, 0.434369), ("0.434361", "0.434369")),
        # A zero-width zone with 8 decimals prints them all.
        ((0.43436891, 0.43436891), ("0.43436891", "0.43436891")),
        # Narrower than 1e-8: both ends are printed as JSON writes them.
        ((0.1234567811, 0.1234567812), ("0.12345678", "0.12345678")),
        # A zero-width zone at a 4-decimal value keeps 4 decimals.
        ((0.5, 0.5), ("0.5000", "0.5000")),
    ],
)
def test_score_narrow_zone_gets_more_decimals(zone, expected):
    text = format_score(make_score(zone, zone[0], zone))

    assert printed_ends(zone_line(text)) == expected


def test_score_narrow_zone_terms_match_decimals():
    text = format_score(make_score((0.434361, 0.434369), 0.4343654, (0.0, 1.0)))

    assert terms_line(text).endswith(": 0.434365")


def test_score_terms_inside_printed_zone():
    # Terms at the upper end of the zone would round to 0.5018, past the printed end.
    zone = (0.21406752, 0.50176044)

    text = format_score(make_score(zone, 0.50176044, zone))

    low, high = printed_ends(zone_line(text))
    terms = terms_line(text).rsplit(" ", 1)[1]
    assert terms == "0.5017"
    assert float(low) <= float(terms) <= float(high)


def test_score_accepted_set_rounded_inwards():
    text = format_score(make_score((0.3, 0.4), 0.35, (0.12665401, 0.50176044)))
    row = next(line for line in text.splitlines() if line.startswith("A "))

    assert printed_ends(row) == ("0.1267", "0.5017")


def test_compare_intervals_rounded_inwards():
    score = make_score((0.21406752, 0.50176044), 0.43436891, (0.12665401, 0.50176044))

    rows = {line.split("  ")[0]: line for line in format_comparison([score, score]).splitlines()}

    assert INTERVAL.findall(rows["zone"]) == [("0.2141", "0.5017")] * 2
    assert INTERVAL.findall(rows["A accepts"]) == [("0.1267", "0.5017")] * 2


def test_sweep_table_zone_rounded_inwards():
    axis = Axis(path="parties.A.discount", values=np.array([0.5]))
    row = {
        "parties.A.discount": 0.5, "status": "ok", "agreement": True,
        "zone_low": 0.21406752, "zone_high": 0.50176044, "terms": 0.50176044,
        "margin_A": 0.3, "expected_lifetime_years": 12.0, "message": "",
        "evaluated_at": "terms", "evaluated_strictness": 0.50176044,
    }
    result = SweepResult(filename="t.yaml", formula="engine", axes=[axis], parties=["A"], rows=[row])

    line = format_table(result).splitlines()[1]

    assert printed_ends(line) == ("0.2141", "0.5017")
    assert line.split()[5] == "0.5017"


@pytest.fixture(scope="module")
def two_party_text() -> str:
    return format_score(score_game(build_game(parse_treaty_text(TWO_PARTIES))))


@pytest.mark.parametrize("end", [0, 1])
def test_proposal_at_printed_end_accepted(two_party_text, end):
    printed = printed_ends(zone_line(two_party_text))[end]

    proposal = TWO_PARTIES + f"terms: {{strictness: {printed}}}\n"
    score = score_game(build_game(parse_treaty_text(proposal)))

    assert score.proposal["accepted"], f"proposal at printed end {printed} rejected"


def test_warning_intervals_round_inwards():
    # Nearest rounding would print 0.12345678, below the located end, and the
    # old six significant digits 0.123457; inward rounding keeps both ends inside.
    text = _intervals_text([(0.1234567811, 0.5), (0.2, 0.30000000999)])

    assert text == "[0.12345679, 0.5], [0.2, 0.3]"
