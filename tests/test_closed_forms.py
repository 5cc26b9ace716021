"""Known values of the closed-form thresholds and of the closed-form score."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.closed_forms import (
    FORMULAS,
    chain_threshold,
    folk_threshold,
    per_period_threshold,
    permanent_equilibrium_threshold,
    permanent_threshold,
    printed_threshold,
    score_closed_form,
)
from engine.game import Game, Party, Settings

discounts = st.floats(min_value=0.0, max_value=0.99)
probabilities = st.floats(min_value=0.0, max_value=1.0)
defection_values = st.floats(min_value=0.0, max_value=10.0)


def deviation_value_by_series(b, delta, survival, periods=4000):
    """Sum the deviation stream term by term: 2b now, then b in period t w.p. survival(t)."""
    total = 2.0 * b
    for t in range(1, periods):
        total += delta**t * survival(t) * b
    return total


# Table of hand-computed values.
# b = 1, delta = 0.5, p = 0.5:
#   printed    = (2*0.5 - 0.5 - 2) / (0.5 - 2)       = -1.5 / -1.5         = 1
#   permanent  = 2 - 2*0.5 + 0.5*0.5                  = 1.25
#   per-period = 0.5 * (2 - 0.25) / (1 - 0.25)        = 0.875 / 0.75        = 7/6
#   folk       = 2 - 0.5                              = 1.5
#   equilibrium (permanent chain) = min(1.5, 2*0.5/0.75) = 4/3
# b = 0.4, delta = 0.9, p = 0.8:
#   printed    = 0.4 * (2 - 1.8 + 0.8) / (2 - 0.9)    = 0.4 / 1.1           = 4/11
#   permanent  = 0.4 * (2 - 1.8 + 0.72)               = 0.368
#   per-period = 0.4 * 0.1 * (2 - 0.72) / (1 - 0.72)  = 0.0512 / 0.28      = 0.182857...
#   folk       = 0.4 * 1.1                            = 0.44
#   equilibrium = min(0.44, 2*0.4*0.1/0.28)           = 0.08/0.28           = 2/7
# b = 2, delta = 0, p = 0.3: the consistent readings give the one-shot bound
#   2b = 4, but printed = 2 * (2 + 0.3) / 2 = 2.3, because the printed form
#   discounts as if delta were 1 / (2 - 0) = 0.5.
KNOWN_VALUES = [
    ((1.0, 0.5, 0.5), {"printed": 1.0, "permanent": 1.25, "per-period": 7 / 6, "folk": 1.5, "equilibrium": 4 / 3}),
    ((0.4, 0.9, 0.8), {"printed": 4 / 11, "permanent": 0.368, "per-period": 0.0512 / 0.28, "folk": 0.44, "equilibrium": 2 / 7}),
    ((2.0, 0.0, 0.3), {"printed": 2.3, "permanent": 4.0, "per-period": 4.0, "folk": 4.0, "equilibrium": 4.0}),
]


@pytest.mark.parametrize(("arguments", "expected"), KNOWN_VALUES)
def test_thresholds_known_values(arguments, expected):
    b, delta, p = arguments
    assert printed_threshold(b, delta, p) == pytest.approx(expected["printed"])
    assert permanent_threshold(b, delta, p) == pytest.approx(expected["permanent"])
    assert per_period_threshold(b, delta, p) == pytest.approx(expected["per-period"])
    assert folk_threshold(b, delta) == pytest.approx(expected["folk"])
    assert permanent_equilibrium_threshold(b, delta, p) == pytest.approx(expected["equilibrium"])


@given(defection_values, discounts, probabilities)
def test_printed_equals_permanent_at_shifted_discount(b, delta, p):
    # printed = b (2 - 2 delta + p) / (2 - delta). With d = 1 / (2 - delta),
    # permanent(d) = b (2 - 2 d + p d) = b (2 (2 - delta) - 2 + p) / (2 - delta)
    #             = b (2 - 2 delta + p) / (2 - delta).
    shifted = 1.0 / (2.0 - delta)
    assert printed_threshold(b, delta, p) == pytest.approx(
        permanent_threshold(b, shifted, p), rel=1e-12, abs=1e-12
    )


@given(defection_values, discounts, probabilities)
def test_printed_never_above_permanent(b, delta, p):
    # permanent is decreasing in delta (d/d delta = -b (2 - p) <= 0) and the
    # printed value is permanent at 1 / (2 - delta) >= delta.
    assert printed_threshold(b, delta, p) <= permanent_threshold(b, delta, p) + 1e-12


@pytest.mark.parametrize(("b", "delta", "p"), [(1.0, 0.5, 0.5), (0.4, 0.9, 0.8), (0.7, 0.8, 0.0)])
def test_permanent_matches_series(b, delta, p):
    # From period 1 on, b is paid for ever with probability p, so the deviator
    # gets b in every later period with probability p. Compliance pays
    # z / (1 - delta), so the threshold is (1 - delta) times the deviation value.
    deviation = deviation_value_by_series(b, delta, lambda t: p)
    assert permanent_threshold(b, delta, p) == pytest.approx((1 - delta) * deviation, rel=1e-9)


@pytest.mark.parametrize(("b", "delta", "p"), [(1.0, 0.5, 0.5), (0.4, 0.9, 0.8), (0.7, 0.8, 1.0)])
def test_per_period_matches_series(b, delta, p):
    # b survives each period with probability p, so it is still there in
    # period t with probability p ** t.
    deviation = deviation_value_by_series(b, delta, lambda t: p**t)
    assert per_period_threshold(b, delta, p) == pytest.approx((1 - delta) * deviation, rel=1e-9)


@pytest.mark.parametrize(("b", "delta"), [(1.0, 0.0), (1.0, 0.5), (0.3, 0.95)])
def test_readings_agree_at_certainty(b, delta):
    # p = 1: b is constant, both readings reduce to the folk bound b (2 - delta).
    # p = 0: b is gone after period 0, both give 2 b (1 - delta).
    assert permanent_threshold(b, delta, 1.0) == pytest.approx(folk_threshold(b, delta))
    assert per_period_threshold(b, delta, 1.0) == pytest.approx(folk_threshold(b, delta))
    assert permanent_threshold(b, delta, 0.0) == pytest.approx(2 * b * (1 - delta))
    assert per_period_threshold(b, delta, 0.0) == pytest.approx(2 * b * (1 - delta))


def test_chain_one_state_is_folk():
    # One absorbing state: V^P = b / (1 - delta), z* = (1 - delta) b + b = b (2 - delta).
    result = chain_threshold(np.array([0.8]), 0.9, np.array([[1.0]]))
    assert result.shape == (1,)
    assert result[0] == pytest.approx(folk_threshold(0.8, 0.9))


@pytest.mark.parametrize(("b", "delta", "p"), [(1.0, 0.5, 0.5), (0.4, 0.9, 0.8), (0.2, 0.3, 0.1)])
def test_chain_per_period_reading(b, delta, p):
    # States (high, gone): high stays with p, gone is absorbing with b = 0.
    # z*(high) is the per-period threshold and z*(gone) = 0.
    transition = np.array([[p, 1 - p], [0.0, 1.0]])
    result = chain_threshold(np.array([b, 0.0]), delta, transition)
    assert result[0] == pytest.approx(per_period_threshold(b, delta, p))
    assert result[1] == pytest.approx(0.0)


@pytest.mark.parametrize(("b", "delta", "p"), [(1.0, 0.5, 0.5), (0.4, 0.9, 0.8), (0.2, 0.3, 0.1)])
def test_chain_permanent_reading(b, delta, p):
    # States (now, stays, gone): now moves to stays with p and to gone
    # otherwise; both are absorbing. z*(now) is the permanent threshold and
    # z*(stays) is the folk bound, which is at least as large.
    transition = np.array([[0.0, p, 1 - p], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    result = chain_threshold(np.array([b, b, 0.0]), delta, transition)
    assert result[0] == pytest.approx(permanent_threshold(b, delta, p))
    assert result[1] == pytest.approx(folk_threshold(b, delta))
    assert result[1] >= result[0] - 1e-12


def test_chain_matches_value_iteration():
    # Independent check of V^P by iterating V <- b + delta Q V, then
    # z* = (1 - delta)(2 b + delta Q V).
    rng = np.random.default_rng(7)
    transition = rng.random((4, 4))
    transition /= transition.sum(axis=1, keepdims=True)
    b = rng.random(4)
    delta = 0.8

    value = np.zeros(4)
    for _ in range(400):
        value = b + delta * transition @ value
    expected = (1 - delta) * (2 * b + delta * transition @ value)
    assert chain_threshold(b, delta, transition) == pytest.approx(expected, rel=1e-10)


def test_chain_vectorised_over_discount():
    transition = np.array([[0.5, 0.5], [0.0, 1.0]])
    b = np.array([1.0, 0.0])
    deltas = np.array([[0.1, 0.5], [0.9, 0.0]])
    result = chain_threshold(b, deltas, transition)
    assert result.shape == (2, 2, 2)
    for index in np.ndindex(deltas.shape):
        assert result[index] == pytest.approx(chain_threshold(b, deltas[index], transition))


def test_formulas_vectorised():
    delta, p = np.meshgrid(np.linspace(0, 0.9, 4), np.linspace(0, 1, 3))
    for name, formula in FORMULAS.items():
        result = formula(0.5, delta, p)
        assert result.shape == (3, 4), name
        assert result[1, 2] == pytest.approx(float(formula(0.5, delta[1, 2], p[1, 2]))), name


@pytest.mark.parametrize(
    ("b", "delta", "p"),
    [(-0.1, 0.5, 0.5), (1.0, 1.0, 0.5), (1.0, -0.1, 0.5), (1.0, 0.5, 1.5), (math.nan, 0.5, 0.5)],
)
def test_thresholds_reject_bad_inputs(b, delta, p):
    with pytest.raises(ValueError):
        permanent_threshold(b, delta, p)


def test_chain_rejects_non_stochastic_matrix():
    with pytest.raises(ValueError, match="row-stochastic"):
        chain_threshold(np.array([1.0, 0.0]), 0.5, np.array([[0.5, 0.4], [0.0, 1.0]]))


def make_game(discounts, b, curves, bargaining="nash-patience"):
    """A one-state, two-party game with per-period values as given."""
    transition = np.array([[1.0]])
    parties = tuple(
        Party(
            name=name,
            discount=delta,
            defection=np.array([b]),
            regime_points=np.array(curve, dtype=float),
            transition=transition,
        )
        for name, delta, curve in zip(("A", "B"), discounts, curves)
    )
    return Game(
        name="closed-form test",
        period_years=1.0,
        states=("now",),
        start=0,
        transition=transition,
        parties=parties,
        settings=Settings(bargaining=bargaining),
    )


def test_score_zone_and_equal_weight_terms():
    # b = 0.2, delta = 0.5, p = 1: every reading gives 0.2 * 1.5 = 0.3 (folk).
    # A: z = gamma, accepts gamma >= 0.3. B: z = 1 - gamma, accepts gamma <= 0.7.
    # Equal weights, same delta: maximise log(gamma - 0.3) + log(0.7 - gamma),
    # so gamma - 0.3 = 0.7 - gamma and terms = 0.5.
    game = make_game((0.5, 0.5), 0.2, ([[0, 0], [1, 1]], [[0, 1], [1, 0]]), "nash-equal")
    score = score_closed_form(game, "permanent", np.array([1.0, 1.0]))
    assert score.agreement
    assert score.zone == pytest.approx((0.3, 0.7), abs=1e-12)
    assert score.terms == pytest.approx(0.5, abs=1e-8)
    # margin = (z(0.5) - 0.3) / (1 - 0.5) = 0.4 for both.
    assert [party.margin for party in score.parties] == pytest.approx([0.4, 0.4])
    assert [party.threshold for party in score.parties] == pytest.approx([0.3, 0.3])


def test_score_patience_weights():
    # delta_A = 0.9, delta_B = 0.5, b = 0.1, p = 1.
    # Thresholds: t_A = 0.1 * 1.1 = 0.11, t_B = 0.1 * 1.5 = 0.15, zone [0.11, 0.85].
    # Weights w = 1 / -ln(delta). The first-order condition of
    # w_A log(gamma - 0.11) + w_B log(0.85 - gamma) gives
    # gamma = (w_A * 0.85 + w_B * 0.11) / (w_A + w_B).
    game = make_game((0.9, 0.5), 0.1, ([[0, 0], [1, 1]], [[0, 1], [1, 0]]))
    score = score_closed_form(game, "per-period", np.array([1.0, 1.0]))
    weight_a, weight_b = 1 / -math.log(0.9), 1 / -math.log(0.5)
    expected = (weight_a * 0.85 + weight_b * 0.11) / (weight_a + weight_b)
    assert score.zone == pytest.approx((0.11, 0.85), abs=1e-12)
    assert score.terms == pytest.approx(expected, abs=1e-8)


def test_score_kinked_curve_zone():
    # A's curve rises to 0.5 at gamma = 0.5, then stays flat; B's falls linearly.
    # b = 0.2, delta = 0.5, p = 0.5, printed reading:
    # t = 0.2 * (2 - 1 + 0.5) / 1.5 = 0.2. A accepts gamma >= 0.2.
    # B: 1 - gamma >= 0.2 gives gamma <= 0.8.
    game = make_game((0.5, 0.5), 0.2, ([[0, 0], [0.5, 0.5], [1, 0.5]], [[0, 1], [1, 0]]), "utilitarian")
    score = score_closed_form(game, "printed", np.array([0.5, 0.5]))
    assert score.zone == pytest.approx((0.2, 0.8), abs=1e-12)
    # Utilitarian: the sum of margins, (z_A + z_B - 0.4) / 0.5, is
    # (1 - 0.4) / 0.5 = 1.2 on [0, 0.5] and falls beyond, so every gamma in
    # [0.2, 0.5] is optimal and the terms may be any of them.
    assert 0.2 - 1e-9 <= score.terms <= 0.5 + 1e-9
    assert sum(party.margin for party in score.parties) == pytest.approx(1.2, abs=1e-9)


def test_score_no_agreement():
    # b = 0.6, delta = 0.5, p = 1: t = 0.9 for both. A needs gamma >= 0.9,
    # B needs 1 - gamma >= 0.9, i.e. gamma <= 0.1: no overlap.
    game = make_game((0.5, 0.5), 0.6, ([[0, 0], [1, 1]], [[0, 1], [1, 0]]))
    score = score_closed_form(game, "permanent", np.array([1.0, 1.0]))
    assert not score.agreement
    assert score.zone is None
    assert score.terms is None
    assert all(party.margin is None for party in score.parties)


def test_score_two_intervals():
    # A's curve is a tent peaking at 0.25 and 0.75 with a dip at 0.5:
    # points (0, 0), (0.25, 1), (0.5, 0), (0.75, 1), (1, 0). B's curve is flat at 1.
    # b = 0.25, delta = 0, p = 1: t = 0.5. A accepts [0.125, 0.375] and [0.625, 0.875].
    curve_a = [[0, 0], [0.25, 1], [0.5, 0], [0.75, 1], [1, 0]]
    game = make_game((0.0, 0.0), 0.25, (curve_a, [[0, 1], [1, 1]]), "nash-equal")
    score = score_closed_form(game, "permanent", np.array([1.0, 1.0]))
    assert score.agreement
    # Both intervals give the same objective, so the lower one is kept.
    assert score.zone == pytest.approx((0.125, 0.375), abs=1e-12)
    assert score.terms == pytest.approx(0.25, abs=1e-8)
    assert "2 separate intervals" in score.message


def test_score_rejects_three_parties():
    game = make_game((0.5, 0.5), 0.2, ([[0, 0], [1, 1]], [[0, 1], [1, 0]]))
    extra = game.parties + (game.parties[0],)
    three = Game(game.name, 1.0, game.states, 0, game.transition, extra)
    with pytest.raises(ValueError, match="two parties"):
        score_closed_form(three, "printed", np.ones(3))


def make_crisis_start_game(discounts, defection, curves, bargaining="nash-equal"):
    """A two-state, two-party game that starts in its second state, "crisis"."""
    transition = np.array([[0.5, 0.5], [0.5, 0.5]])
    parties = tuple(
        Party(
            name=name,
            discount=delta,
            defection=np.array(defection, dtype=float),
            regime_points=np.array(curve, dtype=float),
            transition=transition,
        )
        for name, delta, curve in zip(("A", "B"), discounts, curves)
    )
    return Game(
        name="closed-form crisis start",
        period_years=1.0,
        states=("calm", "crisis"),
        start=1,
        transition=transition,
        parties=parties,
        settings=Settings(bargaining=bargaining),
    )


def test_score_reads_start_state_defection():
    # Defection values are 0.1 in "calm" (state 0) and 0.3 in "crisis", the
    # start state. With delta = 0.5 and p = 0.5 the permanent reading gives
    # t = b (2 - 2 delta + p delta) = 1.25 b = 0.375 at b = 0.3.
    # A accepts gamma >= 0.375 and B accepts gamma <= 0.625. Equal weights and
    # discounts put the terms at the middle, 0.5, so each margin is
    # (0.5 - 0.375) / (1 - 0.5) = 0.25.
    game = make_crisis_start_game((0.5, 0.5), (0.1, 0.3), ([[0, 0], [1, 1]], [[0, 1], [1, 0]]))
    score = score_closed_form(game, "permanent", np.array([0.5, 0.5]))

    assert [party.threshold for party in score.parties] == pytest.approx([0.375, 0.375])
    assert score.zone == pytest.approx((0.375, 0.625), abs=1e-12)
    assert score.terms == pytest.approx(0.5, abs=1e-8)
    assert score.parties[0].margin == pytest.approx(0.25, abs=1e-7)
    assert score.parties[1].margin == pytest.approx(0.25, abs=1e-7)


def test_utilitarian_terms_use_discounted_slopes():
    # b = 0.02 and p = 1, so every threshold is the folk bound b (2 - delta):
    # t_A = 0.02 * 1.1 = 0.022 (delta_A = 0.9), t_B = 0.02 * 1.5 = 0.03 (delta_B = 0.5).
    # z_A = 0.3 gamma and z_B = 0.5 - 0.5 gamma, so A accepts
    # gamma >= 0.022 / 0.3 = 11/150 and B accepts gamma <= 0.47 / 0.5 = 0.94.
    # The sum of margins (z_i - t_i) / (1 - delta_i) has the slope
    # 0.3 / 0.1 - 0.5 / 0.5 = +2, so the terms are the upper end, 0.94. The sum
    # of per-period surpluses z_i - t_i has the slope 0.3 - 0.5 = -0.2, which
    # would put them at the lower end.
    curves = ([[0, 0], [1, 0.3]], [[0, 0.5], [1, 0]])
    game = make_game((0.9, 0.5), 0.02, curves, "utilitarian")
    score = score_closed_form(game, "permanent", np.array([1.0, 1.0]))

    assert score.zone == pytest.approx((11 / 150, 0.94), abs=1e-12)
    assert score.terms == pytest.approx(0.94, abs=1e-8)
    # A: (0.3 * 0.94 - 0.022) / 0.1 = 2.6. B sits on its threshold, so 0.
    assert score.parties[0].margin == pytest.approx(2.6, abs=1e-7)
    assert score.parties[1].margin == pytest.approx(0.0, abs=1e-7)
