"""Sweep CSV and JSON: strictness columns rounded, every other column as computed.

``zone_low``, ``zone_high`` and ``terms`` are written with at most
``STRICTNESS_DECIMALS`` decimals, the zone rounded inwards and the terms kept in
it. Rounding moves each by less than one unit of the last decimal. Column and key names stay as they are.
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
    "evaluated_at", "evaluated_strictness",
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
        "evaluated_at": "terms", "evaluated_strictness": 0.4552,
    }
    failed = {
        "parties.A.discount": 0.9, "status": "ok", "agreement": False,
        "zone_low": None, "zone_high": None, "terms": None,
        "margin_A": None, "margin_B": None, "expected_lifetime_years": None, "message": "",
        "evaluated_at": None, "evaluated_strictness": None,
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
    """Run the real sweep and keep each point's unrounded zone and terms, in order."""
    located = []
    fill = engine.sweep._fill_score

    def fill_and_record(row, score, *args, **kwargs):
        located.append({"zone_low": score.zone[0], "zone_high": score.zone[1], "terms": score.terms})
        fill(row, score, *args, **kwargs)

    monkeypatch.setattr(engine.sweep, "_fill_score", fill_and_record)
    return located


def test_sweep_command_rounds_located_values(recorded_sweeps, tmp_path, capsys):
    path = tmp_path / "two-party.yaml"
    path.write_text(TWO_PARTIES)
    csv_path = tmp_path / "rows.csv"

    code = main(["sweep", str(path), "--x", "parties.A.discount=0.5:0.9:3", "--json",
                 "--out", str(csv_path), "--quiet"])

    assert code == 0
    json_items = json.loads(capsys.readouterr().out, parse_float=Decimal)
    csv_items = list(csv.DictReader(csv_path.open()))
    assert len(recorded_sweeps) == len(json_items) == len(csv_items) == 3
    # The engine refines the lower end of the zone between grid points, which
    # leaves a float tail past the 8th decimal.
    assert any(decimals(Decimal(repr(point["zone_low"]))) > STRICTNESS_DECIMALS
               for point in recorded_sweeps)
    for point, json_item, csv_item in zip(recorded_sweeps, json_items, csv_items):
        assert list(json_item) == COLUMNS
        assert list(csv_item) == COLUMNS
        low, high = Decimal(point["zone_low"]), Decimal(point["zone_high"])
        for written in (json_item, {key: Decimal(value) for key, value in csv_item.items()
                                    if key in STRICTNESS_COLUMNS}):
            for column in STRICTNESS_COLUMNS:
                assert decimals(written[column]) <= STRICTNESS_DECIMALS, f"{column}: {written[column]}"
                # Rounding moves a value by less than one unit of the last decimal.
                assert abs(written[column] - Decimal(point[column])) < 2 * HALF_UNIT
            # Inward rounding keeps the written zone and terms inside the located zone.
            assert low <= written["zone_low"] <= written["terms"] <= written["zone_high"] <= high
        # Margins keep every digit, the same in both outputs.
        assert Decimal(csv_item["margin_A"]) == json_item["margin_A"]
        assert Decimal(csv_item["margin_B"]) == json_item["margin_B"]
    assert any(decimals(item["margin_A"]) > STRICTNESS_DECIMALS for item in json_items)
