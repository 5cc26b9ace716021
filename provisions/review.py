"""Review: periodic conferences that may amend the terms.

In the model, every ``every`` the parties meet and may move the strictness of the
treaty. Amending needs unanimity, and the disagreement point is the current treaty
rather than no treaty. That distinguishes a review from the renegotiation at the
expiry of a finite term. Each amendment costs each party ``amendment_cost`` once.

Review conferences of this kind are written into arms control treaties. The Treaty on
the Non-Proliferation of Nuclear Weapons (Article VIII) called a conference five years
after entry into force and lets a majority of parties convene one at five-year
intervals after that. The Biological Weapons Convention (Article XII) called a review
conference five years after entry into force, and its parties have met about every
five years since.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from engine.durations import Duration
from engine.game import ReviewRules
from engine.spec_fields import NonNegativeFloat, PositiveDurationField, ProvisionModel

if TYPE_CHECKING:
    from engine.build import CompileContext

KIND = "review"
RULES_FIELD = "review"


class ReviewProvision(ProvisionModel):
    """A review conference at a fixed interval, able to amend the strictness."""

    KIND: ClassVar[str] = KIND

    kind: Literal["review"]
    every: PositiveDurationField = Field(description="Interval between review conferences.")
    amendment_cost: NonNegativeFloat = Field(
        0.0, description="One-off cost to each party of adopting an amendment."
    )

    def limited_by_term(self) -> dict[str, Duration]:
        return {"every": self.every}


def compile(provision: ReviewProvision, context: CompileContext) -> ReviewRules:
    """Convert the provision to whole periods for the solver."""
    return ReviewRules(every=context.periods(provision.every), amendment_cost=provision.amendment_cost)
