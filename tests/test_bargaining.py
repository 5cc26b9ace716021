"""Zone and terms of two-party games in one state, against the hand-derived solution.

Setting: one state, defection values ``b_A`` and ``b_B``, discount factors
``delta_A`` and ``delta_B`` and linear regime values
``z_A(g) = alpha_A + beta_A g`` (rising) and ``z_B(g) = alpha_B - beta_B g``
(falling). Inside the zone everyone complies for ever, so party i's gain over
no treaty is ``(z_i(g) - b_i) / (1 - delta_i)``.

Zone: compliance needs ``z_i >= b_i (2 - delta_i)`` (the folk bound), so
``g >= (b_A (2 - delta_A) - alpha_A) / beta_A`` and
``g <= (alpha_B - b_B (2 - delta_B)) / beta_B``.

Nash solution: the constants ``1 / (1 - delta_i)`` drop out of the logarithms, so
the terms maximise ``w_A log(z_A(g) - b_A) + w_B log(z_B(g) - b_B)``. Setting the
derivative to zero,
``w_A beta_A / (z_A - b_A) = w_B beta_B / (z_B - b_B)``. With
``g_A = (b_A - alpha_A) / beta_A`` and ``g_B = (alpha_B - b_B) / beta_B`` (where A's
and B's gain vanishes) this reads ``w_A (g_B - g) = w_B (g - g_A)``, so with
``w_A + w_B = 1`` the maximiser is ``g* = w_A g_B + w_B g_A``. The objective is
concave, so when ``g*`` lies outside the zone the solution is the nearer edge.

Weights: ``nash-patience`` uses ``w_i`` proportional to ``1 / -ln(delta_i)``,
``nash-equal`` uses 1/2 each. ``utilitarian`` maximises the sum of the gains,
which is linear in g with slope ``beta_A / (1 - delta_A) - beta_B / (1 - delta_B)``,
so it picks the upper edge of the zone when that slope is positive and the lower
edge when it is negative.
"""

import math

import numpy as np
import pytest

from engine.bargaining import bargaining_weights
from engine.game import Settings
from engine.score import score_game
from helpers import linear_points, make_game, make_party

ENDPOINT_ACCURACY = 1e-6
# The terms come from a grid search refined around the best grid point. In these
# cases it lands within 2e-6 of the maximiser, coarser than the zone endpoints.
TERMS_ACCURACY = 5e-6


def single_state_pair(b_a, b_b, delta_a, delta_b, line_a, line_b, rule):
    """Two parties in one state; ``line_i`` is ``(z_i(0), z_i(1))``."""
    one = np.eye(1)
    parties = [
        make_party("A", delta_a, b_a, one, linear_points(*line_a)),
        make_party("B", delta_b, b_b, one, linear_points(*line_b)),
    ]
    return make_game(parties, one, settings=Settings(bargaining=rule))


def expected_solution(b_a, b_b, delta_a, delta_b, line_a, line_b, rule):
    """Return the zone and the terms derived in the module docstring."""
    alpha_a, beta_a = line_a[0], line_a[1] - line_a[0]
    alpha_b, beta_b = line_b[0], line_b[0] - line_b[1]
    low = (b_a * (2.0 - delta_a) - alpha_a) / beta_a
    high = (alpha_b - b_b * (2.0 - delta_b)) / beta_b
    assert 0.0 < low < high < 1.0

    if rule == "utilitarian":
        slope = beta_a / (1.0 - delta_a) - beta_b / (1.0 - delta_b)
        return (low, high), (high if slope > 0 else low)

    if rule == "nash-patience":
        raw = np.array([1.0 / -math.log(delta_a), 1.0 / -math.log(delta_b)])
    else:
        raw = np.array([1.0, 1.0])
    w_a, w_b = raw / raw.sum()
    zero_gain_a = (b_a - alpha_a) / beta_a
    zero_gain_b = (alpha_b - b_b) / beta_b
    unconstrained = w_a * zero_gain_b + w_b * zero_gain_a
    return (low, high), min(max(unconstrained, low), high)


CASES = [
    # Symmetric lines, A more patient: g* = b + w_A (1 - 2b) lies inside the zone.
    ("inside", 0.2, 0.2, 0.9, 0.8, (0.0, 1.0), (1.0, 0.0)),
    # Different slopes and defection values.
    ("slopes", 0.15, 0.3, 0.85, 0.95, (0.1, 0.9), (0.8, 0.2)),
    # A far more patient: w_A = 0.986, g* = 0.2 + 0.986 * 0.6 = 0.79 > 1 - 0.2 * 1.5 = 0.7,
    # so the solution is clipped to the upper edge.
    ("clipped", 0.2, 0.2, 0.99, 0.5, (0.0, 1.0), (1.0, 0.0)),
]


@pytest.mark.parametrize("rule", ["nash-patience", "nash-equal", "utilitarian"])
@pytest.mark.parametrize(("label", "b_a", "b_b", "delta_a", "delta_b", "line_a", "line_b"), CASES)
def test_zone_and_terms(label, b_a, b_b, delta_a, delta_b, line_a, line_b, rule):
    game = single_state_pair(b_a, b_b, delta_a, delta_b, line_a, line_b, rule)
    (low, high), terms = expected_solution(b_a, b_b, delta_a, delta_b, line_a, line_b, rule)

    score = score_game(game)

    assert score.agreement
    assert score.zone[0] == pytest.approx(low, abs=ENDPOINT_ACCURACY)
    assert score.zone[1] == pytest.approx(high, abs=ENDPOINT_ACCURACY)
    assert score.terms == pytest.approx(terms, abs=TERMS_ACCURACY)


def test_clipped_case_is_outside_zone():
    # Guards the "clipped" case above: its unconstrained maximiser must lie beyond
    # the zone, or the test would not exercise the clipping.
    weights = bargaining_weights(np.array([0.99, 0.5]), "nash-patience")
    unconstrained = 0.2 + weights[0] * 0.6
    assert unconstrained > 0.7 + 0.05


def test_patience_moves_terms_towards_patient_party():
    # The same game with the patience swapped: the terms move from A's side of
    # the middle to B's, mirrored around 1/2 because the game is symmetric.
    first = score_game(single_state_pair(0.2, 0.2, 0.9, 0.8, (0.0, 1.0), (1.0, 0.0), "nash-patience"))
    swapped = score_game(single_state_pair(0.2, 0.2, 0.8, 0.9, (0.0, 1.0), (1.0, 0.0), "nash-patience"))

    assert first.terms > 0.5
    assert swapped.terms < 0.5
    assert first.terms + swapped.terms == pytest.approx(1.0, abs=2 * TERMS_ACCURACY)


def test_party_values_at_terms():
    # At the terms everyone complies for ever: U_i = z_i(g) / (1 - delta_i) and the
    # no-treaty value is b_i / (1 - delta_i).
    game = single_state_pair(0.15, 0.3, 0.85, 0.95, (0.1, 0.9), (0.8, 0.2), "nash-equal")
    score = score_game(game)
    g = score.terms
    regime = [0.1 + 0.8 * g, 0.8 - 0.6 * g]
    defection = [0.15, 0.3]
    discounts = [0.85, 0.95]

    for index, party in enumerate(score.parties):
        assert party.value_with_treaty == pytest.approx(regime[index] / (1 - discounts[index]), rel=1e-9)
        assert party.value_without_treaty == pytest.approx(defection[index] / (1 - discounts[index]),
                                                           rel=1e-9)
        assert party.margin == pytest.approx((regime[index] - defection[index]) / (1 - discounts[index]),
                                             rel=1e-9)
