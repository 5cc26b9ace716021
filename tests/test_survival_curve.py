"""The yearly survival curve of the score against simulated paths and the lifetime.

The treaty below has a three-year term renegotiated at expiry and a crisis
state in which party A breaks the treaty, so paths end both by breakdown
and by lapse at an expiry node.  Periods are six months long, so that a year
and a period differ and the year-to-period mapping is checked too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.build import build_game
from engine.loader import parse_treaty_text
from engine.report import format_score
from engine.score import score_game
from engine.simulate import simulate_game, wilson

SUNSET = """
schema: treaty/v1
name: sunset treaty
period: {period}
environment:
  start: calm
  persistence: 0.6
  states: {{calm: 0.75, crisis: 0.25}}
parties:
  - name: A
    discount: 0.9
    defection_value: {{calm: 0.2, crisis: 1.0}}
    regime_value: [[0, 0.3], [1, 0.7]]
  - name: B
    discount: 0.85
    defection_value: {{calm: 0.2, crisis: 0.45}}
    regime_value: [[0, 0.7], [1, 0.3]]
model: {{grid: 21, horizon: {horizon} years}}
provisions:
  - kind: duration
    term: 3 years
    renegotiation: {{cost: 0.5, delay: 0 years}}
"""

PATHS = 100_000
# Band of four standard errors: a fixed-seed run misses it in one year with
# probability about 6e-5, so over the 13 years of the horizon the union bound
# keeps the chance of any miss below 1e-3 for any seed.
QUANTILE = 4.0


def sunset(period: str = "6 months", horizon: int = 12):
    game = build_game(parse_treaty_text(SUNSET.format(period=period, horizon=horizon)))
    score = score_game(game)
    assert score.agreement, "the sunset treaty must reach agreement"
    return game, score


def test_survival_inside_band_every_year():
    game, score = sunset()
    simulation = simulate_game(game, score, paths=PATHS, seed=7)
    alive = simulation.counts.alive
    per_year = round(1 / game.period_years)
    expiry_years = [node["year"] for node in score.renegotiation_periods if node["kind"] == "expiry"]
    # The node at the 12-year horizon opens the period of the last survival value.
    assert expiry_years == [3.0, 6.0, 9.0, 12.0]

    assert len(score.survival) == 12
    for year, exact in enumerate(score.survival, start=1):
        _, low, high = wilson(int(alive[year * per_year]), PATHS, QUANTILE)
        assert low <= exact <= high, (year, exact, low, high)

    # The check can fail: the probability of reaching an expiry node, which
    # the curve used to report before counting the lapse, lies outside the
    # band. About 6% of the paths that reach a node lapse there, a gap of at
    # least 0.02 at year 9. Four standard errors at 1e5 paths are under 0.007.
    for node in score.renegotiation_periods:
        year = int(node["year"])
        _, low, high = wilson(int(alive[year * per_year]), PATHS, QUANTILE)
        assert node["p_success"] < 0.99, node
        assert not low <= node["p_alive"] <= high, (year, node["p_alive"], low, high)


def test_lifetime_is_mean_time_alive():
    game, score = sunset()
    per_year = 1 / game.period_years
    simulation = simulate_game(game, score, paths=PATHS, years=100, seed=8)

    # With T the number of periods a path stays alive, counts.alive[t] / N
    # estimates P(T > t), so E[T] = sum_t P(T > t) and
    # E[T^2] = sum_t (2 t + 1) P(T > t).  The survival falls by about 11% a
    # year, so after 100 years the rest adds under 1e-4 years to the mean.
    share = simulation.counts.alive / PATHS
    periods = np.arange(len(share))
    mean = float(share.sum())
    second = float(((2 * periods + 1) * share).sum())
    error = math.sqrt((second - mean * mean) / PATHS)

    estimate = mean / per_year
    assert abs(estimate - score.expected_lifetime_years) <= 4 * error / per_year, (
        estimate, score.expected_lifetime_years, error / per_year)


def test_lifetime_sums_yearly_curve():
    # With one-year periods the lifetime is E[T] = sum_{k >= 0} P(T > k). The
    # yearly curve lists P(T > k) for k >= 1, and P(T > 0) = 1 because this
    # treaty cannot break down in its first year. At 200 years the curve is
    # below 1e-9, so the truncated sum matches to that order.
    _, score = sunset(period="1 year", horizon=200)
    assert score.survival[-1] < 1e-9
    assert math.isclose(1.0 + sum(score.survival), score.expected_lifetime_years,
                        rel_tol=0, abs_tol=1e-7)


# A treaty that is kept in `calm` and breaks down in `crisis`, started in calm
# with a horizon far shorter than its life, so most of the lifetime comes
# from the extrapolated tail. Per six-month period the chain stays put with
# probability p = 0.99 ** 0.5 and otherwise draws crisis with probability
# 0.01, so a treaty alive in calm breaks down in the next period with
# h = (1 - p) 0.01. It is alive in period 0 for sure and in period k with
# probability (1 - h) ** k, so E[T] = 1 / h periods, 0.5 / h years.
SLOW_HAZARD = """schema: treaty/v1
name: slow hazard
period: 6 months
environment:
  start: calm
  persistence: 0.99
  states: {calm: 0.99, crisis: 0.01}
parties:
  - {name: A, discount: 0.9, defection_value: {calm: 0.2, crisis: 1.0}, regime_value: [[0, 0.3], [1, 0.7]]}
  - {name: B, discount: 0.85, defection_value: {calm: 0.2, crisis: 0.45}, regime_value: [[0, 0.7], [1, 0.3]]}
model: {grid: 21, horizon: 12 years}
"""


def test_extrapolated_tail_lifetime():
    score = score_game(build_game(parse_treaty_text(SLOW_HAZARD)))
    hazard = (1 - 0.99**0.5) * 0.01

    # The premise: breakdown exactly on entering crisis, so the curve is geometric.
    assert score.survival[0] == pytest.approx((1 - hazard) ** 2, rel=1e-12)
    assert score.survival[-1] == pytest.approx((1 - hazard) ** 24, rel=1e-12)
    assert any("extrapolated tail" in warning for warning in score.warnings)
    assert score.expected_lifetime_years == pytest.approx(0.5 / hazard, rel=1e-9)


# Each year is `crisis` with probability 0.02, independently. In crisis Alpha
# invokes the escape hatch, so the treaty survives crises during its term. At
# expiry in crisis a new treaty would start with that escape, so it is not
# agreed and the treaty lapses. In calm it is renegotiated. So each term ends
# the treaty with probability 0.02, and the treaty lasts 1 / 0.02 = 50 terms
# on average. The propagation covers 400 years, a whole number of 10-year
# terms but not of 11-year terms, and both must give the closed form.
RARE_LAPSE = """schema: treaty/v1
name: rare lapse
environment:
  start: calm
  persistence: 0
  states: {{calm: 0.98, crisis: 0.02}}
parties:
  - {{name: Alpha, discount: 0.9, defection_value: {{calm: 0.2, crisis: 0.9}}, regime_value: [[0, 0.7], [1, 0.5]]}}
  - {{name: Beta, discount: 0.9, defection_value: {{calm: 0.2, crisis: 0.2}}, regime_value: [[0, 0.5], [1, 0.7]]}}
provisions:
  - {{kind: duration, term: {term} years}}
  - {{kind: escape_hatch, trigger: {{states: [crisis]}}, suspension: 1 year}}
model: {{grid: 21}}
"""


@pytest.mark.parametrize("term", [10, 11])
def test_lifetime_tail_over_whole_terms(term):
    score = score_game(build_game(parse_treaty_text(RARE_LAPSE.format(term=term))))

    assert score.renegotiation_terms["crisis"] == []
    assert any("extrapolated tail" in warning for warning in score.warnings)
    assert score.expected_lifetime_years == pytest.approx(term / 0.02, rel=1e-6)


def test_summary_ends_at_the_horizon():
    # A 12-year horizon has milestones 1, 5 and 10 years, and the summary adds
    # the last year of the curve.
    _, score = sunset()
    summary = [line for line in format_score(score).splitlines() if "alive after:" in line]

    assert len(summary) == 1
    assert [part.split(" y ")[0].strip() for part in summary[0].split(":", 1)[1].split(",")] == [
        "1", "5", "10", "12"]
    assert summary[0].endswith(f"12 y {score.survival[11]:.3f}")


# From "now" the environment moves for good to "kept" (p = 0.8) or "lost".
# At strictness 0.25 the parties comply in "now" and "lost", but the treaty
# breaks down in "kept", where A's regime value 0.25 is below its defection
# value 0.3.  So it ends after the first year with probability 0.8 and lasts
# for ever with probability 0.2.
SPLIT_FUTURE = """
schema: treaty/v1
name: split future
terms: {strictness: 0.25}
environment:
  start: now
  transitions:
    now: {kept: 0.8, lost: 0.2}
    kept: {kept: 1}
    lost: {lost: 1}
parties:
  - name: A
    discount: 0.9
    defection_value: {now: 0.3, kept: 0.3, lost: 0}
    regime_value: [[0, 0], [1, 1]]
  - name: B
    discount: 0.9
    defection_value: {now: 0.3, kept: 0.3, lost: 0}
    regime_value: [[0, 1], [1, 0]]
"""


def test_lifetime_unbounded_when_some_paths_last():
    score = score_game(build_game(parse_treaty_text(SPLIT_FUTURE)))

    assert score.survival[0] == pytest.approx(0.2)
    assert score.survival[-1] == pytest.approx(0.2)
    assert score.expected_lifetime_years is None
    assert any("probability 0.2" in warning for warning in score.warnings)
    assert "unbounded (the treaty can last for ever)" in format_score(score)
