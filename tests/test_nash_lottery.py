"""Nash bargaining over lotteries of terms, against hand-derived solutions.

A lottery ``p`` over candidates gives the expected gains ``u = G p``. The
weighted Nash objective ``f(p) = sum_i w_i log u_i`` is concave in ``p``, and
with ``c_k = sum_i w_i G_ik / u_i`` its gradient, concavity gives
``f(q) <= f(p) + sum_k c_k q_k - 1`` for every lottery ``q`` (because
``sum_k c_k p_k = sum_i w_i = 1``). So ``max_k c_k <= 1`` proves that ``p`` is
optimal; the property test checks that certificate.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.bargaining import nash_lottery


def lottery_of(support, probability, size):
    full = np.zeros(size)
    full[support] = probability
    return full


@pytest.mark.parametrize("weight", [0.5, 0.3, 0.9])
def test_two_opposite_candidates_mix_by_weight(weight):
    # Candidates (1, 0) and (0, 1). Playing the first with probability q gives
    # u = (q, 1 - q), and w log q + (1 - w) log(1 - q) peaks at q = w.
    gains = np.array([[1.0, 0.0], [0.0, 1.0]])
    support, probability, objective = nash_lottery(gains, np.array([weight, 1.0 - weight]))

    full = lottery_of(support, probability, 2)
    assert full[0] == pytest.approx(weight, abs=1e-12)
    assert objective == pytest.approx(weight * np.log(weight) + (1 - weight) * np.log(1 - weight),
                                      abs=1e-12)


def test_mix_of_two_candidates_at_the_interior_peak():
    # Gains r + q s with r = (1, 3) (second candidate) and s = (1, -2). Equal
    # weights: 0.5 s_1 / u_1 + 0.5 s_2 / u_2 = 0 gives (1 + q) = (3 - 2 q) / 2,
    # so q = 0.25 and u = (1.25, 2.5). A dominated third candidate stays out.
    gains = np.array([[2.0, 1.0, 0.5], [1.0, 3.0, 0.5]])
    support, probability, objective = nash_lottery(gains, np.array([0.5, 0.5]))

    full = lottery_of(support, probability, 3)
    np.testing.assert_allclose(full, [0.25, 0.75, 0.0], atol=1e-12)
    assert objective == pytest.approx(0.5 * np.log(1.25) + 0.5 * np.log(2.5), abs=1e-12)


def test_distant_candidates_beat_a_middle_one():
    # The middle candidate (0.3, 0.3) lies below the segment from (1, 0) to
    # (0, 1). On that segment equal weights peak at (0.5, 0.5), which beats
    # every mix of neighbours: mixing (0.3, 0.3) with an end never reaches the
    # line x + y = 1.
    gains = np.array([[1.0, 0.3, 0.0], [0.0, 0.3, 1.0]])
    support, probability, objective = nash_lottery(gains, np.array([0.5, 0.5]))

    full = lottery_of(support, probability, 3)
    np.testing.assert_allclose(full, [0.5, 0.0, 0.5], atol=1e-12)
    assert objective == pytest.approx(np.log(0.5), abs=1e-12)


def test_three_parties_on_the_unit_vectors():
    # Candidate k gives only party k a gain of 1, so u = p and the objective
    # sum_i w_i log p_i over the simplex peaks at p = w.
    weights = np.array([0.2, 0.3, 0.5])
    support, probability, _ = nash_lottery(np.eye(3), weights)

    np.testing.assert_allclose(lottery_of(support, probability, 3), weights, atol=1e-12)


def test_no_lottery_gives_every_party_a_gain():
    gains = np.array([[0.0, 0.0], [1.0, 2.0]])
    support, probability, objective = nash_lottery(gains, np.array([0.5, 0.5]))

    assert support.size == 0
    assert probability.size == 0
    assert objective == -np.inf


def test_lottery_ignores_a_party_without_weight():
    # Only the first party counts, so its best candidate is chosen outright.
    gains = np.array([[1.0, 2.0], [5.0, 0.0]])
    support, probability, _ = nash_lottery(gains, np.array([1.0, 0.0]))

    np.testing.assert_allclose(lottery_of(support, probability, 2), [0.0, 1.0], atol=1e-12)


def test_repeated_candidates_keep_a_small_support():
    gains = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    support, probability, _ = nash_lottery(gains, np.array([0.5, 0.5]))

    full = lottery_of(support, probability, 4)
    assert len(support) <= 3
    assert full[:2].sum() == pytest.approx(0.5, abs=1e-12)
    assert full[2:].sum() == pytest.approx(0.5, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    gains=st.integers(2, 4).flatmap(lambda n: st.integers(1, 30).flatmap(
        # Zero or at least 1e-6: the certificate itself overflows for subnormal gains.
        lambda k: arrays(float, (n, k), elements=st.just(0.0) | st.floats(1e-6, 10.0)))),
    raw_weights=arrays(float, 4, elements=st.floats(0.05, 1.0)),
)
def test_lottery_meets_the_optimality_certificate(gains, raw_weights):
    weights = raw_weights[:gains.shape[0]] / raw_weights[:gains.shape[0]].sum()
    support, probability, objective = nash_lottery(gains, weights)

    if not np.all(gains.max(axis=1) > 0):
        assert support.size == 0
        return
    assert probability.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(probability >= 0)
    assert len(support) <= gains.shape[0] + 1
    u = gains[:, support] @ probability
    assert objective == pytest.approx(float(np.sum(weights * np.log(u))), abs=1e-12)
    scores = (weights / u) @ gains
    assert scores.max() <= 1.0 + 1e-9


@settings(max_examples=200, deadline=None)
@given(
    gains=st.integers(2, 4).flatmap(lambda n: st.integers(1, 30).flatmap(
        lambda k: arrays(float, (n, k), elements=st.just(0.0) | st.floats(1e-6, 10.0)))),
    raw_weights=arrays(float, 4, elements=st.floats(0.05, 1.0)),
    seed=st.integers(0, 2**32 - 1),
)
def test_started_lottery_reaches_same_gains(gains, raw_weights, seed):
    # The peak's gains are unique because the objective is strictly concave
    # in them, so any start must end at the gains of the default start.
    weights = raw_weights[:gains.shape[0]] / raw_weights[:gains.shape[0]].sum()
    if not np.all(gains.max(axis=1) > 0):
        return
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, gains.shape[1] + 1))
    start = rng.choice(gains.shape[1], size=size, replace=False), rng.uniform(0.01, 1.0, size)

    support, probability, _ = nash_lottery(gains, weights)
    started, started_probability, _ = nash_lottery(gains, weights, start=start)

    u = gains[:, support] @ probability
    started_u = gains[:, started] @ started_probability
    assert ((weights / started_u) @ gains).max() <= 1.0 + 1e-9
    np.testing.assert_allclose(started_u, u, rtol=1e-6)


def test_start_without_gain_for_all_is_ignored():
    # The start's first candidate gives the second party nothing, so the
    # search begins at the default start and ends where it does.
    gains = np.array([[1.0, 0.2, 0.0], [0.0, 0.9, 1.0]])
    weights = np.array([0.4, 0.6])
    default = nash_lottery(gains, weights)
    started = nash_lottery(gains, weights, start=(np.array([0]), np.array([1.0])))

    assert np.array_equal(started[0], default[0])
    assert np.array_equal(started[1], default[1])


def test_lottery_over_curves_of_terms():
    # Gains along a grid of terms trace curves that reach zero for some
    # parties, and some weights are small: a line search can then end a
    # rounding error away from a zero gain. Seeded draws of such curves.
    rng = np.random.default_rng(0)
    grid = np.linspace(0.0, 1.0, 101)
    for _ in range(300):
        n = int(rng.integers(2, 6))
        gains = np.stack([
            np.maximum(0.0, rng.uniform(0.1, 1.0) + rng.uniform(-1.0, 1.0) * grid
                       + rng.uniform(-0.3, 0.3) * np.sin(7.0 * grid))
            for _ in range(n)
        ])
        weights = rng.dirichlet(np.ones(n))
        support, probability, _ = nash_lottery(gains, weights)

        u = gains[:, support] @ probability
        assert np.all(u > 0)
        assert ((weights / u) @ gains).max() <= 1.0 + 1e-9


def test_flat_face_gives_the_middle_term():
    # (1, 0), (0.5, 0.5) and (0, 1) lie on the line x + y = 1, where equal
    # weights peak at (0.5, 0.5). Even odds on the two ends give the same
    # gains, but the middle term alone gives them without a lottery.
    gains = np.array([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]])
    support, probability, _ = nash_lottery(gains, np.array([0.5, 0.5]))

    assert support.tolist() == [1]
    assert probability.tolist() == [1.0]


def test_flat_face_mixes_the_closest_terms():
    # All four candidates lie on x + y = 1 and none is (0.5, 0.5). Mixing the
    # inner pair at even odds reaches the peak with terms next to each other.
    gains = np.array([[1.0, 0.8, 0.2, 0.0], [0.0, 0.2, 0.8, 1.0]])
    support, probability, _ = nash_lottery(gains, np.array([0.5, 0.5]))

    assert sorted(support.tolist()) == [1, 2]
    np.testing.assert_allclose(probability, [0.5, 0.5], atol=1e-12)


# Gains of eleven terms at a renegotiation of the flexible cyber treaty at a
# monthly period. Regime values linear in strictness put the terms on a line
# up to rounding, where a search that adds the worst violation each round can
# cycle between terms whose optimality conditions miss by about 1e-13.
NEARLY_COLLINEAR = np.array([
    [0.4479059724304566, 0.46563738417481204, 0.48336879591908577, 0.5011002076633684,
     0.5188316194076439, 0.5365630311519229, 0.5542944428962873, 0.5720258546405539,
     0.589757266384833, 0.6074886781291138, 0.6252200898733946],
    [0.31728268260652204, 0.3038020888730877, 0.2903214951396542, 0.2768409014062181,
     0.26336030767278196, 0.24987971393934583, 0.23639912020591414, 0.2229185264724789,
     0.20943793273904188, 0.1959573390056093, 0.18247674527217583],
    [0.39070928990634, 0.3876660638731906, 0.3846228378398884, 0.3815796118067425,
     0.37853638577345095, 0.37549315974030506, 0.3724499337071592, 0.3694067076738392,
     0.36636348164070043, 0.36332025560756165, 0.3602770295742559],
])
NEARLY_COLLINEAR_WEIGHTS = np.array([0.31537427571861687, 0.1535355580379966, 0.5310901662433866])


def test_nearly_collinear_terms_settle():
    # Every lottery's gains lie on the segment between the first and the last
    # term, up to rounding. So the peak over lotteries is the peak of the
    # concave function t -> f(t g_first + (1 - t) g_last), found here by
    # ternary search, and the search must reach it up to rounding.
    gains, weights = NEARLY_COLLINEAR, NEARLY_COLLINEAR_WEIGHTS
    support, probability, objective = nash_lottery(gains, weights)

    def along(t):
        return float(np.sum(weights * np.log(t * gains[:, 0] + (1 - t) * gains[:, -1])))

    low, high = 0.0, 1.0
    for _ in range(200):
        first, second = low + (high - low) / 3, high - (high - low) / 3
        if along(first) < along(second):
            low = first
        else:
            high = second
    assert objective == pytest.approx(along(low), abs=1e-12)
    assert probability.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(probability > 0)
    assert len(support) <= 2
