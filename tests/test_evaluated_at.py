"""Where values, margins and lifetime are evaluated: named in score, compare and sweep output.

The engine evaluates an accepted proposal, else the bargaining terms. Two
files that differ only in a proposal have the same zone and terms but
different margins, so each output names the strictness it evaluates.
"""

from __future__ import annotations

import csv
import json
import re

import pytest

from engine.build import build_game
from engine.cli import main
from engine.loader import parse_treaty_text
from engine.report import format_comparison, format_score
from engine.score import score_game

# Symmetric parties: the zone is about [0.2482, 0.7518] and the terms are 0.5.
TWO_PARTIES = """
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
ACCEPTED = TWO_PARTIES + "terms: {strictness: 0.6}\n"
REJECTED = TWO_PARTIES + "terms: {strictness: 0.9}\n"


def score_text(text: str):
    return score_game(build_game(parse_treaty_text(text)))


@pytest.fixture(scope="module")
def scores():
    return {"terms": score_text(TWO_PARTIES), "accepted": score_text(ACCEPTED),
            "rejected": score_text(REJECTED)}


def summary_lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n\n")[0].splitlines()]


def test_score_accepted_proposal_named(scores):
    assert scores["accepted"].proposal["accepted"]

    lines = summary_lines(format_score(scores["accepted"]))

    assert "evaluated at: proposal 0.6000" in lines


def test_score_rejected_proposal_names_terms(scores):
    assert not scores["rejected"].proposal["accepted"]

    lines = summary_lines(format_score(scores["rejected"]))

    assert "evaluated at: terms 0.5000" in lines


def test_compare_row_names_strictness(scores):
    # The same zone and terms, but margins evaluated at different strictness.
    first, second = scores["accepted"], scores["terms"]
    assert first.terms == pytest.approx(second.terms)
    assert first.parties[0].margin != pytest.approx(second.parties[0].margin, abs=1e-3)

    lines = format_comparison([first, second], ["accepted.yaml", "terms.yaml"]).splitlines()
    row = next(line for line in lines if line.startswith("evaluated at"))

    assert re.split(r"\s{2,}", row) == ["evaluated at", "proposal 0.6000", "terms 0.5000"]


@pytest.fixture(scope="module")
def proposal_sweep(tmp_path_factory):
    """Sweep the file with the accepted proposal, writing CSV, JSON and the table."""
    folder = tmp_path_factory.mktemp("sweep")
    path = folder / "accepted.yaml"
    path.write_text(ACCEPTED)
    csv_path = folder / "rows.csv"
    axis = ["--x", "parties.A.discount=0.85:0.9:2", "--quiet"]
    return {"path": path, "csv_path": csv_path, "axis": axis}


def test_sweep_csv_evaluated_columns(proposal_sweep, capsys):
    code = main(["sweep", str(proposal_sweep["path"]), *proposal_sweep["axis"],
                 "--out", str(proposal_sweep["csv_path"])])
    table = capsys.readouterr().out

    assert code == 0
    rows = list(csv.DictReader(proposal_sweep["csv_path"].open()))
    assert list(rows[0])[-3:] == ["message", "evaluated_at", "evaluated_strictness"]
    for row in rows:
        assert row["evaluated_at"] == "proposal"
        assert row["evaluated_strictness"] == "0.6"
    header, *body = table.splitlines()[1:4]
    assert "evaluated at" in header
    for line in body:
        assert "proposal 0.6000" in line


def test_sweep_json_evaluated_keys(proposal_sweep, capsys):
    code = main(["sweep", str(proposal_sweep["path"]), *proposal_sweep["axis"], "--json"])

    assert code == 0
    for row in json.loads(capsys.readouterr().out):
        assert row["evaluated_at"] == "proposal"
        assert row["evaluated_strictness"] == 0.6


def test_sweep_without_proposal_names_terms(tmp_path, capsys):
    path = tmp_path / "terms.yaml"
    path.write_text(TWO_PARTIES)

    code = main(["sweep", str(path), "--x", "parties.A.discount=0.85:0.9:2", "--json", "--quiet"])

    assert code == 0
    for row in json.loads(capsys.readouterr().out):
        assert row["evaluated_at"] == "terms"
        assert row["evaluated_strictness"] == row["terms"]


def test_closed_form_evaluates_terms(tmp_path, capsys):
    path = tmp_path / "accepted.yaml"
    path.write_text(ACCEPTED)

    code = main(["sweep", str(path), "--x", "parties.A.discount=0.85:0.9:2", "--json", "--quiet",
                 "--formula", "printed"])

    assert code == 0
    for row in json.loads(capsys.readouterr().out):
        assert row["evaluated_at"] == "terms"
        assert row["evaluated_strictness"] == row["terms"]


def test_sweep_without_agreement_leaves_cells_empty(tmp_path, capsys):
    # With both discount factors at 0.1 neither party values the future enough to comply.
    path = tmp_path / "impatient.yaml"
    path.write_text(ACCEPTED.replace("discount: 0.9", "discount: 0.1"))

    code = main(["sweep", str(path), "--x", "parties.A.discount=0.05:0.1:2", "--json", "--quiet"])

    assert code == 0
    for row in json.loads(capsys.readouterr().out):
        assert row["agreement"] is False
        assert row["evaluated_at"] is None
        assert row["evaluated_strictness"] is None
