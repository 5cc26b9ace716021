"""The treaty file format, version ``treaty/v1``, as pydantic models.

``TreatySpec`` is a validated treaty file. Values keep the units of the file: discount
factors and persistence per year, regime and defection values as yearly rates, costs
as one-off sums, durations as written. ``engine.build`` converts them to model
periods.

Validate through ``TreatySpec.model_validate`` (or ``engine.loader``), which first
reads the period, the state names and the form of the environment from the raw data
and passes them to the field checks as a ``ValidationContext``.
"""

from __future__ import annotations

import math
import unicodedata
from fractions import Fraction
from typing import Annotated, Any, Literal, Union

from pydantic import (
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engine.durations import Duration, DurationError, parse_duration, periods_covering, suggest_period
from engine.errors import NO_VALUE
from engine.game import BARGAINING_RULES, name_key
from engine.spec_fields import (
    PAYOFF_LIMIT,
    PAYOFF_SCALE_MINIMUM,
    DurationField,
    NameText,
    NonNegativeFloat,
    PositiveDurationField,
    Probability,
    SpecModel,
    ValidationContext,
    check_number,
    context_of,
    did_you_mean,
    name_problem,
    rule_error,
    rule_violations,
    suggest,
)
from provisions import PROVISION_KINDS, PROVISION_MODELS

SCHEMA_VERSION = "treaty/v1"
SCHEMA_VERSIONS = (SCHEMA_VERSION,)

DEFAULT_PERIOD = Duration("1 year", Fraction(1))
DEFAULT_HORIZON_YEARS = 50
# Bounds the arrays that the solver allocates per period of the horizon.
MAX_HORIZON_PERIODS = 100_000
MAX_GRID = 100_001

# Name of the only state of a treaty file without an environment.
SINGLE_STATE = "now"

# Probabilities that must sum to 1 may miss by this much (rounding in decimal input).
SUM_TOLERANCE = 1e-9

class Environment(SpecModel):
    """The security environment: a Markov chain over named states."""

    start: str | None = Field(None, description="State at the start; required with several states.")
    persistence: Probability | None = Field(
        None, description="Chance per year that the state stays as it is (sticky-jump chain)."
    )
    states: dict[str, Probability] | None = Field(
        None,
        description=(
            "Long-run probability of each state, summing to 1; also the chance of landing "
            "in a state whenever the environment changes."
        ),
    )
    transitions: dict[str, dict[str, Probability]] | None = Field(
        None,
        description="Explicit transition probabilities per model period, one row per state.",
    )

    @property
    def state_names(self) -> tuple[str, ...]:
        source = self.transitions if self.transitions is not None else self.states
        return tuple(source or ())

    # The sums are checked with their field, so that a problem elsewhere in
    # the environment (an invalid persistence, say) does not hide them.
    @field_validator("states")
    @classmethod
    def _check_states_sum(cls, states: dict[str, float] | None) -> dict[str, float] | None:
        total = math.fsum(states.values()) if states else 1.0
        if abs(total - 1) > SUM_TOLERANCE:
            raise rule_violations(
                "states", [((), f"long-run probabilities sum to {total:.12g}; they must sum to 1", states, "")])
        return states

    @field_validator("transitions")
    @classmethod
    def _check_row_sums(cls, transitions: dict[str, dict[str, float]] | None):
        problems = []
        for origin, row in (transitions or {}).items():
            total = math.fsum(row.values())
            if abs(total - 1) > SUM_TOLERANCE:
                problems.append(((origin,), f"row sums to {total:.12g}; each row must sum to 1", row, ""))
        if problems:
            raise rule_violations("transitions", problems)
        return transitions

    @property
    def sticky(self) -> bool:
        return self.transitions is None

    @model_validator(mode="after")
    def _check_chain(self) -> Environment:
        problems = []
        if self.transitions is not None:
            if self.states is not None or self.persistence is not None:
                problems.append(
                    (
                        ("transitions",),
                        "give either `persistence` with `states`, or `transitions`, not both",
                        self.transitions,
                        "",
                    )
                )
            problems += _transition_problems(self.transitions)
        elif self.states is None:
            # Reported at the `environment` key, since no value in the section is at fault.
            problems.append(((), "missing `states` (with `persistence`) or `transitions`", NO_VALUE, "", True))
        else:
            problems += _state_problems(self.states, self.persistence)

        problems += self._start_problems()
        if problems:
            raise rule_violations("Environment", problems)
        return self

    def _start_problems(self) -> list:
        names = self.state_names
        if self.start is None:
            if len(names) > 1:
                return [(("start",), "missing; required when there are several states", NO_VALUE,
                         ", ".join(names))]
            return []
        if names and self.start not in names:
            message = f"unknown state{did_you_mean(self.start, names)}"
            return [(("start",), message, self.start, ", ".join(names))]
        return []


def _state_problems(states: dict[str, float], persistence: float | None) -> list:
    problems = []
    if not states:
        return [(("states",), "needs at least one state", states, "")]
    problems += _state_name_problems(states, ("states",))

    if persistence is None and len(states) > 1:
        problems.append(
            (("persistence",), "missing; required when there are several states", NO_VALUE,
             "0 <= persistence <= 1")
        )
    return problems


def _transition_problems(transitions: dict[str, dict[str, float]]) -> list:
    if not transitions:
        return [(("transitions",), "needs at least one state", transitions, "")]
    problems = _state_name_problems(transitions, ("transitions",))

    names = tuple(transitions)
    for origin, row in transitions.items():
        for target in row:
            if target not in transitions:
                problems.append(
                    (
                        ("transitions", origin, target),
                        f"unknown state `{target}`, which has no row of its own"
                        f"{did_you_mean(target, names)}",
                        target,
                        ", ".join(names),
                        True,
                    )
                )

    return problems


def _state_name_problems(names: dict, location: tuple) -> list:
    problems = []
    for name in names:
        if name == "":
            problems.append((location + ("",), "a state name cannot be empty", "", "", True))
            continue
        problem = name_problem(name)
        if problem is not None:
            problems.append((location + (name,), problem, name,
                             "printable text with at least one visible character", True))
    return problems


BELIEF_ATTITUDES = ("neutral", "cautious", "optimistic")


class Beliefs(SpecModel):
    """A party's own view of the environment, when it differs from the declared one."""

    persistence: Probability | None = Field(
        None,
        description=(
            "The chance per year, as this party sees it, that the state stays as it is "
            "(default: the declared persistence)."
        ),
    )
    spread: Probability = Field(
        0.0,
        description=(
            "How unsure the party is about the persistence: it considers every value within "
            "this distance of it, clipped to [0, 1]."
        ),
    )
    attitude: Literal["neutral", "cautious", "optimistic"] = Field(
        "neutral",
        description=(
            "Which persistence within the spread the party plans for: `neutral` the stated one, "
            "`cautious` the one that leaves it the smallest gain from the treaty, `optimistic` "
            "the largest."
        ),
    )


class PartySpec(SpecModel):
    """One party: its patience, its temptation to defect and its value of the regime."""

    name: NameText
    # The bounds are checked by ``_check_discount`` with a fuller message; the
    # schema states them too, so that editors flag a discount of 1.5.
    discount: float = Field(description="Discount factor per year, 0 <= discount < 1.",
                            json_schema_extra={"minimum": 0, "exclusiveMaximum": 1})
    defection_value: Any = Field(
        description=(
            "Yearly value of acting unregulated, per state (a plain number when there is one state)."
        ),
    )
    regime_value: Any = Field(
        description=(
            "Yearly value of the treaty as a function of its strictness: piecewise-linear "
            "points [strictness, value] with strictness rising from 0 to 1."
        ),
    )
    breach_cost: NonNegativeFloat = Field(0.0, description="One-off cost of violating the treaty.")
    negotiation_cost: NonNegativeFloat = Field(0.0, description="One-off cost of concluding the treaty.")
    beliefs: Beliefs | None = None

    @field_validator("discount")
    @classmethod
    def _check_discount(cls, discount: float, info: ValidationInfo) -> float:
        if not 0 <= discount < 1:
            raise rule_error(
                "must be below 1 and not negative; at 1 a party values the far future as "
                "much as today and no stream of payoffs has a finite value",
                "0 <= discount < 1",
            )
        context = context_of(info)
        if context is not None and context.period is not None:
            per_period = discount ** float(context.period.years)
            if per_period >= 1:
                raise rule_error(
                    f"is so close to 1 that the discount per period of {context.period.text} rounds to 1",
                    "a discount further from 1, or a longer period",
                )
        return discount

    @field_validator(
        "defection_value",
        mode="plain",
        json_schema_input_type=NonNegativeFloat | dict[str, NonNegativeFloat],
    )
    @classmethod
    def _check_defection_value(cls, value: Any, info: ValidationInfo) -> float | dict[str, float]:
        context = context_of(info)
        states = context.states if context is not None else None

        if not isinstance(value, dict):
            number, message = check_number(value, minimum=0, maximum=PAYOFF_LIMIT)
            if number is None:
                raise rule_error(message, f"a number from 0 to {PAYOFF_LIMIT:,.0f}, or a mapping from state to number")
            if states is not None and len(states) > 1:
                raise rule_error(
                    "a single number is allowed only with one state; give a value for each state",
                    "a mapping with keys " + ", ".join(states),
                )
            return number

        problems = []
        values = {}
        for state, item in value.items():
            if states is not None and state not in states:
                message = f"unknown state `{state}`{did_you_mean(state, states)}"
                problems.append(((state,), message, state, ", ".join(states), True))
                continue
            number, message = check_number(item, minimum=0, maximum=PAYOFF_LIMIT)
            if number is None:
                problems.append(((state,), message, item, f"a number from 0 to {PAYOFF_LIMIT:,.0f}"))
            values[state] = number

        missing = [state for state in states or () if state not in value]
        if missing:
            problems.append(
                ((), "missing a value for state " + ", ".join(missing), value, "one value per state")
            )
        if problems:
            raise rule_violations("defection_value", problems)
        return values

    @field_validator(
        "regime_value",
        mode="plain",
        json_schema_input_type=Annotated[
            list[Annotated[list[float], Field(min_length=2, max_length=2)]], Field(min_length=2)
        ],
    )
    @classmethod
    def _check_regime_value(cls, value: Any) -> tuple[tuple[float, float], ...]:
        allowed = "a list of [strictness, value] points, strictness rising from 0 to 1"
        if not isinstance(value, (list, tuple)) or len(value) < 2:
            raise rule_error("needs at least two points", allowed)

        problems = []
        points = []
        for index, point in enumerate(value):
            if not isinstance(point, (list, tuple)) or len(point) != 2:
                problems.append(((index,), "a point is a pair [strictness, value]", point, allowed))
                continue
            pair = []
            for position, item in enumerate(point):
                number, message = check_number(item, maximum=PAYOFF_LIMIT)
                if number is None:
                    problems.append(((index, position), message, item,
                                     f"a number from {-PAYOFF_LIMIT:,.0f} to {PAYOFF_LIMIT:,.0f}"))
                pair.append(number)
            points.append(tuple(pair))
        if problems:
            raise rule_violations("regime_value", problems)

        xs = [x for x, _ in points]
        if xs[0] != 0:
            problems.append(((0, 0), "the first point must be at strictness 0", xs[0], allowed))
        if xs[-1] != 1:
            problems.append(((len(xs) - 1, 0), "the last point must be at strictness 1", xs[-1], allowed))
        for index in range(1, len(xs)):
            if xs[index] <= xs[index - 1]:
                problems.append(
                    (
                        (index, 0),
                        f"strictness must rise from point to point (previous point: {xs[index - 1]!r})",
                        xs[index],
                        allowed,
                    )
                )
        if problems:
            raise rule_violations("regime_value", problems)
        return tuple(points)

    @field_validator("beliefs")
    @classmethod
    def _check_beliefs(cls, beliefs: Beliefs | None, info: ValidationInfo) -> Beliefs | None:
        context = context_of(info)
        if beliefs is not None and context is not None and not context.sticky_environment:
            raise rule_error(
                "`beliefs.persistence` needs an environment given by `persistence` and "
                "`states`; a chain given by `transitions` has no persistence to replace"
            )
        return beliefs

    def defection_by_state(self, states: tuple[str, ...]) -> list[float]:
        """Return the yearly defection value for each state, in the order given."""
        if isinstance(self.defection_value, dict):
            return [self.defection_value[state] for state in states]
        return [self.defection_value] * len(states)


class Terms(SpecModel):
    """A concrete proposal to score instead of the bargaining solution."""

    strictness: Probability = Field(description="Strictness (gamma) of the proposal, in [0, 1].")


class ModelSettings(SpecModel):
    """Modelling choices; each has a default."""

    bargaining: Literal["nash-patience", "nash-equal", "utilitarian"] = Field(
        "nash-patience",
        description=(
            "How the terms are chosen in the zone of agreement: Nash bargaining weighted by "
            "patience, Nash with equal weights, or the largest sum of gains."
        ),
    )
    grid: int = Field(
        101, ge=3, le=MAX_GRID, description="Strictness grid points before the endpoints are refined."
    )
    horizon: PositiveDurationField | None = Field(
        None,
        description=f"Length of reported payoff streams and survival curves; default {DEFAULT_HORIZON_YEARS} years.",
    )

    @field_validator("horizon")
    @classmethod
    def _check_horizon(cls, horizon: Duration | None, info: ValidationInfo) -> Duration | None:
        context = context_of(info)
        if horizon is None or context is None or context.period is None:
            return horizon
        periods = horizon.years / context.period.years
        if periods > MAX_HORIZON_PERIODS:
            raise rule_error(
                f"is {int(periods)} periods of {context.period.text}, more than {MAX_HORIZON_PERIODS}",
                "a shorter horizon or a longer period",
            )
        return horizon


def _provision_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("kind")
        if isinstance(kind, str) and kind in PROVISION_MODELS:
            return kind
    if isinstance(value, SpecModel):
        return getattr(value, "kind", None)
    return None


PROVISION_ERROR = "provision_kind"

Provision = Annotated[
    Union[tuple(Annotated[model, Tag(kind)] for kind, model in PROVISION_MODELS.items())],
    Discriminator(
        _provision_kind,
        custom_error_type=PROVISION_ERROR,
        custom_error_message="a provision needs a known `kind`",
    ),
]


class TreatySpec(SpecModel):
    """One treaty: its parties, environment, provisions and modelling settings."""

    schema_version: Literal["treaty/v1"] = Field(
        alias="schema", description="Format version; must be the first key of the file."
    )
    name: NameText = Field(description="Name of the treaty or draft.")
    description: str | None = None
    sources: list[str] = Field(default_factory=list, description="Where the facts and numbers come from.")
    period: PositiveDurationField = Field(
        DEFAULT_PERIOD, description="Length of one model period; every duration must be a whole number of them."
    )
    environment: Environment | None = Field(
        None, description=f"Omit for one state (named `{SINGLE_STATE}`) and no uncertainty."
    )
    parties: list[PartySpec] = Field(min_length=2)
    terms: Terms | None = None
    provisions: list[Provision] = Field(
        default_factory=list, description="Flexibility provisions, at most one of each kind; none for a rigid treaty."
    )
    model: ModelSettings = Field(default_factory=ModelSettings)

    @classmethod
    def model_validate(cls, obj: Any, *, context: Any = None, **kwargs: Any) -> TreatySpec:
        """Validate raw data, deriving the ``ValidationContext`` from it when none is given."""
        if context is None:
            context = validation_context(obj)
        return super().model_validate(obj, context=context, **kwargs)

    @field_validator("period")
    @classmethod
    def _check_default_horizon(cls, period: Duration, info: ValidationInfo) -> Duration:
        # An explicit `model.horizon` is checked by ModelSettings. The default one
        # is checked here, because with a very short period it would exhaust memory.
        context = context_of(info)
        if context is None or context.horizon_given:
            return period
        periods = periods_covering(Fraction(DEFAULT_HORIZON_YEARS), period)
        if periods > MAX_HORIZON_PERIODS:
            raise rule_error(
                f"makes the default horizon of {DEFAULT_HORIZON_YEARS} years {periods} periods long, "
                f"more than {MAX_HORIZON_PERIODS}",
                f"a longer period, or a `model.horizon` of at most {MAX_HORIZON_PERIODS} periods",
            )
        return period

    @field_validator("parties")
    @classmethod
    def _check_unique_names(cls, parties: list[PartySpec]) -> list[PartySpec]:
        # Names that differ only in what a reader cannot see (see ``name_key``)
        # look the same in the tables, and in a sweep's CSV column names.
        first_index: dict[str, int] = {}
        problems = []
        for index, party in enumerate(parties):
            key = name_key(party.name)
            if key in first_index:
                first = first_index[key]
                if parties[first].name == party.name:
                    message = f"party name is used twice (also parties[{first}])"
                else:
                    # ascii() shows the characters that make the difference.
                    message = (f"party name {ascii(party.name)} differs from {ascii(parties[first].name)} "
                               f"(parties[{first}]) only in capitalisation, spaces, invisible characters "
                               "or Unicode form")
                problems.append(((index, "name"), message, party.name, "unique names"))
            first_index.setdefault(key, index)
        if problems:
            raise rule_violations("parties", problems)
        return parties

    @field_validator("parties")
    @classmethod
    def _check_payoff_scale(cls, parties: list[PartySpec]) -> list[PartySpec]:
        # Each party's incentive constraints compare its own values, so the
        # check is per party: one party with tiny payoffs beside others with
        # ordinary ones is decided by the tolerances too.
        problems = []
        for index, party in enumerate(parties):
            defection = party.defection_value
            numbers = defection.values() if isinstance(defection, dict) else [defection]
            sizes = [(max(abs(number) for number in numbers), "defection_value"),
                     (max(abs(value) for _, value in party.regime_value), "regime_value")]
            # The first of the largest values is where the error points.
            largest, field = max(sizes, key=lambda size: size[0])
            if largest < PAYOFF_SCALE_MINIMUM:
                message = (
                    f"every defection and regime value of {party.name} is smaller than "
                    f"{PAYOFF_SCALE_MINIMUM:g} in size, where the solver's tolerances would decide the result"
                )
                allowed = (f"a largest payoff of at least {PAYOFF_SCALE_MINIMUM:g} for each party: multiply "
                           "every payoff and cost of the file by the same factor, which leaves the zone, "
                           "the terms and survival the same")
                problems.append(((index, field), message, largest, allowed))
        if problems:
            raise rule_violations("parties", problems)
        return parties

    @field_validator("provisions")
    @classmethod
    def _check_provisions(cls, provisions: list) -> list:
        problems = []
        first_index: dict[str, int] = {}
        for index, provision in enumerate(provisions):
            if provision.kind in first_index:
                message = (
                    f"a treaty has at most one {provision.kind} provision "
                    f"(the first is provisions[{first_index[provision.kind]}])"
                )
                problems.append(((index, "kind"), message, provision.kind, ""))
            first_index.setdefault(provision.kind, index)

        duration = next((p for p in provisions if p.kind == "duration"), None)
        if duration is not None:
            for index, provision in enumerate(provisions):
                for field, length in provision.limited_by_term().items():
                    if length.years > duration.term.years:
                        message = f"{length.text} is longer than the treaty term of {duration.term.text}"
                        problems.append(((index, field), message, length.text, f"at most {duration.term.text}"))
        if problems:
            raise rule_violations("provisions", problems)
        return provisions

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.environment.state_names if self.environment else (SINGLE_STATE,)

    @property
    def start_state(self) -> str:
        if self.environment is not None and self.environment.start is not None:
            return self.environment.start
        return self.state_names[0]


def validation_context(data: Any) -> ValidationContext:
    """Read the period, the state names and the environment form from raw data."""
    if not isinstance(data, dict):
        return ValidationContext(None, None, None, True)

    if "period" in data:
        period = _readable_period(data["period"])
    elif any(suggest(key, tuple(TreatySpec.model_fields)) == "period" for key in data):
        # A misspelt `period` is reported as an unknown field. Checking durations
        # against the default period as well would add errors that only the typo
        # causes, so the period counts as unreadable.
        period = None
    else:
        period = DEFAULT_PERIOD

    states: tuple[str, ...] | None
    sticky = True
    environment = data.get("environment")
    if environment is None:
        states = (SINGLE_STATE,)
    else:
        try:
            parsed = Environment.model_validate(environment)
        except ValidationError:
            states = None
        else:
            states = parsed.state_names
            sticky = parsed.sticky

    durations = _durations_in(data.get("provisions")) + _durations_in(data.get("model"))
    suggestion = suggest_period(durations) if durations else None
    model = data.get("model")
    # An unreadable `model` is reported on its own, so its horizon counts as given.
    horizon_given = model.get("horizon") is not None if isinstance(model, dict) else model is not None
    return ValidationContext(period, suggestion, states, sticky, horizon_given)


def _readable_period(value: Any) -> Duration | None:
    if not isinstance(value, str):
        return None
    try:
        period = parse_duration(value)
    except DurationError:
        return None
    return period if period.years > 0 else None


def _durations_in(value: Any) -> list[Duration]:
    """Collect every text value that reads as a duration, at any depth."""
    found = []
    if isinstance(value, dict):
        for item in value.values():
            found += _durations_in(item)
    elif isinstance(value, list):
        for item in value:
            found += _durations_in(item)
    elif isinstance(value, str):
        try:
            duration = parse_duration(value)
        except DurationError:
            return []
        if duration.years > 0:
            found.append(duration)
    return found


__all__ = [
    "BARGAINING_RULES",
    "BELIEF_ATTITUDES",
    "Beliefs",
    "DEFAULT_HORIZON_YEARS",
    "DEFAULT_PERIOD",
    "DurationField",
    "Environment",
    "ModelSettings",
    "PROVISION_KINDS",
    "PartySpec",
    "Provision",
    "SCHEMA_VERSION",
    "SCHEMA_VERSIONS",
    "SINGLE_STATE",
    "Terms",
    "TreatySpec",
    "validation_context",
]
