"""The renegotiation iteration on a subset of strictness columns.

Near its fixed point the iteration over the renegotiation value runs on the
columns of the agreed terms, their neighbours and the columns their
amendments reach. That is exact only if a column's values depend on no other
column except through an amendment at a review. These tests check that
premise on a treaty with a sunset clause and reviews that amend, and check
that the value the solver returns is a fixed point on the whole grid.
"""

import numpy as np
import pytest

from engine.game import DurationRules, ReviewRules, Rules, Settings
from engine.solve import MAX_NODE_ITERATIONS, Solver, _restrict
from helpers import make_game, make_party, opposed_pair

TRANSITION = np.array([[0.8, 0.2], [0.3, 0.7]])


@pytest.fixture(scope="module")
def solver():
    rules = Rules(duration=DurationRules(term=6, renegotiation_cost=0.05),
                  review=ReviewRules(every=2))
    game = opposed_pair([0.3, 0.7], [0.3, 0.6], TRANSITION, 0.8, 0.85, rules=rules)
    solver = Solver(game)
    solver.solve()
    return solver


def test_reviews_amend_somewhere(solver):
    # Without amendments the closure below would be trivially exact.
    assert any(np.any(choice >= 0) for choice in solver.reviews.values())


def test_reduced_pass_matches_whole_grid(solver):
    core = solver.core
    node = solver.node_own.value
    whole = core.run_pass(solver.grid, core.own, node, keep_values=True, reviews=solver.reviews)[0]

    columns = solver.reduced_columns(solver.node_own.support, solver.reviews)
    assert 0 < len(columns) < len(solver.grid)
    reviews, _ = _restrict(columns, solver.reviews, None)
    reduced = core.run_pass(solver.grid[columns], core.own, node, keep_values=True,
                            reviews=reviews)[0]

    for position, values in enumerate(reduced.values):
        np.testing.assert_allclose(values, whole.values[position][:, columns], rtol=0, atol=1e-12)


def test_reduced_columns_are_closed_under_amendments(solver):
    columns = solver.reduced_columns(solver.node_own.support, solver.reviews)
    for choice in solver.reviews.values():
        targets = choice[columns]
        assert np.all(np.isin(targets[targets >= 0], columns))


def test_node_value_reproduces_on_grid(solver):
    core = solver.core
    _, scale = core.value_bounds(core.regime_values(solver.grid))
    node = solver.node_own.value
    check = core.run_pass(solver.grid, core.own, node, keep_values=True, reviews=solver.reviews)[0]
    start = core.phases.start

    again = solver.renegotiate(check.values[0][:, :, start, :], check.policy.codes[0][:, start, :],
                                core.own)

    np.testing.assert_allclose(again.value, node, rtol=0, atol=core.tolerance * scale)


@pytest.mark.parametrize("delta", [0.99, 0.999])
def test_short_term_value_within_tolerance(delta):
    # One state, regime values that do not depend on strictness, and a
    # one-period term renegotiated at cost c. If every term complies and is
    # renegotiated, the value at an expiry node solves V = z - c + delta V, so
    # V = (z - c) / (1 - delta), and the start value is
    # z + delta V = (z - delta c) / (1 - delta). Compliance is an equilibrium because
    # z + delta V >= 2b + delta b / (1 - delta) for both parties below.
    # The renegotiation map contracts only by delta per step here. A change
    # of one step's size is then far from the fixed point, and the solver
    # must still reach it within its tolerance. With delta = 0.999 that takes
    # about 18,000 steps, more than MAX_NODE_ITERATIONS, so the limit must
    # grow with the modulus. A pure contraction stops just inside the bound,
    # so the comparison allows for rounding at the bound itself.
    cost, defection = 0.05, 0.1
    levels = {"A": 0.5, "B": 0.4}
    parties = [make_party(name, delta, [defection], np.eye(1), np.array([[0.0, z], [1.0, z]]))
               for name, z in levels.items()]
    game = make_game(parties, np.eye(1), rules=Rules(duration=DurationRules(term=1, renegotiation_cost=cost)),
                     settings=Settings(grid=5))
    solver = Solver(game)
    columns = solver.solve()
    core = solver.core
    _, scale = core.value_bounds(core.regime_values(solver.grid))

    assert solver.stats.converged
    for index, z in enumerate(levels.values()):
        assert z + delta * (z - cost) / (1 - delta) >= 2 * defection + delta * defection / (1 - delta)
        expected = (z - delta * cost) / (1 - delta)
        error = np.max(np.abs(columns.own.start_values[index] - expected))
        assert error <= core.tolerance * scale * (1 + 1e-6)


def test_iteration_limit_grows_with_modulus():
    # With c = 0.999 a change must shrink from the payoff scale to
    # tolerance (1 - c), which with the default tolerance 1e-9 takes
    # log(1e-12) / log(0.999), about 27,600 steps. The limit allows twice
    # that, and a fast contraction keeps the default.
    def limit(delta):
        parties = [make_party(name, delta, [0.1], np.eye(1), np.array([[0.0, 0.5], [1.0, 0.5]]))
                   for name in "AB"]
        game = make_game(parties, np.eye(1), rules=Rules(duration=DurationRules(term=1)),
                         settings=Settings(grid=3))
        return Solver(game).node_iteration_limit()

    tolerance = Settings().tolerance
    assert tolerance == 1e-9
    assert limit(0.999) == pytest.approx(2 * np.log(tolerance * 0.001) / np.log(0.999), abs=1)
    assert limit(0.5) == MAX_NODE_ITERATIONS
