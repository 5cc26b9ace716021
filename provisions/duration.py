"""Duration: a sunset clause with renegotiation at expiry.

In the model the treaty runs for ``term`` and then lapses unless the parties agree
again. At expiry a renegotiation node picks new terms by bargaining against lapse, so
the disagreement point is no treaty at all. Renegotiating costs each party ``cost``
once, and the parties act unregulated for ``delay`` while they talk. An optional
number of ``extensions`` of a fixed length lets the treaty roll over without
renegotiation.

The idea comes from Barbara Koremenos, "Contracting around International
Uncertainty", American Political Science Review 99(4), 2005. When the gains from
cooperation are uncertain, a finite duration insures the parties. States choose it
more often the larger the uncertainty and the cheaper renegotiation is. The engine
does not assume this, but computes whether a finite term helps in the declared
environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from engine.game import DurationRules
from engine.spec_fields import (
    ZERO_DURATION,
    DurationField,
    NonNegativeFloat,
    PositiveDurationField,
    ProvisionModel,
    SpecModel,
)

if TYPE_CHECKING:
    from engine.build import CompileContext

KIND = "duration"
RULES_FIELD = "duration"


class Renegotiation(SpecModel):
    """Cost and delay of a renegotiation at expiry."""

    cost: NonNegativeFloat = Field(0.0, description="One-off cost to each party of renegotiating.")
    delay: DurationField = Field(
        ZERO_DURATION, description="Time without a treaty while the parties renegotiate."
    )


class Extensions(SpecModel):
    """Automatic roll-overs of a fixed length before renegotiation is needed."""

    length: PositiveDurationField = Field(description="Length of one extension.")
    max: int = Field(ge=1, le=1000, description="How many extensions the treaty allows.")


class DurationProvision(ProvisionModel):
    """A treaty that lapses after ``term`` unless the parties renegotiate it."""

    KIND: ClassVar[str] = KIND

    kind: Literal["duration"]
    term: PositiveDurationField = Field(description="How long the treaty runs before it expires.")
    renegotiation: Renegotiation = Field(default_factory=Renegotiation)
    extensions: Extensions | None = None


def compile(provision: DurationProvision, context: CompileContext) -> DurationRules:
    """Convert the provision to whole periods for the solver."""
    extensions = provision.extensions
    return DurationRules(
        term=context.periods(provision.term),
        renegotiation_cost=provision.renegotiation.cost,
        delay=context.periods(provision.renegotiation.delay),
        extension_length=context.periods(extensions.length) if extensions else 0,
        extension_max=extensions.max if extensions else 0,
    )
