"""Compile a validated ``TreatySpec`` into the ``engine.game.Game`` the solver reads.

Conversions from the units of the file to model periods of ``t`` years:

- discount factor per period: ``discount ** t``;
- regime and defection values are yearly rates, so the per-period flow is the rate
  times ``t``;
- breach, negotiation, exit, escape, renegotiation and amendment costs are one-off
  sums and are not scaled;
- every duration becomes a whole number of periods (validation guarantees it);
- the horizon defaults to the fewest whole periods that cover 50 years;
- a party's persistence is the one it states in ``beliefs``, else the declared one;
  a ``cautious`` or ``optimistic`` attitude then picks one within its ``spread``
  (see ``engine.beliefs``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.beliefs import apply_attitudes
from engine.durations import Duration, periods_covering, whole_periods
from engine.environment import believed_matrix, declared_matrix
from engine.game import Game, Party, Rules, Settings
from engine.spec import DEFAULT_HORIZON_YEARS, PartySpec, TreatySpec
from provisions import MODULES_BY_KIND


@dataclass(frozen=True)
class CompileContext:
    """Facts about the rest of the treaty that a provision's ``compile`` step reads."""

    period: Duration
    states: tuple[str, ...]
    party_names: tuple[str, ...]
    defection_per_year: np.ndarray  # shape (parties, states), as declared in the file

    def periods(self, duration: Duration) -> int:
        """Return ``duration`` in whole periods; raise ValueError if it does not divide."""
        count = whole_periods(duration, self.period)
        if count is None:
            raise ValueError(f"{duration.text} is not a whole number of periods of {self.period.text}")
        return count


def build_game(spec: TreatySpec) -> Game:
    """Convert a validated treaty into per-period quantities and compiled provisions."""
    period_years = float(spec.period.years)
    states = spec.state_names
    declared = declared_matrix(spec.environment, period_years)

    parties = tuple(_build_party(party, spec, period_years) for party in spec.parties)

    context = CompileContext(
        period=spec.period,
        states=states,
        party_names=tuple(party.name for party in spec.parties),
        defection_per_year=np.array([party.defection_by_state(states) for party in spec.parties]),
    )
    rules = {}
    for provision in spec.provisions:
        module = MODULES_BY_KIND[provision.kind]
        rules[module.RULES_FIELD] = module.compile(provision, context)

    game = Game(
        name=spec.name,
        period_years=period_years,
        states=states,
        start=states.index(spec.start_state),
        transition=declared,
        parties=parties,
        rules=Rules(**rules),
        settings=_build_settings(spec, context),
        terms=spec.terms.strictness if spec.terms is not None else None,
        schema=spec.schema_version,
    )

    # A cautious or optimistic party plans for one persistence within its spread,
    # which takes a solve per candidate persistence to find.
    return apply_attitudes(game, spec)


def _build_party(party: PartySpec, spec: TreatySpec, period_years: float) -> Party:
    belief = party.beliefs.persistence if party.beliefs is not None else None
    regime = np.array(party.regime_value, dtype=float)
    regime[:, 1] *= period_years

    return Party(
        name=party.name,
        discount=party.discount**period_years,
        defection=np.array(party.defection_by_state(spec.state_names)) * period_years,
        regime_points=regime,
        transition=believed_matrix(spec.environment, belief, period_years),
        breach_cost=party.breach_cost,
        negotiation_cost=party.negotiation_cost,
    )


def _build_settings(spec: TreatySpec, context: CompileContext) -> Settings:
    horizon = spec.model.horizon
    if horizon is not None:
        horizon_periods = context.periods(horizon)
    else:
        horizon_periods = periods_covering(DEFAULT_HORIZON_YEARS, spec.period)
    return Settings(bargaining=spec.model.bargaining, grid=spec.model.grid, horizon=horizon_periods)
