"""Anderson steps of the renegotiation iteration, and the future that extra columns see.

While the agreed terms stay the same, the map from one renegotiation value to
the next is close to affine, and the iteration extrapolates to its fixed
point instead of stepping there one contraction at a time. The steps must
land on the fixed point that plain iteration reaches, leave it where the
terms would change, and make the slow cases fast.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import engine.solve as solve_module
from engine.build import build_game
from engine.game import DurationRules, Rules, Settings
from engine.loader import load_treaty
from engine.score import score_game
from engine.solve import Solver, _anderson_step
from helpers import make_game, make_party, random_game


def plain_iteration(monkeypatch):
    """Turn Anderson steps off, so that the iteration takes plain steps only."""
    monkeypatch.setattr(solve_module, "_anderson_step", lambda history: None)


def test_anderson_step_exact_on_affine_map():
    # For T(x) = A x + b the change T(x) - x = (A - I) x + b is affine, so
    # weights a_i summing to 1 with sum a_i (T(x_i) - x_i) = 0 give
    # (A - I) sum a_i x_i + b = 0: the combination of the values is the fixed
    # point x* = (I - A)^-1 b, and the same combination of the images is
    # A x* + b = x*. In two dimensions three values with independent changes
    # determine the weights.
    a = np.array([[0.5, 0.1], [0.2, 0.3]])
    b = np.array([1.0, -2.0])
    history = []
    x = np.array([[7.0, 3.0]])
    for _ in range(3):
        image = (a @ x.ravel() + b).reshape(x.shape)
        history.append((x, image))
        x = image

    fixed = np.linalg.solve(np.eye(2) - a, b)
    np.testing.assert_allclose(_anderson_step(history).ravel(), fixed, rtol=0, atol=1e-12)
    # Plain iteration is still far off after these steps.
    assert np.max(np.abs(x.ravel() - fixed)) > 0.1


def test_anderson_step_equal_changes():
    value = np.ones((2, 3))
    history = [(value, value + 1.0), (value + 1.0, value + 2.0)]
    # Equal changes leave the weights undetermined.
    assert _anderson_step(history) is None


def test_slow_contraction_takes_few_steps(monkeypatch):
    # One state, regime values that do not depend on strictness and a
    # one-period term: the renegotiation map is V -> z - c + delta V, an
    # affine map that contracts only by delta = 0.99 per step. Its fixed point
    # gives the start value (z - delta c) / (1 - delta) (derived in
    # test_node_iteration). Plain iteration needs thousands of steps to reach
    # the tolerance; Anderson steps need a handful once the terms are steady.
    cost, defection, delta = 0.05, 0.1, 0.99
    levels = {"A": 0.5, "B": 0.4}

    def solved():
        parties = [make_party(name, delta, [defection], np.eye(1), np.array([[0.0, z], [1.0, z]]))
                   for name, z in levels.items()]
        game = make_game(parties, np.eye(1),
                         rules=Rules(duration=DurationRules(term=1, renegotiation_cost=cost)),
                         settings=Settings(grid=5))
        solver = Solver(game)
        columns = solver.solve()
        _, scale = solver.core.value_bounds(solver.core.regime_values(solver.grid))
        return solver, columns, scale

    solver, columns, scale = solved()
    assert solver.stats.converged
    assert solver.stats.iterations <= 20
    for index, z in enumerate(levels.values()):
        expected = (z - delta * cost) / (1 - delta)
        assert np.max(np.abs(columns.own.start_values[index] - expected)) <= solver.core.tolerance * scale

    plain_iteration(monkeypatch)
    plain, _, _ = solved()
    assert plain.stats.iterations > 1000


@pytest.mark.parametrize("seed", range(6))
def test_accelerated_matches_plain_fixed_point(monkeypatch, seed):
    def solved():
        solver = Solver(random_game(seed, "duration"))
        columns = solver.solve()
        return solver, columns

    fast, fast_columns = solved()
    plain_iteration(monkeypatch)
    slow, slow_columns = solved()

    core = fast.core
    _, scale = core.value_bounds(core.regime_values(fast.grid))
    # Each value lies within the tolerance of the same fixed point.
    bound = 2 * core.tolerance * scale
    assert fast.stats.converged and slow.stats.converged
    assert fast.stats.iterations <= slow.stats.iterations
    assert np.array_equal(fast.node_own.support, slow.node_own.support)
    np.testing.assert_allclose(fast.node_own.value, slow.node_own.value, rtol=0, atol=bound)
    np.testing.assert_allclose(fast_columns.own.start_values, slow_columns.own.start_values,
                               rtol=0, atol=bound)


def test_jump_changing_terms_undone(monkeypatch):
    # In this treaty an Anderson step taken while the value still falls fast
    # lands where the terms at strictness 0 are no longer acceptable, and no
    # renegotiated agreement is a fixed point there too. The iteration must
    # undo that step and keep the terms that plain iteration finds.
    path = Path(__file__).parent / "data" / "jump_leaves_terms.yaml"
    fast = score_game(build_game(load_treaty(path))).to_dict()["renegotiation_terms"]
    plain_iteration(monkeypatch)
    slow = score_game(build_game(load_treaty(path))).to_dict()["renegotiation_terms"]

    assert slow == {state: [{"strictness": 0.0, "probability": 1.0}] for state in ("s0", "s1", "s2")}
    assert fast == slow


def test_extra_columns_repeat_grid_columns():
    # Extra columns are solved against the renegotiation value that the grid
    # was solved against, not the one renegotiation returns from it, which
    # differs by the last residual. With a loose tolerance that residual is
    # large, and a column evaluated at a grid point must still repeat the
    # grid column. Otherwise amending at a review from the evaluated terms to
    # the same grid terms can look like a gain.
    solver = Solver(random_game(8, "duration"))
    solver.core.tolerance = 1e-4
    base = solver.solve()
    assert solver.stats.residual > 1e-6
    # Every grid column starts with the treaty, so every one reaches expiry.
    assert np.all(base.own.policy.codes[0][:, solver.core.phases.start, :] >= 0)

    picked = [0, 7, 20, len(solver.grid) - 1]
    extra = solver.evaluate(solver.grid[picked])
    for position, values in enumerate(extra.own.values):
        np.testing.assert_allclose(values, base.own.values[position][:, picked], rtol=0, atol=1e-12)


def believing_game(seed):
    """A random sunset game in which the first party believes a stickier chain than the declared one."""
    game = random_game(seed, "duration")
    first = game.parties[0]
    sticky = 0.5 * first.transition + 0.5 * np.eye(game.n_states)
    parties = (dataclasses.replace(first, transition=sticky),) + tuple(game.parties[1:])
    return dataclasses.replace(game, parties=parties)


def declared_renegotiations(monkeypatch):
    """Count renegotiations valued under the declared chain, one per pass of its iteration."""
    count = [0]
    original = Solver.renegotiate

    def counted(self, fresh, starts, chain, *args, **kwargs):
        if chain is self.core.declared:
            count[0] += 1
        return original(self, fresh, starts, chain, *args, **kwargs)

    monkeypatch.setattr(Solver, "renegotiate", counted)
    return count


@pytest.mark.parametrize("seed", [0, 1, 4, 5, 6, 9])
def test_declared_iteration_matches_plain(monkeypatch, seed):
    # Under the declared chain the policy and the lottery are those of the
    # parties' own solve, so the map of the renegotiation value is affine and
    # Anderson steps must reach the fixed point that plain iteration reaches.
    count = declared_renegotiations(monkeypatch)
    fast = Solver(believing_game(seed))
    fast_columns = fast.solve()
    fast_passes = count[0]
    assert not fast.core.beliefs_are_declared

    plain_iteration(monkeypatch)
    count[0] = 0
    slow = Solver(believing_game(seed))
    slow_columns = slow.solve()

    core = fast.core
    _, scale = core.value_bounds(core.regime_values(fast.grid))
    bound = 2 * core.tolerance * scale
    assert fast.stats.converged and slow.stats.converged
    assert fast_passes <= count[0]
    np.testing.assert_allclose(fast.node_declared.value, slow.node_declared.value, rtol=0, atol=bound)
    np.testing.assert_allclose(fast_columns.declared.start_values, slow_columns.declared.start_values,
                               rtol=0, atol=bound)


def test_reported_lottery_bargained_afresh():
    # Inside the iteration each bargaining search starts from the last
    # step's lottery. Where several lotteries give the same gains, the one
    # reported must still be the one a search from the default start finds
    # for the final values, so that it depends on those values alone.
    game = build_game(load_treaty(Path(__file__).parent / "data" / "flat_face_three_terms.yaml"))
    solver = Solver(game)
    solver.solve()
    core = solver.core
    start = core.phases.start
    final = core.run_pass(solver.grid, core.own, solver.node_input, keep_values=True)[0]
    afresh = solver.renegotiate(final.values[0][:, :, start, :], final.policy.codes[0][:, start, :], core.own)

    assert len(solver.node_own.support) == 3
    assert np.array_equal(solver.node_own.support, afresh.support)
    np.testing.assert_array_equal(solver.node_own.probability, afresh.probability)
