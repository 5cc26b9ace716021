"""Durations written in treaty files, and their conversion to whole model periods.

A duration is a number and a unit (``90 days``, ``6 months``, ``10 years``, ``2 weeks``)
or an ISO 8601 period without a time part (``P10Y``, ``P6M``, ``P90D``, ``P1Y6M``).
The calendar is simplified so that conversions are exact: a year has 12 months and
365 days, a week has 7 days. Lengths are kept as exact fractions of a year, so
``3 months`` is exactly a quarter of ``1 year``.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

DAYS_PER_YEAR = 365
MONTHS_PER_YEAR = 12

YEARS_PER_UNIT = {
    "day": Fraction(1, DAYS_PER_YEAR),
    "week": Fraction(7, DAYS_PER_YEAR),
    "month": Fraction(1, MONTHS_PER_YEAR),
    "year": Fraction(1),
}

# Periods proposed when a duration does not fit the declared period, coarsest first.
STANDARD_PERIODS = ("1 year", "6 months", "3 months", "1 month")

# A duration may be off a whole number of periods by this much, relative to its length,
# which absorbs decimal input such as `0.333333333333 years` with a `4 months` period.
RELATIVE_TOLERANCE = 1e-9

# Caps the digits so that hostile input cannot build huge numbers; no treaty lasts
# a million years. The digits are ASCII, which the JSON Schema pattern can match
# too, where ``\d`` would also take other scripts' digits.
_NUMBER = r"([0-9]{1,6}(?:\.[0-9]{1,12})?)"
_PLAIN_PATTERN = re.compile(
    rf"^\s*{_NUMBER}\s*(day|days|week|weeks|month|months|year|years)\s*$", re.IGNORECASE
)
_ISO_NUMBER = r"([0-9]{1,6}(?:[.,][0-9]{1,12})?)"
_ISO_PATTERN = re.compile(
    rf"^P(?:{_ISO_NUMBER}Y)?(?:{_ISO_NUMBER}M)?(?:{_ISO_NUMBER}W)?(?:{_ISO_NUMBER}D)?$"
)

DURATION_FORMS = "a number and a unit such as `90 days`, `6 months`, `10 years`, or ISO 8601 `P10Y`"


class DurationError(ValueError):
    """Text that is not a duration this format reads."""


class Duration:
    """A length of time as written in the file, with its exact length in years.

    A plain class rather than a dataclass so that pydantic serializes it through
    ``__get_pydantic_core_schema__`` (to its text), also inside JSON Schema defaults.
    """

    __slots__ = ("text", "years")

    def __init__(self, text: str, years: Fraction):
        self.text = text
        self.years = years

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Duration):
            return NotImplemented
        return (self.text, self.years) == (other.text, other.years)

    def __hash__(self) -> int:
        return hash((self.text, self.years))

    def __repr__(self) -> str:
        return f"Duration({self.text!r}, {self.years!r})"

    def __str__(self) -> str:
        return self.text

    @classmethod
    def __get_pydantic_core_schema__(cls, source, handler):
        """Let pydantic read a duration from text and write it back as its text."""
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            lambda value: value if isinstance(value, Duration) else parse_duration(value),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda value: value.text),
        )


def parse_duration(text: str) -> Duration:
    """Parse a duration string; raise ``DurationError`` saying which forms are accepted."""
    if not isinstance(text, str):
        raise DurationError(f"a duration needs a unit: write {DURATION_FORMS}")

    stripped = text.strip()
    plain = _PLAIN_PATTERN.match(stripped)
    if plain:
        number, unit = plain.groups()
        # IGNORECASE also matches U+017F LONG S, which lower() keeps and casefold()
        # turns into "s".
        unit = unit.casefold().rstrip("s")
        return Duration(stripped, Fraction(number) * YEARS_PER_UNIT[unit])

    if stripped.upper().startswith("P"):
        return _parse_iso(stripped)

    long_number = re.fullmatch(r"\d{7,}(\.\d*)?\s*[a-zA-Z]+", stripped)
    if long_number:
        raise DurationError("the number has more than 6 digits before the decimal point, "
                            "far longer than any duration this format allows")
    if re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+\s*[a-zA-Z]+", stripped):
        raise DurationError("write the number of a duration without an exponent, such as `10 years`")
    if re.fullmatch(r"\s*[-+]?\d+(\.\d*)?\s*", stripped):
        raise DurationError(f"a duration needs a unit, e.g. `{stripped} years`")
    if stripped.startswith("-"):
        raise DurationError("a duration cannot be negative")
    raise DurationError(f"not a duration; write {DURATION_FORMS}")


def _parse_iso(text: str) -> Duration:
    if "T" in text.upper():
        raise DurationError("hours, minutes and seconds are not supported; use days or longer units")

    match = _ISO_PATTERN.match(text.upper())
    if not match or not any(match.groups()):
        raise DurationError("not an ISO 8601 duration such as `P10Y`, `P6M`, `P90D` or `P1Y6M`")

    years = Fraction(0)
    for number, unit in zip(match.groups(), ("year", "month", "week", "day")):
        if number is not None:
            years += Fraction(number.replace(",", ".")) * YEARS_PER_UNIT[unit]
    return Duration(text, years)


def whole_periods(duration: Duration, period: Duration) -> int | None:
    """Return the number of periods in ``duration``, or None if it is not a whole number."""
    if period.years <= 0:
        raise ValueError("the model period must be positive")

    ratio = duration.years / period.years
    count = round(ratio)
    if abs(ratio - count) <= RELATIVE_TOLERANCE * max(1, abs(ratio)):
        return int(count)
    return None


def periods_covering(years: Fraction, period: Duration) -> int:
    """Return the smallest whole number of periods that lasts at least ``years``."""
    ratio = years / period.years
    count = round(ratio)
    if abs(ratio - count) <= RELATIVE_TOLERANCE * max(1, abs(ratio)):
        return int(count)
    return math.ceil(ratio)


def suggest_period(durations: list[Duration]) -> str | None:
    """Propose the coarsest standard period that divides every duration.

    Tries 1 year, 6 months, 3 months and 1 month, then 1 day. Returns None when not
    even a day divides them all (fractional days).
    """
    for text in (*STANDARD_PERIODS, "1 day"):
        candidate = parse_duration(text)
        if all(whole_periods(duration, candidate) is not None for duration in durations):
            return text
    return None
