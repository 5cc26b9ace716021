"""Load treaty files into validated ``TreatySpec`` objects, or report every problem.

Reading happens in two stages. The YAML stage (``engine.yaml_loader``) rejects what
is not a safe, well-formed document and stops there, because a file with duplicate
keys or a syntax error has no single meaning to validate. The schema stage validates
the data against ``engine.spec`` and maps each pydantic error back to the line and
column where the offending key or value was written. Every problem found in a stage
is raised together in one ``SpecError``.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

from pydantic import ValidationError

from engine.errors import NO_VALUE, Problem, SpecError, format_path
from engine.spec import PROVISION_ERROR, SCHEMA_VERSION, SCHEMA_VERSIONS, TreatySpec
from engine.spec_fields import RULE_ERROR, did_you_mean, not_a_number_hint
from engine.yaml_loader import FieldPath, LoadedYaml, Position, load_yaml, load_yaml_file
from provisions import PROVISION_KINDS


def load_treaty(path: str | os.PathLike) -> TreatySpec:
    """Read, parse and validate a treaty file; raise ``SpecError`` listing every problem."""
    return _validate_loaded(load_yaml_file(path), str(path))


def parse_treaty_text(text: str, filename: str = "<string>") -> TreatySpec:
    """Parse and validate treaty YAML given as text; ``filename`` labels the problems."""
    return _validate_loaded(load_yaml(text, filename), filename)


def validate_treaty_data(
    data: dict,
    filename: str = "<data>",
    positions: dict[FieldPath, Position] | None = None,
) -> TreatySpec:
    """Validate already-parsed treaty data, such as a file's data edited by a sweep.

    ``positions`` (from ``engine.yaml_loader``) lets problems name lines and columns;
    without it they name only the field path.
    """
    return _validate(data, filename, positions, [])


def _validate_loaded(loaded: LoadedYaml, filename: str) -> TreatySpec:
    problems = []
    data = loaded.data
    if isinstance(data, dict) and "schema" in data and next(iter(data)) != "schema":
        mark = loaded.positions[("schema",)].key or loaded.positions[("schema",)].value
        problems.append(
            Problem(filename, mark.line, mark.column, "schema", "must be the first key of the file")
        )
    return _validate(data, filename, loaded.positions, problems)


def _validate(
    data: Any, filename: str, positions: dict[FieldPath, Position] | None, problems: list[Problem]
) -> TreatySpec:
    locator = _Locator(filename, positions)

    if not isinstance(data, dict):
        raise SpecError(
            [
                locator.problem(
                    (),
                    "the top level must be a mapping of fields, starting with "
                    f"`schema: {SCHEMA_VERSION}`",
                    data,
                )
            ]
        )

    # A file of another version may follow other rules, so report only the version.
    version = data.get("schema", SCHEMA_VERSION)
    if version not in SCHEMA_VERSIONS:
        raise SpecError(
            [
                locator.problem(
                    ("schema",),
                    "unknown schema version; this build reads " + ", ".join(SCHEMA_VERSIONS),
                    version,
                    allowed=", ".join(SCHEMA_VERSIONS),
                )
            ]
        )

    try:
        spec = TreatySpec.model_validate(data)
    except ValidationError as error:
        problems = problems + [_problem_from_error(item, locator) for item in error.errors()]
        raise SpecError(problems) from None
    if problems:
        raise SpecError(problems)
    return spec


class _Locator:
    """Find the source position of a field path and build problems there."""

    def __init__(self, filename: str, positions: dict[FieldPath, Position] | None):
        self.filename = filename
        self.positions = positions

    def problem(
        self,
        path: FieldPath,
        message: str,
        value: object = NO_VALUE,
        *,
        allowed: str | None = None,
        at_key: bool = False,
        missing: bool = False,
    ) -> Problem:
        line, column = self.position(path, at_key=at_key, missing=missing)
        return Problem(self.filename, line, column, format_path(path), message, value, allowed or None)

    def position(self, path: FieldPath, *, at_key: bool, missing: bool) -> tuple[int | None, int | None]:
        if self.positions is None:
            return None, None

        position = self.positions.get(path) if not missing else None
        if position is not None:
            mark = position.key if (at_key and position.key is not None) else position.value
            return mark.line, mark.column

        # A field that is not in the file (missing, or a rule about an absent field) has
        # no position of its own: point at the nearest enclosing key that was written.
        lookup = path[:-1]
        while lookup and lookup not in self.positions:
            lookup = lookup[:-1]
        position = self.positions.get(lookup)
        if position is None:
            return 1, 1
        mark = position.key or position.value
        return mark.line, mark.column


def _clean_location(location: tuple) -> tuple[tuple, bool]:
    """Drop the parts pydantic adds to a location that are not in the data.

    Returns the path and whether the error is about a mapping key (``[key]``).
    """
    parts = list(location)
    at_key = False
    if "[key]" in parts:
        parts = parts[: parts.index("[key]")]
        at_key = True
    # A tagged union puts the provision kind after the list index.
    if len(parts) >= 3 and parts[0] == "provisions" and parts[2] in PROVISION_KINDS:
        del parts[2]
    return tuple(parts), at_key


def _problem_from_error(error: dict, locator: _Locator) -> Problem:
    path, at_key = _clean_location(error["loc"])
    kind = error["type"]
    value = error.get("input", NO_VALUE)
    context = error.get("ctx") or {}
    # Mappings and lists span many lines: their key line reads better than their first item.
    prefer_key = at_key or isinstance(value, (dict, list))

    if kind == RULE_ERROR or "message" in context:
        message = context.get("message", error["msg"])
        return locator.problem(
            path,
            message,
            value,
            allowed=context.get("allowed") or None,
            at_key=prefer_key or bool(context.get("at_key")),
        )

    if kind == "missing":
        message = "missing required field"
        if path == ("schema",):
            message += f"; a treaty file starts with `schema: {SCHEMA_VERSION}`"
        return locator.problem(path, message, missing=True)

    if kind == PROVISION_ERROR:
        return _provision_kind_problem(path, value, locator)

    message, allowed = _builtin_message(kind, value, context, error["msg"])
    if kind in BOUND_ERRORS:
        allowed = allowed_range(path) or allowed
    return locator.problem(path, message, value, allowed=allowed, at_key=prefer_key)


# Errors of a number outside its bounds. Pydantic names only the bound that
# failed, so the whole range comes from the JSON Schema (see ``allowed_range``).
BOUND_ERRORS = ("greater_than_equal", "greater_than", "less_than_equal", "less_than")


def allowed_range(path: FieldPath) -> str | None:
    """Return the range that the treaty format allows at ``path``, such as "a number from 0 to 1".

    Returns None where the format gives the field no bounds, or different
    bounds in different places that the path can name (two provision kinds
    with a field of the same name).
    """
    texts = {_range_text(node) for node in schema_nodes(path)}
    texts.discard(None)
    return texts.pop() if len(texts) == 1 else None


def schema_nodes(path: FieldPath) -> list[dict]:
    """Return the JSON Schema nodes that the treaty format declares at ``path``, unions opened.

    A path into the provisions list reaches every provision kind that has
    the field. The list is empty where the format declares nothing there.
    """
    schema = _treaty_schema()
    found = [schema]
    for part in path:
        inner = []
        for option in (option for node in found for option in _schema_options(node, schema)):
            if isinstance(part, int):
                if isinstance(option.get("items"), dict):
                    inner.append(option["items"])
            elif part in option.get("properties", {}):
                inner.append(option["properties"][part])
            elif isinstance(option.get("additionalProperties"), dict):
                inner.append(option["additionalProperties"])
        found = inner
    return [option for node in found for option in _schema_options(node, schema)]


@functools.lru_cache(maxsize=1)
def _treaty_schema() -> dict:
    return TreatySpec.model_json_schema(by_alias=True, mode="validation")


def _schema_options(node: dict, schema: dict) -> list[dict]:
    """Return the schemas that ``node`` stands for, with references followed and unions opened."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _schema_options(schema["$defs"][name], schema)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            return [option for item in node[key] for option in _schema_options(item, schema)]
    return [node]


def _range_text(node: dict) -> str | None:
    kind = {"integer": "an integer", "number": "a number"}.get(node.get("type"))
    low, high = node.get("minimum"), node.get("maximum")
    if kind is None or (low is None and high is None):
        return None
    if low is not None and high is not None:
        return f"{kind} from {_bound_text(low)} to {_bound_text(high)}"
    if low is not None:
        return f"{kind} of at least {_bound_text(low)}"
    return f"{kind} of at most {_bound_text(high)}"


def _provision_kind_problem(path: FieldPath, value: object, locator: _Locator) -> Problem:
    allowed = ", ".join(PROVISION_KINDS)
    if not isinstance(value, dict):
        return locator.problem(path, "a provision is a mapping with a `kind` field", value, allowed=allowed)
    if "kind" not in value:
        return locator.problem(path + ("kind",), "missing required field", allowed=allowed, missing=True)
    kind = value["kind"]
    message = f"unknown provision kind{did_you_mean(kind, PROVISION_KINDS)}"
    return locator.problem(path + ("kind",), message, kind, allowed=allowed)


def _builtin_message(kind: str, value: object, context: dict, default: str) -> tuple[str, str | None]:
    """Reword one of pydantic's own error types for treaty authors."""
    if kind in ("float_type", "int_type", "int_from_float", "int_parsing", "float_parsing"):
        expected = "a whole number" if kind.startswith("int") else "a number"
        hint = not_a_number_hint(value)
        if kind == "int_from_float" or (kind == "int_type" and isinstance(value, float)):
            hint = "write it without a decimal point or exponent"
        return f"expected {expected}" + (f"; {hint}" if hint else ""), expected

    if kind == "finite_number":
        return "NaN and infinity are not allowed", "a finite number"

    if kind in ("string_type", "str_type"):
        hint = ""
        if isinstance(value, (bool, int, float)):
            hint = "; put it in quotes to use it as text"
        return "expected text" + hint, None

    if kind == "string_too_short":
        return "cannot be empty", None
    if kind == "bool_type":
        return "expected true or false", "true, false"
    if kind == "list_type":
        return "expected a list", None
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "expected a mapping of fields", None

    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(context.get("expected", "")))
        return "not an allowed value" + did_you_mean(value, choices), ", ".join(choices) or None

    bounds = {
        "greater_than_equal": ("must be at least {}", "ge"),
        "greater_than": ("must be greater than {}", "gt"),
        "less_than_equal": ("must be at most {}", "le"),
        "less_than": ("must be less than {}", "lt"),
    }
    if kind in ("too_short", "too_long"):
        return _length_message(kind, context), None
    if kind in bounds:
        template, key = bounds[kind]
        return template.format(_bound_text(context.get(key))), None

    return default, None


def _length_message(kind: str, context: dict) -> str:
    """Format a list length bound, such as "needs at least 1 item" or "allows at most 3 items"."""
    if kind == "too_short":
        limit, text = context.get("min_length"), "needs at least"
    else:
        limit, text = context.get("max_length"), "allows at most"
    noun = "item" if limit == 1 else "items"
    return f"{text} {_bound_text(limit)} {noun}"


def _bound_text(bound: object) -> str:
    """Write a bound as the other messages do: 0 not 0.0, and 1,000,000 not 1000000.0."""
    if isinstance(bound, float) and bound.is_integer():
        bound = int(bound)
    if isinstance(bound, int) and abs(bound) >= 10_000:
        return f"{bound:,}"
    return str(bound)
