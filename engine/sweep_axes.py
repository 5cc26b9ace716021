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

# The unit word of a duration written as a number and a unit, e.g. "10 years".
_WORDED_UNIT = re.compile(r"^\s*[\d.]+\s*([A-Za-z]+?)s?\s*$")
# The unit of a one-component ISO 8601 duration, e.g. "P6M".
_ISO_UNIT = re.compile(r"^\s*P[\d.,]+([YMWD])\s*$", re.IGNORECASE)
_ISO_UNITS = {"Y": "years", "M": "months", "W": "weeks", "D": "days"}

# The duration parser reads at most nine decimals.
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


def resolve_path(data: dict, path: str) -> tuple[Target, ...]:
    """Find the fields of the treaty mapping that ``path`` names.

    ``parties.NAME`` selects a party by name (``*`` selects all) and
    ``provisions.KIND`` a provision by its kind. Every other segment is a
    mapping key, or a list index when the container is a list. The last key
    may be missing from the file, in which case the field is created when a
    value is written.

    Raises
    ------
    SweepError
        When a segment names nothing in the file, or the field contains a value
        that cannot be swept (text other than a duration, a boolean, a list or
        a mapping).
    """
    segments = [segment.strip() for segment in path.split(".")]
    if not path.strip() or any(not segment for segment in segments):
        raise SweepError(f"invalid path {path!r}: expected dot-separated field names")
    if not isinstance(data, dict):
        raise SweepError("the treaty file does not contain a mapping at the top level")

    prefixes = _expand_prefix(data, path, segments)
    targets = [_resolve_rest(data, path, keys, rest) for keys, rest in prefixes]
    return tuple(targets)


def _expand_prefix(
    data: dict, path: str, segments: list[str]
) -> list[tuple[tuple[str | int, ...], list[str]]]:
    """Resolve the party or provision selector at the start of ``path``.

    Returns one (keys so far, remaining segments) pair per selected item.
    """
    head = segments[0]

    if head == "parties":
        parties = data.get("parties")
        if not isinstance(parties, list) or not parties:
            raise SweepError(f"invalid path {path!r}: the file has no list of parties")
        return _select_parties(parties, path, ".".join(segments[1:]))

    if head == "provisions" and len(segments) > 1 and not segments[1].isdigit():
        provisions = data.get("provisions")
        if not isinstance(provisions, list) or not provisions:
            raise SweepError(f"invalid path {path!r}: the file has no provisions")
        kind = segments[1]
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
                f"{kind!r}; address one by index, e.g. provisions.{matches[0]}.{'.'.join(segments[2:])}"
            )
        return [(("provisions", matches[0]), segments[2:])]

    return [((), segments)]


def _select_parties(
    parties: list, path: str, rest: str
) -> list[tuple[tuple[str | int, ...], list[str]]]:
    """Match the party name at the start of ``rest``; names may contain dots."""
    names = [party.get("name") if isinstance(party, dict) else None for party in parties]

    if rest == "*" or rest.startswith("*."):
        remaining = rest[2:].split(".") if rest != "*" else []
        return [(("parties", index), remaining) for index in range(len(parties))]

    # The longest name that prefixes the rest wins, so "A.B" beats "A".
    candidates = [
        (index, name)
        for index, name in enumerate(names)
        if isinstance(name, str) and (rest == name or rest.startswith(name + "."))
    ]
    if candidates:
        index, name = max(candidates, key=lambda candidate: len(candidate[1]))
        remaining = rest[len(name) + 1 :].split(".") if rest != name else []
        return [(("parties", index), remaining)]

    first = rest.split(".")[0]
    if first.isdigit() and int(first) < len(parties):
        return [(("parties", int(first)), rest.split(".")[1:])]

    known = ", ".join(repr(name) for name in names)
    raise SweepError(
        f"invalid path {path!r}: no party named {first!r} (parties: {known}; * selects all)"
    )


def _resolve_rest(
    data: dict, path: str, keys: tuple[str | int, ...], rest: list[str]
) -> Target:
    """Walk the remaining segments from ``keys`` and describe the field found."""
    if not rest:
        raise SweepError(f"invalid path {path!r}: it names a whole item, not a field in it")

    container: Any = _lookup(data, keys)
    walked = list(keys)
    for position, segment in enumerate(rest):
        last = position == len(rest) - 1
        where = ".".join(str(key) for key in walked) or "the top level"

        if isinstance(container, dict):
            key: str | int = segment
            if segment not in container:
                if last:
                    walked.append(key)
                    return Target(tuple(walked), missing=True)
                raise SweepError(
                    f"invalid path {path!r}: {where} has no field {segment!r} "
                    f"(fields: {', '.join(map(str, container))}); to sweep a field inside "
                    f"{segment!r}, add {segment!r} to the file first"
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
        return Target(keys)
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
    if target.integer and float(value).is_integer():
        return int(value)
    return float(value)


def apply_values(data: dict, assignments: list[tuple[tuple[Target, ...], float]]) -> dict:
    """Return a deep copy of ``data`` with each target set to its grid value."""
    edited = copy.deepcopy(data)
    for targets, value in assignments:
        for target in targets:
            container = _lookup(edited, target.keys[:-1])
            container[target.keys[-1]] = encode_value(target, value)
    return edited


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
                f"--x {axes[0].path} and --y {axes[1].path} both set {shared[0].dotted}; "
                "sweep two different fields"
            )
    return axes
