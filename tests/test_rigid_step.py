"""The solver's short paths for treaties without legal actions against its general path.

The short paths are the one-candidate step, the jump of value iteration to
the next policy change and the dense exact values.  The general solver here
uses none of them, so the two agree to rounding, with the same policies.
"""

import math

import numpy as np
import pytest

from hypothesis import given, settings, strategies as st

from engine.dynamic import DynamicSolver, sweep_limit
from engine.environment import persistence_per_period, sticky_jump_matrix
from engine.solve import Solver
from helpers import make_game, make_party, linear_points, random_game


@pytest.mark.parametrize("seed, kind", [(2, None), (4, None), (9, None), (13, "duration"), (21, "review")])
def test_rigid_step_matches_general_step(seed, kind):
    game = random_game(seed, kind)
    short = Solver(game)
    general = Solver(game)
    general.core._rigid = False
    general.core._descends = False
    general.core.jumps = False

    assert short.core._rigid
    first, second = short.solve(), general.solve()

    np.testing.assert_allclose(first.own.start_values, second.own.start_values, rtol=1e-12, atol=1e-12)
    for a, b in zip(first.own.policy.codes, second.own.policy.codes):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(first.own.slack, second.own.slack, rtol=1e-12, atol=1e-12)


def _one_step(core, values, z):
    """One sweep of value iteration from ``values`` (party, column, 1, state): the new values and policy."""
    chain = core.own
    new, codes, _ = core._rigid_step(core._continuation(values, chain), z, chain, None)
    return new, codes[:, 0, :]


def _paths_until_change(core, values, z, limit):
    """Sweep ``limit`` times from ``values``; return the iterates and, per column, how many keep the first policy.

    The iterates have shape (sweep, party, column, 1, state). Column ``c``
    keeps the policy of ``values`` up to iterate ``kept_until[c] - 1``.
    """
    _, policy = _one_step(core, values, z)
    iterates = [values]
    kept_until = np.full(values.shape[1], limit + 1)
    for sweep in range(1, limit + 1):
        following, _ = _one_step(core, iterates[-1], z)
        _, following_policy = _one_step(core, following, z)
        changed = np.any(following_policy != policy, axis=1)
        kept_until = np.where(changed & (kept_until > sweep), sweep, kept_until)
        iterates.append(following)
    return np.stack(iterates), kept_until


def _breach_cost_game(draw):
    """A rigid two-party game in which a breach cost above the defection value keeps the iterates from only falling."""
    states = draw(st.integers(2, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    transition = rng.dirichlet(np.ones(states), size=states)
    parties = [
        make_party(f"P{index}", float(rng.uniform(0.3, 0.8)), rng.uniform(0.05, 0.6, size=states),
                   transition, linear_points(*rng.uniform(0.0, 1.0, size=2)),
                   breach_cost=float(rng.uniform(0.0, 0.8)))
        for index in range(2)
    ]
    game = make_game(parties, transition, start=0)
    values = rng.uniform(-2.0, 6.0, size=(2, 41, 1, states))
    return game, values


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_jump_reaches_the_iterate_before_the_policy_changes(data):
    """From any iterate, a jump ends on the path of single sweeps, before the policy changes.

    The starting values are arbitrary, so steps can rise in some states and
    fall in others. There a jump may not skip ahead by powers, because a
    policy change could come and go between two powers. It must step, and it
    may stop early, because the sweeps carry on from where it stops.
    Discounts up to 0.8 make 400 sweeps shrink a difference by 0.8**400,
    about 1e-39, so single sweeps reach the fixed point where the policy
    never changes.
    """
    game, values = _breach_cost_game(data.draw)
    core = DynamicSolver(game)
    # A descending treaty jumps without checking the direction of a step,
    # which is right for the iterates from the upper bound but not for
    # arbitrary values, so every game here takes the checked path.
    core._descends = False
    z = core.regime_values(np.linspace(0.0, 1.0, values.shape[1]))

    jumped, _ = core._rigid_jump(values, z, core.own, budget=10_000, settled=0.0)
    iterates, kept_until = _paths_until_change(core, values, z, limit=400)

    for column in range(values.shape[1]):
        path = iterates[:kept_until[column], :, column]
        distance = np.max(np.abs(path - jumped[None, :, column]), axis=(1, 2, 3))
        scale = 1.0 + np.max(np.abs(path), axis=(1, 2, 3))
        assert np.any(distance <= 1e-9 * scale), f"column {column} left the path of single sweeps"


@pytest.mark.parametrize("period_days", [7, 1])
def test_fine_period_with_breach_cost_matches_plain_sweeps(period_days):
    """A rigid treaty at a weekly or daily period whose breach cost exceeds a period's defection value.

    Its iterates need not only fall, so the solver cannot jump straight to
    each policy change. Plain sweeps (no jumps, no sweep limit) give the
    same values and policies. At a daily period plain sweeps need about
    21,000 sweeps, more than the fixed limit of 20,000 allowed before.
    """
    period = 1.0 / 52.0 if period_days == 7 else 1.0 / 365.0
    transition = sticky_jump_matrix(persistence_per_period(0.8, period), np.array([0.7, 0.3]))
    parties = [
        make_party("Norway", 0.93 ** period, np.array([0.3, 0.8]) * period, transition,
                   linear_points(0.4 * period, 0.6 * period), breach_cost=0.2),
        make_party("Iceland", 0.9 ** period, np.array([0.35, 0.7]) * period, transition,
                   linear_points(0.6 * period, 0.35 * period)),
    ]
    game = make_game(parties, transition, start=0)
    grid = np.linspace(0.0, 1.0, 21)

    fast = DynamicSolver(game)
    plain = DynamicSolver(game)
    plain.jumps = False
    plain.max_iterations = 10**7
    first, stats = fast.run_pass(grid, fast.own, None, keep_values=True)
    second, plain_stats = plain.run_pass(grid, plain.own, None, keep_values=True)

    assert stats.converged and plain_stats.converged
    np.testing.assert_allclose(first.values[0], second.values[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(first.policy.codes[0], second.policy.codes[0])


@given(st.floats(0.01, 0.99999))
def test_sweep_limit_covers_the_contraction(delta):
    """Half the limit shrinks a change of the payoff scale below the stopping rule ``tolerance * (1 - delta)``."""
    tolerance = 1e-9
    limit = sweep_limit(100, tolerance, delta)

    assert limit >= 100
    assert (limit / 2) * math.log(delta) <= math.log(tolerance * (1.0 - delta)) + 1e-9
