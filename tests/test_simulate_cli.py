"""``treaty simulate`` and ``treaty compare --simulate`` from the command line."""

from __future__ import annotations

import json

from engine.cli import main

SPEC = """schema: treaty/v1
name: {name}
environment:
  start: calm
  persistence: 0.6
  states: {{calm: 0.75, crisis: 0.25}}
parties:
  - name: A
    discount: 0.9
    defection_value: {{calm: 0.2, crisis: 1.2}}
    regime_value: [[0, 0.3], [1, 0.7]]
  - name: B
    discount: 0.85
    defection_value: {{calm: 0.2, crisis: 0.45}}
    regime_value: [[0, 0.7], [1, 0.3]]
model: {{grid: 11, horizon: 10 years}}
{provisions}
"""
ESCAPE = """provisions:
  - kind: escape_hatch
    trigger: {states: [crisis]}
    suspension: 2 years
    cost: 0.2
    cost_type: transfer
    max_uses: 2
"""


def write(tmp_path, name, provisions=""):
    path = tmp_path / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, provisions=provisions))
    return str(path)


def test_simulate_json_reproducible(tmp_path, capsys):
    path = write(tmp_path, "rigid")
    assert main(["simulate", path, "--paths", "300", "--seed", "8", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["simulate", path, "--paths", "300", "--seed", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert first["seed"] == 8
    assert len(first["survival"]) == 10
    assert set(first["events"]) == {"breakdown", "withdrawal", "lapse", "escape"}


def test_simulate_text_reports_seed(tmp_path, capsys):
    assert main(["simulate", write(tmp_path, "rigid"), "--paths", "100", "--years", "3"]) == 0
    out = capsys.readouterr().out
    assert "seed " in out
    assert "alive after N years" in out


def test_simulate_rejects_bad_paths(tmp_path, capsys):
    assert main(["simulate", write(tmp_path, "rigid"), "--paths", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: --paths")


def test_compare_uses_common_random_numbers(tmp_path, capsys):
    rigid = write(tmp_path, "rigid")
    flexible = write(tmp_path, "flexible", ESCAPE)
    assert main(["compare", rigid, rigid, flexible, "--simulate", "--paths", "400",
                 "--seed", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    designs = result["simulation"]["designs"]
    # The same design twice sees the same paths, so the paired difference is exactly zero.
    same = designs[1]["difference_from_first"]
    assert all(row["difference"] == 0 and row["standard_error"] == 0 for row in same)
    assert designs[0]["payoffs"] == designs[1]["payoffs"]
    assert designs[2]["seed"] == 5
