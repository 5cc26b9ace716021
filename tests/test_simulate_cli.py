"""``treaty simulate`` and ``treaty compare --simulate`` from the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

from engine import heartbeat
from engine.build import build_game
from engine.cli import main
from engine.loader import load_treaty
from engine.simulate import MAX_PATH_PERIODS, simulated_periods, simulation_size_problem
from helpers import ESCAPE, SIMULATION_SPEC, write_treaty

ROOT = Path(__file__).resolve().parent.parent

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


PROGRESS_LINE = re.compile(r"^simulate: [\d,]+ of ([\d,]+) paths \(\d+%\), \d+ s$")


def progress_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("simulate: ")]


def test_simulate_progress_on_stderr(tmp_path, capsys, monkeypatch):
    path = write_treaty(tmp_path, "rigid")
    assert main(["simulate", path, "--paths", "300", "--seed", "8", "--json"]) == 0
    quiet = capsys.readouterr()

    # A first note after a millisecond stands for a run longer than ten seconds.
    monkeypatch.setattr(heartbeat, "FIRST_NOTE_SECONDS", 0.001)
    assert main(["simulate", path, "--paths", "300", "--seed", "8", "--json"]) == 0
    noted = capsys.readouterr()

    lines = progress_lines(noted.err)
    assert lines, noted.err
    assert all(PROGRESS_LINE.match(line) for line in lines), lines
    assert lines[-1].startswith("simulate: 300 of 300 paths (100%), ")
    # The notes go to stderr only, and the JSON on stdout stays the same.
    assert json.loads(noted.out) == json.loads(quiet.out)


def test_simulate_quiet_when_short(tmp_path, capsys):
    path = write_treaty(tmp_path, "rigid")
    assert main(["simulate", path, "--paths", "300", "--seed", "8"]) == 0
    assert capsys.readouterr().err == ""


def test_compare_simulate_progress_counts_all_designs(tmp_path, capsys, monkeypatch):
    rigid = write_treaty(tmp_path, "rigid")
    flexible = write_treaty(tmp_path, "flexible", ESCAPE)
    monkeypatch.setattr(heartbeat, "FIRST_NOTE_SECONDS", 0.001)
    assert main(["compare", rigid, flexible, "--simulate", "--paths", "400", "--seed", "5",
                 "--json"]) == 0
    result = capsys.readouterr()

    lines = progress_lines(result.err)
    assert lines, result.err
    assert all(PROGRESS_LINE.match(line).group(1) == "800" for line in lines), lines
    assert lines[-1].startswith("simulate: 800 of 800 paths (100%), ")
    assert json.loads(result.out)["simulation"]["seed"] == 5


def test_simulate_rejects_too_many_path_periods(tmp_path, capsys):
    # 100,000,000 paths of 10,000 yearly periods would run for weeks. The
    # command rejects them before solving and names the largest --paths.
    path = write_treaty(tmp_path, "rigid")
    assert main(["simulate", path, "--paths", "100000000", "--years", "10000"]) == 2
    err = capsys.readouterr().err

    assert err.startswith(f"error: {path}: the simulation is too large: 100,000,000 paths x "
                          "10,001 periods is 1,000,100,000,000 path-periods, and the maximum is "
                          "100,000,000,000; ")
    assert err.rstrip().endswith("lower --paths to at most 9,999,000, or lower --years")


def test_compare_rejects_too_many_path_periods(tmp_path, capsys):
    rigid = write_treaty(tmp_path, "rigid")
    assert main(["compare", rigid, rigid, "--simulate", "--paths", "100000000",
                 "--years", "10000"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {rigid}: the simulation is too large: ")
    assert captured.out == ""


def test_size_limit_from_discounting(tmp_path, capsys):
    # At a discount factor of 0.9999 the paths run 20,000 periods whatever
    # the years, so the message suggests only fewer paths.
    path = tmp_path / "patient.yaml"
    path.write_text(SIMULATION_SPEC.format(name="patient", provisions="").replace(
        "discount: 0.9\n", "discount: 0.9999\n"))
    assert main(["simulate", str(path), "--paths", "10000000", "--years", "5"]) == 2
    err = capsys.readouterr().err

    assert "10,000,000 paths x 20,000 periods is 200,000,000,000 path-periods" in err
    assert "(at most 20,000 periods), not only for the years of the report" in err
    assert err.rstrip().endswith("lower --paths to at most 5,000,000")


def test_documented_workload_within_limit():
    # 100,000 paths x 50 years of the quarterly three-party treaty of the benchmarks.
    game = build_game(load_treaty(ROOT / "treaties" / "cyber-flexible.yaml"))
    assert simulation_size_problem(game, 100_000, 50) is None
    assert simulated_periods(game, 50) * 100_000 <= MAX_PATH_PERIODS // 100
