"""Builders for compiled games used by the engine tests.

The tests construct ``Game`` records directly, without a treaty file, so that
every number the engine sees is the number the test derives its closed form
from. All quantities are per model period.
"""

from __future__ import annotations

import numpy as np

from engine.game import Game, Party, Rules, Settings


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
