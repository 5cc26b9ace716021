"""Sweep results: the rows of a sweep and their CSV, JSON and text forms."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from engine.errors import count_text
from engine.number_text import axis_value_texts, evaluated_text, interval_text, terms_text
from engine.score import STRICTNESS_DECIMALS
from engine.sweep_axes import Axis

STATUSES = ("ok", "invalid", "failed", "unconverged", "not_run")
# The status of a grid point that a sweep stopped by Ctrl-C or by running out
# of memory did not finish. Every result column of such a row is empty.
NOT_RUN = "not_run"
# Strictness columns, written with STRICTNESS_DECIMALS decimals like the zone and
# terms of `treaty score --json`, whichever formula located them. The rows in
# memory keep every digit.
STRICTNESS_COLUMNS = ("zone_low", "zone_high", "terms")
# An unbounded expected lifetime (the treaty can last for ever) is stored as infinity and
# written as "inf" in CSV and JSON and as this word in the table. An empty cell
# (None) means "not available", e.g. without agreement or with a closed form.
UNBOUNDED_LABEL = "unbounded"
# Past 2**53 every double is a whole number, so there wholeness carries no
# information about the grid, and an integer would print every digit of the double.
MAX_EXACT_INTEGER = 2**53


@dataclass
class SweepResult:
    """The rows of one sweep of one treaty file, in grid order.

    For a 2-D sweep the x index varies fastest: row ``j * len(x) + i`` contains
    x value ``i`` and y value ``j``.
    """

    filename: str
    formula: str
    axes: list[Axis]
    parties: list[str]
    rows: list[dict] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return result_columns(self.axes, self.parties)

    def column(self, name: str) -> np.ndarray:
        """Return one column as a float array, NaN where it is empty."""
        values = [row.get(name) for row in self.rows]
        return np.array([np.nan if value is None else float(value) for value in values])

    def grid(self, name: str) -> np.ndarray:
        """Return one column reshaped to (len(y), len(x)) for a 2-D sweep."""
        return self.column(name).reshape(len(self.axes[1].values), len(self.axes[0].values))

    def statuses(self) -> np.ndarray:
        return np.array([row["status"] for row in self.rows])

    def agreement(self) -> np.ndarray:
        """Return a boolean array: True where the point is valid and agrees."""
        return np.array([row["status"] == "ok" and bool(row["agreement"]) for row in self.rows])

    def finished_count(self) -> int:
        """Return the number of scored points: the rows of any status but ``not_run``."""
        return sum(row["status"] != NOT_RUN for row in self.rows)


def not_run_row(axes: list[Axis], values: list[float], parties: list[str]) -> dict:
    """Return the row of a grid point that was not scored: its axis values and status ``not_run``."""
    row: dict[str, Any] = {axis.path: value for axis, value in zip(axes, values)}
    row.update({column: None for column in result_columns([], parties)})
    row.update(status=NOT_RUN, message="")
    return row


def result_columns(axes: list[Axis], parties: list[str]) -> list[str]:
    """Return the row keys in output order."""
    return [
        *(axis.path for axis in axes),
        "status",
        "agreement",
        "zone_low",
        "zone_high",
        "terms",
        *(f"margin_{name}" for name in parties),
        "expected_lifetime_years",
        "message",
        # Where the margins and the lifetime are evaluated: "proposal" (the file's
        # accepted proposal) or "terms", and that strictness. They come after the
        # older columns, so that readers that index columns by position keep working.
        "evaluated_at",
        "evaluated_strictness",
    ]


def _output_value(column: str, value: Any, integer_axes: set[str]) -> Any:
    if column in integer_axes and _is_exact_integer(value):
        return int(value)
    if column in STRICTNESS_COLUMNS and value is not None:
        return round(float(value), STRICTNESS_DECIMALS)
    return value


def integer_axis_paths(results: list[SweepResult]) -> set[str]:
    """Return the axis paths whose whole values CSV and JSON write as integers, such as 21 for 21.0.

    An axis qualifies when every one of its values is whole, or when it sets
    only fields that the file writes as whole numbers (``model.grid``), in
    every design. Other values keep every digit, so 0.5 stays 0.5 and 1.0
    on a decimal axis stays 1.0.
    """
    paths = set()
    for position, axis in enumerate(results[0].axes):
        same_axes = [result.axes[position] for result in results]
        all_whole = all(_is_exact_integer(value) for value in axis.values)
        integer_fields = all(
            bool(same.targets) and all(target.integer for target in same.targets)
            for same in same_axes
        )
        if all_whole or integer_fields:
            paths.add(axis.path)
    return paths


def _is_exact_integer(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return False
    number = float(value)
    return number.is_integer() and abs(number) <= MAX_EXACT_INTEGER


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _json_value(value: Any) -> Any:
    # JSON has no infinity, so an unbounded lifetime is written as the string "inf".
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else None
    return value


def write_csv(results: list[SweepResult], stream: TextIO) -> None:
    """Write one CSV row per grid point; a ``design`` column leads when comparing."""
    comparing = len(results) > 1
    # Designs can name different parties: every column of every design appears
    # once, in order of first appearance, and a design leaves the others empty.
    shared: list[str] = []
    for result in results:
        shared += [column for column in result.columns if column not in shared]
    margins = [column for column in shared if column.startswith("margin_")]
    first_margin = next(index for index, column in enumerate(results[0].columns)
                        if column.startswith("margin_") or column == "expected_lifetime_years")
    base = [column for column in results[0].columns if not column.startswith("margin_")]
    columns = base[:first_margin] + margins + base[first_margin:]
    integer_axes = integer_axis_paths(results)
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow((["design"] if comparing else []) + columns)
    for result in results:
        for row in result.rows:
            cells = [_csv_cell(_output_value(column, row.get(column), integer_axes)) for column in columns]
            writer.writerow(([result.filename] if comparing else []) + cells)


def json_rows(results: list[SweepResult]) -> list[dict]:
    """Return the rows as JSON-ready objects, with ``design`` when comparing."""
    comparing = len(results) > 1
    integer_axes = integer_axis_paths(results)
    rows = []
    for result in results:
        for row in result.rows:
            item = {"design": result.filename} if comparing else {}
            for column in result.columns:
                item[column] = _json_value(_output_value(column, row.get(column), integer_axes))
            # An empty message is an empty cell, which JSON writes as null like the others.
            if item.get("message") == "":
                item["message"] = None
            rows.append(item)
    return rows


def _lifetime_cell(value: Any) -> str:
    if isinstance(value, float) and math.isinf(value):
        return UNBOUNDED_LABEL
    return _short(value)


def _short(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _zone_cell(row: dict) -> str:
    if row["zone_low"] is None:
        return "-"
    return interval_text((row["zone_low"], row["zone_high"]))


def _terms_cell(row: dict) -> str:
    if row["terms"] is None:
        return "-"
    return terms_text(row["terms"], _row_zone(row))


def _evaluated_cell(row: dict) -> str:
    return evaluated_text(row.get("evaluated_at"), row.get("evaluated_strictness"), _row_zone(row))


def _row_zone(row: dict) -> tuple[float, float] | None:
    return None if row["zone_low"] is None else (row["zone_low"], row["zone_high"])


def _axis_texts(axis: Axis) -> dict[float, str]:
    """Map each value of ``axis`` to its printed form, distinct for distinct values."""
    values = [float(value) for value in axis.values]
    return dict(zip(values, axis_value_texts(values)))


def format_table(result: SweepResult) -> str:
    """Format a 1-D sweep as an aligned text table, then each distinct message once.

    A message is listed after the table with the x values of the rows that
    carry it, so that a long validation error is shown in full and a warning
    shared by every row is shown only once.
    """
    x_path = result.axes[0].path
    x_label = result.axes[0].label
    header = [
        x_label,
        "status",
        "agree",
        "zone",
        "terms",
        "evaluated at",
        *(f"margin {name}" for name in result.parties),
        "lifetime (y)",
    ]
    lines = [header]
    messages: dict[str, list[str]] = {}
    x_texts = _axis_texts(result.axes[0])
    for row in result.rows:
        x_text = x_texts[float(row[x_path])]
        lines.append(
            [
                x_text,
                row["status"],
                _short(row["agreement"]),
                _zone_cell(row),
                _terms_cell(row),
                _evaluated_cell(row),
                *(_short(row[f"margin_{name}"]) for name in result.parties),
                _lifetime_cell(row["expected_lifetime_years"]),
            ]
        )
        if row["message"]:
            messages.setdefault(row["message"], []).append(x_text)

    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = io.StringIO()
    for line in lines:
        text.write("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
        text.write("\n")
    for message, x_values in messages.items():
        text.write(f"at {x_label} = {', '.join(x_values)}: {message}\n")
    return text.getvalue()


def format_map(result: SweepResult) -> str:
    """Format a 2-D sweep as a character map, y rising upwards, plus counts."""
    x_axis, y_axis = result.axes
    symbols = {"invalid": "x", "failed": "!", "unconverged": "?", NOT_RUN: "-"}
    width = len(x_axis.values)
    text = io.StringIO()
    text.write(f"{result.filename}: {y_axis.label} (rows) against {x_axis.label} (columns)\n")

    y_texts = axis_value_texts(y_axis.values)
    x_texts = axis_value_texts(x_axis.values)
    label_width = max(len(label) for label in y_texts)
    for j in reversed(range(len(y_axis.values))):
        cells = []
        for i in range(width):
            row = result.rows[j * width + i]
            if row["status"] != "ok":
                cells.append(symbols[row["status"]])
            else:
                cells.append("#" if row["agreement"] else ".")
        text.write(f"{y_texts[j].rjust(label_width)} {''.join(cells)}\n")

    x_range = f"{x_texts[0]} .. {x_texts[-1]}"
    text.write(f"{' ' * label_width} {x_axis.label}: {x_range}\n")
    legend = "# agreement   . no agreement   x invalid   ! solver failed   ? unconverged"
    if any(row["status"] == NOT_RUN for row in result.rows):
        legend += "   - not run"
    text.write(legend + "\n")
    text.write(summary_line(result) + "\n")
    return text.getvalue()


def summary_line(result: SweepResult) -> str:
    statuses = result.statuses()
    agreed = int(result.agreement().sum())
    counts = ", ".join(
        f"{int((statuses == status).sum())} {status}"
        for status in STATUSES[1:]
        if (statuses == status).any()
    )
    line = f"{count_text(len(result.rows))}, {agreed} with agreement"
    return f"{line}, {counts}" if counts else line
