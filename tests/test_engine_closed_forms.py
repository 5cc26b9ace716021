"""The scored engine against thresholds derived by hand.

Every game here is rigid (no provisions) and uses the grim trigger of the
engine: a party that breaches while the others comply earns ``2 b(s)`` once and
then the no-treaty value for ever. Party A has ``z_A(gamma) = gamma`` and party
B has ``z_B(gamma) = 1 - gamma``, so A's accepted set starts at A's threshold
``z*_A`` and B's accepted set ends at ``1 - z*_B``.
"""

import numpy as np
import pytest

from engine.score import score_game
from engine.solve import Solver
from helpers import opposed_pair

ENDPOINT_ACCURACY = 1e-6


# Folk bound, one state with constant b.
# Complying for ever is worth z / (1 - delta). Breaching pays 2b now and then
# b / (1 - delta) from the next period, so compliance holds iff
#   z / (1 - delta) >= 2b + delta b / (1 - delta)  <=>  z >= b (2 - delta).
# The participation condition z / (1 - delta) >= b / (1 - delta) is weaker.
# A needs gamma >= b (2 - delta) and B needs 1 - gamma >= b (2 - delta), so the
# zone is [b (2 - delta), 1 - b (2 - delta)]. With delta = 0 this is the one-shot
# prisoner's dilemma, where compliance needs z >= 2b.
@pytest.mark.parametrize(("b", "delta"), [(0.2, 0.9), (0.3, 0.5), (0.1, 0.95), (0.2, 0.0), (0.24, 0.0)])
def test_folk_bound_zone(b, delta):
    score = score_game(opposed_pair(b, b, np.eye(1), delta, delta))
    threshold = b * (2.0 - delta)

    assert score.agreement
    assert score.zone[0] == pytest.approx(threshold, abs=ENDPOINT_ACCURACY)
    assert score.zone[1] == pytest.approx(1.0 - threshold, abs=ENDPOINT_ACCURACY)
    assert score.parties[0].accepts[0] == pytest.approx(threshold, abs=ENDPOINT_ACCURACY)
    assert score.parties[1].accepts[1] == pytest.approx(1.0 - threshold, abs=ENDPOINT_ACCURACY)


# At the terms t the incentive slack of a party with regime value z is
#   z / (1 - delta) - 2b - delta b / (1 - delta) = (z - b (2 - delta)) / (1 - delta),
# and its margin over no treaty is (z - b) / (1 - delta), which is larger. So
# the incentive constraint binds, with that slack: z = t for A and 1 - t for B.
@pytest.mark.parametrize(("b", "delta"), [(0.2, 0.9), (0.3, 0.5), (0.1, 0.95)])
def test_folk_bound_binding(b, delta):
    score = score_game(opposed_pair(b, b, np.eye(1), delta, delta))
    terms = score.terms

    for party, z in ((score.parties[0], terms), (score.parties[1], 1.0 - terms)):
        assert party.binding["constraint"] == "incentive"
        assert party.binding["slack"] == pytest.approx((z - b * (2.0 - delta)) / (1.0 - delta), rel=1e-9)
        assert party.margin == pytest.approx((z - b) / (1.0 - delta), rel=1e-9)


def test_one_shot_needs_double_defection():
    # delta = 0 and b = 0.3: each party needs z >= 2b = 0.6, and z_A + z_B = 1 < 1.2,
    # so no strictness satisfies both.
    score = score_game(opposed_pair(0.3, 0.3, np.eye(1), 0.0, 0.0))

    assert not score.agreement
    assert score.zone is None
    assert score.parties[0].accepts[0] == pytest.approx(0.6, abs=ENDPOINT_ACCURACY)
    assert score.parties[1].accepts[1] == pytest.approx(0.4, abs=ENDPOINT_ACCURACY)


# Per-period reading: states "high" (defection value b) and "gone" (0, absorbing);
# high stays high with probability p each period. Start in high.
#   No treaty: V^P(high) = b + delta p V^P(high)  =>  V^P(high) = b / (1 - delta p).
#   Complying everywhere pays z in every period: V^C = z / (1 - delta). In "gone"
#   compliance needs only z >= 0, so it holds for every gamma in [0, 1].
#   Breaching in high: 2b + delta p V^P(high) = b (2 - delta p) / (1 - delta p).
#   z / (1 - delta) >= b (2 - delta p) / (1 - delta p)
#     <=>  z >= z* = b (1 - delta)(2 - delta p) / (1 - delta p).
# Participation z / (1 - delta) >= b / (1 - delta p) is weaker.
PERSISTENCE_CASES = [(0.3, 0.9, 0.8), (0.25, 0.7, 0.5), (0.2, 0.95, 0.3), (0.3, 0.6, 1.0)]


def persistence_chain(p: float) -> np.ndarray:
    return np.array([[p, 1.0 - p], [0.0, 1.0]])


@pytest.mark.parametrize(("b", "delta", "p"), PERSISTENCE_CASES)
def test_per_period_reading_threshold(b, delta, p):
    game = opposed_pair([b, 0.0], [b, 0.0], persistence_chain(p), delta, delta,
                        states=("high", "gone"))
    score = score_game(game)
    threshold = b * (1.0 - delta) * (2.0 - delta * p) / (1.0 - delta * p)

    assert score.parties[0].accepts[0] == pytest.approx(threshold, abs=ENDPOINT_ACCURACY)
    assert score.parties[1].accepts[1] == pytest.approx(1.0 - threshold, abs=ENDPOINT_ACCURACY)
    assert score.zone == pytest.approx((threshold, 1.0 - threshold), abs=ENDPOINT_ACCURACY)


# Permanent reading as a three-state chain: "now" (b) moves to "kept" (b for
# ever) with probability p, else to "lost" (0 for ever). Start in now.
#   V^P(kept) = b / (1 - delta), V^P(lost) = 0.
#   With compliance everywhere, V^C = z / (1 - delta) in every state, and breaching
#   in now pays 2b + delta p b / (1 - delta). So the constraint in now is
#     z >= b (2 - 2 delta + p delta),
#   which is the permanent-reading closed form. It is the first-period constraint
#   only: in kept, the folk bound z >= b (2 - delta) applies, and it is larger for
#   p < 1 because (2 - delta) - (2 - 2 delta + p delta) = delta (1 - p).
#   For z below b (2 - delta) the subgame-perfect treaty breaks down on reaching
#   kept, and complying in now is worth z + delta (p b + (1 - p) z) / (1 - delta)
#   against the same breach value, which holds iff
#     z >= 2 b (1 - delta) / (1 - delta p).
#   The treaty that breaks down in kept can hold in now at a lower z than the
#   permanent-reading value, because breakdown in kept is worth b / (1 - delta),
#   more than complying there when z < b. The least z at which some grim-trigger
#   equilibrium complies in now is therefore
#     min(b (2 - delta), 2 b (1 - delta) / (1 - delta p)),
#   and that is the engine's accepted endpoint. The permanent-reading value
#   b (2 - 2 delta + p delta) is recovered from the incentive slack in now at a
#   strictness where everyone complies everywhere:
#     slack(now) = z / (1 - delta) - 2b - delta p b / (1 - delta)
#                = (z - b (2 - 2 delta + p delta)) / (1 - delta).
def permanent_chain(p: float) -> np.ndarray:
    return np.array([[0.0, p, 1.0 - p], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


# The folk bound is the smaller candidate iff p (2 - delta) > 1, as in the second
# and fifth case. In the first, third and fourth case the endpoint lies below the
# permanent-reading value.
PERMANENT_CASES = [(0.3, 0.9, 0.8), (0.25, 0.6, 0.9), (0.3, 0.9, 0.5), (0.2, 0.8, 0.2), (0.2, 0.5, 0.9)]


@pytest.mark.parametrize(("b", "delta", "p"), PERMANENT_CASES)
def test_permanent_reading_endpoint(b, delta, p):
    game = opposed_pair([b, b, 0.0], [b, b, 0.0], permanent_chain(p), delta, delta,
                        states=("now", "kept", "lost"))
    score = score_game(game)
    folk = b * (2.0 - delta)
    kept_breaks = 2.0 * b * (1.0 - delta) / (1.0 - delta * p)
    endpoint = min(folk, kept_breaks)

    assert score.parties[0].accepts[0] == pytest.approx(endpoint, abs=ENDPOINT_ACCURACY)
    assert score.parties[1].accepts[1] == pytest.approx(1.0 - endpoint, abs=ENDPOINT_ACCURACY)


@pytest.mark.parametrize(("b", "delta", "p"), PERMANENT_CASES)
def test_permanent_reading_first_period_slack(b, delta, p):
    game = opposed_pair([b, b, 0.0], [b, b, 0.0], permanent_chain(p), delta, delta,
                        states=("now", "kept", "lost"))
    # At gamma = 0.5 both parties have z = 0.5 >= b (2 - delta), so everyone complies everywhere.
    z = 0.5
    assert z >= b * (2.0 - delta)
    columns = Solver(game).evaluate([z])
    now = game.states.index("now")

    for party in range(2):
        slack = columns.own.slack[party, 0, now]
        recovered = z - (1.0 - delta) * slack
        assert recovered == pytest.approx(b * (2.0 - 2.0 * delta + p * delta), abs=1e-9)


# General chain. With compliance in every state, V^C = z / (1 - delta) and the
# constraint in state s is z / (1 - delta) >= 2 b(s) + delta (Q V^P)(s), with
# V^P = (I - delta Q)^-1 b. So
#   z*(s) = (1 - delta)(2 b(s) + delta (Q V^P)(s)).
# When z >= b(s) in every state, V^P <= z / (1 - delta) everywhere, so cooperation
# on any smaller set of states is worth at most z / (1 - delta) and z >= z*(s) is
# necessary for compliance in s. Compliance in s at some z implies compliance at
# every larger z, because values rise with z. So if the start state k has the
# largest z* and z*(k) > max b, the engine's accepted endpoint from k is z*(k).
def chain_thresholds(b: np.ndarray, delta: float, q: np.ndarray) -> np.ndarray:
    punishment = np.linalg.solve(np.eye(len(b)) - delta * q, b)
    return (1.0 - delta) * (2.0 * b + delta * q @ punishment)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_general_chain_thresholds(seed):
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.ones(3), size=3)
    delta_a, delta_b = 0.6, 0.45

    for start in range(3):
        # Raising b in the start state makes it the state with the largest z*.
        b = rng.uniform(0.1, 0.2, size=3)
        b[start] += 0.1
        thresholds_a = chain_thresholds(b, delta_a, q)
        thresholds_b = chain_thresholds(b, delta_b, q)
        for thresholds in (thresholds_a, thresholds_b):
            assert int(np.argmax(thresholds)) == start
            assert thresholds[start] > b.max()

        game = opposed_pair(b, b, q, delta_a, delta_b, start=start)
        score = score_game(game)
        assert score.parties[0].accepts[0] == pytest.approx(thresholds_a[start], abs=ENDPOINT_ACCURACY)
        assert score.parties[1].accepts[1] == pytest.approx(1.0 - thresholds_b[start],
                                                            abs=ENDPOINT_ACCURACY)

        # Every state's threshold, from the incentive slack where all comply everywhere.
        z = 0.5
        assert z >= thresholds_a.max()
        assert 1.0 - z >= thresholds_b.max()
        columns = Solver(game).evaluate([z])
        recovered_a = z - (1.0 - delta_a) * columns.own.slack[0, 0, :]
        recovered_b = (1.0 - z) - (1.0 - delta_b) * columns.own.slack[1, 0, :]
        np.testing.assert_allclose(recovered_a, thresholds_a, atol=1e-9)
        np.testing.assert_allclose(recovered_b, thresholds_b, atol=1e-9)


# Without z >= b everywhere, a treaty that breaks down in a state with a high b
# can hold elsewhere below z*(s). The map from continuation values W to
#   T(W)(s) = z + delta (Q W)(s)  if that is >= 2 b(s) + delta (Q V^P)(s),  else V^P(s)
# is monotone (the jump at the switch goes from V^P(s) up to at least 2 b(s) +
# delta (Q V^P)(s) >= V^P(s)), so its greatest fixed point, which the engine
# selects, complies in s iff some set K containing s is self-enforcing. With three
# states the reference below tries all seven non-empty sets.
def self_enforcing(keep: np.ndarray, z: float, b: np.ndarray, delta: float, q: np.ndarray) -> bool:
    n = len(b)
    punishment = np.linalg.solve(np.eye(n) - delta * q, b)
    breach = 2.0 * b + delta * q @ punishment
    inside = np.flatnonzero(keep)
    outside = np.flatnonzero(~keep)
    system = np.eye(inside.size) - delta * q[np.ix_(inside, inside)]
    reward = z + delta * q[np.ix_(inside, outside)] @ punishment[outside]
    value = np.linalg.solve(system, reward)
    return bool(np.all(value >= breach[inside] - 1e-12))


def complies_somewhere(start: int, z: float, b: np.ndarray, delta: float, q: np.ndarray) -> bool:
    for mask in range(1, 2 ** len(b)):
        keep = np.array([(mask >> index) & 1 == 1 for index in range(len(b))])
        if keep[start] and self_enforcing(keep, z, b, delta, q):
            return True
    return False


def reference_endpoint(start: int, b: np.ndarray, delta: float, q: np.ndarray) -> float:
    low, high = 0.0, 1.0
    assert complies_somewhere(start, high, b, delta, q)
    while high - low > 1e-10:
        middle = 0.5 * (low + high)
        if complies_somewhere(start, middle, b, delta, q):
            high = middle
        else:
            low = middle
    return high


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_general_chain_endpoint_any_start(seed):
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.full(3, 0.7), size=3)
    b = rng.uniform(0.02, 0.3, size=3)
    delta = 0.8

    for start in range(3):
        score = score_game(opposed_pair(b, b, q, delta, delta, start=start))
        expected = reference_endpoint(start, b, delta, q)
        assert score.parties[0].accepts[0] == pytest.approx(expected, abs=ENDPOINT_ACCURACY)


# Two states, L (b = 0.05) and H (b = 0.5), each left with probability 0.3, delta = 0.8.
# Complying in L only, with breakdown on reaching H, is worth
#   V_L = (z + delta a V^P_H) / (1 - delta (1 - a)),  a = 0.3,
# and holds iff V_L >= 2 b_L + delta ((1 - a) V^P_L + a V^P_H). Solving for z:
#   z* = (1 - delta (1 - a)) (2 b_L + delta (1 - a) V^P_L + delta a V^P_H) - delta a V^P_H.
# Compliance in H would need z >= z*(H) = 0.441, so from L the endpoint is z*.
def test_cooperation_only_in_calm_state():
    delta, a = 0.8, 0.3
    q = np.array([[1.0 - a, a], [a, 1.0 - a]])
    b = np.array([0.05, 0.5])
    punishment = np.linalg.solve(np.eye(2) - delta * q, b)
    threshold = ((1.0 - delta * (1.0 - a))
                 * (2.0 * b[0] + delta * (1.0 - a) * punishment[0] + delta * a * punishment[1])
                 - delta * a * punishment[1])

    score = score_game(opposed_pair(b, b, q, delta, delta, start=0))

    assert threshold == pytest.approx(0.072, abs=1e-12)
    assert score.parties[0].accepts[0] == pytest.approx(threshold, abs=ENDPOINT_ACCURACY)
