"""The solver's short path for treaties without legal actions against its general path."""

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

    assert short.core._rigid
    first, second = short.solve(), general.solve()

    np.testing.assert_array_equal(first.own.start_values, second.own.start_values)
    for a, b in zip(first.own.policy.codes, second.own.policy.codes):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.own.slack, second.own.slack)
