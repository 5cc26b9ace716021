"""Terms agreed at expiry must start with everyone complying, and a lapse that this rule causes is explained."""

import numpy as np

from engine.build import build_game
from engine.dynamic import COMPLY, NOTICE_CODE, NodeOutcome
from engine.loader import parse_treaty_text
from engine.score import score_game
from engine.solve import Solver

# In `crisis` each party's defection value (0.9, 0.8) beats its regime value at
# any strictness (at most 0.8, and 0.5 at the middle terms), and the escape
# hatch is open there with the partner released. So a treaty renegotiated in
# `crisis` would start with an escape, and the parties would still gain from
# it, because it resumes after one year.
ESCAPE_AT_EXPIRY = """schema: treaty/v1
name: escape at expiry
period: 1 year
environment:
  start: calm
  persistence: 0.8
  states: {calm: 0.7, crisis: 0.3}
parties:
  - {name: A, discount: 0.9, defection_value: {calm: 0.3, crisis: 0.9}, regime_value: [[0, 0.2], [1, 0.8]]}
  - {name: B, discount: 0.9, defection_value: {calm: 0.3, crisis: 0.8}, regime_value: [[0, 0.8], [1, 0.2]]}
provisions:
  - kind: duration
    term: 4 years
    renegotiation: {cost: 0.05}
  - kind: escape_hatch
    trigger: {states: [crisis]}
    suspension: 1 year
    partner_response: rebalance
model: {grid: 21}
"""

WARNING = ("renegotiation at an expiry in state `crisis` fails although every party would gain from "
           "some new terms: there the new treaty would start with A invoking the escape hatch, "
           "and terms are agreed only if the treaty starts with everyone complying")


def test_held_back_terms_are_gainful():
    game = build_game(parse_treaty_text(ESCAPE_AT_EXPIRY))
    solver = Solver(game)
    base = solver.solve()
    core = solver.core
    crisis = game.states.index("crisis")

    # The gains recomputed from the solved grid, apart from the bargaining.
    fresh = base.own.values[0][:, :, core.phases.start, :]
    gains = solver.offered_values(fresh, core.own) - core.own.no_treaty[:, None, :]
    starts = base.own.policy.codes[0][:, core.phases.start, crisis]
    gaining = np.all(gains[:, :, crisis] >= 0, axis=0)
    escape_by_a = NOTICE_CODE + game.n_parties + 0

    node = solver.node_own
    assert gaining.any()
    assert not node.feasible[:, crisis].any()
    assert np.all(node.support[:, crisis] == -1)
    assert np.array_equal(node.held_back[:, crisis] != COMPLY, gaining)
    assert np.all(starts[gaining] == escape_by_a)
    assert np.all(node.held_back[gaining, crisis] == escape_by_a)


def test_start_rule_lapse_warning():
    score = score_game(build_game(parse_treaty_text(ESCAPE_AT_EXPIRY)))

    assert score.renegotiation_terms["crisis"] == []
    assert WARNING in score.warnings


def test_no_warning_without_gains():
    # Without the escape hatch no party complies in `crisis`, so a new treaty
    # there breaks down at once and no party gains from it. The lapse then
    # needs no warning.
    text = ESCAPE_AT_EXPIRY.split("  - kind: escape_hatch")[0] + "model: {grid: 21}\n"
    score = score_game(build_game(parse_treaty_text(text)))

    assert score.renegotiation_terms["crisis"] == []
    assert not any("lapses although" in warning for warning in score.warnings)


def test_start_rule_warning_names_each_start():
    # Held-back terms that would start with B's notice at one strictness and
    # A's escape at another are both named.
    game = build_game(parse_treaty_text(ESCAPE_AT_EXPIRY))
    solver = Solver(game)
    columns, states = game.settings.grid, len(game.states)
    held_back = np.full((columns, states), COMPLY, dtype=np.int8)
    held_back[3, 1] = NOTICE_CODE + 1
    held_back[5, 1] = NOTICE_CODE + game.n_parties + 0
    outcome = NodeOutcome(support=np.full((1, states), -1), value=None, probability=np.ones((1, states)),
                          feasible=np.zeros((columns, states), dtype=bool), held_back=held_back)

    notes = solver._start_rule_notes(outcome)

    assert len(notes) == 1
    assert notes[0].startswith("renegotiation at an expiry in state `crisis` fails")
    assert "would start with B giving notice or A invoking the escape hatch," in notes[0]


# Iceland's incentive fails in `normal` at every strictness, so every treaty
# breaks down as soon as it starts. After the 100-year delay of renegotiation
# it then gives each party exactly what the lapse gives: nothing is agreed.
BREAKS_DOWN_AT_ONCE = """schema: treaty/v1
name: breaks down at once
environment:
  start: normal
  persistence: 0.8
  states: {normal: 0.7, scarce: 0.3}
parties:
  - name: Norway
    discount: 0.93
    defection_value: {normal: 0.3, scarce: 0.8}
    regime_value: [[0, 0.4], [1, 0.6]]
    breach_cost: 0.2
  - name: Iceland
    discount: 0.9
    defection_value: {normal: 0.35, scarce: 0.7}
    regime_value: [[0, 0.6], [1, 0.35]]
provisions:
  - {kind: duration, term: 5 years, renegotiation: {delay: 100 years}}
"""


def test_no_terms_agreed_that_gain_nothing():
    score = score_game(build_game(parse_treaty_text(BREAKS_DOWN_AT_ONCE)))

    assert not score.agreement
    assert all(not entries for entries in score.to_dict()["renegotiation_terms"].values())
