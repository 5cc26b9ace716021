"""A zone of agreement narrower than the grid spacing, which contains no grid point."""

import dataclasses

import numpy as np
import pytest

from engine.build import build_game
from engine.game import Settings
from engine.loader import parse_treaty_text
from engine.score import score_game
from helpers import opposed_pair

# One state, delta = 0.9, z_A = gamma and z_B = 1 - gamma. Compliance needs
# z >= b (2 - delta) for each party (the folk bound), so A accepts
# gamma >= 0.38 * 1.1 = 0.418 and B accepts gamma <= 1 - 0.5 * 1.1 = 0.45.
# The zone [0.418, 0.45] lies between the grid points 0.4 and 0.5 of an
# 11-point grid.
LOW, HIGH = 0.38 * 1.1, 1 - 0.5 * 1.1


def narrow_game():
    return opposed_pair(0.38, 0.5, np.eye(1), 0.9, 0.9, settings=Settings(grid=11))


def test_zone_found_from_accepted_sets():
    score = score_game(narrow_game())

    assert score.agreement
    assert score.zone == pytest.approx((LOW, HIGH), abs=1e-6)
    assert LOW <= score.terms <= HIGH
    assert any("[0.418, 0.45], found between grid points" in warning for warning in score.warnings)


def test_zone_found_from_proposal():
    score = score_game(dataclasses.replace(narrow_game(), terms=0.43))

    assert score.agreement
    assert score.proposal["accepted"]
    assert score.zone == pytest.approx((LOW, HIGH), abs=1e-6)
    assert any("[0.418, 0.45], found between grid points" in warning for warning in score.warnings)



# A's regime value is a spike of height 0.5 at 0.4 (from 0.38 to 0.42) and
# another at 0.45 (from 0.44 to 0.46), and zero elsewhere; B's rises from 0.6
# to 1. With delta = 0.9 the folk bound needs z_A >= 0.38 * 1.1 = 0.418, which
# is met within 0.01 (1 - 0.418 / 0.5) = 0.00164 of 0.45 and twice that of
# 0.4, and z_B >= 0.5 * 1.1 = 0.55 is met everywhere. The interval around 0.45 lies
# between the grid points 0.4 (feasible) and 0.5 (infeasible).
SPIKES = """schema: treaty/v1
name: pocket beside a grid point
parties:
  - name: A
    discount: 0.9
    defection_value: 0.38
    regime_value: [[0, 0], [0.38, 0], [0.4, 0.5], [0.42, 0], [0.44, 0], [0.45, 0.5], [0.46, 0], [1, 0]]
  - name: B
    discount: 0.9
    defection_value: 0.5
    regime_value: [[0, 0.6], [1, 1]]
model: {grid: 11}
"""
HALF_WIDTH = 0.01 * (1 - 0.418 / 0.5)


def test_pocket_beside_feasible_grid_point():
    # The terms maximise the Nash product at the kink 0.45: A's gain falls at
    # slope 50 / 0.12 in logarithm on either side, far faster than B's rises.
    score = score_game(build_game(parse_treaty_text(SPIKES + "terms: {strictness: 0.45}\n")))

    assert score.zone == pytest.approx((0.45 - HALF_WIDTH, 0.45 + HALF_WIDTH), abs=1e-6)
    assert score.terms == pytest.approx(0.45, abs=1e-6)
    low, high = score.parties[0].accepts
    assert low <= score.terms <= high
    assert any("[0.39672, 0.40328], [0.44836, 0.45164]" in warning for warning in score.warnings)
