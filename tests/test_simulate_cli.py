"""``treaty simulate`` and ``treaty compare --simulate`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from engine.cli import main
from helpers import ESCAPE, write_treaty

def test_simulate_json_reproducible(tmp_path, capsys):
    path = write_treaty(tmp_path, "rigid")
    assert main(["simulate", path, "--paths", "300", "--seed", "8", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["simulate", path, "--paths", "300", "--seed", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert first["seed"] == 8
    assert len(first["survival"]) == 10
    assert set(first["events"]) == {"breakdown", "withdrawal", "lapse", "escape"}


def test_simulate_text_reports_seed(tmp_path, capsys):
    assert main(["simulate", write_treaty(tmp_path, "rigid"), "--paths", "100", "--years", "3"]) == 0
    out = capsys.readouterr().out
    assert "seed " in out
    assert "alive after N years" in out
    assert "ends and escapes within 3 years " in out


def test_simulate_text_one_year_is_singular(tmp_path, capsys):
    assert main(["simulate", write_treaty(tmp_path, "rigid"), "--paths", "100", "--years", "1"]) == 0
    assert "ends and escapes within 1 year (share" in capsys.readouterr().out


def test_simulate_rejects_bad_paths(tmp_path, capsys):
    assert main(["simulate", write_treaty(tmp_path, "rigid"), "--paths", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: --paths")


def test_compare_uses_common_random_numbers(tmp_path, capsys):
    rigid = write_treaty(tmp_path, "rigid")
    flexible = write_treaty(tmp_path, "flexible", ESCAPE)
    assert main(["compare", rigid, rigid, flexible, "--simulate", "--paths", "400",
                 "--seed", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    designs = result["simulation"]["designs"]
    # The same design twice sees the same paths, so the paired difference is exactly zero.
    same = designs[1]["payoff_difference_from_first"]["parties"]
    assert [row["name"] for row in same] == ["A", "B"]
    assert all(row["difference"] == 0 and row["standard_error"] == 0 for row in same)
    assert designs[0]["payoffs"] == designs[1]["payoffs"]
    assert designs[2]["seed"] == 5


def test_simulate_json_without_agreement_is_json(capsys):
    # The rigid cyber draft predicts no agreement; --json must still print JSON.
    rigid = Path(__file__).resolve().parent.parent / "treaties" / "cyber-rigid.yaml"
    assert main(["simulate", str(rigid), "--seed", "1", "--json"]) == 0

    item = json.loads(capsys.readouterr().out)
    assert item == {"treaty": "Cyber conduct agreement, rigid draft", "agreement": False,
                    "simulation": None}


def test_simulate_rejects_runs_too_large_for_memory(tmp_path, capsys):
    # A trillion paths or ten million years would exhaust memory before any output.
    path = write_treaty(tmp_path, "rigid")
    assert main(["simulate", str(path), "--paths", "1000000000000"]) == 2
    assert "--paths must be at most 100,000,000" in capsys.readouterr().err
    assert main(["simulate", str(path), "--years", "10000000", "--paths", "2"]) == 2
    assert "--years must be at most 10,000" in capsys.readouterr().err
