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

from engine.game import DurationRules, ReviewRules, Rules
from engine.solve import Solver, _restrict
from helpers import opposed_pair

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
