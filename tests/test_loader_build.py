"""Compiling a spec into the solver's Game: unit conversions and provision rules."""

from pathlib import Path

import numpy as np
import pytest

from engine.build import build_game
from engine.environment import sticky_jump_matrix
from engine.loader import load_treaty, parse_treaty_text

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def full_game():
    return build_game(load_treaty(DATA / "full.yaml"))


def test_period_conversion(full_game):
    # The file's period is 3 months, so t = 0.25 years per period.
    assert full_game.period_years == 0.25
    assert full_game.states == ("today", "breakthrough", "obsolete")
    assert full_game.start == 0


def test_discount_per_period(full_game):
    # A yearly discount d becomes d ** t per period.
    assert full_game.parties[0].discount == pytest.approx(0.95**0.25, abs=1e-15)
    assert full_game.parties[1].discount == pytest.approx(0.90**0.25, abs=1e-15)


def test_flows_scaled_costs_not(full_game):
    # Yearly rates times t give per-period flows; one-off costs keep their value.
    us = full_game.parties[0]
    np.testing.assert_allclose(us.defection, [0.40 * 0.25, 0.90 * 0.25, 0.05 * 0.25])
    np.testing.assert_allclose(us.regime_points, [[0, 0.20 * 0.25], [1, 0.75 * 0.25]])
    assert us.negotiation_cost == 0.01
    assert full_game.rules.withdrawal.cost == 0.10
    assert full_game.rules.duration.renegotiation_cost == 0.05


def test_sticky_chain_per_period(full_game):
    # Persistence 0.85 per year is 0.85 ** 0.25 per quarter; Q = p I + (1 - p) 1 f^T.
    p = 0.85**0.25
    f = np.array([0.6, 0.25, 0.15])
    expected = p * np.eye(3) + (1 - p) * np.outer(np.ones(3), f)

    np.testing.assert_allclose(full_game.transition, expected, atol=1e-15)
    np.testing.assert_allclose(full_game.transition.sum(axis=1), 1.0)
    # f is stationary: f Q = p f + (1 - p) f = f.
    np.testing.assert_allclose(f @ full_game.transition, f, atol=1e-15)


def test_beliefs_change_only_that_party(full_game):
    believed = sticky_jump_matrix(0.95**0.25, np.array([0.6, 0.25, 0.15]))

    np.testing.assert_allclose(full_game.parties[0].transition, believed, atol=1e-15)
    np.testing.assert_allclose(full_game.parties[1].transition, full_game.transition)


def test_durations_in_periods(full_game):
    rules = full_game.rules
    assert rules.duration.term == 40
    assert rules.duration.delay == 0
    assert rules.duration.extension_length == 20
    assert rules.duration.extension_max == 1
    assert rules.withdrawal.notice == 2
    assert rules.withdrawal.earliest == 4
    assert rules.escape.suspension == 8
    assert rules.escape.cooldown == 8
    assert rules.escape.max_uses == 1
    assert rules.review.every == 20
    assert full_game.settings.horizon == 200


def test_threshold_trigger_mask(full_game):
    # Threshold 0.8 on yearly values: US 0.90 and China 0.85 in breakthrough only.
    expected = np.array(
        [
            [False, True, False],
            [False, False, False],
            [False, True, False],
        ]
    )
    np.testing.assert_array_equal(full_game.rules.escape.trigger, expected)


def test_threshold_trigger_includes_equality():
    # Russia's breakthrough value is exactly 0.70, so a threshold of 0.70 opens
    # the escape there ("at least"), and one just above it does not.
    base = (DATA / "full.yaml").read_text()
    old = "trigger: {defection_value_at_least: 0.8}"
    at_value = build_game(parse_treaty_text(base.replace(old, "trigger: {defection_value_at_least: 0.70}")))
    above = build_game(parse_treaty_text(base.replace(old, "trigger: {defection_value_at_least: 0.7000001}")))

    russia, breakthrough = 1, 1
    assert at_value.rules.escape.trigger[russia, breakthrough]
    assert not above.rules.escape.trigger[russia, breakthrough]


def test_states_and_discretionary_masks():
    base = (DATA / "full.yaml").read_text()
    old = "trigger: {defection_value_at_least: 0.8}"

    by_states = build_game(parse_treaty_text(base.replace(old, "trigger: {states: [obsolete, today]}")))
    anywhere = build_game(parse_treaty_text(base.replace(old, "trigger: discretionary")))

    np.testing.assert_array_equal(by_states.rules.escape.trigger, np.array([[True, False, True]] * 3))
    assert anywhere.rules.escape.trigger.shape == (3, 3)
    assert anywhere.rules.escape.trigger.all()


def test_minimal_game():
    game = build_game(load_treaty(DATA / "minimal.yaml"))

    assert game.states == ("now",)
    assert game.start == 0
    np.testing.assert_array_equal(game.transition, [[1.0]])
    assert game.rules.rigid
    assert game.terms is None
    assert game.settings.horizon == 50
    assert game.parties[0].discount == 0.9
    np.testing.assert_array_equal(game.parties[0].defection, [0.3])


def test_explicit_transitions_kept():
    text = (DATA / "minimal.yaml").read_text().replace(
        "parties:",
        "period: 1 month\n"
        "environment:\n"
        "  start: crisis\n"
        "  transitions:\n"
        "    calm: {calm: 0.9, crisis: 0.1}\n"
        "    crisis: {calm: 0.5, crisis: 0.5}\n"
        "parties:",
    ).replace("defection_value: 0.3", "defection_value: {calm: 0.3, crisis: 0.5}")

    game = build_game(parse_treaty_text(text))

    # Explicit rows are already per period: no conversion by the period length.
    np.testing.assert_array_equal(game.transition, [[0.9, 0.1], [0.5, 0.5]])
    assert game.start == 1
    # Default horizon: 50 years of 1-month periods.
    assert game.settings.horizon == 600
