"""Builders for compiled games used by the engine tests.

The tests construct ``Game`` records directly, without a treaty file, so that
every number the engine sees is the number the test derives its closed form
from. All quantities are per model period.
"""

from __future__ import annotations

from contextlib import contextmanager
from unittest import mock

import numpy as np

from engine import score as score_module
from engine.game import (
    DurationRules,
    EscapeRules,
    Game,
    Party,
    ReviewRules,
    Rules,
    Settings,
    WithdrawalRules,
)


# The smallest valid treaty file: two parties, one state, no provisions. The
# closed forms of the --vary tests are derived from these numbers.
TWO_PARTY_TREATY = """\
schema: treaty/v1
name: Test treaty
parties:
  - name: A
    discount: 0.9
    defection_value: 0.3
    regime_value: [[0, 0.2], [1, 0.8]]
  - name: B
    discount: 0.9
    defection_value: 0.3
    regime_value: [[0, 0.8], [1, 0.2]]
"""


def linear_points(at_zero: float, at_one: float) -> np.ndarray:
    """Return regime points for ``z(gamma) = at_zero + (at_one - at_zero) gamma``."""
    return np.array([[0.0, at_zero], [1.0, at_one]])


def make_party(
    name: str,
    discount: float,
    defection,
    transition: np.ndarray,
    regime_points: np.ndarray,
    breach_cost: float = 0.0,
    negotiation_cost: float = 0.0,
) -> Party:
    """Build a party that believes the declared chain ``transition``."""
    return Party(
        name=name,
        discount=discount,
        defection=np.atleast_1d(np.asarray(defection, dtype=float)),
        regime_points=np.asarray(regime_points, dtype=float),
        transition=np.asarray(transition, dtype=float),
        breach_cost=breach_cost,
        negotiation_cost=negotiation_cost,
    )


def make_game(
    parties,
    transition: np.ndarray,
    start: int = 0,
    rules: Rules | None = None,
    settings: Settings | None = None,
    states: tuple[str, ...] | None = None,
    name: str = "test treaty",
) -> Game:
    """Assemble a game with one-year periods from already built parties."""
    transition = np.asarray(transition, dtype=float)
    if states is None:
        states = tuple(f"s{index}" for index in range(transition.shape[0]))
    return Game(
        name=name,
        period_years=1.0,
        states=states,
        start=start,
        transition=transition,
        parties=tuple(parties),
        rules=Rules() if rules is None else rules,
        settings=Settings() if settings is None else settings,
    )


def opposed_pair(
    defection_a,
    defection_b,
    transition: np.ndarray,
    discount_a: float,
    discount_b: float,
    start: int = 0,
    rules: Rules | None = None,
    settings: Settings | None = None,
    breach_cost: float = 0.0,
    states: tuple[str, ...] | None = None,
) -> Game:
    """Build the two-party game with ``z_A(gamma) = gamma`` and ``z_B(gamma) = 1 - gamma``.

    Party A gains from stricter terms and party B loses, so A's accepted set
    starts at A's threshold and B's ends at one minus B's threshold.
    """
    parties = [
        make_party("A", discount_a, defection_a, transition, linear_points(0.0, 1.0), breach_cost),
        make_party("B", discount_b, defection_b, transition, linear_points(1.0, 0.0), breach_cost),
    ]
    return make_game(parties, transition, start=start, rules=rules, settings=settings, states=states)


def random_game(seed: int, rules_kind: str | None = None, rigid_party_count: int | None = None):
    """Build a small game, with one provision of ``rules_kind`` when given."""
    rng = np.random.default_rng(seed)
    n_parties = rigid_party_count or int(rng.integers(2, 4))
    n_states = int(rng.integers(1, 4))
    transition = rng.dirichlet(np.ones(n_states), size=n_states)

    parties = []
    for index in range(n_parties):
        # The first party gains from strictness and the second loses, so the
        # parties pull in opposite directions; later parties are random.
        ends = np.sort(rng.uniform(0.2, 1.0, size=2))
        if index == 1 or (index > 1 and rng.random() < 0.5):
            ends = ends[::-1]
        parties.append(make_party(
            f"P{index}",
            float(rng.uniform(0.5, 0.95)),
            rng.uniform(0.02, 0.3, size=n_states),
            transition,
            linear_points(*ends),
            breach_cost=float(rng.choice([0.0, rng.uniform(0.0, 0.3)])),
        ))

    rules = Rules() if rules_kind is None else random_rules(rng, rules_kind, n_parties, n_states)
    return make_game(parties, transition, start=int(rng.integers(n_states)), rules=rules,
                     settings=Settings(grid=41, max_iterations=3000))


def random_rules(rng, kind: str, n_parties: int, n_states: int) -> Rules:
    if kind == "duration":
        return Rules(duration=DurationRules(
            term=int(rng.integers(2, 6)),
            renegotiation_cost=float(rng.uniform(0.0, 0.5)),
            delay=int(rng.integers(0, 2)),
            extension_length=int(rng.integers(0, 3)),
            extension_max=int(rng.integers(0, 2)),
        ))
    if kind == "withdrawal":
        return Rules(withdrawal=WithdrawalRules(
            notice=int(rng.integers(0, 3)),
            cost=float(rng.uniform(0.0, 0.5)),
            earliest=int(rng.integers(0, 3)),
        ))
    if kind == "escape":
        max_uses = rng.choice([None, 1, 2])
        return Rules(escape=EscapeRules(
            trigger=rng.random((n_parties, n_states)) < 0.6,
            suspension=int(rng.integers(1, 3)),
            cost=float(rng.uniform(0.0, 0.5)),
            cost_type=str(rng.choice(["deadweight", "transfer"])),
            cooldown=int(rng.integers(0, 2)),
            max_uses=None if max_uses is None else int(max_uses),
            partner_response=str(rng.choice(["comply", "rebalance"])),
        ))
    if kind == "review":
        return Rules(review=ReviewRules(every=int(rng.integers(2, 4)),
                                        amendment_cost=float(rng.uniform(0.0, 0.3))))
    raise ValueError(f"unknown provision kind {kind!r}")


# A two-party treaty in two states, small enough to simulate many paths in a test.
SIMULATION_SPEC = """schema: treaty/v1
name: {name}
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
model: {{grid: 11, horizon: 10 years}}
{provisions}
"""
ESCAPE = """provisions:
  - kind: escape_hatch
    trigger: {states: [crisis]}
    suspension: 2 years
    cost: 0.2
    cost_type: transfer
    max_uses: 2
"""


def write_treaty(tmp_path, name, provisions=""):
    """Write the two-state treaty of the simulation tests, with ``provisions`` appended."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(SIMULATION_SPEC.format(name=name, provisions=provisions))
    return str(path)


@contextmanager
def recorded_propagations():
    """Collect the survival propagations that scoring runs, before the score clips its curve."""
    trajectories = []
    propagate = score_module.propagate

    def recording(*args, **kwargs):
        trajectories.append(propagate(*args, **kwargs))
        return trajectories[-1]

    with mock.patch.object(score_module, "propagate", recording):
        yield trajectories
