"""The vectorised engine against the plain-loop reference solver in engine.reference."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from engine.build import build_game
from engine.game import Rules
from engine.loader import parse_treaty_text
from engine.phases import NORMAL
from engine.reference import BREAKDOWN, COMPLY, NODE_TOLERANCE, SunsetClock, solve_reference
from engine.reference_bargaining import nash_lottery
from engine.solve import Solver
from helpers import random_game, random_rules

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
    # War never ends, and there z = 0.5 < b = 0.8 for both parties at the middle
    # terms, so a party gives notice and leaves. A breach cost of 2 keeps the
    # notice period from unravelling.
    "notice given in war": """
schema: treaty/v1
name: notice given in war
environment:
  start: calm
  transitions:
    calm: {calm: 0.95, war: 0.05}
    war: {war: 1.0}
parties:
  - {name: A, discount: 0.9, defection_value: {calm: 0.3, war: 0.8}, regime_value: [[0, 0], [1, 1]], breach_cost: 2}
  - {name: B, discount: 0.9, defection_value: {calm: 0.3, war: 0.8}, regime_value: [[0, 1], [1, 0]], breach_cost: 2}
provisions:
  - {kind: withdrawal, notice: 2 years}
model: {grid: 5}
""",
}


@pytest.mark.parametrize("name", sorted(PROVISION_SPECS))
def test_provisions_match_iteration(name):
    assert_same(game_from(PROVISION_SPECS[name]))


def test_provision_specs_use_legal_actions():
    # The specs must give notice somewhere and escape somewhere, or they would
    # not check the notice and escape candidates against the engine. The
    # reference codes notice by party j as 1 + j and its escape as 1 + n + j.
    notices, escapes = 0, 0
    for text in PROVISION_SPECS.values():
        game = game_from(text)
        n = game.n_parties
        for table in solve_reference(game).phase_codes:
            codes = list(table.values())
            notices += sum(1 <= code < 1 + n for code in codes)
            escapes += sum(code >= 1 + n for code in codes)
    assert notices > 0
    assert escapes > 0


# ---------------------------------------------------------- sunset and review


def sunset_tolerance(game):
    """Largest gap between engine and reference expected from their stopping rules with a sunset clause.

    The engine stops iterating the renegotiation value V once
    |R(V) - V| <= tolerance * scale.  While the selected profiles and the
    agreed terms stay the same, R is a contraction with modulus
    c = max_i delta_i ** (term + delay), because a treaty reaches the next
    node no sooner than that, so V is within c / (1 - c) * tolerance * scale
    of the fixed point.  The start values reach V no sooner either, so they
    are as close.  The reference stops once its own bound falls below
    NODE_TOLERANCE * scale.
    """
    core = Solver(game).core
    _, scale = core.value_bounds(core.regime_values(np.linspace(0.0, 1.0, game.settings.grid)))
    duration = game.rules.duration
    modulus = max(party.discount ** (duration.term + duration.delay) for party in game.parties)
    return (modulus / (1.0 - modulus) * game.settings.tolerance + NODE_TOLERANCE) * scale


def assert_same_sunset(game):
    """Compare start values, start codes and the renegotiation value; return engine and reference."""
    solver = Solver(game)
    columns = solver.solve()
    reference = solve_reference(game)
    tolerance = sunset_tolerance(game)
    codes = columns.own.policy.codes[0][:, solver.core.phases.start, :]

    reference_values = np.array(reference.start_values)
    assert reference_values.shape == columns.own.start_values.shape
    assert np.max(np.abs(reference_values - columns.own.start_values)) <= tolerance
    assert np.array_equal(np.array(reference.codes), codes)
    assert np.max(np.abs(np.array(reference.renegotiation_values) - solver.node_own.value)) <= tolerance
    return solver, reference


def engine_lottery(solver, state):
    """The engine's renegotiation lottery in ``state`` as {column: probability}."""
    outcome = solver.node_own
    return {int(column): float(chance) for column, chance in
            zip(outcome.support[:, state], outcome.probability[:, state]) if chance > 0 and column >= 0}


def engine_phase_key(phases, index):
    """The reference's key for the engine's normal phase ``index``."""
    return ("normal", int(phases.uses_left[index]), int(phases.remaining[index]))


def engine_amendments(solver):
    """The engine's amendment choices in the reference's layout: position -> column -> (phase, state) -> target."""
    core = solver.core
    normal = np.flatnonzero(core.phases.kind == NORMAL)
    layout = {}
    for position, choice in solver.reviews.items():
        layout[int(position)] = [
            {(engine_phase_key(core.phases, phase), state): int(choice[column, index, state])
             for index, phase in enumerate(normal) for state in range(core.n_states)}
            for column in range(choice.shape[0])]
    return layout


SUNSET_SPECS = {
    "two parties, one state": """
schema: treaty/v1
name: sunset two parties one state
parties:
  - {name: A, discount: 0.9, defection_value: 0.3, regime_value: [[0, 0.2], [1, 0.8]]}
  - {name: B, discount: 0.8, defection_value: 0.3, regime_value: [[0, 0.8], [1, 0.2]]}
provisions:
  - {kind: duration, term: 5 years, renegotiation: {cost: 0.1}}
model: {grid: 11}
""",
    "delay and extensions": """
schema: treaty/v1
name: sunset delay and extensions
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
provisions:
  - kind: duration
    term: 3 years
    renegotiation: {cost: 0.05, delay: 1 year}
    extensions: {length: 2 years, max: 2}
model: {grid: 11}
""",
    "three parties, utilitarian": """
schema: treaty/v1
name: sunset three parties utilitarian
environment:
  start: today
  persistence: 0.5
  states: {today: 0.6, tense: 0.4}
parties:
  - {name: A, discount: 0.9, defection_value: {today: 0.25, tense: 0.5}, regime_value: [[0, 0.3], [1, 0.7]]}
  - {name: B, discount: 0.85, defection_value: {today: 0.3, tense: 0.45}, regime_value: [[0, 0.7], [1, 0.35]]}
  - {name: C, discount: 0.95, defection_value: {today: 0.2, tense: 0.4},
     regime_value: [[0, 0.5], [0.5, 0.45], [1, 0.3]]}
provisions:
  - {kind: duration, term: 6 years, renegotiation: {cost: 0.05}}
model: {grid: 9, bargaining: utilitarian}
""",
    "withdrawal and escape hatch": """
schema: treaty/v1
name: sunset withdrawal and escape
environment:
  start: calm
  persistence: 0.6
  states: {calm: 0.7, crisis: 0.3}
parties:
  - name: A
    discount: 0.9
    defection_value: {calm: 0.1, crisis: 0.6}
    regime_value: [[0, 0.5], [1, 0.8]]
    breach_cost: 0.2
  - name: B
    discount: 0.9
    defection_value: {calm: 0.1, crisis: 0.5}
    regime_value: [[0, 0.8], [1, 0.5]]
    breach_cost: 0.2
  - name: C
    discount: 0.95
    defection_value: {calm: 0.1, crisis: 0.55}
    regime_value: [[0, 0.6], [1, 0.6]]
provisions:
  - {kind: duration, term: 6 years, renegotiation: {cost: 0.1}}
  - {kind: withdrawal, notice: 2 years, cost: 0.1, earliest: 1 year}
  - kind: escape_hatch
    trigger: {states: [crisis]}
    suspension: 2 years
    cost: 0.05
    cooldown: 1 year
    max_uses: 1
    partner_response: rebalance
model: {grid: 7}
""",
}


@pytest.mark.parametrize("name", sorted(SUNSET_SPECS))
def test_sunset_matches_engine(name):
    assert_same_sunset(game_from(SUNSET_SPECS[name]))


def test_sunset_specs_cover_outcomes():
    # The specs must reach breakdown, an escape, a renegotiation lottery and a
    # single agreed term, or the comparison would skip those paths.
    codes, lotteries, singles = set(), 0, 0
    for text in SUNSET_SPECS.values():
        reference = solve_reference(game_from(text))
        for table in reference.phase_codes:
            codes.update(table.values())
        lotteries += sum(len(agreement) > 1 for agreement in reference.agreements)
        singles += sum(len(agreement) == 1 for agreement in reference.agreements)
    assert BREAKDOWN in codes
    # An escape by party j has code 1 + n + j; the one spec with an escape hatch has three parties.
    escape_by_first_party = 1 + 3 + 0
    assert escape_by_first_party in codes
    assert lotteries > 0
    assert singles > 0


def test_sunset_clock_segments():
    # Two extensions of two years after a three-year term: seven periods in three segments.
    game = game_from(SUNSET_SPECS["delay and extensions"])
    clock = SunsetClock(game.rules.duration, 0, 0)
    assert clock.segment_starts == [0, 3, 5]
    assert clock.following[2] is None
    assert clock.following[6] is None
    assert clock.following[3] == 4


def test_sunset_closed_form_one_column():
    # One state, one term at strictness 0.5, where z = 0.5 for both parties,
    # b = 0.3, delta = 0.9 and 0.8, a five-year term T and a renegotiation cost
    # c = 0.1.  If the treaty is kept throughout and renegotiated each time,
    # the node value solves V = -c + z (1 - delta^T) / (1 - delta) + delta^T V,
    # so V = z / (1 - delta) - c / (1 - delta^T), and the start value is
    # z (1 - delta^T) / (1 - delta) + delta^T V = z / (1 - delta) - delta^T c / (1 - delta^T).
    # It holds: the tightest constraint is the last period before expiry,
    # z + delta V >= 2b + delta b / (1 - delta), that is 2.381 >= 1.8 for B and
    # 4.780 >= 3.3 for A, and V beats the no-treaty value b / (1 - delta).
    game = game_from(SUNSET_SPECS["two parties, one state"])
    reference = solve_reference(game, gammas=[0.5])
    z, b, c, term = 0.5, 0.3, 0.1, 5
    for i, delta in enumerate([0.9, 0.8]):
        node = z / (1 - delta) - c / (1 - delta**term)
        start = z / (1 - delta) - delta**term * c / (1 - delta**term)
        assert node > b / (1 - delta)
        assert reference.renegotiation_values[i][0] == pytest.approx(node, abs=1e-9)
        assert reference.start_values[i][0] == pytest.approx(start, abs=1e-9)
    assert reference.codes == [[COMPLY]]
    assert reference.agreements == [[(0, 1.0)]]


def test_sunset_beliefs_match_engine_own_values():
    # B believes the environment more persistent (0.95 a year) than declared
    # (0.7).  The reference values everything under each party's own chain,
    # as the engine's `own` results do.
    text = REVIEW_SPECS["with sunset"].replace(
        "    discount: 0.85\n", "    discount: 0.85\n    beliefs: {persistence: 0.95}\n")
    game = game_from(text)
    assert not Solver(game).core.beliefs_are_declared
    assert_same_sunset(game)


# Environment and parties of both review cases: both parties gain from
# moving strictness 0 towards 0.5, so reviews amend.
REVIEW_PARTIES = """
environment:
  start: calm
  persistence: 0.7
  states: {calm: 0.8, crisis: 0.2}
parties:
  - name: A
    discount: 0.9
    defection_value: {calm: 0.1, crisis: 0.5}
    regime_value: [[0, 0.3], [1, 0.8]]
  - name: B
    discount: 0.85
    defection_value: {calm: 0.15, crisis: 0.45}
    regime_value: [[0, 0.4], [0.5, 0.75], [1, 0.45]]
"""

REVIEW_SPECS = {
    "without sunset": "schema: treaty/v1\nname: review without sunset" + REVIEW_PARTIES + """provisions:
  - {kind: review, every: 2 years, amendment_cost: 0.05}
  - {kind: withdrawal, notice: 1 year, cost: 0.1, earliest: 3 years}
model: {grid: 11}
""",
    "with sunset": "schema: treaty/v1\nname: review with sunset" + REVIEW_PARTIES + """provisions:
  - {kind: duration, term: 6 years, renegotiation: {cost: 0.1}}
  - {kind: review, every: 2 years, amendment_cost: 0.05}
model: {grid: 11}
""",
}


def test_review_without_sunset_matches_engine():
    # Both parties gain from moving strictness 0 towards 0.5, so the reviews amend.
    reference = assert_same(game_from(REVIEW_SPECS["without sunset"]))
    targets = [target for choices in reference.amendments.values() for column in choices
               for target in column.values()]
    assert any(target >= 0 for target in targets)
    assert any(target < 0 for target in targets)


def test_review_with_sunset_matches_engine():
    solver, reference = assert_same_sunset(game_from(REVIEW_SPECS["with sunset"]))
    # Sunset clocks number positions alike, so the amendment choices compare directly.
    assert reference.amendments == engine_amendments(solver)
    assert any(target >= 0 for choices in reference.amendments.values() for column in choices
               for target in column.values())


def test_cyber_flexible_matches_engine():
    # The catalog's sunset treaty with every provision, at 11 grid points so
    # that the plain loops finish in seconds.  Renegotiation in `obsolete` is
    # a lottery of two terms there, so the lotteries are compared too.
    game = build_game(parse_treaty_text((CATALOG / "cyber-flexible.yaml").read_text()))
    game = dataclasses.replace(game, settings=dataclasses.replace(game.settings, grid=11))
    solver, reference = assert_same_sunset(game)

    assert reference.amendments == engine_amendments(solver)
    obsolete = game.states.index("obsolete")
    assert len(reference.agreements[obsolete]) == 2
    for state in range(game.n_states):
        agreed = dict(reference.agreements[state])
        expected = engine_lottery(solver, state)
        assert sorted(agreed) == sorted(expected)
        for column, chance in expected.items():
            assert agreed[column] == pytest.approx(chance, abs=1e-6)


def test_reference_raises_where_renegotiation_flips():
    # With a four-year term and a renegotiation cost of 0.2 the engine finds
    # no renegotiation outcome consistent by itself and settles on a public
    # draw between two outcomes.  The reference models no draw, so its
    # undamped iteration must move between the outcomes and raise.
    text = SUNSET_SPECS["three parties, utilitarian"].replace(
        "term: 6 years, renegotiation: {cost: 0.05}", "term: 4 years, renegotiation: {cost: 0.2}")
    game = game_from(text)
    solver = Solver(game)
    solver.solve()
    assert any("draw" in note for note in solver.notes)
    with pytest.raises(RuntimeError, match="did not settle"):
        solve_reference(game)


# Random small treaties with several provisions (tests/helpers.py), chosen
# because their reviews amend or their treaties break down somewhere.
COMBINED_SEEDS = [107, 109, 117]


@pytest.mark.parametrize("seed", COMBINED_SEEDS)
def test_random_combined_provisions_match_engine(seed):
    game = random_game(seed)
    rng = np.random.default_rng(10_000 + seed)
    rules = {}
    for kind in ("duration", "withdrawal", "escape", "review"):
        drawn = random_rules(rng, kind, game.n_parties, game.n_states)
        rules[kind] = getattr(drawn, kind)
    game = dataclasses.replace(game, rules=Rules(**rules),
                               settings=dataclasses.replace(game.settings, grid=7))
    assert_same_sunset(game)


# ------------------------------------------------------------ lottery search


def test_nash_lottery_mixes_symmetric_terms():
    # Equal weights, gains (2, 0.5) and (0.5, 2).  Either term alone has a
    # Nash product of 1; the even mix gives (1.25, 1.25) and 1.5625.  At that
    # mix c_k = 0.5 * 2 / 1.25 + 0.5 * 0.5 / 1.25 = 1 for both terms, so it is
    # the optimum over the segment between them.
    support, probabilities = nash_lottery({0: [2.0, 0.5], 1: [0.5, 2.0]}, [0.5, 0.5])
    assert sorted(support) == [0, 1]
    assert probabilities == pytest.approx([0.5, 0.5], abs=1e-12)


def test_nash_lottery_keeps_best_single_term():
    # Adding the term (1.5, 1.5): at u = (1.5, 1.5) the outer terms have
    # c_k = 0.5 * 2 / 1.5 + 0.5 * 0.5 / 1.5 = 0.833 < 1, so the middle term
    # alone is optimal over the hull, and no lottery improves on it.
    support, probabilities = nash_lottery({0: [2.0, 0.5], 1: [1.5, 1.5], 2: [0.5, 2.0]}, [0.5, 0.5])
    assert support == [1]
    assert probabilities == [1.0]


def test_nash_lottery_weights_shift_the_mix():
    # Weights 0.75 and 0.25 over the same two terms.  On the segment
    # u = p (2, 0.5) + (1 - p) (0.5, 2) the first-order condition
    # 0.75 * 1.5 / u_1 = 0.25 * 1.5 / u_2 gives u_1 = 3 u_2, that is
    # 0.5 + 1.5 p = 3 (2 - 1.5 p), so p = 5.5 / 6.
    support, probabilities = nash_lottery({0: [2.0, 0.5], 1: [0.5, 2.0]}, [0.75, 0.25])
    chances = dict(zip(support, probabilities))
    assert chances[0] == pytest.approx(5.5 / 6, abs=1e-12)
    assert chances[1] == pytest.approx(0.5 / 6, abs=1e-12)


def test_nash_lottery_rejects_party_without_gain():
    with pytest.raises(ValueError, match="gains nothing"):
        nash_lottery({0: [1.0, 0.0], 1: [2.0, 0.0]}, [0.5, 0.5])


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


def test_reference_settles_slow_contraction():
    # A one-year term with discount 0.99: the renegotiation map contracts by
    # only 0.99 a step, so it takes thousands of steps. With regime values
    # that do not depend on strictness, V = (z - c) / (1 - delta) and the
    # start value is (z - delta c) / (1 - delta), as in the engine's test of
    # the same treaty; compliance is an equilibrium since z + delta V >= 2b + delta b / (1 - delta).
    text = """
schema: treaty/v1
name: slow contraction
parties:
  - {name: A, discount: 0.99, defection_value: 0.1, regime_value: [[0, 0.5], [1, 0.5]]}
  - {name: B, discount: 0.99, defection_value: 0.1, regime_value: [[0, 0.4], [1, 0.4]]}
provisions:
  - {kind: duration, term: 1 year, renegotiation: {cost: 0.05}}
model: {grid: 3}
"""
    reference = solve_reference(game_from(text))
    assert reference.node_iterations > 1000
    for index, z in enumerate([0.5, 0.4]):
        assert reference.renegotiation_values[index][0] == pytest.approx((z - 0.05) / 0.01, abs=1e-8)
        for start in reference.start_values[index]:
            assert start == pytest.approx((z - 0.99 * 0.05) / 0.01, abs=1e-8)
