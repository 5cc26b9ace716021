"""The solver's short paths for treaties without legal actions against its general path.

The short paths are the one-candidate step, the jump of value iteration to
the next policy change and the dense exact values.  The general solver here
uses none of them, so the two agree to rounding, with the same policies.
"""

import numpy as np
import pytest

from engine.solve import Solver
from helpers import random_game


@pytest.mark.parametrize("seed, kind", [(2, None), (4, None), (9, None), (13, "duration"), (21, "review")])
def test_rigid_step_matches_general_step(seed, kind):
    game = random_game(seed, kind)
    short = Solver(game)
    general = Solver(game)
    general.core._rigid = False
    general.core._descends = False

    assert short.core._rigid
    first, second = short.solve(), general.solve()

    np.testing.assert_allclose(first.own.start_values, second.own.start_values, rtol=1e-12, atol=1e-12)
    for a, b in zip(first.own.policy.codes, second.own.policy.codes):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(first.own.slack, second.own.slack, rtol=1e-12, atol=1e-12)
