"""Numbers as the plain-text output of ``treaty score``, ``compare`` and ``sweep`` prints them.

JSON and CSV carry located strictness values to ``STRICTNESS_DECIMALS``
decimals. The text output prints ``TEXT_DECIMALS`` decimals and, like JSON,
rounds interval ends inwards: the lower end up and the upper end down. Every
printed point of an interval then lies inside the located interval, so a
proposal at a printed end is accepted.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from engine.score import STRICTNESS_DECIMALS, inward_rounded, rounded_interval

TEXT_DECIMALS = 4
# Significant digits of a sweep axis value in the text table and map. Where
# neighbouring values would print alike, more digits are added.
AXIS_DIGITS = 4
# 17 significant digits tell any two distinct doubles apart.
MAX_SIGNIFICANT_DIGITS = 17


def fixed_text(value: float, decimals: int = TEXT_DECIMALS) -> str:
    """Format ``value`` with ``decimals`` decimals, and a value that rounds to zero without a minus sign."""
    text = f"{value:.{decimals}f}"
    if float(text) == 0:
        return text.lstrip("-")
    return text


def interval_decimals(interval: tuple[float, float], decimals: int = TEXT_DECIMALS) -> int | None:
    """Return the fewest decimals, at least ``decimals``, at which the interval rounded inwards is not empty.

    Returns None for an interval that contains no value with
    ``STRICTNESS_DECIMALS`` decimals, which is narrower than 1e-8.
    """
    for digits in range(decimals, STRICTNESS_DECIMALS + 1):
        low, high = inward_rounded(interval, digits)
        if low <= high:
            return digits
    return None


def interval_text(interval: tuple[float, float], decimals: int = TEXT_DECIMALS) -> str:
    """Format an interval as ``[low, high]`` rounded inwards, with more decimals where it is narrow.

    An interval too narrow for ``decimals`` decimals, such as the zero-width
    zone ``[0.43436891, 0.43436891]``, gets as many decimals as it needs, up
    to ``STRICTNESS_DECIMALS``. One narrower still is printed as JSON writes
    it: both ends rounded to the nearest value with ``STRICTNESS_DECIMALS``
    decimals, which moves them by less than 1e-8.
    """
    digits = interval_decimals(interval, decimals)
    if digits is None:
        digits = STRICTNESS_DECIMALS
        low, high = rounded_interval(interval)
    else:
        low, high = inward_rounded(interval, digits)
    return f"[{fixed_text(low, digits)}, {fixed_text(high, digits)}]"


def terms_text(terms: float, zone: tuple[float, float] | None, decimals: int = TEXT_DECIMALS) -> str:
    """Format the terms with the decimals of the printed zone, inside the printed zone.

    Nearest rounding could put terms at an end of the zone just outside the
    zone as printed, so the rounded terms are moved to the printed end.
    """
    digits = decimals if zone is None else interval_decimals(zone, decimals)
    if digits is None:
        return fixed_text(terms, STRICTNESS_DECIMALS)

    value = round(float(terms), digits)
    if zone is not None:
        low, high = inward_rounded(zone, digits)
        value = min(max(value, low), high)
    return fixed_text(value, digits)


def given_strictness_text(value: float, decimals: int = TEXT_DECIMALS) -> str:
    """Format a strictness written in the treaty file, such as a proposal, without rounding it.

    It gets ``decimals`` decimals, or every digit it has when that is more,
    because a proposal of 0.50176044 printed as 0.5018 would be another proposal.
    """
    if round(value, decimals) == value:
        return fixed_text(value, decimals)
    return format(Decimal(repr(float(value))), "f")


def evaluated_text(kind: str | None, strictness: float | None, zone: tuple[float, float] | None) -> str:
    """Format the strictness at which values, margins and lifetime are evaluated, or ``-`` for none.

    ``kind`` is ``"proposal"`` for the file's accepted proposal and ``"terms"``
    for the bargaining terms.
    """
    if kind is None or strictness is None:
        return "-"
    if kind == "proposal":
        return f"proposal {given_strictness_text(strictness)}"
    return f"terms {terms_text(strictness, zone)}"


def axis_value_texts(values) -> list[str]:
    """Format the values of a sweep axis so that distinct values print distinctly.

    Each value gets ``AXIS_DIGITS`` significant digits, and every value gets
    one more until no two distinct values print alike. Whole numbers print
    with all their digits, and no value uses an exponent: 50001 prints as
    ``50001``, not ``5e+04``.
    """
    values = [float(value) for value in values]
    distinct = len(set(values))
    for digits in range(AXIS_DIGITS, MAX_SIGNIFICANT_DIGITS + 1):
        texts = [_positional_text(value, digits) for value in values]
        if len(set(texts)) == distinct:
            break
    return texts


def _positional_text(value: float, digits: int) -> str:
    # The digits before the decimal point are always printed in full.
    whole_digits = len(str(int(abs(value)))) if abs(value) >= 1 else 0
    text = np.format_float_positional(
        value, precision=max(digits, whole_digits), unique=True, fractional=False, trim="-")
    return "0" if text == "-0" else text
