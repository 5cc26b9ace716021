"""The expected lifetime's tail where the chance of ending changes slowly.

Past the propagation the survival curve is extrapolated as geometric. That
is exact once a single hazard is left, but a treaty can face a fast hazard
first and a slow one later, and then the propagation must run long enough
for the slow one to take over.
"""

import numpy as np
import pytest

from engine.build import build_game
from engine.loader import parse_treaty_text
from engine.score import _ending_rate_settled, score_game

# The treaty breaks down in `storm`. From `early` the chain moves to `storm`
# with 0.001 a year and to `late` with 0.0005, and from `late` to `storm` with
# 0.00005 a year.
TWO_HAZARDS = """\
schema: treaty/v1
name: two hazards
environment:
  start: early
  transitions:
    early: {early: 0.9985, late: 0.0005, storm: 0.001}
    late: {late: 0.99995, storm: 0.00005}
    storm: {storm: 1.0}
parties:
  - name: A
    discount: 0.9
    defection_value: {early: 0.1, late: 0.1, storm: 5.0}
    regime_value: [[0, 0.5], [1, 0.5]]
  - name: B
    discount: 0.9
    defection_value: {early: 0.1, late: 0.1, storm: 5.0}
    regime_value: [[0, 0.5], [1, 0.5]]
"""


def test_lifetime_slow_second_hazard():
    """Closed form: the mean number of yearly periods before `storm`, ``(I - Q)^-1 1`` from `early`.

    With ``Q`` the chain on `early` and `late`, the time from `late` is
    ``1 / 0.00005 = 20000`` years and from `early`
    ``(1 + 0.0005 * 20000) / 0.0015 = 22000 / 3``, about 7333 years. At 400
    years most paths are still in `early`, so a tail measured there would
    extrapolate the fast hazard and give about 1200 years.
    """
    score = score_game(build_game(parse_treaty_text(TWO_HAZARDS)))

    assert score.expected_lifetime_years == pytest.approx(22000.0 / 3.0, rel=1e-4)


def test_ending_rate_settles_one_hazard():
    # Over 400 periods the faster of the two hazards still carries about a seventh
    # of the mass at the end, so the mixture's hazard is still falling.
    periods = np.arange(400)
    single = 0.995 ** periods
    two = 0.5 * 0.995 ** periods + 0.5 * 0.9995 ** periods

    assert _ending_rate_settled(single, 1)
    assert not _ending_rate_settled(two, 1)
