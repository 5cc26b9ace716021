"""The text tables of ``treaty score`` and ``treaty compare``, read back cell by cell.

Each test parses the printed text and compares every number with the field of
the ``Score`` it renders, to within half a unit of the last printed decimal.

Both treaties below have one-year periods and a sticky-jump environment with
persistence 0.6, in which "crisis" has weight 0.25. From "calm" the next
period is "crisis" with probability (1 - 0.6) * 0.25 = 0.1. Party A's
defection value in "crisis" (1.0 in the first treaty, 2.0 in the second) is
above any regime value, so the treaty ends on entering "crisis". At an expiry
of the first treaty it lapses in "crisis" and is renegotiated in "calm", so an
expiry ends it only where entering "crisis" would. Each treaty is therefore
alive after k years with probability 0.9 ** k and lasts 1 / 0.1 = 10 years on
average.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.build import build_game
from engine.loader import parse_treaty_text
from engine.report import format_comparison, format_score
from engine.score import Score, score_game

# A three-year term renegotiated at expiry gives the node table its rows. The
# 26-year horizon covers the 25-year row of the comparison.
SUNSET = """
schema: treaty/v1
name: sunset treaty
environment:
  start: calm
  persistence: 0.6
  states: {calm: 0.75, crisis: 0.25}
parties:
  - name: A
    discount: 0.9
    defection_value: {calm: 0.2, crisis: 1.0}
    regime_value: [[0, 0.3], [1, 0.7]]
  - name: B
    discount: 0.85
    defection_value: {calm: 0.2, crisis: 0.45}
    regime_value: [[0, 0.7], [1, 0.3]]
model: {grid: 21, horizon: 26 years}
provisions:
  - kind: duration
    term: 3 years
    renegotiation: {cost: 0.5, delay: 0 years}
"""

# The accepted sets overlap in about [0.409, 0.445], which contains none of the
# 11-point grid, so the zone is found from the proposal at 0.43 instead.
OFF_GRID_PROPOSAL = """
schema: treaty/v1
name: off-grid proposal
terms: {strictness: 0.43}
environment:
  start: calm
  persistence: 0.6
  states: {calm: 0.75, crisis: 0.25}
parties:
  - name: A
    discount: 0.6
    defection_value: {calm: 0.28, crisis: 2.0}
    regime_value: [[0, 0], [1, 1]]
  - name: B
    discount: 0.6
    defection_value: {calm: 0.38, crisis: 2.0}
    regime_value: [[0, 1], [1, 0]]
model: {grid: 11, horizon: 30 years}
"""

# Half a unit of the last decimal of a 4-decimal and of a 3-decimal cell.
FOUR_DECIMALS = 5e-5
THREE_DECIMALS = 5e-4


def score_text(text: str) -> Score:
    return score_game(build_game(parse_treaty_text(text)))


@pytest.fixture(scope="module")
def sunset() -> Score:
    score = score_text(SUNSET)
    assert score.agreement, "the sunset treaty must reach agreement"
    return score


@pytest.fixture(scope="module")
def off_grid() -> Score:
    score = score_text(OFF_GRID_PROPOSAL)
    assert score.agreement
    assert score.proposal["accepted"]
    return score


def read_table(lines: list[str], start: int) -> list[dict[str, str]]:
    """Return the body rows of the table whose header is ``lines[start]``.

    The runs of dashes under the header give the column positions, and the
    last column runs to the end of the line. The table ends at a blank line,
    an indented note or a warning.
    """
    starts = [match.start() for match in re.finditer(r"-+", lines[start + 1])]
    ends = starts[1:] + [None]

    def cells(line: str) -> list[str]:
        return [line[begin:end].strip() for begin, end in zip(starts, ends)]

    header = cells(lines[start])
    rows = []
    for line in lines[start + 2:]:
        if not line.strip() or line.startswith((" ", "warning")):
            break
        rows.append(dict(zip(header, cells(line))))
    return rows


def find_table(lines: list[str], first_header: str) -> list[dict[str, str]]:
    start = next(index for index, line in enumerate(lines) if line.startswith(first_header))
    return read_table(lines, start)


def summary_value(text: str, label: str) -> str:
    """Return what the summary line ``  label: ...`` of ``format_score`` prints."""
    match = re.search(rf"^  {re.escape(label)}: (.*)$", text, re.MULTILINE)
    assert match, f"no `{label}` line in:\n{text}"
    return match.group(1)


def alive_marks(text: str) -> dict[int, float]:
    """Parse ``1 y 0.900, 5 y 0.590, ...`` from the `alive after` line into {year: share}."""
    marks = {}
    for item in summary_value(text, "alive after").split(", "):
        year, share = item.split(" y ")
        marks[int(year)] = float(share)
    return marks


def test_score_table_party_values(sunset):
    # Each party's value differs with and without the treaty by more than the
    # printed precision, so swapped columns would show.
    for party in sunset.parties:
        assert abs(party.value_with_treaty - party.value_without_treaty) > 1e-3

    rows = find_table(format_score(sunset).splitlines(), "party ")

    assert [row["party"] for row in rows] == [party.name for party in sunset.parties]
    for party, row in zip(sunset.parties, rows):
        assert float(row["with treaty"]) == pytest.approx(party.value_with_treaty, abs=FOUR_DECIMALS)
        assert float(row["without"]) == pytest.approx(party.value_without_treaty, abs=FOUR_DECIMALS)
        assert float(row["margin"]) == pytest.approx(party.margin, abs=FOUR_DECIMALS)


def test_score_terms_and_zone_lines(sunset):
    text = format_score(sunset)
    low, high = summary_value(text, "zone of agreement").strip("[]").split(", ")

    assert float(summary_value(text, "terms (nash-patience)")) == pytest.approx(sunset.terms, abs=FOUR_DECIMALS)
    assert float(low) == pytest.approx(sunset.zone[0], abs=FOUR_DECIMALS)
    assert float(high) == pytest.approx(sunset.zone[1], abs=FOUR_DECIMALS)


def test_score_node_table_columns(sunset):
    nodes = sunset.renegotiation_periods[:12]
    # P(reached) and P(success | reached) differ at some node, so swapped
    # columns would show.
    assert any(abs(node["p_alive"] - node["p_success"]) > 1e-3 for node in nodes)

    rows = find_table(format_score(sunset).splitlines(), "year ")

    assert len(rows) == len(nodes)
    for node, row in zip(nodes, rows):
        assert float(row["year"]) == node["year"]
        assert row["node"] == node["kind"]
        assert float(row["P(reached)"]) == pytest.approx(node["p_alive"], abs=THREE_DECIMALS)
        assert float(row["P(success | reached)"]) == pytest.approx(node["p_success"], abs=THREE_DECIMALS)


def test_score_alive_after_one_year(sunset):
    # survival[k - 1] is the share alive at the end of year k: 0.9 after one
    # year (see the module docstring) and 0.9 ** 2 = 0.81 after two.
    assert sunset.survival[0] == pytest.approx(0.9, abs=1e-9)
    assert sunset.survival[1] == pytest.approx(0.81, abs=1e-9)

    marks = alive_marks(format_score(sunset))

    assert list(marks) == [1, 5, 10, 25, 26]
    assert marks[1] == pytest.approx(0.9, abs=THREE_DECIMALS)
    for year, share in marks.items():
        assert share == pytest.approx(sunset.survival[year - 1], abs=THREE_DECIMALS), year


def test_score_off_grid_proposal_lines(off_grid):
    # The accepted proposal is evaluated, so the outlook is that of the
    # proposal: 1 / 0.1 = 10 years on average (module docstring).
    assert off_grid.evaluated_strictness == pytest.approx(0.43)
    assert off_grid.expected_lifetime_years == pytest.approx(10.0, rel=1e-6)

    text = format_score(off_grid)

    assert summary_value(text, "verdict") == "AGREEMENT predicted"
    assert summary_value(text, "proposal at strictness 0.4300") == "accepted"
    assert summary_value(text, "expected lifetime") == f"{off_grid.expected_lifetime_years:.1f} years"
    assert alive_marks(text)[1] == pytest.approx(off_grid.survival[0], abs=THREE_DECIMALS)


def test_compare_table_cells(sunset, off_grid):
    # The shares alive after 10 and 25 years, 0.9 ** 10 and 0.9 ** 25, differ
    # from those a year later by more than the printed precision.
    assert sunset.survival[9] == pytest.approx(0.9**10, abs=1e-9)
    assert sunset.survival[24] == pytest.approx(0.9**25, abs=1e-9)

    lines = format_comparison([sunset, off_grid]).splitlines()
    table = {row[""]: row for row in read_table(lines, 0)}
    column = sunset.treaty

    assert list(table["verdict"].values())[1:] == ["agreement", "agreement"]
    assert float(table["terms"][column]) == pytest.approx(sunset.terms, abs=FOUR_DECIMALS)
    assert table["expected lifetime"][column] == f"{sunset.expected_lifetime_years:.1f} years"
    assert float(table["alive after 10 years"][column]) == pytest.approx(sunset.survival[9], abs=THREE_DECIMALS)
    assert float(table["alive after 25 years"][column]) == pytest.approx(sunset.survival[24], abs=THREE_DECIMALS)
    for party in sunset.parties:
        assert float(table[f"{party.name} margin"][column]) == pytest.approx(party.margin, abs=FOUR_DECIMALS)


def test_compare_proposal_lifetime(sunset, off_grid):
    lines = format_comparison([sunset, off_grid]).splitlines()
    table = {row[""]: row for row in read_table(lines, 0)}
    column = off_grid.treaty

    assert float(table["terms"][column]) == pytest.approx(off_grid.terms, abs=FOUR_DECIMALS)
    assert table["expected lifetime"][column] == f"{off_grid.expected_lifetime_years:.1f} years"
    for party in off_grid.parties:
        assert float(table[f"{party.name} margin"][column]) == pytest.approx(party.margin, abs=FOUR_DECIMALS)


def test_renegotiation_terms_without_agreement():
    # The flexible cyber draft with persistence 0.1 reaches no agreement, and
    # its renegotiation terms are what an expiry would bring had it been concluded.
    text = (Path(__file__).resolve().parent.parent / "treaties" / "cyber-flexible.yaml").read_text()
    score = score_text(text.replace("persistence: 0.30", "persistence: 0.10"))
    lines = format_score(score).splitlines()

    assert not score.agreement
    assert score.renegotiation_terms
    assert "terms that would be agreed at an expiry, had a treaty been concluded (probability):" in lines
    assert "terms agreed when renegotiated at expiry (probability):" not in lines
