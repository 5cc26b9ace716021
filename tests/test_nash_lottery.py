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
