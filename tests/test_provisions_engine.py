"""Withdrawal with notice: when the notice period holds and when it unravels.

In the last notice period the treaty ends next period whatever happens, so
complying pays ``z + delta V^P`` and breaching pays ``2b - kappa + delta V^P``.
The last period holds iff ``z >= 2b - kappa``, that is, iff the breach cost
``kappa`` is at least ``T - R = 2b - z``. With ``kappa = 0`` and ``z < 2b`` it
fails, every earlier notice period then ends in breakdown one period later
and fails in the same way, so the whole notice period unravels.

With two notice periods left and the last one holding, complying minus
breaching is ``(z - 2b + kappa) + delta (z - b)``, and each further period adds
another nonnegative term where ``z >= b``. So where ``z >= b`` the last period
decides.
"""

import numpy as np
import pytest

from engine.dynamic import BREAKDOWN, COMPLY
from engine.game import Rules, WithdrawalRules
from engine.phases import NOTICE
from engine.score import score_game
from engine.solve import Solver
from helpers import opposed_pair


def notice_codes(game, gammas):
    """Profile codes of every notice phase in state 0, shape (column, notice phase)."""
    solver = Solver(game)
    columns = solver.evaluate(gammas)
    notice = np.flatnonzero(solver.core.phases.kind == NOTICE)
    assert notice.size > 0
    return columns.own.policy.codes[0][:, notice, 0]


# One state, b = 0.3, delta = 0.9, notice of three periods. For gamma in [0.3, 0.7]
# both z_A = gamma and z_B = 1 - gamma are at least b, so the notice period holds
# iff gamma >= 2b - kappa and 1 - gamma >= 2b - kappa.
@pytest.mark.parametrize(("kappa", "gamma", "holds"), [
    (0.0, 0.35, False), (0.0, 0.5, False), (0.0, 0.65, False),
    (0.2, 0.35, False), (0.2, 0.45, True), (0.2, 0.5, True), (0.2, 0.55, True), (0.2, 0.65, False),
    (0.6, 0.35, True), (0.6, 0.65, True),
])
def test_notice_holds_iff_breach_cost_covers_temptation(kappa, gamma, holds):
    rules = Rules(withdrawal=WithdrawalRules(notice=3))
    game = opposed_pair(0.3, 0.3, np.eye(1), 0.9, 0.9, rules=rules, breach_cost=kappa)
    codes = notice_codes(game, [gamma])

    expected = COMPLY if holds else BREAKDOWN
    assert np.all(codes == expected)


def test_notice_holds_at_exact_breach_cost():
    # kappa = 2b - z_A exactly at gamma = 0.4: the last notice period is a tie, which counts as holding.
    rules = Rules(withdrawal=WithdrawalRules(notice=2))
    game = opposed_pair(0.3, 0.3, np.eye(1), 0.9, 0.9, rules=rules, breach_cost=0.2)

    assert np.all(notice_codes(game, [0.4]) == COMPLY)


# Two states: calm (b = 0.3) and war (b = 0.8, absorbing), war reached with
# probability 0.05 per period, delta = 0.9. In every state z < 2b for both parties
# (z_A + z_B = 1 and 2b >= 0.6), so with kappa = 0 notice unravels everywhere:
# giving notice is not an equilibrium, and as a deviation it is worth
# z + delta (Q V^P), less than complying. The treaty with withdrawal must then
# score exactly as the rigid one.
def war_game(rules, breach_cost):
    transition = np.array([[0.95, 0.05], [0.0, 1.0]])
    return opposed_pair([0.3, 0.8], [0.3, 0.8], transition, 0.9, 0.9, rules=rules,
                        breach_cost=breach_cost, states=("calm", "war"))


@pytest.mark.parametrize("notice", [1, 2, 4])
def test_unravelled_notice_adds_no_value(notice):
    rigid = score_game(war_game(Rules(), 0.0))
    withdrawal = score_game(war_game(Rules(withdrawal=WithdrawalRules(notice=notice)), 0.0))

    assert rigid.agreement
    assert withdrawal.zone == pytest.approx(rigid.zone, abs=1e-9)
    assert withdrawal.terms == pytest.approx(rigid.terms, abs=1e-9)
    for with_exit, without in zip(withdrawal.parties, rigid.parties):
        assert with_exit.value_with_treaty == pytest.approx(without.value_with_treaty, rel=1e-9)
    assert withdrawal.survival == pytest.approx(rigid.survival, abs=1e-9)


def test_held_notice_changes_the_treaty():
    # With kappa = 2 >= 2b - z in every state the rigid treaty can hold on in war,
    # although z_B = 1 - gamma < b = 0.8 there for gamma > 0.2, so B is better off
    # leaving. Withdrawal lets it leave in order, so the values differ
    # from the rigid treaty with the same breach cost.
    rigid = score_game(war_game(Rules(), 2.0))
    game = war_game(Rules(withdrawal=WithdrawalRules(notice=2)), 2.0)
    withdrawal = score_game(game)

    assert np.all(notice_codes(game, [0.5]) == COMPLY)
    assert rigid.agreement and withdrawal.agreement
    differences = [
        abs(a.value_with_treaty - b.value_with_treaty)
        for a, b in zip(withdrawal.parties, rigid.parties)
    ]
    assert max(differences) > 1e-3 or abs(withdrawal.zone[1] - rigid.zone[1]) > 1e-3


def test_notice_in_war_value():
    # At gamma = 0.5 both parties get z = 0.5 < b = 0.8 in war, which never
    # ends. Staying is worth z / (1 - delta) = 5, and giving notice is worth z
    # in the period of notice and in the one notice period after it, then b for
    # ever: z (1 + delta) + delta^2 b / (1 - delta) = 0.95 + 6.48 = 7.43. With
    # kappa = 2 breaching during notice pays 2b - kappa = -0.4 < z, so notice is
    # given and held. Both parties get 7.43, whichever of them gives it.
    game = war_game(Rules(withdrawal=WithdrawalRules(notice=2)), 2.0)
    solver = Solver(game)
    columns = solver.evaluate([0.5])
    war = game.states.index("war")
    normal = solver.core.phases.start
    values = columns.own.values[0][:, 0, normal, war]

    expected = 0.5 * (1 + 0.9) + 0.9**2 * 0.8 / (1 - 0.9)
    assert expected == pytest.approx(7.43)
    assert values == pytest.approx([expected, expected], rel=1e-9)
