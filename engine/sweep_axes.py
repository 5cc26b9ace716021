"""Sweep axes: parse ``PATH=START:STOP:N`` and write grid values into a treaty mapping.

PATH names a field of the treaty file by the names used in the file:

* ``environment.persistence``: mapping keys, separated by dots;
* ``parties.Russia.discount``: a party by its name, ``parties.*.discount`` for
  every party;
* ``provisions.withdrawal.cost``: a provision by its ``kind``;
* ``parties.Russia.regime_value.1.1``: a list element by its index.

The grid is ``numpy.linspace(START, STOP, N)``: N points, both ends included.
A field whose value in the file is a duration (``10 years``, ``P6M``) is swept
in the unit the file uses, and each value is written back with that unit
(``7.5 years``).
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.durations import DurationError, parse_duration
from engine.spec_fields import did_you_mean

# The unit word of a duration written as a number and a unit, e.g. "10 years".
_WORDED_UNIT = re.compile(r"^\s*[\d.]+\s*([A-Za-z]+?)s?\s*$")
# The unit of a one-component ISO 8601 duration, e.g. "P6M".
_ISO_UNIT = re.compile(r"^\s*P[\d.,]+([YMWD])\s*$", re.IGNORECASE)
_ISO_UNITS = {"Y": "years", "M": "months", "W": "weeks", "D": "days"}

# Swept durations are written with nine decimals, within the twelve that the
# duration parser reads.
DURATION_DECIMALS = 9

# Limits on the grid, checked before the grid is allocated. Each point is a
# full solve, so a grid near these limits already runs for a long time. They
# catch a mistyped N (an extra zero, say) before numpy allocates the grid or
# the first solve starts.
MAX_AXIS_POINTS = 10_000
MAX_TOTAL_POINTS = 1_000_000


class SweepError(Exception):
    """A sweep request that cannot run: a bad axis, path or option."""


@dataclass(frozen=True)
class Target:
    """One concrete field that a sweep path writes to.

    ``keys`` leads from the top of the file's mapping to the field. ``unit`` is
    the duration unit when the field contains a duration, ``integer`` is true
    when the file writes the field as a whole number, and ``missing`` is true
    when the file leaves the field out.
    """

    keys: tuple[str | int, ...]
    unit: str | None = None
    integer: bool = False
    missing: bool = False

    @property
    def dotted(self) -> str:
        return ".".join(str(key) for key in self.keys)


@dataclass(frozen=True)
class Axis:
    """One sweep axis: the path as written, the fields it sets and its grid."""

    path: str
    values: np.ndarray
    targets: tuple[Target, ...] = ()

    @property
    def label(self) -> str:
        """Return the path, with the duration unit of its fields when they share one."""
        units = {target.unit for target in self.targets}
        if len(units) == 1 and None not in units:
            return f"{self.path} ({units.pop()})"
        return self.path


def parse_axis(text: str) -> tuple[str, np.ndarray]:
    """Split ``PATH=START:STOP:N`` into the path and its ``numpy.linspace`` grid.

    Raises
    ------
    SweepError
        When the text does not have that form, a bound is not a finite number
        or N is not an integer from 2 to ``MAX_AXIS_POINTS``.
    """
    path, separator, grid = text.rpartition("=")
    path = path.strip()
    if not separator or not path:
        raise SweepError(f"invalid axis {text!r}: expected PATH=START:STOP:N")

    parts = grid.split(":")
    if len(parts) != 3:
        raise SweepError(
            f"invalid grid {grid!r} for {path}: expected START:STOP:N, e.g. 0.5:0.95:10"
        )

    start_text, stop_text, count_text = (part.strip() for part in parts)
    bounds = []
    for name, value_text in (("START", start_text), ("STOP", stop_text)):
        try:
            value = float(value_text)
        except ValueError:
            raise SweepError(
                f"invalid {name} {value_text!r} for {path}: expected a number"
            ) from None
        if not math.isfinite(value):
            raise SweepError(f"invalid {name} {value_text!r} for {path}: must be finite")
        bounds.append(value)

    try:
        count = int(count_text)
    except ValueError:
        raise SweepError(
            f"invalid N {count_text!r} for {path}: expected a whole number of points"
        ) from None
    if count < 2:
        raise SweepError(f"invalid N {count} for {path}: a sweep needs at least 2 points")
    if count > MAX_AXIS_POINTS:
        raise SweepError(
            f"invalid N {count} for {path}: an axis has at most {MAX_AXIS_POINTS:,} points; "
            "use a coarser grid"
        )

    return path, np.linspace(bounds[0], bounds[1], count)


# Characters that open and close a quoted path segment.
QUOTES = "\"'"


@dataclass(frozen=True)
class Segment:
    """One dot-separated part of a sweep path, with ``quoted`` true when written in quotes."""

    text: str
    quoted: bool = False


@dataclass(frozen=True)
class Reading:
    """One way to read a path: the fields it selects, each as (keys so far, rest of the path).

    ``rest`` is the unparsed text after the selected item, or None when the
    path ends there. ``spelled`` is the path with the party name in quotes,
    shown when two readings compete.
    """

    selections: tuple[tuple[tuple[str | int, ...], str | None], ...]
    spelled: str = ""


def split_path(path: str, text: str | None = None) -> list[Segment]:
    """Split ``text`` (default: ``path``) at the dots that lie outside quotes.

    A segment that starts with a double or single quote runs to the matching
    quote, so ``parties."U.S.".discount`` has the segment ``U.S.``. Other
    segments are stripped of surrounding spaces.

    Raises
    ------
    SweepError
        On an empty segment, an unterminated quote or text between a closing
        quote and the next dot.
    """
    text = path if text is None else text
    segments = []
    position = 0
    while True:
        segment, position = _read_segment(path, text, position)
        segments.append(segment)
        if position is None:
            return segments


def _read_segment(path: str, text: str, start: int) -> tuple[Segment, int | None]:
    """Read the segment at ``start`` and return it with the start of the next one, or None at the end."""
    position = start
    while position < len(text) and text[position].isspace():
        position += 1

    if position < len(text) and text[position] in QUOTES:
        quote = text[position]
        close = text.find(quote, position + 1)
        if close < 0:
            # ``text`` can be the end of ``path``; count characters in ``path``.
            offset = len(path) - len(text) if path.endswith(text) else 0
            raise SweepError(
                f"invalid path {path!r}: the quote {quote} at character {offset + position + 1} is not "
                "closed; close it after the name"
            )
        value = text[position + 1 : close]
        after = close + 1
        while after < len(text) and text[after].isspace():
            after += 1
        if after == len(text):
            return Segment(value, quoted=True), None
        if text[after] != ".":
            raise SweepError(
                f"invalid path {path!r}: expected a dot after the quoted name {value!r}, "
                f"got {text[after]!r}"
            )
        return Segment(value, quoted=True), after + 1

    dot = text.find(".", position)
    end = len(text) if dot < 0 else dot
    value = text[position:end].strip()
    if not value:
        raise SweepError(
            f"invalid path {path!r}: expected dot-separated field names (write a name "
            "that contains dots in quotes, e.g. parties.\"U.S.\".discount)"
        )
    return Segment(value), None if dot < 0 else dot + 1


def quote_name(name: str) -> str:
    """Return ``name`` in the quotes that a path accepts for it."""
    return f"'{name}'" if '"' in name else f'"{name}"'


def resolve_path(data: dict, path: str) -> tuple[Target, ...]:
    """Find the fields of the treaty mapping that ``path`` names.

    ``parties.NAME`` selects a party by name (``*`` selects all) and
    ``provisions.KIND`` a provision by its kind. Every other segment is a
    mapping key, or a list index when the container is a list. The last key
    may be missing from the file, in which case the field is created when a
    value is written.

    A party name may contain dots. Written without quotes, it is matched
    against the text after ``parties.``, so ``parties.U.S..discount`` selects
    a party named ``U.S.``. When two party names fit (``A`` and ``A.B`` in
    ``parties.A.B.x``), the reading whose rest names a field of that party
    wins. When both rests name fields, the path is ambiguous and rejected.
    A name in quotes, ``parties."A.B".x``, selects that party alone.

    Raises
    ------
    SweepError
        When a segment names nothing in the file, the path is ambiguous, or the
        field contains a value that cannot be swept (text other than a
        duration, a boolean, a list or a mapping).
    """
    if not path.strip():
        raise SweepError(f"invalid path {path!r}: expected dot-separated field names")
    if not isinstance(data, dict):
        raise SweepError("the treaty file does not contain a mapping at the top level")

    readings = _read_path(data, path)
    resolved = []
    problems = []
    for reading in readings:
        try:
            targets = tuple(
                _resolve_rest(data, path, keys, [] if rest is None else split_path(path, rest))
                for keys, rest in reading.selections
            )
        except SweepError as error:
            problems.append(error)
            continue
        resolved.append((reading, targets))

    if len(resolved) == 1:
        return resolved[0][1]
    if not resolved:
        # The readings come longest party name first, so this is the closest match.
        raise problems[0]
    spellings = " or ".join(reading.spelled for reading, _ in resolved)
    raise SweepError(
        f"invalid path {path!r}: ambiguous, it can be read as {spellings}; "
        "write the party name in quotes to choose one"
    )


def _read_path(data: dict, path: str) -> list[Reading]:
    """List the readings of ``path``: several only where party names containing dots compete."""
    head, rest_start = _read_segment(path, path, 0)
    rest = None if rest_start is None else path[rest_start:]

    if head.text == "parties" and not head.quoted:
        parties = data.get("parties")
        if not isinstance(parties, list) or not parties:
            raise SweepError(f"invalid path {path!r}: the file has no list of parties")
        if rest is None:
            raise SweepError(f"invalid path {path!r}: it names the list of parties; add a party "
                             "name and a field, e.g. parties.*.discount")
        return _select_parties(parties, path, rest)

    if head.text == "provisions" and not head.quoted and rest is not None:
        kind, after = _read_segment(path, rest, 0)
        if kind.quoted or not kind.text.isdigit():
            remainder = None if after is None else rest[after:]
            keys = _select_provision(data, path, kind.text, remainder)
            return [Reading(((keys, remainder),))]

    return [Reading((((), path),))]


def _select_provision(data: dict, path: str, kind: str, rest: str | None) -> tuple[str | int, ...]:
    """Return the keys of the one provision of ``kind``."""
    provisions = data.get("provisions")
    if not isinstance(provisions, list) or not provisions:
        raise SweepError(f"invalid path {path!r}: the file has no provisions")
    matches = [
        index
        for index, provision in enumerate(provisions)
        if isinstance(provision, dict) and provision.get("kind") == kind
    ]
    if not matches:
        kinds = ", ".join(
            str(provision.get("kind")) for provision in provisions if isinstance(provision, dict)
        )
        raise SweepError(
            f"invalid path {path!r}: no provision of kind {kind!r} in the file "
            f"(kinds present: {kinds})"
        )
    if len(matches) > 1:
        raise SweepError(
            f"invalid path {path!r}: the file has {len(matches)} provisions of kind "
            f"{kind!r}; address one by index, e.g. provisions.{matches[0]}.{rest or 'FIELD'}"
        )
    return ("provisions", matches[0])


# The marker for a name that does not start the text, as opposed to None for a
# name that is all of it.
_NO_MATCH = object()


def _select_parties(parties: list, path: str, rest: str) -> list[Reading]:
    """Read the party selector at the start of ``rest``, the text after ``parties.``."""
    names = [party.get("name") if isinstance(party, dict) else None for party in parties]

    # A segment that starts with a quote is a quoted name, whatever party names exist.
    if rest.lstrip()[:1] in tuple(QUOTES):
        first, after = _read_segment(path, rest, 0)
        remainder = None if after is None else rest[after:]
        matches = [index for index, name in enumerate(names) if name == first.text]
        if not matches:
            raise _unknown_party(path, first.text, names)
        if len(matches) > 1:
            raise SweepError(
                f"invalid path {path!r}: {len(matches)} parties are named {first.text!r}; "
                f"address one by index, e.g. parties.{matches[0]}.{remainder or 'FIELD'}"
            )
        return [Reading(((("parties", matches[0]), remainder),))]

    # An unquoted * selects every party, even if one is named "*".
    after_star = _text_after_name(rest, "*")
    if after_star is not _NO_MATCH:
        return [Reading(tuple((("parties", index), after_star) for index in range(len(parties))))]

    # Every name that the text starts with, up to a dot or the end, is a
    # reading; the longest comes first.
    text_names = [(index, name) for index, name in enumerate(names) if isinstance(name, str) and name]
    readings = []
    for index, name in sorted(text_names, key=lambda item: -len(item[1])):
        after_name = _text_after_name(rest, name)
        if after_name is _NO_MATCH:
            continue
        spelled = f"parties.{quote_name(name)}" + ("" if after_name is None else f".{after_name}")
        readings.append(Reading(((("parties", index), after_name),), spelled))
    if readings:
        return readings

    first, after = _read_segment(path, rest, 0)
    remainder = None if after is None else rest[after:]
    if first.text.isdigit() and int(first.text) < len(parties):
        return [Reading(((("parties", int(first.text)), remainder),))]
    raise _unknown_party(path, first.text, names)


def _text_after_name(text: str, name: str):
    """Return the text after ``name`` and its dot at the start of ``text``.

    None means that the name is all of the text, and ``_NO_MATCH`` that the
    text does not start with the name followed by a dot. Spaces before the name and between it and the dot are ignored, as in an
    unquoted segment.
    """
    stripped = text.lstrip()
    if not stripped.startswith(name):
        return _NO_MATCH
    tail = stripped[len(name) :].lstrip()
    if not tail:
        return None
    if not tail.startswith("."):
        return _NO_MATCH
    return tail[1:]


def _unknown_party(path: str, name: str, names: list) -> SweepError:
    known = ", ".join(repr(name) for name in names)
    return SweepError(
        f"invalid path {path!r}: no party named {name!r} (parties: {known}; * selects all)"
    )


def _resolve_rest(
    data: dict, path: str, keys: tuple[str | int, ...], rest: list[Segment]
) -> Target:
    """Walk the remaining segments from ``keys`` and describe the field found."""
    if not rest:
        raise SweepError(f"invalid path {path!r}: it names a whole item, not a field in it")

    container: Any = _lookup(data, keys)
    walked = list(keys)
    for position, part in enumerate(rest):
        segment = part.text
        last = position == len(rest) - 1
        where = named_path(data, tuple(walked)) or "the top level"
        if container is None and walked and isinstance(walked[-1], str):
            # An empty section such as `model:` counts as left out, so its
            # fields can be swept as if it were written `model: {}`.
            container = {}

        if isinstance(container, dict):
            key: str | int = segment
            if segment not in container:
                if last:
                    walked.append(key)
                    return Target(tuple(walked), missing=True, integer=format_is_integer(tuple(walked)))
                fields = f"fields: {', '.join(map(str, container))}" if container else "it is empty"
                known = _format_keys(tuple(walked))
                if known and segment not in known:
                    # A misspelling: adding the key as written would not help.
                    raise SweepError(
                        f"invalid path {path!r}: {where} has no field {segment!r} in the treaty "
                        f"format{did_you_mean(segment, known)}"
                    )
                raise SweepError(
                    f"invalid path {path!r}: {where} has no field {segment!r} "
                    f"({fields}); to set a field inside {segment!r}, add {segment!r} to the file first"
                )
        elif isinstance(container, list):
            if not segment.isdigit() or int(segment) >= len(container):
                raise SweepError(
                    f"invalid path {path!r}: {where} is a list of {len(container)}; "
                    f"expected an index from 0 to {len(container) - 1}, got {segment!r}"
                )
            key = int(segment)
        else:
            raise SweepError(
                f"invalid path {path!r}: {where} is a single value, it has no field {segment!r}"
            )

        walked.append(key)
        container = container[key]

    return _describe_field(path, tuple(walked), container)


def _format_keys(keys: tuple[str | int, ...]) -> list[str]:
    """Return the field names that the treaty format declares inside the field at ``keys``.

    A mapping whose keys the file chooses, such as the states, has every
    name allowed, so the list is empty and no name counts as a misspelling.
    """
    from engine.loader import schema_nodes

    nodes = schema_nodes(keys)
    if any(isinstance(node.get("additionalProperties"), dict) for node in nodes):
        return []
    return sorted({key for node in nodes for key in node.get("properties", {})})


def format_is_integer(keys: tuple[str | int, ...]) -> bool:
    """Return True when the treaty format allows only whole numbers at ``keys``, such as ``model.grid``."""
    from engine.loader import schema_nodes

    # A field that may also be left empty (null) counts by its other forms.
    nodes = [node for node in schema_nodes(keys) if node.get("type") != "null"]
    return bool(nodes) and all(node.get("type") == "integer" for node in nodes)


def _describe_field(path: str, keys: tuple[str | int, ...], value: Any) -> Target:
    """Check that the current value can be swept and record how to write new ones."""
    if isinstance(value, bool):
        raise SweepError(f"invalid path {path!r}: the field is a boolean and cannot be swept")
    if isinstance(value, int):
        return Target(keys, integer=True)
    if isinstance(value, float):
        return Target(keys)
    if isinstance(value, str):
        unit = _duration_unit(value)
        if unit is None:
            raise SweepError(
                f"invalid path {path!r}: the field contains the text {value!r}, which is neither "
                "a number nor a duration"
            )
        return Target(keys, unit=unit)
    if value is None:
        # An empty value in the file, which the grid value replaces.
        return Target(keys, integer=format_is_integer(keys))
    kind = "list" if isinstance(value, list) else "mapping"
    raise SweepError(
        f"invalid path {path!r}: the field contains a {kind}; name one of its elements"
    )


def _duration_unit(text: str) -> str | None:
    """Return the plural unit word of a duration, or None if the text is not one.

    ISO 8601 durations of several components (``P1Y6M``) are swept in years.
    """
    try:
        parse_duration(text)
    except DurationError:
        return None

    worded = _WORDED_UNIT.match(text)
    if worded:
        return worded.group(1).lower() + "s"
    iso = _ISO_UNIT.match(text)
    if iso:
        return _ISO_UNITS[iso.group(1).upper()]
    return "years"


def _lookup(data: Any, keys: tuple[str | int, ...]) -> Any:
    for key in keys:
        data = data[key]
    return data


def encode_value(target: Target, value: float) -> Any:
    """Convert a grid value to what the file would contain for that field."""
    if target.unit is not None:
        unit = target.unit[:-1] if float(value) == 1.0 else target.unit
        number = f"{float(value):.{DURATION_DECIMALS}f}".rstrip("0").rstrip(".")
        return f"{number} {unit}"
    # A field the file leaves out may be a whole-number field, such as
    # ``model.grid``, and a whole number is valid for a decimal field too.
    if (target.integer or target.missing) and float(value).is_integer():
        return int(value)
    return float(value)


def apply_values(data: dict, assignments: list[tuple[tuple[Target, ...], float]]) -> dict:
    """Return a deep copy of ``data`` with each target set to its grid value."""
    edited = copy.deepcopy(data)
    for targets, value in assignments:
        for target in targets:
            container = edited
            for key in target.keys[:-1]:
                if container[key] is None:
                    container[key] = {}
                container = container[key]
            container[target.keys[-1]] = encode_value(target, value)
    return edited


def named_path(data: dict, keys: tuple[str | int, ...]) -> str:
    """Return the dotted path of ``keys`` with a party's index replaced by its name."""
    parts = [str(key) for key in keys]
    if len(keys) > 1 and keys[0] == "parties" and isinstance(keys[1], int):
        parties = data.get("parties")
        if isinstance(parties, list) and isinstance(parties[keys[1]], dict):
            name = parties[keys[1]].get("name")
            if isinstance(name, str):
                parts[1] = quote_name(name) if "." in name else name
    return ".".join(parts)


def build_axes(data: dict, axis_texts: list[str]) -> list[Axis]:
    """Parse the axis options and resolve their paths against the file's mapping.

    Raises
    ------
    SweepError
        On a malformed axis, an unknown path, a grid of more than
        ``MAX_TOTAL_POINTS`` points or two axes writing the same field.
    """
    axes = []
    for text in axis_texts:
        path, values = parse_axis(text)
        axes.append(Axis(path, values, resolve_path(data, path)))

    total = math.prod(len(axis.values) for axis in axes)
    if total > MAX_TOTAL_POINTS:
        counts = " x ".join(f"{len(axis.values):,}" for axis in axes)
        raise SweepError(
            f"grid too large: {counts} = {total:,} points, but a sweep has at most "
            f"{MAX_TOTAL_POINTS:,}; use a coarser grid (smaller N)"
        )

    if len(axes) == 2:
        first = {target.keys for target in axes[0].targets}
        shared = [target for target in axes[1].targets if target.keys in first]
        if shared:
            raise SweepError(
                f"--x {axes[0].path} and --y {axes[1].path} both set "
                f"{named_path(data, shared[0].keys)}; "
                "sweep two different fields"
            )
    return axes
