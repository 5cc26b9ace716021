"""Duration parsing, conversion to whole periods, and the period suggestion."""

from fractions import Fraction

import pytest

from engine.durations import (
    DurationError,
    parse_duration,
    periods_covering,
    suggest_period,
    whole_periods,
)


@pytest.mark.parametrize(
    ("text", "years"),
    [
        ("90 days", Fraction(90, 365)),
        ("1 day", Fraction(1, 365)),
        ("2 weeks", Fraction(14, 365)),
        ("3 months", Fraction(1, 4)),
        ("6 months", Fraction(1, 2)),
        ("1 month", Fraction(1, 12)),
        ("1 year", Fraction(1)),
        ("10 years", Fraction(10)),
        ("1.5 years", Fraction(3, 2)),
        ("0 years", Fraction(0)),
        ("  5 Years ", Fraction(5)),
        ("P10Y", Fraction(10)),
        ("P6M", Fraction(1, 2)),
        ("P90D", Fraction(90, 365)),
        ("P2W", Fraction(14, 365)),
        ("P1Y6M", Fraction(3, 2)),
        ("P0.5Y", Fraction(1, 2)),
        # ISO 8601 lets the lowest component carry a decimal fraction, with a comma or a
        # full stop as the decimal sign, and the schema's duration pattern accepts both.
        ("P1,5Y", Fraction(3, 2)),
        ("P0,25Y", Fraction(1, 4)),
    ],
)
def test_parse_duration(text, years):
    assert parse_duration(text).years == years


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("10", "needs a unit, e.g. `10 years`"),
        ("ten years", "not a duration"),
        ("-1 year", "cannot be negative"),
        ("PT5H", "hours, minutes and seconds are not supported"),
        ("P", "not an ISO 8601 duration"),
        ("P1X", "not an ISO 8601 duration"),
        ("5 fortnights", "not a duration"),
        ("1" * 50 + " years", "more than 6 digits before the decimal point"),
    ],
)
def test_parse_duration_rejects(text, fragment):
    with pytest.raises(DurationError) as raised:
        parse_duration(text)

    assert fragment in str(raised.value)


def test_parse_duration_rejects_non_text():
    with pytest.raises(DurationError):
        parse_duration(10)


@pytest.mark.parametrize(
    ("duration", "period", "count"),
    [
        ("10 years", "1 year", 10),
        ("10 years", "3 months", 40),
        ("6 months", "3 months", 2),
        ("90 days", "1 day", 90),
        ("0 years", "1 month", 0),
        ("P1Y6M", "6 months", 3),
        # 0.333333333333 years is 4 months to within 1e-9 relative.
        ("0.333333333333 years", "4 months", 1),
        # 333.33333333 years is 999.99999999 periods of 4 months: off by 1e-8
        # periods, which is 1e-11 of the length and so within the tolerance.
        ("333.33333333 years", "4 months", 1000),
    ],
)
def test_whole_periods(duration, period, count):
    assert whole_periods(parse_duration(duration), parse_duration(period)) == count


@pytest.mark.parametrize(
    ("duration", "period"),
    [
        ("6 months", "1 year"),
        ("90 days", "3 months"),  # 90/365 of a year is not 3/12 of one
        ("30 days", "1 month"),
        ("0.3333 years", "4 months"),
    ],
)
def test_whole_periods_rejects(duration, period):
    assert whole_periods(parse_duration(duration), parse_duration(period)) is None


def test_periods_covering_rounds_up():
    # 50 years in 7-day periods: 50 * 365 / 7 = 2607.14..., so 2608 periods cover it.
    assert periods_covering(Fraction(50), parse_duration("7 days")) == 2608
    assert periods_covering(Fraction(50), parse_duration("3 months")) == 200


@pytest.mark.parametrize(
    ("durations", "period"),
    [
        (["10 years", "2 years"], "1 year"),
        (["10 years", "6 months"], "6 months"),
        (["1 year", "9 months"], "3 months"),
        (["1 year", "2 months"], "1 month"),
        (["1 year", "45 days"], "1 day"),
        (["1.5 days"], None),
    ],
)
def test_suggest_period(durations, period):
    assert suggest_period([parse_duration(text) for text in durations]) == period
