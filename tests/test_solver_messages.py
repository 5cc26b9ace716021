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
