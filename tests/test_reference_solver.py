"""The vectorised engine against the plain-loop reference solver in engine.reference."""

from pathlib import Path

import numpy as np
import pytest

from engine.build import build_game
from engine.loader import parse_treaty_text
from engine.reference import BREAKDOWN, COMPLY, solve_reference
from engine.solve import Solver

CATALOG = Path(__file__).resolve().parent.parent / "treaties"
TOLERANCE = 1e-8


def game_from(text: str):
    return build_game(parse_treaty_text(text))


def engine_start(game):
    """Start values (party, column) and start-phase codes (column, state) of the engine."""
    solver = Solver(game)
    columns = solver.solve()
    codes = columns.own.policy.codes[0][:, solver.core.phases.start, :]
    return columns.own.start_values, codes


def assert_same(game, method="iteration"):
    values, codes = engine_start(game)
    reference = solve_reference(game, method=method)

    reference_values = np.array(reference.start_values)
    reference_codes = np.array(reference.codes)
    assert reference_values.shape == values.shape
    assert np.max(np.abs(reference_values - values)) <= TOLERANCE
    assert np.array_equal(reference_codes, codes)
    return reference


# Every regime value is at least every defection value, so deleting a state
# never raises a value elsewhere and deletion agrees with iteration.
RIGID_SPECS = {
    "two parties, one state": """
schema: treaty/v1
name: two parties one state
parties:
  - {name: A, discount: 0.9, defection_value: 0.3, regime_value: [[0, 0.2], [1, 0.8]]}
  - {name: B, discount: 0.8, defection_value: 0.3, regime_value: [[0, 0.8], [1, 0.2]]}
model: {grid: 11}
""",
    "three parties, one state": """
schema: treaty/v1
name: three parties one state
parties:
  - {name: A, discount: 0.9, defection_value: 0.25, regime_value: [[0, 0.3], [1, 0.7]]}
  - {name: B, discount: 0.85, defection_value: 0.30, regime_value: [[0, 0.7], [1, 0.35]]}
  - {name: C, discount: 0.95, defection_value: 0.20, regime_value: [[0, 0.5], [0.5, 0.45], [1, 0.3]]}
model: {grid: 9}
""",
    "two parties, two states": """
schema: treaty/v1
name: two parties two states
environment:
  start: calm
  persistence: 0.7
  states: {calm: 0.8, crisis: 0.2}
parties:
  - name: A
    discount: 0.9
    defection_value: {calm: 0.1, crisis: 0.45}
    regime_value: [[0, 0.45], [1, 0.9]]
  - name: B
    discount: 0.85
    defection_value: {calm: 0.15, crisis: 0.4}
    regime_value: [[0, 0.9], [1, 0.4]]
model: {grid: 11}
""",
    "three parties, three states, quarterly": """
schema: treaty/v1
name: three parties three states
period: 3 months
environment:
  start: today
  persistence: 0.5
  states: {today: 0.6, tense: 0.3, calm: 0.1}
parties:
  - name: A
    discount: 0.95
    defection_value: {today: 0.3, tense: 0.5, calm: 0.05}
    regime_value: [[0, 0.5], [1, 0.8]]
    breach_cost: 0.02
  - name: B
    discount: 0.9
    defection_value: {today: 0.35, tense: 0.5, calm: 0.05}
    regime_value: [[0, 0.8], [1, 0.5]]
  - name: C
    discount: 0.97
    defection_value: {today: 0.3, tense: 0.45, calm: 0.05}
    regime_value: [[0, 0.6], [0.5, 0.55], [1, 0.5]]
model: {grid: 7}
""",
}


@pytest.mark.parametrize("name", sorted(RIGID_SPECS))
def test_rigid_matches_iteration(name):
    assert_same(game_from(RIGID_SPECS[name]), method="iteration")


@pytest.mark.parametrize("name", sorted(RIGID_SPECS))
def test_rigid_matches_deletion(name):
    assert_same(game_from(RIGID_SPECS[name]), method="deletion")


def test_rigid_specs_cover_both_outcomes():
    # A comparison only where the treaty always holds, or never, would not
    # check the incentive constraints, so the specs must contain both codes.
    seen = set()
    for text in RIGID_SPECS.values():
        seen.update(np.unique(solve_reference(game_from(text)).codes).tolist())
    assert COMPLY in seen
    assert BREAKDOWN in seen


def test_reference_folk_bound_closed_form():
    # One state, two parties, grim trigger.  Complying for ever is worth
    # z / (1 - delta); breaching pays 2b once and then b for ever, which is
    # 2b + delta b / (1 - delta).  Compliance holds iff z >= b (2 - delta), and
    # otherwise the party gets the no-treaty value b / (1 - delta).
    game = game_from(RIGID_SPECS["two parties, one state"])
    gammas = [k / 20 for k in range(21)]
    reference = solve_reference(game, gammas=gammas)
    parties = game.parties
    for column, gamma in enumerate(gammas):
        z = [float(party.regime_value(np.array([gamma]))[0]) for party in parties]
        b = [float(party.defection[0]) for party in parties]
        delta = [party.discount for party in parties]
        holds = all(z[i] >= b[i] * (2 - delta[i]) for i in range(2))
        assert reference.codes[column][0] == (COMPLY if holds else BREAKDOWN)
        for i in range(2):
            expected = z[i] / (1 - delta[i]) if holds else b[i] / (1 - delta[i])
            assert reference.start_values[i][column] == pytest.approx(expected, abs=1e-10)


def test_rigid_one_party_strategic():
    game = game_from(RIGID_SPECS["two parties, two states"])
    for party in range(2):
        strategic = np.zeros(2, dtype=bool)
        strategic[party] = True
        columns = Solver(game, strategic).solve()
        reference = solve_reference(game, strategic=strategic.tolist())
        assert np.max(np.abs(np.array(reference.start_values) - columns.own.start_values)) <= TOLERANCE
        assert np.array_equal(np.array(reference.codes), columns.own.policy.codes[0][:, 0, :])


PROVISION_SPECS = {
    "withdrawal with notice": """
schema: treaty/v1
name: withdrawal with notice
environment:
  start: calm
  persistence: 0.7
  states: {calm: 0.8, crisis: 0.2}
parties:
  - name: A
    discount: 0.9
    defection_value: {calm: 0.1, crisis: 0.45}
    regime_value: [[0, 0.45], [1, 0.9]]
    breach_cost: 0.3
  - name: B
    discount: 0.85
    defection_value: {calm: 0.15, crisis: 0.4}
    regime_value: [[0, 0.9], [1, 0.4]]
    breach_cost: 0.3
provisions:
  - {kind: withdrawal, notice: 2 years, cost: 0.05, earliest: 1 year}
model: {grid: 7}
""",
    "escape hatch, two uses": """
schema: treaty/v1
name: escape hatch two uses
environment:
  start: calm
  persistence: 0.7
  states: {calm: 0.8, crisis: 0.2}
parties:
  - name: A
    discount: 0.9
    defection_value: {calm: 0.1, crisis: 0.5}
    regime_value: [[0, 0.45], [1, 0.9]]
  - name: B
    discount: 0.85
    defection_value: {calm: 0.15, crisis: 0.5}
    regime_value: [[0, 0.9], [1, 0.4]]
provisions:
  - kind: escape_hatch
    trigger: {states: [crisis]}
    suspension: 2 years
    cost: 0.05
    cost_type: deadweight
    cooldown: 1 year
    max_uses: 2
    partner_response: rebalance
model: {grid: 7}
""",
    "escape and withdrawal, three parties": """
schema: treaty/v1
name: escape and withdrawal three parties
environment:
  start: calm
  persistence: 0.6
  states: {calm: 0.7, crisis: 0.3}
parties:
  - name: A
    discount: 0.9
    defection_value: {calm: 0.1, crisis: 0.5}
    regime_value: [[0, 0.5], [1, 0.8]]
  - name: B
    discount: 0.9
    defection_value: {calm: 0.1, crisis: 0.3}
    regime_value: [[0, 0.8], [1, 0.5]]
  - name: C
    discount: 0.95
    defection_value: {calm: 0.1, crisis: 0.4}
    regime_value: [[0, 0.6], [1, 0.6]]
provisions:
  - {kind: withdrawal, notice: 1 year, cost: 0.1}
  - kind: escape_hatch
    trigger: {defection_value_at_least: 0.4}
    suspension: 1 year
    cost: 0.02
    partner_response: rebalance
model: {grid: 5}
""",
}


@pytest.mark.parametrize("name", sorted(PROVISION_SPECS))
def test_provisions_match_iteration(name):
    assert_same(game_from(PROVISION_SPECS[name]))


def test_provision_specs_use_legal_actions():
    # The specs must make some profile other than plain compliance optimal
    # somewhere, or they would not check the notice and escape candidates.
    codes = set()
    for text in PROVISION_SPECS.values():
        for table in solve_reference(game_from(text)).phase_codes:
            codes.update(table.values())
    assert any(code > COMPLY for code in codes)


def test_reference_rejects_sunset():
    text = RIGID_SPECS["two parties, one state"] + "provisions:\n  - {kind: duration, term: 5 years}\n"
    with pytest.raises(ValueError, match="duration and review"):
        solve_reference(game_from(text))


# Cases where value iteration passes through a policy whose exact value lies
# below the most cooperative fixed point; an engine that jumps to that exact
# value ends in a worse equilibrium.  In cyber-rigid.yaml at strictness 0.6
# compliance in `today` and `obsolete` is a strict equilibrium; in
# hague-1907-balloons.yaml at 0.1 compliance holds in `early_aviation`.
CATALOG_CASES = [("cyber-rigid.yaml", 0.6), ("hague-1907-balloons.yaml", 0.1),
                 ("geneva-protocol-1925.yaml", 0.2)]


@pytest.mark.parametrize("filename, gamma", CATALOG_CASES)
def test_catalog_most_cooperative_fixed_point(filename, gamma):
    game = build_game(parse_treaty_text((CATALOG / filename).read_text()))
    solver = Solver(game)
    columns = solver.evaluate([gamma])
    reference = solve_reference(game, gammas=[gamma])
    start = solver.core.phases.start
    assert reference.codes[0][game.start] == COMPLY
    assert np.max(np.abs(np.array(reference.start_values) - columns.own.start_values)) <= TOLERANCE
    assert np.array_equal(np.array(reference.codes), columns.own.policy.codes[0][:, start, :])
