"""The forward propagation reproduces the solver's values.

For parties that believe the declared chain, a party's value at the start of
the treaty is the expected discounted sum of its stage payoffs and lump-sum
costs along the selected policy.  Summing the propagated per-period streams
with the party's discount factor must therefore give the solver's start value,
for every provision kind and for a combination of all four.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.build import build_game
from engine.loader import parse_treaty_text
from engine.solve import Solver, combine_policies
from engine.survival import _propagate_general, _propagate_rigid, propagate

BASE = """
schema: treaty/v1
name: propagation check
environment:
  start: calm
  persistence: 0.6
  states: {{calm: 0.75, crisis: 0.25}}
parties:
  - name: A
    discount: 0.9
    defection_value: {{calm: 0.2, crisis: 1.2}}
    regime_value: [[0, 0.3], [1, 0.7]]
  - name: B
    discount: 0.85
    defection_value: {{calm: 0.2, crisis: 0.45}}
    regime_value: [[0, 0.7], [1, 0.3]]
model: {{grid: 21}}
{provisions}
"""

PROVISIONS = {
    "rigid": "",
    "duration": """provisions:
  - kind: duration
    term: 4 years
    renegotiation: {cost: 0.3, delay: 1 year}
    extensions: {length: 2 years, max: 1}
""",
    "withdrawal": """provisions:
  - kind: withdrawal
    notice: 1 year
    cost: 0.05
""",
    "escape": """provisions:
  - kind: escape_hatch
    trigger: {states: [crisis]}
    suspension: 2 years
    cost: 0.2
    cost_type: transfer
    max_uses: 2
""",
    "review": """provisions:
  - kind: review
    every: 2 years
    amendment_cost: 0.01
""",
    "all four": """provisions:
  - kind: duration
    term: 6 years
    renegotiation: {cost: 0.1}
  - kind: withdrawal
    notice: 1 year
    cost: 0.05
  - kind: escape_hatch
    trigger: {states: [crisis]}
    suspension: 1 year
    cost: 0.1
    partner_response: rebalance
  - kind: review
    every: 3 years
    amendment_cost: 0.01
""",
}

PERIODS = 400


@pytest.mark.parametrize("kind", sorted(PROVISIONS))
@pytest.mark.parametrize("strictness", [0.35, 0.5, 0.65])
def test_streams_sum_to_start_values(kind, strictness):
    game = build_game(parse_treaty_text(BASE.format(provisions=PROVISIONS[kind])))
    solver = Solver(game)
    base = solver.solve()
    columns = solver.evaluate([strictness])

    policy = combine_policies(columns.own.policy, base.own.policy)
    regime = solver.core.regime_values(np.concatenate([columns.gammas, base.gammas]))
    trajectory = propagate(solver.core, regime, policy, solver.node_own, PERIODS)

    # 0.9 ** 400 is below 1e-18, so the truncated tail is negligible.
    for index, party in enumerate(game.parties):
        weights = party.discount ** np.arange(PERIODS)
        discounted = float(np.sum(weights * trajectory.with_treaty[index]))
        assert discounted == pytest.approx(columns.declared.start_values[index, 0], abs=1e-7)


def test_survival_never_rises_along_propagation():
    game = build_game(parse_treaty_text(BASE.format(provisions=PROVISIONS["all four"])))
    solver = Solver(game)
    base = solver.solve()
    columns = solver.evaluate([0.5])
    policy = combine_policies(columns.own.policy, base.own.policy)
    regime = solver.core.regime_values(np.concatenate([columns.gammas, base.gammas]))
    trajectory = propagate(solver.core, regime, policy, solver.node_own, 100)

    assert np.all(np.diff(trajectory.alive) <= 1e-12)


@pytest.mark.parametrize("crisis", [0.3, 0.6, 1.2])
@pytest.mark.parametrize("strictness", [0.35, 0.5, 0.65])
def test_rigid_shortcut_matches_period_by_period(crisis, strictness):
    # A rigid treaty takes a shortcut through the propagation; the general
    # loop must give the same curves. The crisis value decides whether the
    # treaty breaks down in the crisis (0.6, 1.2) or complies there (0.3).
    text = BASE.format(provisions="").replace("crisis: 1.2", f"crisis: {crisis}")
    game = build_game(parse_treaty_text(text))
    solver = Solver(game)
    base = solver.solve()
    columns = solver.evaluate([strictness])
    policy = combine_policies(columns.own.policy, base.own.policy)
    regime = solver.core.regime_values(np.concatenate([columns.gammas, base.gammas]))

    shortcut = _propagate_rigid(solver.core, regime, policy, PERIODS)
    general = _propagate_general(solver.core, regime, policy, None, PERIODS)

    # The general loop drops mass below 1e-13 per cell, so curves agree to that size.
    for name in ("alive", "breakdown", "exit", "lapse", "escape", "with_treaty", "without_treaty"):
        np.testing.assert_allclose(getattr(shortcut, name), getattr(general, name), rtol=0, atol=1e-11,
                                   err_msg=name)
    assert shortcut.tail_mass == pytest.approx(general.tail_mass, abs=1e-11)
