"""Survival by year where the model period does not divide a year.

A treaty ends only where a period starts, so the chance that it is alive
``k`` years after entry into force is that of the last period started by
then. Rounding to the nearest period would report a breakdown that cannot
have happened yet.
"""

import math

import pytest

from engine.build import build_game
from engine.loader import parse_treaty_text
from engine.score import score_game
from engine.survival import period_at_year

# Two states with equal long-run shares and a yearly persistence of 0.6. The
# treaty is kept in `calm` and breaks down in `storm`, where defecting pays 5.
TEXT = """\
schema: treaty/v1
name: breaks down in storms
period: {period}
environment:
  start: calm
  persistence: 0.6
  states: {{calm: 0.5, storm: 0.5}}
parties:
  - name: A
    discount: 0.9
    defection_value: {{calm: 0.1, storm: 5.0}}
    regime_value: [[0, 0.5], [1, 0.5]]
  - name: B
    discount: 0.9
    defection_value: {{calm: 0.1, storm: 5.0}}
    regime_value: [[0, 0.5], [1, 0.5]]
"""


@pytest.mark.parametrize("period, years", [("2 years", 2.0), ("5 months", 5.0 / 12.0)])
def test_survival_at_uneven_periods(period, years):
    """Closed form: alive after ``t`` periods with chance ``q ** t``, read at ``t = floor(k / period)``.

    Per period the chain stays put with chance ``p = 0.6 ** period`` and
    otherwise draws a state from the long-run shares, so it stays calm with
    ``q = p + (1 - p) * 0.5``. The treaty starts calm and is alive during
    period ``t`` while every state so far was calm. At 2 years a period,
    year 3 lies inside the second period, so its chance is ``q``, not
    ``q ** 2``. At 5 months, year 2 lies inside the fifth period (4.8
    periods), so it is ``q ** 4``.
    """
    score = score_game(build_game(parse_treaty_text(TEXT.format(period=period))))

    p = 0.6 ** years
    q = p + (1.0 - p) * 0.5
    expected = [q ** math.floor(year / years + 1e-9) for year in range(1, len(score.survival) + 1)]

    assert score.survival == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("year, per_year, period", [
    (3, 0.5, 1),
    (2, 2.4, 4),
    (3, 12.0, 36),
    (1, 365.25 / 7.0, 52),
    (3, 365.25 / 7.0, 156),
    (10, 1.0 / (1.0 / 12.0), 120),
])
def test_period_at_year(year, per_year, period):
    assert period_at_year(year, per_year) == period
