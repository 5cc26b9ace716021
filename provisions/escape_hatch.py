"""Escape hatch: a party may suspend its obligations for a while and then return.

In the model a party may invoke the escape where the ``trigger`` allows it. While the
``suspension`` runs, the invoker acts unregulated without breaching the treaty, and
the treaty resumes afterwards. Invoking costs ``cost``, either lost to everyone
(``deadweight``) or paid to the other parties (``transfer``). After a suspension ends, a
``cooldown`` must pass before any party invokes again, and ``max_uses`` caps the uses of
all parties together. The phase keeps one count of uses and one cooldown for the treaty,
not one per party, which would raise the number of phases to the power of the number of
parties. The
other parties keep complying during a suspension (``comply``) or may suspend their own
obligations towards the invoker as well (``rebalance``).

The trigger is a condition on what every party can observe.
``{defection_value_at_least: X}`` allows a party to invoke in the states where its own
declared yearly defection value is at least ``X``. ``{states: [...]}`` names the
states, and ``discretionary`` allows invocation at any time. The engine computes whether
an escape helps and never assumes it does: a cheap discretionary escape can destroy
cooperation.

Sources: B. Peter Rosendorff and Helen V. Milner, "The Optimal Design of International
Trade Institutions: Uncertainty and Escape", International Organization 55(4), 2001,
where an escape priced neither too cheaply nor too dearly makes cooperation more
durable; and Krzysztof J. Pelc, "Seeking Escape: The Use of Escape Clauses in
International Trade Agreements", International Studies Quarterly 53(2), 2009, where an
institution that can verify the circumstances of an escape lets it be costless.
Reading ``{defection_value_at_least: X}`` as a verified trigger and ``discretionary`` as
an unverified one is the interpretation chosen here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_serializer, field_validator

from engine.durations import Duration
from engine.game import EscapeRules
from engine.spec_fields import (
    ZERO_DURATION,
    DurationField,
    NonNegativeFloat,
    PositiveDurationField,
    ProvisionModel,
    SpecModel,
    context_of,
    did_you_mean,
    rule_error,
    rule_violations,
)

if TYPE_CHECKING:
    from engine.build import CompileContext

KIND = "escape_hatch"
RULES_FIELD = "escape"

DISCRETIONARY = "discretionary"
TRIGGER_FORMS = "discretionary, {defection_value_at_least: X} or {states: [...]}"
TRIGGER_CONDITIONS = ("defection_value_at_least", "states")

# The largest number of uses a treaty may allow. A duration clause's extensions have the same limit.
MAX_USES = 1000


class ThresholdTrigger(SpecModel):
    """Invocation allowed where the invoker's yearly defection value is at least a level."""

    defection_value_at_least: NonNegativeFloat


class StatesTrigger(SpecModel):
    """Invocation allowed in the named states of the environment."""

    states: list[str] = Field(min_length=1)

    @field_validator("states")
    @classmethod
    def _states_exist(cls, states: list[str], info: ValidationInfo) -> list[str]:
        context = context_of(info)
        problems = []
        seen = set()
        for index, state in enumerate(states):
            if state in seen:
                problems.append(((index,), f"state `{state}` is listed twice", state, ""))
            seen.add(state)
            if context is not None and context.states is not None and state not in context.states:
                message = f"unknown state `{state}`{did_you_mean(state, context.states)}"
                problems.append(((index,), message, state, ", ".join(context.states)))
        if problems:
            raise rule_violations("StatesTrigger", problems)
        return states


Trigger = Literal["discretionary"] | ThresholdTrigger | StatesTrigger


class EscapeHatchProvision(ProvisionModel):
    """Temporary, costly suspension of a party's obligations where a trigger allows it."""

    KIND: ClassVar[str] = KIND

    kind: Literal["escape_hatch"]
    trigger: Trigger = Field(description="When a party may invoke the escape.")
    suspension: PositiveDurationField = Field(description="How long one use suspends the invoker's obligations.")
    cost: NonNegativeFloat = Field(0.0, description="One-off cost of invoking.")
    cost_type: Literal["deadweight", "transfer"] = Field(
        "deadweight", description="deadweight: the cost is lost; transfer: it is paid to the other parties."
    )
    cooldown: DurationField = Field(
        ZERO_DURATION, description="Time after a suspension ends before any party may invoke again."
    )
    # Each use left is a counter value of the game, so the bound keeps the phase
    # table to a size the size check after it can report on.
    max_uses: int | None = Field(None, ge=1, le=MAX_USES,
                                 description="Uses allowed in total, shared by the parties; omit for no limit.")
    partner_response: Literal["comply", "rebalance"] = Field(
        "comply", description="comply: the others keep their obligations; rebalance: they may suspend too."
    )

    @field_validator("trigger", mode="plain", json_schema_input_type=Trigger)
    @classmethod
    def _parse_trigger(cls, value: Any, info: ValidationInfo) -> Trigger:
        if isinstance(value, str):
            if value == DISCRETIONARY:
                return DISCRETIONARY
            raise rule_error(f"unknown trigger{did_you_mean(value, [DISCRETIONARY])}", TRIGGER_FORMS)

        if not isinstance(value, dict):
            raise rule_error("a trigger is `discretionary` or a mapping with one condition", TRIGGER_FORMS)

        conditions = [key for key in TRIGGER_CONDITIONS if key in value]
        if len(conditions) > 1:
            raise rule_error("a trigger has exactly one condition", TRIGGER_FORMS)
        if conditions == ["defection_value_at_least"]:
            return ThresholdTrigger.model_validate(value, context=info.context)
        if conditions == ["states"]:
            return StatesTrigger.model_validate(value, context=info.context)

        problems = [
            (
                (key,),
                f"unknown trigger condition `{key}`{did_you_mean(key, TRIGGER_CONDITIONS)}",
                value[key],
                TRIGGER_FORMS,
            )
            for key in value
        ]
        if not problems:
            raise rule_error("a trigger mapping needs a condition", TRIGGER_FORMS)
        raise rule_violations("Trigger", problems)

    @field_serializer("trigger")
    def _write_trigger(self, trigger: Trigger) -> str | dict:
        # Serialized by hand because the union's own serializer does not match the models
        # that the plain validator above returns.
        return trigger if isinstance(trigger, str) else trigger.model_dump()

    def limited_by_term(self) -> dict[str, Duration]:
        return {"suspension": self.suspension, "cooldown": self.cooldown}


def trigger_mask(trigger: Trigger, context: CompileContext) -> np.ndarray:
    """Return a (parties, states) boolean array: True where that party may invoke."""
    shape = (len(context.party_names), len(context.states))
    if trigger == DISCRETIONARY:
        return np.ones(shape, dtype=bool)
    if isinstance(trigger, ThresholdTrigger):
        # Compares the yearly values as declared, so X is on the same scale as the file.
        return context.defection_per_year >= trigger.defection_value_at_least
    allowed = np.array([state in trigger.states for state in context.states])
    return np.broadcast_to(allowed, shape).copy()


def compile(provision: EscapeHatchProvision, context: CompileContext) -> EscapeRules:
    """Convert the provision to whole periods and a trigger mask for the solver."""
    return EscapeRules(
        trigger=trigger_mask(provision.trigger, context),
        suspension=context.periods(provision.suspension),
        cost=provision.cost,
        cost_type=provision.cost_type,
        cooldown=context.periods(provision.cooldown),
        max_uses=provision.max_uses,
        partner_response=provision.partner_response,
    )
