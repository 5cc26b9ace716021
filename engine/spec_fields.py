"""Building blocks shared by the treaty spec models and the provision modules.

``SpecModel`` is the base of every model in the format: strict types (a quoted
``"0.5"`` is text, not a number), no NaN or infinity, and unknown keys reported with a
"did you mean" suggestion. Checks that need more than one field raise
``rule_violations`` so that each problem keeps its own field path.

Validation may carry a ``ValidationContext`` (pydantic's ``context``) with facts taken
from elsewhere in the file: the model period, the state names, the form of the
environment. Fields use it to check durations against the period and state names
against the environment in the same pass as everything else, so that a file gets all
its problems reported at once.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from typing import Annotated, Any, ClassVar, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from engine.durations import (
    DURATION_FORMS,
    YEARS_PER_UNIT,
    Duration,
    DurationError,
    parse_duration,
    whole_periods,
)
from engine.game import name_key

# A duration longer than this is almost surely a typo, and it would make arrays
# indexed by period needlessly large.
MAX_DURATION_YEARS = 1000

# Error type of every check written in this project. Its context carries the message
# and the allowed values, which the loader turns into a ``Problem``.
RULE_ERROR = "treaty_rule"


@dataclass(frozen=True)
class ValidationContext:
    """Facts from the rest of the file that single fields are checked against.

    ``None`` for a fact means it could not be read (that part of the file is invalid
    and reported on its own), so the checks that need it are skipped.
    """

    period: Duration | None
    suggested_period: str | None
    states: tuple[str, ...] | None
    sticky_environment: bool
    # False where the file leaves `model.horizon` out, so the default horizon applies.
    horizon_given: bool = True


def context_of(info: ValidationInfo) -> ValidationContext | None:
    context = info.context
    return context if isinstance(context, ValidationContext) else None


def rule_error(message: str, allowed: str = "", *, at_key: bool = False) -> PydanticCustomError:
    """Return a validation error with a message written for treaty authors.

    ``at_key`` points the reported position at the key rather than at its value.
    """
    context = {"message": message, "allowed": allowed, "at_key": at_key}
    return PydanticCustomError(RULE_ERROR, "{message}", context)


def rule_violations(title: str, items: list[tuple]) -> ValidationError:
    """Build one ValidationError from (location, message, value, allowed[, at_key]) tuples.

    Each location is relative to the model or field being validated; pydantic
    prefixes it with the path to that model. ``at_key`` (default False) points the
    reported position at the key, as for an unknown state name.
    """
    details = []
    for location, message, value, allowed, *rest in items:
        at_key = bool(rest and rest[0])
        details.append(
            InitErrorDetails(type=rule_error(message, allowed, at_key=at_key), loc=location, input=value)
        )
    return ValidationError.from_exception_data(title, details)


def suggest(word: object, choices: list[str] | tuple[str, ...]) -> str | None:
    """Return the closest of ``choices`` to ``word``, or None if nothing is close."""
    if not isinstance(word, str):
        return None
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if matches:
        return matches[0]
    lowered = {choice.lower(): choice for choice in choices}
    return lowered.get(word.lower())


def did_you_mean(word: object, choices: list[str] | tuple[str, ...]) -> str:
    """Return a suggestion to append to an "unknown name" message, or an empty string."""
    if isinstance(word, str):
        # A name that looks the same as a known one can differ in characters
        # a reader cannot see (composed and decomposed letters, say), so the
        # message shows both with escapes instead of two identical names.
        for choice in choices:
            if choice != word and name_key(choice) == name_key(word):
                return (f"; it differs from `{choice}` only in capitalisation, spaces, invisible "
                        f"characters or Unicode form ({ascii(word)} here, {ascii(choice)} where "
                        f"the name is declared), so write it the same way in both places")
    match = suggest(word, choices)
    return f"; did you mean `{match}`?" if match else ""


class SpecModel(BaseModel):
    """Base of all treaty format models: strict, finite, closed to unknown keys."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        frozen=True,
        populate_by_name=True,
        arbitrary_types_allowed=True,
        json_schema_extra=lambda schema, model: _allow_empty_sections(schema, model),
    )

    @classmethod
    def known_keys(cls) -> list[str]:
        return [field.alias or name for name, field in cls.model_fields.items()]

    @classmethod
    def unknown_key_message(cls, key: str) -> str:
        return f"unknown field `{key}`{did_you_mean(key, cls.known_keys())}"

    @classmethod
    @functools.cache
    def optional_sections(cls) -> frozenset[str]:
        """Return the keys of optional fields that hold a mapping or a list.

        Such a section written with an empty value (``model:`` with every
        setting commented out, say) counts as left out.  An empty number,
        duration or name is still rejected, because there it is more likely
        a value that was forgotten than a choice of the default.
        """
        sections = []
        for name, field in cls.model_fields.items():
            if field.is_required():
                continue
            kinds = (field.annotation, *get_args(field.annotation))
            if any(get_origin(kind) in (list, dict) or _is_model(kind) for kind in kinds):
                sections.append(field.alias or name)
        return frozenset(sections)

    @classmethod
    @functools.cache
    def optional_values(cls) -> frozenset[str]:
        """Return the keys of optional fields other than sections whose default is no value.

        An empty value is rejected there too, although the default is None
        inside the model: ``max_uses:`` left empty by mistake would
        otherwise allow unlimited uses without a word.
        """
        sections = cls.optional_sections()
        return frozenset(
            field.alias or name
            for name, field in cls.model_fields.items()
            if not field.is_required() and (field.alias or name) not in sections
            and type(None) in get_args(field.annotation)
        )

    @model_validator(mode="wrap")
    @classmethod
    def _report_unknown_keys(cls, data: Any, handler):
        """Drop empty optional sections, and report unknown keys and other empty values with every other problem.

        The two sets of keys are computed once per model class, because this
        runs for every sweep point and every ``--vary`` draw.
        """
        if not isinstance(data, dict):
            return handler(data)

        sections = cls.optional_sections()
        data = {key: value for key, value in data.items() if not (value is None and key in sections)}
        known = set(cls.known_keys())
        unknown = [key for key in data if key not in known]
        optional = cls.optional_values()
        empty = [key for key, value in data.items() if value is None and key in optional]
        if not unknown and not empty:
            return handler(data)

        details = [
            InitErrorDetails(
                type=rule_error(cls.unknown_key_message(key), ", ".join(cls.known_keys()), at_key=True),
                loc=(key,),
                input=data[key],
            )
            for key in unknown
        ]
        details.extend(
            InitErrorDetails(
                type=rule_error("the value is empty; write a value, or leave the field out where the "
                                "format allows it", "a value, or no key"),
                loc=(key,),
                input=None,
            )
            for key in empty
        )
        # A misspelled key also leaves its field missing; the suggestion covers both.
        suggested = {suggest(key, cls.known_keys()) for key in unknown}
        try:
            handler({key: value for key, value in data.items() if key in known and key not in empty})
        except ValidationError as error:
            details.extend(
                detail
                for detail in _reusable_details(error)
                if not (detail["type"] == "missing" and tuple(detail["loc"]) in {(name,) for name in suggested})
            )
        raise ValidationError.from_exception_data(cls.__name__, details)


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def _allow_empty_sections(schema: dict[str, Any], model: type[SpecModel]) -> None:
    """Let the JSON Schema accept an empty optional section and no other empty value, as the loader does."""
    properties = schema.get("properties", {})
    for key in model.optional_values():
        entry = properties.get(key, {})
        forms = [form for form in entry.get("anyOf", []) if form != {"type": "null"}]
        if len(forms) == 1:
            del entry["anyOf"]
            # The field's own description comes before the generic one of its type.
            for name, value in forms[0].items():
                entry.setdefault(name, value)
        elif forms:
            entry["anyOf"] = forms
        # The default is the field left out, which the schema cannot write as a value.
        if entry.get("default", False) is None:
            del entry["default"]
    for key in model.optional_sections():
        entry = properties.get(key)
        if entry is None or {"type": "null"} in entry.get("anyOf", []):
            continue
        # Keep the description and default beside the choice of forms.
        outer = {name: entry.pop(name) for name in ("title", "description", "default") if name in entry}
        properties[key] = {"anyOf": [entry, {"type": "null"}], **outer}


def _reusable_details(error: ValidationError) -> list[InitErrorDetails]:
    """Turn reported errors back into details that a new ValidationError accepts."""
    details = []
    for item in error.errors():
        detail = InitErrorDetails(type=item["type"], loc=item["loc"], input=item["input"])
        if item.get("ctx") is not None:
            detail["ctx"] = item["ctx"]
        try:
            # Only pydantic's own error types can be rebuilt from their name.
            ValidationError.from_exception_data("check", [detail])
        except (KeyError, TypeError, ValueError):
            context = dict(item.get("ctx") or {})
            context.setdefault("message", item["msg"])
            detail = InitErrorDetails(
                type=PydanticCustomError(item["type"], "{message}", context),
                loc=item["loc"],
                input=item["input"],
            )
        details.append(detail)
    return details


DURATION_ALLOWED = "a duration such as `6 months` or `P6M`"


def _validate_duration(value: Any, info: ValidationInfo, *, positive: bool) -> Duration:
    if isinstance(value, Duration):
        return value
    if value is None:
        raise rule_error("expected a duration; the value is empty", DURATION_ALLOWED)
    if is_number(value):
        if not 0 < value < 1_000_000:
            # No unit would make this number a valid duration, so none is suggested.
            raise rule_error(f"a duration needs a unit: write {DURATION_FORMS}", DURATION_ALLOWED)
        # The same advice as for the text "10", which a reader cannot tell apart.
        value = format(value, "g") if isinstance(value, float) else str(value)
    elif not isinstance(value, str):
        raise rule_error(f"expected a duration written as text: {DURATION_FORMS}", DURATION_ALLOWED)
    try:
        duration = parse_duration(value)
    except DurationError as error:
        raise rule_error(str(error), DURATION_ALLOWED) from None

    if positive and duration.years <= 0:
        raise rule_error("must be longer than zero", "a positive duration")
    if duration.years > MAX_DURATION_YEARS:
        raise rule_error(f"is longer than {MAX_DURATION_YEARS} years", f"at most {MAX_DURATION_YEARS} years")

    context = context_of(info)
    if context is not None and context.period is not None and context.period.years > 0:
        if whole_periods(duration, context.period) is None:
            raise rule_error(_not_whole_message(duration, context))
    return duration


def _not_whole_message(duration: Duration, context: ValidationContext) -> str:
    message = f"`{duration.text}` is not a whole number of model periods (period: {context.period.text})"
    if context.suggested_period:
        message += f"; use `period: {context.suggested_period}`, which fits every duration in the file"
        # A period of days or weeks multiplies the clock positions the solver tracks.
        if parse_duration(context.suggested_period).years < 1 / 12:
            message += (f", or round `{duration.text}` to whole periods of {context.period.text}, "
                        "because so short a period can make the model too large to solve")
        return message
    return message + "; no period of whole days fits every duration, so give durations in whole days"


def _serialize_duration(duration: Duration) -> str:
    return duration.text


# The duration pattern in the JSON Schema must accept exactly the text that
# ``parse_duration`` accepts. A JSON Schema pattern is an ECMA-262 regex without flags,
# so it spells out case-insensitivity and whitespace as character classes, and it uses
# neither ``\d`` nor ``\s`` because ECMA-262 and Python define both differently.

# The characters that ``str.isspace`` accepts (Python 3.11), which are the ones the
# parser strips and its ``\s`` matches. ECMA-262's ``\s`` differs: it matches U+FEFF
# and not U+001C to U+001F or U+0085.
_WHITESPACE_RANGES = (
    (0x09, 0x0D), (0x1C, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
    (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
)

# Characters other than the ASCII pair that the parser reads as a unit letter. It case-folds
# the unit it matched, and U+212A KELVIN SIGN folds to "k" and U+017F LONG S to "s", so
# "wee" followed by U+212A reads as "week".
_OTHER_CASE_FORMS = {"k": "\\u212a", "s": "\\u017f"}

# Digit limits as in ``engine.durations``: at most 6 ASCII digits before the decimal sign
# and 12 after it. ISO 8601 also allows a comma as the decimal sign.
_PLAIN_NUMBER = "[0-9]{1,6}(\\.[0-9]{1,12})?"
_ISO_NUMBER = "[0-9]{1,6}([.,][0-9]{1,12})?"

# ISO 8601 orders the designators of a duration's date part as years, months, weeks, days.
_ISO_DESIGNATORS = ("Y", "M", "W", "D")


def _whitespace_class() -> str:
    ranges = []
    for first, last in _WHITESPACE_RANGES:
        if first == last:
            ranges.append(f"\\u{first:04x}")
        else:
            ranges.append(f"\\u{first:04x}-\\u{last:04x}")
    return "[" + "".join(ranges) + "]"


def _any_case(word: str) -> str:
    """Return a regex that matches ``word`` in any capitalisation without regex flags."""
    classes = []
    for letter in word:
        variants = letter.lower() + letter.upper() + _OTHER_CASE_FORMS.get(letter.lower(), "")
        classes.append(f"[{variants}]")
    return "".join(classes)


def _plain_duration_pattern(whitespace: str) -> str:
    units = "|".join(_any_case(unit) + _any_case("s") + "?" for unit in YEARS_PER_UNIT)
    return f"{_PLAIN_NUMBER}{whitespace}*({units})"


def _iso_duration_pattern() -> str:
    # At least one component must be present, so each alternative starts with a
    # required component and lets the components after it follow optionally.
    components = [_ISO_NUMBER + _any_case(designator) for designator in _ISO_DESIGNATORS]
    alternatives = []
    for index, first in enumerate(components):
        optional = "".join(f"({component})?" for component in components[index + 1:])
        alternatives.append(first + optional)
    return _any_case("P") + "(" + "|".join(alternatives) + ")"


def duration_schema_pattern() -> str:
    """Build the JSON Schema pattern of a duration, with the surrounding whitespace the parser strips."""
    whitespace = _whitespace_class()
    return f"^{whitespace}*({_plain_duration_pattern(whitespace)}|{_iso_duration_pattern()}){whitespace}*$"


# The pattern of every duration field in the JSON Schema, which marks those fields there.
DURATION_PATTERN = duration_schema_pattern()

_DURATION_SCHEMA = {
    "type": "string",
    "description": f"A duration: {DURATION_FORMS}.",
    "pattern": DURATION_PATTERN,
    "examples": ["90 days", "6 months", "10 years", "P6M"],
}

DurationField = Annotated[
    Duration,
    PlainValidator(lambda value, info: _validate_duration(value, info, positive=False)),
    PlainSerializer(_serialize_duration, return_type=str),
    WithJsonSchema(_DURATION_SCHEMA),
]
"""A duration of zero or more; must be a whole number of periods when the period is known."""

PositiveDurationField = Annotated[
    Duration,
    PlainValidator(lambda value, info: _validate_duration(value, info, positive=True)),
    PlainSerializer(_serialize_duration, return_type=str),
    WithJsonSchema({**_DURATION_SCHEMA, "description": f"A positive duration: {DURATION_FORMS}."}),
]

ZERO_DURATION = Duration("0 years", Fraction(0))

# Payoffs and costs are per-year values on the parties' common scale. Beyond
# this size a sum over a discounted future overflows or loses every digit of
# the differences the solver compares, so larger numbers are rejected.
PAYOFF_LIMIT = 1e6

# The solver's tie tolerances are absolute near zero (1e-10), so in a file whose
# payoffs are all tiny they decide the result. Scaled down to payoffs of 1e-6, a
# two-party file's zone moved by 1e-5; at 1e-8, by 8e-3. A file needs at least
# one payoff of this size, which leaves a margin of a hundredfold.
PAYOFF_SCALE_MINIMUM = 1e-4

NonNegativeFloat = Annotated[float, Field(ge=0, le=PAYOFF_LIMIT)]


# Zero-width joiners belong to the spelling of some scripts and of emoji.
NAME_JOINERS = frozenset({"\u200c", "\u200d"})


def name_problem(value: str) -> str | None:
    """Return why ``value`` cannot be a name of a treaty, party or state, or None.

    Names are printed in aligned tables and matched by what users type.
    Blank names and control characters would leave a column unreadable, and
    invisible formatting characters (zero-width spaces, bidirectional
    overrides) would make two different names print alike or reorder a line.
    """
    if not value.strip():
        return "a name needs at least one visible character"
    for character in value:
        category = unicodedata.category(character)
        if category == "Cc":
            return "control characters such as tabs or bells are not allowed in a name"
        if category == "Cf" and character not in NAME_JOINERS:
            return (f"invisible formatting characters such as U+{ord(character):04X} are not "
                    "allowed in a name")
    return None


def _check_name(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise rule_error(problem, "printable text with at least one visible character")
    return value


NameText = Annotated[str, Field(min_length=1), AfterValidator(_check_name)]
Probability = Annotated[float, Field(ge=0, le=1)]


class ProvisionModel(SpecModel):
    """Base of the provision models in ``provisions/``; each adds a ``kind`` literal.

    ``KIND`` repeats the literal as a class attribute for the registry and messages.
    """

    KIND: ClassVar[str] = ""

    @classmethod
    def unknown_key_message(cls, key: str) -> str:
        # Imported here because the registry imports the modules that subclass this.
        from provisions import PROVISION_MODELS

        kind = cls.KIND
        message = f"unknown field `{key}` for a {kind} provision"
        owners = [
            other_kind
            for other_kind, model in PROVISION_MODELS.items()
            if other_kind != kind and key in model.known_keys()
        ]
        if owners:
            return message + f" (`{key}` belongs to kind {' and '.join(owners)})"
        return message + did_you_mean(key, cls.known_keys())

    def limited_by_term(self) -> dict[str, Duration]:
        """Return the durations of this provision that may not exceed the treaty term."""
        return {}


def is_number(value: object) -> bool:
    """Return True for an int or float; booleans are not numbers in this format."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def not_a_number_hint(value: object) -> str:
    """Explain why a value that was meant as a number was read otherwise, or return ''."""
    if value is None:
        return "the value is empty"
    if isinstance(value, bool):
        return "true/false is not a number"
    if not isinstance(value, str):
        return ""
    text = value.strip()
    percentage = re.fullmatch(r"([-+]?\d+(\.\d*)?)\s*%", text)
    if percentage:
        return f"write a percentage as a fraction, such as {float(percentage.group(1)) / 100:g} for {text}"
    if re.fullmatch(r"[-+]?\d+(:[0-5]?\d)+(\.\d*)?", text):
        return "YAML 1.1 reads this as a base-60 number but this format reads it as text; write the decimal value"
    if re.fullmatch(r"[-+]?0\d+", text):
        return (
            "a leading zero is ambiguous (YAML 1.1 reads 010 as octal 8, YAML 1.2 as 10); "
            "write the number without the leading zero"
        )
    if re.fullmatch(r"[-+]?0[xXoObB][0-9a-fA-F_]+", text):
        return "only decimal numbers are accepted"
    if "_" in text and re.fullmatch(r"[-+]?[\d_]+(\.[\d_]*)?", text):
        return "underscores in numbers are not accepted; write 1000, not 1_000"
    try:
        float(text)
    except ValueError:
        return ""
    return "a number written as text (in quotes or tagged `!!str`); write it without quotes or tag"


def check_number(
    value: object, *, minimum: float | None = None, below: float | None = None,
    maximum: float | None = None,
) -> tuple[float | None, str]:
    """Validate a number by hand, for fields with custom parsing.

    Returns ``(value, "")`` when valid and ``(None, message)`` otherwise.
    """
    if not is_number(value):
        hint = not_a_number_hint(value)
        return None, "expected a number" + (f"; {hint}" if hint else "")
    try:
        number = float(value)
    except OverflowError:
        # An integer too large for a float is beyond every bound.
        number = math.inf if value > 0 else -math.inf
        if maximum is None and below is None and (minimum is None or value > 0):
            return None, "too large to be a number here"
    else:
        if not math.isfinite(number):
            return None, "NaN and infinity are not allowed"
    if minimum is not None and number < minimum:
        return None, f"must be at least {minimum:g}"
    if below is not None and number >= below:
        return None, f"must be below {below:g}"
    if maximum is not None and number > maximum:
        return None, f"must be at most {maximum:,.0f}"
    if maximum is not None and number < -maximum:
        return None, f"must be at least {-maximum:,.0f}"
    return number, ""
