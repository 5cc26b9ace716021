"""Extension choices that flip back and forth, settled by a lottery.

In these generated treaties with a sunset clause and one extension, extending
the terms in some state moves the renegotiation value so that a party then
prefers to renegotiate, and renegotiating moves it back. No pure choice is
consistent there; the solver lets the parties extend with a probability that
leaves the pivotal party indifferent. The tests check the two conditions of
that equilibrium directly: the pivotal margin is zero where the probability
is strictly between 0 and 1, and the renegotiation value is a fixed point.
"""

import numpy as np
import pytest

from engine.score import score_game
from engine.solve import EXTENSION_LOTTERY, EXTENSION_TOLERANCE, Solver
from helpers import random_game


@pytest.mark.parametrize("seed", [375, 599])
def test_extension_lottery_is_an_equilibrium(seed):
    game = random_game(seed, "duration")
    solver = Solver(game)
    solver.solve()
    core = solver.core
    _, scale = core.value_bounds(core.regime_values(solver.grid))

    assert solver.stats.converged
    assert EXTENSION_LOTTERY in solver.notes
    node = solver.node_own.value
    check = core.run_pass(solver.grid, core.own, node, keep_values=True,
                          extension=solver.extension)[0]
    interior = 0
    for segment, chance in solver.extension.items():
        mixed = ~np.isnan(chance) & (chance > 1e-9) & (chance < 1.0 - 1e-9)
        interior += int(mixed.sum())
        margin = check.policy.extend_margin[segment][mixed]
        assert np.all(np.abs(margin) <= EXTENSION_TOLERANCE * scale)
    assert interior > 0

    # The renegotiation value reproduces itself.
    fresh = check.values[0][:, :, core.phases.start, :]
    again = solver.renegotiate(fresh, check.policy.codes[0][:, core.phases.start, :], core.own)
    np.testing.assert_allclose(again.value, node, atol=core.tolerance * scale * 10)


@pytest.mark.parametrize("seed", [375, 599])
def test_extension_lottery_scores(seed):
    score = score_game(random_game(seed, "duration"))

    assert score.converged
    assert EXTENSION_LOTTERY in score.warnings
    assert np.all(np.diff(np.array(score.survival)) <= 1e-12)
