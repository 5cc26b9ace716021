"""A zone of agreement narrower than the grid spacing, which contains no grid point."""

import dataclasses

import numpy as np
import pytest

from engine.game import Settings
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
    assert any("found from the overlap of the accepted sets" in warning for warning in score.warnings)


def test_zone_found_from_proposal():
    score = score_game(dataclasses.replace(narrow_game(), terms=0.43))

    assert score.agreement
    assert score.proposal["accepted"]
    assert score.zone == pytest.approx((LOW, HIGH), abs=1e-6)
    assert any("found from the proposal" in warning for warning in score.warnings)

