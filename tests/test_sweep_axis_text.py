"""Axis values in the sweep table and map: distinct values print distinctly, whole numbers in full.

Each value gets 4 significant digits, and more where two neighbours would
print alike. CSV and JSON write every digit of each value, and whole values
of a whole-number axis as integers.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from engine.sweep_axes import Axis, Target
from engine.sweep_results import SweepResult, format_map, format_table, json_rows, write_csv


def sweep_result(path: str, values: np.ndarray, y_values: np.ndarray | None = None,
                 integer: bool = False) -> SweepResult:
    """Build a sweep whose points all failed validation with the same message.

    With ``integer``, the x axis sets a field that the file writes as a whole number.
    """
    targets = (Target(keys=tuple(path.split(".")), integer=integer),)
    axes = [Axis(path=path, values=values, targets=targets)]
    y_path = "environment.persistence"
    if y_values is not None:
        axes.append(Axis(path=y_path, values=y_values))
    points = [(x, None) for x in values] if y_values is None else [(x, y) for y in y_values for x in values]
    rows = []
    for x, y in points:
        row = {
            path: float(x), "status": "invalid", "agreement": None, "zone_low": None,
            "zone_high": None, "terms": None, "margin_A": None, "expected_lifetime_years": None,
            "message": "some problem", "evaluated_at": None, "evaluated_strictness": None,
        }
        if y is not None:
            row[y_path] = float(y)
        rows.append(row)
    return SweepResult(filename="t.yaml", formula="engine", axes=axes, parties=["A"], rows=rows)


def first_cells(result: SweepResult) -> list[str]:
    lines = format_table(result).splitlines()
    return [line.split()[0] for line in lines[1:1 + len(result.rows)]]


def test_whole_numbers_print_in_full():
    result = sweep_result("model.grid", np.linspace(50001, 100001, 2))

    assert first_cells(result) == ["50001", "100001"]


def test_close_values_print_distinctly():
    result = sweep_result("environment.persistence", np.linspace(0.123451, 0.123459, 3))

    assert first_cells(result) == ["0.123451", "0.123455", "0.123459"]


def test_short_values_keep_four_digits():
    result = sweep_result("environment.persistence", np.linspace(0.1, 0.95, 8))

    assert first_cells(result) == ["0.1", "0.2214", "0.3429", "0.4643", "0.5857", "0.7071", "0.8286", "0.95"]


def test_message_names_distinct_values():
    result = sweep_result("environment.persistence", np.linspace(0.123451, 0.123459, 3))

    last_line = format_table(result).splitlines()[-1]

    assert last_line == "at environment.persistence = 0.123451, 0.123455, 0.123459: some problem"


def test_map_labels_distinct():
    result = sweep_result("model.grid", np.linspace(50001, 100001, 2),
                          y_values=np.linspace(0.123451, 0.123459, 3))

    lines = format_map(result).splitlines()

    assert [line.split()[0] for line in lines[1:4]] == ["0.123459", "0.123455", "0.123451"]
    assert lines[4].strip() == "model.grid: 50001 .. 100001"


@pytest.mark.parametrize("values", [np.linspace(50001, 100001, 2), np.linspace(0.123451, 0.123459, 3)])
def test_csv_axis_values_exact(values):
    result = sweep_result("environment.persistence", values)
    stream = io.StringIO()

    write_csv([result], stream)

    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert [float(row["environment.persistence"]) for row in rows] == [float(value) for value in values]


def csv_cells(result: SweepResult, column: str) -> list[str]:
    stream = io.StringIO()
    write_csv([result], stream)
    return [row[column] for row in csv.DictReader(io.StringIO(stream.getvalue()))]


def json_texts(result: SweepResult, column: str) -> list[str]:
    return [json.dumps(row[column]) for row in json_rows([result])]


# (case, values, the field is a whole-number field, expected CSV and JSON texts)
AXIS_CASES = [
    ("whole values", np.linspace(50000, 50002, 3), False, ["50000", "50001", "50002"]),
    ("whole-number field", np.linspace(21, 41, 3), True, ["21", "31", "41"]),
    ("whole-number field, a fraction", np.linspace(21, 40, 3), True, ["21", "30.5", "40"]),
    ("decimal field", np.linspace(0, 1, 3), False, ["0.0", "0.5", "1.0"]),
    # Every double past 2**53 is whole, so these keep the float form.
    ("past 2**53", np.linspace(1e20, 2e20, 2), False, ["1e+20", "2e+20"]),
]


def test_axis_values_whole_as_integers():
    path = "parties.A.defection_value.later"
    for case, values, integer, expected in AXIS_CASES:
        result = sweep_result(path, values, integer=integer)

        assert csv_cells(result, path) == expected, case
        assert json_texts(result, path) == expected, case


def test_y_axis_values_whole_as_integers():
    # sweep_result names the y axis environment.persistence.
    result = sweep_result("parties.A.discount", np.linspace(0.25, 0.75, 3), y_values=np.linspace(1, 3, 3))

    assert csv_cells(result, "parties.A.discount")[:3] == ["0.25", "0.5", "0.75"]
    assert csv_cells(result, "environment.persistence")[::3] == ["1", "2", "3"]
    assert json_texts(result, "environment.persistence")[::3] == ["1", "2", "3"]
