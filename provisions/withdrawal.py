"""Withdrawal: a party may leave after giving notice.

In the model a party may give notice once the treaty is ``earliest`` old (a waiting
period), and it pays ``cost`` when it does. Every party, including the one leaving,
stays bound by the treaty until ``notice`` has run. After that there is no treaty for
anyone. Whether to leave is an optimal-stopping choice inside the
equilibrium. A consequence the engine reproduces: without a breach cost, the last
period of notice is a free chance to cheat, so the notice period unravels by backward
induction.

The idea comes from Laurence R. Helfer, "Exiting Treaties", Virginia Law Review 91,
2005, which describes exit clauses as a lawful, public way to end obligations and
studies how notice periods and waiting periods vary across treaties.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from engine.durations import Duration
from engine.game import WithdrawalRules
from engine.spec_fields import ZERO_DURATION, DurationField, NonNegativeFloat, ProvisionModel

if TYPE_CHECKING:
    from engine.build import CompileContext

KIND = "withdrawal"
RULES_FIELD = "withdrawal"


class WithdrawalProvision(ProvisionModel):
    """Exit with notice, an exit cost and an optional waiting period."""

    KIND: ClassVar[str] = KIND

    kind: Literal["withdrawal"]
    notice: DurationField = Field(description="Time between giving notice and leaving.")
    cost: NonNegativeFloat = Field(0.0, description="One-off cost paid when giving notice.")
    earliest: DurationField = Field(
        ZERO_DURATION, description="Age of the treaty before which no party may give notice."
    )

    def limited_by_term(self) -> dict[str, Duration]:
        return {"notice": self.notice, "earliest": self.earliest}


def compile(provision: WithdrawalProvision, context: CompileContext) -> WithdrawalRules:
    """Convert the provision to whole periods for the solver."""
    return WithdrawalRules(
        notice=context.periods(provision.notice),
        cost=provision.cost,
        earliest=context.periods(provision.earliest),
    )
