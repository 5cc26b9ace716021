"""Errors raised for invalid treaty files and for solver failures.

A treaty file can be wrong in many places at once, so validation collects every
``Problem`` it finds and raises them together in one ``SpecError``. Each problem
renders as one line that editors and terminals can jump to::

    treaties/cyber.yaml:12:15: error: parties[1].discount: must be below 1 (got 1.0; allowed: 0 <= discount < 1)
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

# Marks a problem that has no offending value (a missing field, an unreadable file).
NO_VALUE = object()

# Long values are cut so that one problem stays one readable line.
MAX_VALUE_CHARS = 60

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a treaty file.

    Attributes
    ----------
    file : str
        File name as given by the caller, or ``<string>``/``<data>`` for text and dicts.
    line, column : int or None
        1-based position of the offending key or value; None when the input has no
        source text (a dict built in code).
    path : str
        Field path such as ``parties[1].discount``; empty for problems with the file as
        a whole.
    message : str
        What is wrong and, where it helps, how to fix it.
    value : object
        The offending value, or ``NO_VALUE``.
    allowed : str or None
        The values the field accepts, when that fits in a few words.
    """

    file: str
    line: int | None
    column: int | None
    path: str
    message: str
    value: object = field(default=NO_VALUE, compare=False)
    allowed: str | None = None

    def format(self) -> str:
        """Render the problem as ``FILE:LINE:COL: error: PATH: MESSAGE (got ...; allowed: ...)``."""
        location = self.file
        if self.line is not None:
            location += f":{self.line}:{self.column or 1}"

        text = f"{location}: error: "
        if self.path:
            text += f"{self.path}: "
        text += self.message

        details = []
        if self.value is not NO_VALUE:
            details.append(f"got {format_value(self.value)}")
        if self.allowed:
            details.append(f"allowed: {self.allowed}")
        if details:
            text += f" ({'; '.join(details)})"
        return _one_line(text)

    def sort_key(self) -> tuple:
        return (self.line or 0, self.column or 0, self.path)


class SpecError(Exception):
    """A treaty file (or dict) that does not satisfy the format, with every problem found."""

    def __init__(self, problems: list[Problem]):
        if not problems:
            raise ValueError("SpecError needs at least one problem")
        self.problems = sorted(problems, key=Problem.sort_key)
        super().__init__("\n".join(problem.format() for problem in self.problems))

    def __str__(self) -> str:
        return "\n".join(problem.format() for problem in self.problems)


class SolverError(Exception):
    """The solver did not converge; the message names the iteration limit and tolerance."""


def format_path(path: tuple) -> str:
    """Render a field path as ``parties[1].discount`` or ``environment.states["two words"]``.

    ``path`` contains mapping keys (str) and list indices (int), outermost first.
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part, ensure_ascii=False)}]"
    return text


def count_text(count: int, noun: str = "point") -> str:
    """Return ``"1 point"`` or ``"N points"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def format_value(value: object) -> str:
    """Render a value the way it would be written in the file, cut to one short line."""
    if value is None:
        text = "an empty value"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = _format_float(value)
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        text = _format_mapping(value)
    elif isinstance(value, (list, tuple)):
        text = "a list of " + count_text(len(value), "item")
    else:
        text = str(value)

    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 3] + "..."
    return text


def _one_line(text: str) -> str:
    """Escape control characters (from keys or values in the file) so a problem stays one line.

    The escapes take the ``\\u0007`` form that the JSON-quoted keys of a field
    path use, so one key reads the same in the path and in the message.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        # JSON's own escapes, such as \\t for a tab, as in the quoted keys.
        return json.dumps(char)[1:-1]
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _format_mapping(value: dict) -> str:
    """Format a short mapping of numbers in flow style, as in the file, and other mappings by their keys."""
    if not value:
        return "a mapping"
    if all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in value.values()):
        items = ", ".join(f"{key}: {_format_float(float(item))}" for key, item in value.items())
        text = "{" + items + "}"
        if len(text) <= MAX_VALUE_CHARS:
            return text
    return "a mapping with keys " + ", ".join(map(str, value))


def _format_float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return repr(value)
