"""Review amendments need every party to gain, whatever the bargaining rule."""

import numpy as np
import pytest

from engine.game import ReviewRules, Rules, Settings
from engine.solve import Solver
from helpers import opposed_pair


def test_utilitarian_amendment_needs_every_party():
    # One state, b = 0.1 and delta = 0.9 for both, z_A = gamma, z_B = 1 - gamma.
    # Compliance is an equilibrium iff z >= b (2 - delta) = 0.11 for each party, so on
    # [0.11, 0.89] each party's value is z / (1 - delta) = 10 z. Moving the
    # terms from one such column to another raises z_A by as much as it lowers
    # z_B, so one party always loses and no amendment may pass there. The
    # utilitarian objective would pick one if a single party's gain were enough.
    rules = Rules(review=ReviewRules(every=2, amendment_cost=0.01))
    settings = Settings(grid=11, bargaining="utilitarian")
    game = opposed_pair(0.1, 0.1, np.eye(1), 0.9, 0.9, rules=rules, settings=settings)
    solver = Solver(game)
    base = solver.solve()
    grid = solver.grid
    inside = (grid > 0.11) & (grid < 0.89)

    assert base.own.policy.amend
    for choices in base.own.policy.amend.values():
        assert np.all(choices[inside] == -1)
    values = base.own.start_values[:, inside]
    assert values[0] == pytest.approx(10 * grid[inside], rel=1e-9)
    assert values[1] == pytest.approx(10 * (1 - grid[inside]), rel=1e-9)
