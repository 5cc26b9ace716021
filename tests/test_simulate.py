"""Monte Carlo simulation against the exact solver on small treaties.

Every spec has two environment states, so that paths differ, and a crisis
state with a high temptation, so that the treaty can end.  The parties believe
the declared chain, so the policy's values under the declared chain are the
exact expectation of the simulated discounted payoff.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.build import build_game
from engine.loader import parse_treaty_text
from engine.score import score_game
from engine.simulate import BLOCK_SIZE, simulate_game, wilson
from helpers import recorded_propagations

BASE = """
schema: treaty/v1
name: {name}
environment:
  start: calm
  persistence: 0.6
  states: {{calm: 0.75, crisis: 0.25}}
parties:
  - name: A
    discount: 0.9
    defection_value: {{calm: 0.2, crisis: {crisis_a}}}
    regime_value: [[0, 0.3], [1, 0.7]]
  - name: B
    discount: 0.85
    defection_value: {{calm: 0.2, crisis: 0.45}}
    regime_value: [[0, 0.7], [1, 0.3]]
model: {{grid: 21, horizon: 20 years}}
{provisions}
"""

# Each entry: the provisions block and party A's defection value in the crisis.
# At 1.2 the crisis breaks the rigid treaty, so every design can end.
PROVISIONS = {
    "rigid": ("", 1.2),
    "duration": ("""provisions:
  - kind: duration
    term: 4 years
    renegotiation: {cost: 0.3, delay: 1 year}
    extensions: {length: 2 years, max: 1}
""", 1.2),
    # Immediate exit at a cost: in the crisis a party leaves instead of breaching.
    "withdrawal": ("""provisions:
  - kind: withdrawal
    notice: 0 years
    cost: 0.05
""", 1.2),
    "escape": ("""provisions:
  - kind: escape_hatch
    trigger: {states: [crisis]}
    suspension: 2 years
    cost: 0.2
    cost_type: transfer
    max_uses: 2
""", 1.2),
    "review": ("""provisions:
  - kind: review
    every: 2 years
    amendment_cost: 0.01
""", 1.2),
}


def build(kind: str):
    provisions, crisis_a = PROVISIONS[kind]
    text = BASE.format(name=f"{kind} test", crisis_a=crisis_a, provisions=provisions)
    game = build_game(parse_treaty_text(text))
    return game, score_game(game)


@pytest.fixture(scope="module", params=sorted(PROVISIONS))
def scored(request):
    game, score = build(request.param)
    assert score.agreement, f"{request.param}: the test spec must reach agreement"
    return request.param, game, score, simulate_game(game, score, paths=4000, seed=11)


def test_mean_payoff_within_three_errors(scored):
    kind, _, _, simulation = scored
    for row in simulation.payoff_summary():
        assert row["standard_error"] > 0, f"{kind}: payoffs of {row['name']} do not vary"
        gap = abs(row["mean"] - row["exact"])
        assert gap <= 3 * row["standard_error"] + 1e-9 * (1 + abs(row["exact"])), (kind, row)


def test_survival_within_bands(scored):
    kind, _, score, simulation = scored
    rows = simulation.survival()
    assert len(rows) == len(score.survival)
    outside = [row for row in rows if not row["low"] - 1e-12 <= row["exact"] <= row["high"] + 1e-12]
    # Each 95% band misses with chance 5%; neighbouring years are strongly
    # correlated, so a few misses in a row are possible but not many.
    assert len(outside) <= len(rows) // 5, (kind, outside)
    for row in rows:
        assert abs(row["estimate"] - row["exact"]) <= 4 * max(row["standard_error"], 1e-3), (kind, row)


def test_treaty_can_end(scored):
    kind, _, score, simulation = scored
    # The exact curve says whether the treaty can end within the horizon; so must the paths.
    if score.survival[-1] < 0.99:
        assert simulation.survival()[-1]["estimate"] < 1.0, kind


def exact_trajectory(kind: str):
    """Return the exact propagation that scoring the spec runs, before the score clips it."""
    with recorded_propagations() as trajectories:
        build(kind)
    assert len(trajectories) == 1
    return trajectories[0]


def test_event_shares_match_exact(scored):
    # At most one event of each kind happens on a path in a period, so each
    # period's share of paths is a binomial proportion around the exact mass.
    kind, _, _, simulation = scored
    exact = exact_trajectory(kind)
    horizon = simulation.years * round(1 / simulation.period_years)
    for name, masses in (("breakdown", exact.breakdown), ("withdrawal", exact.exit),
                         ("lapse", exact.lapse), ("escape", exact.escape)):
        shares = getattr(simulation.counts, name)[:horizon] / simulation.paths
        for period, (share, mass) in enumerate(zip(shares, masses[:horizon])):
            error = np.sqrt(max(mass * (1 - mass), 0.0) / simulation.paths)
            assert abs(share - mass) <= 4.5 * error + 1e-12, (kind, name, period, share, mass)


def test_events_match_provision(scored):
    kind, _, _, simulation = scored
    counts = simulation.counts
    if kind == "duration":
        assert counts.expiry_reached.sum() > 0
    if kind == "escape":
        assert counts.escape.sum() > 0
    if kind == "review":
        assert counts.review_reached.sum() > 0
    if kind == "withdrawal":
        assert counts.withdrawal.sum() > 0
    if kind == "rigid":
        assert counts.withdrawal.sum() == counts.escape.sum() == counts.lapse.sum() == 0


def test_workers_do_not_change_result():
    game, score = build("withdrawal")
    paths = 2 * BLOCK_SIZE + 500
    alone = simulate_game(game, score, paths=paths, years=5, seed=3, workers=1)
    shared = simulate_game(game, score, paths=paths, years=5, seed=3, workers=4)
    assert np.array_equal(alone.payoffs, shared.payoffs)
    assert alone.to_dict() == shared.to_dict()


def test_seeds_give_different_paths():
    game, score = build("rigid")
    first = simulate_game(game, score, paths=2000, years=5, seed=1)
    second = simulate_game(game, score, paths=2000, years=5, seed=2)
    again = simulate_game(game, score, paths=2000, years=5, seed=1)
    assert not np.array_equal(first.payoffs, second.payoffs)
    assert np.array_equal(first.payoffs, again.payoffs)


def test_default_seed_is_reported():
    game, score = build("rigid")
    simulation = simulate_game(game, score, paths=50, years=2)
    repeat = simulate_game(game, score, paths=50, years=2, seed=simulation.seed)
    assert np.array_equal(simulation.payoffs, repeat.payoffs)


def test_no_agreement_gives_none():
    # With discount 0 the game is a one-shot prisoner's dilemma, which needs z >= 2b;
    # z <= 0.7 < 2 * 0.4, so no strictness is self-enforcing.
    text = BASE.format(name="none", crisis_a=0.5, provisions="").replace(
        "discount: 0.9", "discount: 0.0").replace("calm: 0.2", "calm: 0.4")
    game = build_game(parse_treaty_text(text))
    score = score_game(game)
    assert not score.agreement
    assert simulate_game(game, score, paths=10) is None


@pytest.mark.parametrize("trials", [7, 20_000, 100_000])
def test_wilson_band_reaches_bounds(trials):
    # With every path alive the share is 1, and the band must reach 1 exactly.
    # With no path alive the band must reach 0.
    _, _, high = wilson(trials, trials)
    assert high == 1.0
    _, low, _ = wilson(0, trials)
    assert low == 0.0
