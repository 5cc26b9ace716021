r"""Tests that the JSON Schema's duration pattern and ``parse_duration`` accept the same text.

Editors validate treaty files against the schema, so a pattern stricter than the parser
flags valid files, and a looser one lets invalid files pass. The tests compile the
pattern with Python's ``re``, which is sound because the pattern avoids ``\d``, ``\s``
and flags, whose meaning differs in ECMA-262. Its ``$`` follows a class that contains
``\n``, so Python's ``$`` matching before a final newline changes nothing.
"""

import functools
import json
import re
import string
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cli import schema_text
from engine.durations import DurationError, parse_duration

LONG_S = "\u017f"
KELVIN_SIGN = "\u212a"


def _find_duration_patterns(node):
    if isinstance(node, dict):
        # Every duration field carries the examples of the duration type, and
        # its own description.
        if "pattern" in node and "6 months" in node.get("examples", []):
            yield node["pattern"]
        for value in node.values():
            yield from _find_duration_patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _find_duration_patterns(value)


def duration_patterns() -> set[str]:
    return set(_find_duration_patterns(json.loads(schema_text())))


@functools.cache
def duration_pattern() -> re.Pattern:
    (pattern,) = duration_patterns()
    return re.compile(pattern)


def schema_accepts(text: str) -> bool:
    # JSON Schema searches for the pattern, so only its own ^ and $ anchor it.
    return duration_pattern().search(text) is not None


def parser_accepts(text: str) -> bool:
    try:
        parse_duration(text)
    except DurationError:
        return False
    return True


@functools.cache
def all_characters() -> tuple[str, ...]:
    return tuple(chr(code) for code in range(sys.maxunicode + 1))


def test_duration_fields_share_pattern():
    patterns = duration_patterns()

    assert len(patterns) == 1


def test_pattern_avoids_python_only_syntax():
    # Python's re and ECMA-262 give \d, \s, \w and \b different character sets, and
    # "(?" starts inline flags or named groups, which ECMA-262 writes differently or lacks.
    # The tests compile the pattern with re, so they would not see such differences.
    pattern = duration_pattern().pattern

    assert re.search(r"\\[dDsSwWbBAZ]", pattern) is None
    assert "(?" not in pattern


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("1 year", True),
        ("1 YEAR", True),
        ("3 Months", True),
        ("p1y", True),
        ("P1Y2M", True),
        ("P", False),
        ("", False),
        ("1", False),
        ("1.5 years", True),
        (" 2 weeks ", True),
        ("P1.5Y", True),
        ("P1,5Y", True),
        ("-1 year", False),
        ("1 yr", False),
        # Units: singular or plural, any capitalisation, with or without a space.
        ("90 DAYS", True),
        ("1 Day", True),
        ("2weeks", True),
        ("1 wEeK", True),
        ("0 years", True),
        ("years", False),
        ("1 year ago", False),
        ("1 years s", False),
        ("1 fortnight", False),
        # Numbers: a full stop as the decimal sign, no sign, no exponent.
        ("1,5 years", False),
        ("1.5", False),
        (".5 years", False),
        ("1. years", False),
        ("1e3 years", False),
        ("+1 year", False),
        # The parser allows 6 digits before the decimal sign and 12 after it.
        ("999999 days", True),
        ("1000000 days", False),
        ("1.123456789012 years", True),
        ("1.1234567890123 years", False),
        # ISO 8601: at least one component, in the order Y, M, W, D, without a time part.
        ("P0Y", True),
        ("p1y6m", True),
        ("P1Y2M3W4D", True),
        ("P1W", True),
        ("p90d", True),
        ("P0,5y", True),
        ("P999999D", True),
        ("P1000000D", False),
        ("P0,123456789012Y", True),
        ("P0,1234567890123Y", False),
        ("P1D2Y", False),
        ("P1Y1Y", False),
        ("PT1H", False),
        ("P1YT", False),
        ("P-1Y", False),
        ("P.5Y", False),
        ("P1.5", False),
        ("P 1Y", False),
        ("P1Y 2M", False),
        # Whitespace is what Python's str.isspace accepts, which differs from ECMA-262's \s.
        ("\tP6M\n", True),
        ("1 year\n", True),
        ("1 year\nx", False),
        ("1\u00a0year", True),
        ("\u3000P6M\u3000", True),
        ("\x1c1 year\x1f", True),
        ("\x851 month", True),
        ("\ufeff1 year", False),
        ("1\u200byear", False),
        (f"1 wee{KELVIN_SIGN}", True),
    ],
)
def test_pattern_agrees_with_parser(text, accepted):
    assert parser_accepts(text) == accepted
    assert schema_accepts(text) == accepted


def test_pattern_whitespace_is_isspace():
    # The pattern writes its classes with \u escapes, which reach only up to U+FFFF,
    # so the sweep stops there after checking that no later character is whitespace.
    assert not any(char.isspace() for char in all_characters()[0x10000:])

    for char in all_characters()[:0x10000]:
        text = f"{char}1{char}year{char}"

        assert schema_accepts(text) == char.isspace(), f"U+{ord(char):04X}"
        if char.isspace():
            assert parser_accepts(text), f"U+{ord(char):04X}"


def test_pattern_letters_agree_with_parser():
    # Every character that changes case to or from an ASCII letter, in place of each
    # letter of a unit or an ISO 8601 designator.
    candidates = [
        char
        for char in all_characters()
        if char.lower() in string.ascii_letters or char.upper() in string.ascii_letters
    ]
    templates = ["1 days", "1 weeks", "1 months", "1 years", "P1Y2M3W4D"]

    for template in templates:
        for index, letter in enumerate(template):
            if not letter.isalpha():
                continue
            for char in candidates:
                text = template[:index] + char + template[index + 1:]

                assert parser_accepts(text) == schema_accepts(text), repr(text)


def test_pattern_long_s_plural():
    # IGNORECASE lets U+017F LONG S match the plural s, and the parser case-folds
    # it to "s", so both read this as one day.
    text = f"1 day{LONG_S}"

    assert parser_accepts(text)
    assert schema_accepts(text)


def test_pattern_unicode_digits():
    # Only ASCII digits, because a JSON Schema pattern without the `u` flag cannot
    # match the decimal digits above U+FFFF.
    text = "\u0661 year"

    assert not parser_accepts(text)
    assert not schema_accepts(text)


TOKENS = [
    "0", "1", "12", "999999", "1000000", "5", ".", ",", "-", "+", "e3",
    " ", "\t", "\n", "\u00a0", "\ufeff",
    "P", "p", "T", "Y", "y", "M", "m", "W", "w", "D", "d", "s", "S", "x",
    "day", "Days", "WEEK", "month", "Year", "yr",
]


@settings(max_examples=200)
@given(st.lists(st.sampled_from(TOKENS), max_size=8).map("".join))
def test_pattern_agrees_on_token_strings(text):
    assert parser_accepts(text) == schema_accepts(text)
