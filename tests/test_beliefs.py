"""Belief attitudes (spread, cautious, optimistic) and fragile terms.

The spec starts in a crisis state, where party A's defection value is high.
With every party complying, A's treaty value ``z_A / (1 - delta)`` does not
depend on the persistence ``p``.  Its no-treaty value in the crisis,
``V^P(crisis) = [(I - delta Q) ^ -1 b](crisis)``, rises with ``p`` because a
more persistent chain keeps A longer in the state where defecting pays most;
the right-hand side of its crisis incentive constraint,
``2 b(crisis) + delta (Q V^P)(crisis)``, rises for the same reason.  So a
higher believed persistence lowers A's gain at every strictness and raises
the lowest strictness A accepts (A's regime value rises with strictness).

Hence: cautious A plans for the top of its spread and the zone's lower end
rises; optimistic A plans for the bottom and the lower end falls.  Terms
between the optimistic and the neutral lower end are accepted by optimistic
A but fail its crisis constraint under the declared chain: fragile.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.beliefs import candidate_persistences, choose_persistence, find_fragile
from engine.build import build_game
from engine.cli import main
from engine.errors import SpecError
from engine.loader import parse_treaty_text
from engine.score import score_game

SPEC = """
schema: treaty/v1
name: beliefs
environment:
  start: crisis
  persistence: 0.5
  states: {{calm: 0.7, crisis: 0.3}}
parties:
  - name: A
    discount: 0.9
    defection_value: {{calm: 0.1, crisis: 0.6}}
    regime_value: [[0, 0.2], [1, 0.8]]
    {beliefs}
  - name: B
    discount: 0.9
    defection_value: {{calm: 0.1, crisis: 0.2}}
    regime_value: [[0, 0.7], [1, 0.3]]
{terms}
model: {{grid: 21}}
"""


def spec_with(beliefs: str = "", terms: str = ""):
    return parse_treaty_text(SPEC.format(beliefs=beliefs, terms=terms))


@pytest.fixture(scope="module")
def zones():
    found = {}
    for attitude in ("neutral", "cautious", "optimistic"):
        game = build_game(spec_with(f"beliefs: {{spread: 0.3, attitude: {attitude}}}"))
        found[attitude] = (game, score_game(game))
    return found


def test_attitude_picks_end_of_spread():
    spec = spec_with("beliefs: {spread: 0.3, attitude: cautious}")
    game = build_game(spec_with())
    assert choose_persistence(game, spec, 0) == pytest.approx(0.8)
    spec = spec_with("beliefs: {spread: 0.3, attitude: optimistic}")
    assert choose_persistence(game, spec, 0) == pytest.approx(0.2)


def test_cautious_raises_lower_end(zones):
    assert zones["cautious"][1].zone[0] > zones["neutral"][1].zone[0] + 1e-3


def test_optimistic_lowers_lower_end(zones):
    assert zones["optimistic"][1].zone[0] < zones["neutral"][1].zone[0] - 1e-3


def test_neutral_attitude_keeps_beliefs(zones):
    game = zones["neutral"][0]
    plain = build_game(spec_with())
    assert (game.parties[0].transition == plain.parties[0].transition).all()


def test_optimistic_terms_are_fragile(zones):
    game, score = zones["optimistic"]
    neutral_low = zones["neutral"][1].zone[0]
    between = 0.5 * (score.zone[0] + neutral_low)
    fragile = find_fragile(game, between)
    assert [entry["party"] for entry in fragile] == ["A"]
    assert fragile[0]["state"] == "crisis"
    assert fragile[0]["constraint"] == "incentive"
    assert fragile[0]["shortfall"] > 0


def no_treaty_value_in_crisis(persistence: float) -> float:
    """Return A's value of acting unregulated from the crisis, V^P = (I - delta Q)^-1 b."""
    shares = np.array([0.7, 0.3])
    chain = persistence * np.eye(2) + (1 - persistence) * np.outer(np.ones(2), shares)
    return float(np.linalg.solve(np.eye(2) - 0.9 * chain, np.array([0.1, 0.6]))[1])


def test_participation_fragile_at_optimistic_end():
    # A negotiation cost of 1.5 exceeds A's crisis defection value 0.6, so A's
    # participation binds before its incentive constraint, which needs only
    # V - V^P >= b. At the lower end of the optimistic zone A's own margin
    # V - 1.5 - V^P(p = 0.2) is zero. The treaty value V does not depend on the
    # chain, so under the declared chain (p = 0.5) the margin is
    # V^P(0.2) - V^P(0.5) < 0: A would be better off without the treaty.
    spec = spec_with("beliefs: {spread: 0.3, attitude: optimistic}\n    negotiation_cost: 1.5")
    game = build_game(spec)
    score = score_game(game)
    fragile = find_fragile(game, score.zone[0])

    expected = no_treaty_value_in_crisis(0.5) - no_treaty_value_in_crisis(0.2)
    assert expected > 0
    assert [entry["party"] for entry in fragile] == ["A"]
    assert fragile[0]["constraint"] == "participation"
    assert fragile[0]["state"] == "crisis"
    assert fragile[0]["shortfall"] == pytest.approx(expected, abs=1e-5)


def test_terms_inside_neutral_zone_not_fragile(zones):
    game, _ = zones["optimistic"]
    assert find_fragile(game, 0.9) == []


def test_declared_beliefs_never_fragile(zones):
    game, score = zones["neutral"]
    assert find_fragile(game, score.zone[0]) == []


def test_score_json_reports_fragile(tmp_path, capsys, zones):
    between = 0.5 * (zones["optimistic"][1].zone[0] + zones["neutral"][1].zone[0])
    path = tmp_path / "fragile.yaml"
    path.write_text(SPEC.format(beliefs="beliefs: {spread: 0.3, attitude: optimistic}",
                                terms=f"terms: {{strictness: {between}}}"))
    assert main(["score", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["fragile"][0]["party"] == "A"
    assert any(line.startswith("fragile: A") and "`crisis`" in line for line in result["warnings"])


def test_candidates_clip_to_unit_interval():
    candidates = candidate_persistences(0.9, 0.3)
    assert candidates.min() == pytest.approx(0.6)
    assert candidates.max() == 1.0
    assert 0.9 in candidates


@pytest.mark.parametrize("beliefs", [
    "beliefs: {spread: -0.1}",
    "beliefs: {spread: 0.2, attitude: careless}",
])
def test_invalid_belief_fields(beliefs):
    with pytest.raises(SpecError):
        spec_with(beliefs)
