"""`treaty compare --json --simulate`: the strictness of each simulated design.

A design simulated at located terms reports them rounded to ``STRICTNESS_DECIMALS``,
the same number as ``scores[].terms``. A design simulated at the file's accepted
proposal echoes the proposal as written, like ``scores[].proposal.strictness``.
"""

import json
from decimal import Decimal

import pytest

import engine.score
from engine.cli import main
from engine.score import STRICTNESS_DECIMALS
from helpers import ESCAPE, write_treaty

HALF_UNIT = Decimal(5) * Decimal(10) ** -(STRICTNESS_DECIMALS + 1)

# Every strictness is in the zone of this game, so the proposal is accepted.
PROPOSAL = "terms: {strictness: 0.4123456789012}"


@pytest.fixture
def recorded_scores(monkeypatch):
    """Run the real solver and keep every ``Score`` it returns, unrounded."""
    scores = []
    solve = engine.score.score_game

    def score_and_record(game):
        score = solve(game)
        scores.append(score)
        return score

    monkeypatch.setattr(engine.score, "score_game", score_and_record)
    return scores


def decimals(number: Decimal) -> int:
    return max(0, -number.as_tuple().exponent)


def compare_json(paths, capsys) -> dict:
    argv = ["compare", *paths, "--json", "--simulate", "--paths", "200", "--seed", "5"]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out, parse_float=Decimal)


def test_simulated_terms_rounded(recorded_scores, tmp_path, capsys):
    paths = [write_treaty(tmp_path, "rigid"), write_treaty(tmp_path, "flexible", ESCAPE)]

    result = compare_json(paths, capsys)

    designs = result["simulation"]["designs"]
    assert len(designs) == len(result["scores"]) == len(recorded_scores) == 2
    # The located terms of these games carry float noise past the 8th decimal
    # (0.6600320000000001 for the rigid design), so an unrounded copy would differ.
    exact = [score.evaluated_strictness for score in recorded_scores]
    assert any(decimals(Decimal(repr(value))) > STRICTNESS_DECIMALS for value in exact)
    for design, item, value in zip(designs, result["scores"], exact):
        written = design["strictness"]
        assert isinstance(written, Decimal)
        assert decimals(written) <= STRICTNESS_DECIMALS, written
        assert written == item["terms"]
        assert abs(written - Decimal(value)) <= HALF_UNIT, f"{written} vs {value!r}"


def test_simulated_proposal_as_written(recorded_scores, tmp_path, capsys):
    paths = [write_treaty(tmp_path, "rigid"), write_treaty(tmp_path, "proposed", PROPOSAL)]

    result = compare_json(paths, capsys)

    proposal = result["scores"][1]["proposal"]
    assert proposal["accepted"] is True
    assert recorded_scores[1].evaluated_strictness == 0.4123456789012
    design = result["simulation"]["designs"][1]
    assert design["strictness"] == Decimal("0.4123456789012")
    assert design["strictness"] == proposal["strictness"]
