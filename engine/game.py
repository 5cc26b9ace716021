"""The compiled game: what the solver consumes once a treaty file is validated.

Every quantity here is already in model periods. Durations are whole numbers of
periods, discount factors and the environment chain are per period, and the
regime and defection values are per-period flows (the file declares them as
yearly rates and the builder multiplies them by the period length in years).
Lump sums (breach, exit, escape, renegotiation and negotiation costs) are not
scaled.

The provision modules in ``provisions/`` produce the ``*Rules`` records below;
``engine.build`` assembles a ``Game`` from a validated spec.
"""

from __future__ import annotations

import unicodedata

from dataclasses import dataclass, field

import numpy as np

BARGAINING_RULES = ("nash-patience", "nash-equal", "utilitarian")


@dataclass(frozen=True)
class Party:
    """One party of the treaty, in model periods."""

    name: str
    discount: float
    defection: np.ndarray
    regime_points: np.ndarray
    transition: np.ndarray
    breach_cost: float = 0.0
    negotiation_cost: float = 0.0

    def regime_value(self, strictness: np.ndarray) -> np.ndarray:
        """Interpolate the per-period regime value z(gamma) at each strictness."""
        return np.interp(strictness, self.regime_points[:, 0], self.regime_points[:, 1])


@dataclass(frozen=True)
class DurationRules:
    """Sunset clause: the treaty expires after ``term`` periods unless renewed."""

    term: int
    renegotiation_cost: float = 0.0
    delay: int = 0
    extension_length: int = 0
    extension_max: int = 0


@dataclass(frozen=True)
class WithdrawalRules:
    """Exit with notice: every party stays bound while the notice runs."""

    notice: int
    cost: float = 0.0
    earliest: int = 0


@dataclass(frozen=True)
class EscapeRules:
    """Escape hatch: a party may suspend its obligations where ``trigger`` allows.

    ``trigger`` has shape (parties, states): True where that party may invoke.
    ``max_uses`` of None means unlimited.
    """

    trigger: np.ndarray
    suspension: int
    cost: float = 0.0
    cost_type: str = "deadweight"
    cooldown: int = 0
    max_uses: int | None = None
    partner_response: str = "comply"


@dataclass(frozen=True)
class ReviewRules:
    """Periodic review: every ``every`` periods the parties may amend the terms."""

    every: int
    amendment_cost: float = 0.0


@dataclass(frozen=True)
class Rules:
    """The provisions in force; None for a kind the treaty does not have."""

    duration: DurationRules | None = None
    withdrawal: WithdrawalRules | None = None
    escape: EscapeRules | None = None
    review: ReviewRules | None = None

    @property
    def rigid(self) -> bool:
        return all(
            rule is None for rule in (self.duration, self.withdrawal, self.escape, self.review)
        )


@dataclass(frozen=True)
class Settings:
    """Modelling choices in force, each with its documented default."""

    bargaining: str = "nash-patience"
    grid: int = 101
    horizon: int = 50
    tolerance: float = 1e-9
    max_iterations: int = 20_000


@dataclass(frozen=True)
class Game:
    """A treaty compiled into a discounted stochastic game."""

    name: str
    period_years: float
    states: tuple[str, ...]
    start: int
    transition: np.ndarray
    parties: tuple[Party, ...]
    rules: Rules = field(default_factory=Rules)
    settings: Settings = field(default_factory=Settings)
    terms: float | None = None
    schema: str = "treaty/v1"

    @property
    def n_parties(self) -> int:
        return len(self.parties)

    @property
    def tie_order(self) -> tuple[int, ...]:
        """Party indices in the order in which ties between parties' legal actions are broken: by name.

        Where two parties' notices or escapes give the same weighted joint
        value, the selection takes the first in this order. Ordering by name
        rather than by place in the file keeps the results the same however
        the file lists the parties.
        """
        keys = [(name_key(party.name), party.name, index) for index, party in enumerate(self.parties)]
        return tuple(index for _, _, index in sorted(keys))

    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def periods_per_year(self) -> float:
        return 1.0 / self.period_years


def name_key(name: str) -> str:
    """Return what a reader sees of ``name``: the same key for names that look the same.

    NFKC joins composed and decomposed letters and maps fullwidth and other
    compatibility forms to plain ones. Format characters such as zero-width
    joiners are dropped, runs of spaces count as one, and case is folded.
    """
    normal = unicodedata.normalize("NFKC", name)
    visible = "".join(char for char in normal if unicodedata.category(char) != "Cf")
    return " ".join(visible.split()).casefold()
