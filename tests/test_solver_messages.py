"""Messages of a solve that does not converge."""

import numpy as np
import pytest

from engine.dynamic import SolveStats
from engine.errors import SolverError
from engine.solve import Solver
from helpers import random_game


def unconverged():
    return SolveStats(converged=False, iterations=20000, residual=0.003, method="value iteration")


def test_many_strictness_values_are_summarised():
    solver = Solver(random_game(3))
    gammas = np.linspace(0.2168749, 0.7831251, 30)

    with pytest.raises(SolverError) as raised:
        solver._check(unconverged(), gammas)

    message = str(raised.value)
    assert "at strictness 30 values from 0.216875 to 0.783125 did not converge" in message
    assert "residual 0.003" in message
    assert "coarser `period`" in message


def test_few_strictness_values_are_listed():
    solver = Solver(random_game(3))

    with pytest.raises(SolverError) as raised:
        solver._check(unconverged(), np.array([0.25, 0.5]))

    assert "at strictness 0.25, 0.5 did not converge" in str(raised.value)


def test_unconverged_treaty_without_reviews_is_an_error(monkeypatch):
    # Amendments are decided against the treaty without its reviews, so a
    # solve of that treaty that does not converge stops the whole solve, even
    # where the treaty with reviews would converge.
    game = random_game(3, "review")
    assert Solver(game).solve() is not None
    solver = Solver(game)
    assert solver.keep_all
    solve_once = Solver._solve_once

    def failing_without_reviews(self, reviews, declared=True):
        own, other, stats = solve_once(self, reviews, declared)
        if reviews is None:
            stats = unconverged()
        return own, other, stats

    monkeypatch.setattr(Solver, "_solve_once", failing_without_reviews)
    with pytest.raises(SolverError) as raised:
        solver.solve()

    message = str(raised.value)
    assert "the treaty without its reviews" in message
    assert "did not converge after 20000 iterations (residual 0.003)" in message
