"""Sweep CSV and JSON: strictness columns rounded, every other column as computed.

``zone_low``, ``zone_high`` and ``terms`` are written with at most
``STRICTNESS_DECIMALS`` decimals. Rounding moves each by at most half a unit of the
last decimal. Column and key names stay as they are.
"""

import csv
import io
import json
import math
from decimal import Decimal

import numpy as np
import pytest

import engine.sweep
from engine.cli import main
from engine.score import STRICTNESS_DECIMALS
from engine.sweep_axes import Axis
from engine.sweep_results import SweepResult, json_rows, write_csv

HALF_UNIT = Decimal(5) * Decimal(10) ** -(STRICTNESS_DECIMALS + 1)
STRICTNESS_COLUMNS = ["zone_low", "zone_high", "terms"]
COLUMNS = [
    "parties.A.discount", "status", "agreement", "zone_low", "zone_high", "terms",
    "margin_A", "margin_B", "expected_lifetime_years", "message",
]

TWO_PARTIES = """\
schema: treaty/v1
name: Two-party sketch
environment:
  start: today
  persistence: 0.5
  states: {today: 0.5, later: 0.5}
parties:
  - name: A
    discount: 0.9
    defection_value: {today: 0.3, later: 0.1}
    regime_value: [[0, 0], [1, 1]]
  - name: B
    discount: 0.9
    defection_value: {today: 0.3, later: 0.1}
    regime_value: [[0, 1], [1, 0]]
"""


def decimals(number: Decimal) -> int:
    return max(0, -number.as_tuple().exponent)


def written_rows() -> SweepResult:
    """Two rows with long float tails: one with agreement, one without."""
    axis = Axis(path="parties.A.discount", values=np.array([0.5, 0.9]))
    agreed = {
        "parties.A.discount": 0.5, "status": "ok", "agreement": True,
        "zone_low": 0.2166666698455810, "zone_high": 0.7833333301544189, "terms": 0.45520000000000005,
        "margin_A": 0.30000000635782886, "margin_B": 3.6515151197260107,
        "expected_lifetime_years": math.inf, "message": "",
    }
    failed = {
        "parties.A.discount": 0.9, "status": "ok", "agreement": False,
        "zone_low": None, "zone_high": None, "terms": None,
        "margin_A": None, "margin_B": None, "expected_lifetime_years": None, "message": "",
    }
    return SweepResult(filename="two.yaml", formula="engine", axes=[axis], parties=["A", "B"],
                       rows=[agreed, failed])


def test_csv_rounds_strictness_only():
    result = written_rows()
    stream = io.StringIO()

    write_csv([result], stream)

    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert list(rows[0]) == COLUMNS
    assert rows[0]["zone_low"] == "0.21666667"
    assert rows[0]["zone_high"] == "0.78333333"
    assert rows[0]["terms"] == "0.4552"
    assert rows[0]["margin_A"] == "0.30000000635782886"
    assert rows[0]["margin_B"] == "3.6515151197260107"
    assert rows[0]["expected_lifetime_years"] == "inf"
    for column in STRICTNESS_COLUMNS:
        assert rows[1][column] == ""


def test_json_rounds_strictness_only():
    result = written_rows()

    rows = json_rows([result])

    assert list(rows[0]) == COLUMNS
    assert rows[0]["zone_low"] == 0.21666667
    assert rows[0]["zone_high"] == 0.78333333
    assert rows[0]["terms"] == 0.4552
    assert rows[0]["margin_A"] == 0.30000000635782886
    assert rows[0]["expected_lifetime_years"] == "inf"
    for column in STRICTNESS_COLUMNS:
        assert rows[1][column] is None


def test_outputs_leave_rows_unrounded():
    result = written_rows()

    write_csv([result], io.StringIO())
    json_rows([result])

    assert result.rows[0]["zone_low"] == 0.2166666698455810
    assert result.rows[0]["terms"] == 0.45520000000000005


def test_compare_keeps_design_column():
    first, second = written_rows(), written_rows()
    second.filename = "other.yaml"
    stream = io.StringIO()

    write_csv([first, second], stream)
    rows = json_rows([first, second])

    header = stream.getvalue().splitlines()[0].split(",")
    assert header == ["design", *COLUMNS]
    assert list(rows[2]) == ["design", *COLUMNS]
    assert rows[2]["design"] == "other.yaml"
    assert rows[2]["zone_low"] == 0.21666667


@pytest.fixture
def recorded_sweeps(monkeypatch):
    """Run the real sweep and keep every ``SweepResult`` it returns, unrounded."""
    results = []
    sweep = engine.sweep.run_sweep

    def sweep_and_record(*args, **kwargs):
        result = sweep(*args, **kwargs)
        results.append(result)
        return result

    monkeypatch.setattr(engine.sweep, "run_sweep", sweep_and_record)
    return results


def test_sweep_command_rounds_located_values(recorded_sweeps, tmp_path, capsys):
    path = tmp_path / "two-party.yaml"
    path.write_text(TWO_PARTIES)
    csv_path = tmp_path / "rows.csv"

    code = main(["sweep", str(path), "--x", "parties.A.discount=0.5:0.9:3", "--json",
                 "--out", str(csv_path), "--quiet"])

    assert code == 0
    json_items = json.loads(capsys.readouterr().out, parse_float=Decimal)
    csv_items = list(csv.DictReader(csv_path.open()))
    (result,) = recorded_sweeps
    assert all(row["agreement"] for row in result.rows)
    # The engine refines the lower end of the zone between grid points, which
    # leaves a float tail past the 8th decimal.
    assert any(decimals(Decimal(repr(row["zone_low"]))) > STRICTNESS_DECIMALS for row in result.rows)
    for row, json_item, csv_item in zip(result.rows, json_items, csv_items):
        assert list(json_item) == COLUMNS
        assert list(csv_item) == COLUMNS
        for column in STRICTNESS_COLUMNS:
            exact = Decimal(row[column])
            for written in (json_item[column], Decimal(csv_item[column])):
                assert decimals(written) <= STRICTNESS_DECIMALS, f"{column}: {written}"
                assert abs(written - exact) <= HALF_UNIT, f"{column}: {written} vs {row[column]!r}"
        assert csv_item["margin_A"] == repr(row["margin_A"])
        assert json_item["margin_B"] == Decimal(repr(row["margin_B"]))
