"""Why ``treaty score`` rejects a proposal, in the text and in the JSON.

In the file below both parties get 0.3 a year from acting unregulated in
"today" and 0.1 in "later", and the regime gives A the strictness gamma and
B 1 - gamma a year. At gamma = 0.1 A gains 2 * 0.3 = 0.6 at once by breaching
against a regime worth 0.1 a year, and breaches: the treaty breaks down at
once, and A would not comply even with B bound to.
"""

from engine.build import build_game
from engine.loader import parse_treaty_text
from engine.report import format_score
from engine.score import score_game

TEXT = """\
schema: treaty/v1
name: proposal test
environment:
  start: today
  persistence: 0.5
  states: {today: 0.5, later: 0.5}
parties:
  - name: A
    discount: 0.9
    defection_value: {today: 0.3, later: 0.1}
    regime_value: [[0, 0], [1, 1]]
    negotiation_cost: COST
  - name: B
    discount: 0.9
    defection_value: {today: 0.3, later: 0.1}
    regime_value: [[0, 1], [1, 0]]
terms: {strictness: TERMS}
"""


def proposal_line(strictness: float, cost: float = 0.0) -> tuple[dict, str]:
    text = TEXT.replace("TERMS", repr(strictness)).replace("COST", repr(cost))
    score = score_game(build_game(parse_treaty_text(text)))
    line = next(line for line in format_score(score).splitlines() if "proposal at" in line)
    return score.proposal, line.strip()


def test_breakdown_is_the_reason():
    proposal, line = proposal_line(0.1)

    assert proposal["accepted"] is False
    assert proposal["starts_complying"] is False
    assert [party["accepts"] for party in proposal["parties"]] == [False, True]
    assert line == ("proposal at strictness 0.1000: rejected (with every party free to choose, the treaty "
                    "would not start with everyone complying)")


def test_accepted_proposal_has_no_reason():
    proposal, line = proposal_line(0.5)

    assert proposal["accepted"] is True
    assert proposal["starts_complying"] is True
    assert line == "proposal at strictness 0.5000: accepted"


def test_costly_treaty_names_losing_party():
    # A negotiation cost of 100 exceeds anything A can gain: its regime value is
    # at most 1 a year, worth at most 1 / (1 - 0.9) = 10. The treaty is still
    # kept once concluded, so the equilibrium starts with everyone complying.
    proposal, line = proposal_line(0.5, cost=100.0)

    assert proposal["accepted"] is False
    assert proposal["starts_complying"] is True
    assert proposal["parties"][0]["margin"] < 0
    assert proposal["parties"][1]["margin"] > 0
    assert line == "proposal at strictness 0.5000: rejected (A would be worse off than without a treaty)"
