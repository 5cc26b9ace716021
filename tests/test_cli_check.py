"""The `treaty` command line: check, help, version, and the score/compare plumbing."""

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from engine.cli import main
from engine.errors import SolverError

DATA = Path(__file__).parent / "data"
MINIMAL = DATA / "minimal.yaml"


def test_check_valid_files(capsys):
    code = main(["check", str(MINIMAL), str(DATA / "full.yaml")])
    captured = capsys.readouterr()

    assert code == 0
    assert captured.out == f"{MINIMAL}: ok\n{DATA / 'full.yaml'}: ok\n"
    assert captured.err == ""


def test_check_reports_every_invalid_file(tmp_path, capsys):
    first = tmp_path / "first.yaml"
    second = tmp_path / "second.yaml"
    first.write_text(MINIMAL.read_text().replace("discount: 0.9", "discount: 1", 1))
    second.write_text("")

    code = main(["check", str(first), str(MINIMAL), str(second)])
    captured = capsys.readouterr()

    assert code == 2
    assert captured.out == f"{MINIMAL}: ok\n"
    assert captured.err.splitlines()[0].startswith(f"{first}:5:15: error: parties[0].discount:")
    assert captured.err.splitlines()[1].startswith(f"{second}:1:1: error: file is empty")


def test_check_needs_a_file(capsys):
    assert main(["check"]) == 2
    assert "usage:" in capsys.readouterr().err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("treaty ")


@pytest.mark.parametrize(
    ("argv", "phrases"),
    [
        ([], ["check", "schema", "score", "compare", "--version"]),
        (["check"], ["FILE", "treaty YAML file to validate"]),
        (["schema"], ["--output", "write the schema to PATH"]),
        (["score"], ["--json", "print the result as one JSON object"]),
        (["compare"], ["--json", "print the results as a JSON list"]),
    ],
)
def test_help_describes_options(capsys, argv, phrases):
    assert main([*argv, "--help"]) == 0

    out = capsys.readouterr().out
    for phrase in phrases:
        assert phrase in out


def test_console_script_entry_point(tmp_path):
    # A separate interpreter process gives the exit code and streams of a shell run.
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: treaty/v9\n")

    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "check", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"{bad}:1:9: error: schema: unknown schema version; this build reads treaty/v1 (got \"treaty/v9\"; allowed: treaty/v1)\n"


class FakeScore:
    """Stands in for the solver's result in the CLI plumbing tests."""

    def __init__(self, name: str):
        self.name = name
        # No strictness is evaluated, so the CLI's check for fragile terms has nothing to do.
        self.evaluated_strictness = None
        self.warnings = []

    def to_dict(self) -> dict:
        return {"treaty": self.name, "schema": "treaty/v1"}


@pytest.fixture
def fake_solver(monkeypatch):
    """Replace engine.score and engine.report with recorders; return the call log."""
    calls = []

    def score_game(game):
        calls.append(game)
        if game.name == "fails":
            raise SolverError("value iteration did not converge within 20000 iterations (tolerance 1e-09)")
        if game.name == "crashes":
            raise RuntimeError("bug in the solver")
        return FakeScore(game.name)

    score_module = types.ModuleType("engine.score")
    score_module.score_game = score_game
    report_module = types.ModuleType("engine.report")
    report_module.format_score = lambda score: f"report for {score.name}"
    report_module.format_comparison = lambda scores, files: " | ".join(score.name for score in scores)
    monkeypatch.setitem(sys.modules, "engine.score", score_module)
    monkeypatch.setitem(sys.modules, "engine.report", report_module)
    return calls


def named(tmp_path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(MINIMAL.read_text().replace("name: Two parties, one state", f"name: {name}"))
    return path


def test_score_json(fake_solver, tmp_path, capsys):
    path = named(tmp_path, "alpha")

    assert main(["score", str(path), "--json"]) == 0

    assert json.loads(capsys.readouterr().out) == {"treaty": "alpha", "schema": "treaty/v1", "fragile": []}
    assert fake_solver[0].n_parties == 2


def test_score_text(fake_solver, tmp_path, capsys):
    assert main(["score", str(named(tmp_path, "alpha"))]) == 0
    assert capsys.readouterr().out == "report for alpha\n"


def test_score_invalid_file(fake_solver, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(MINIMAL.read_text().replace("discount: 0.9", "discount: 1", 1))

    assert main(["score", str(path), "--json"]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{path}:5:15: error:")
    assert fake_solver == []


def test_score_solver_failure(fake_solver, tmp_path, capsys):
    path = named(tmp_path, "fails")

    assert main(["score", str(path)]) == 3

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: {path}: value iteration did not converge within 20000 iterations (tolerance 1e-09)\n"


def test_unexpected_error_propagates(fake_solver, tmp_path):
    with pytest.raises(RuntimeError, match="bug in the solver"):
        main(["score", str(named(tmp_path, "crashes"))])


def test_compare_json_keeps_order(fake_solver, tmp_path, capsys):
    paths = [named(tmp_path, name) for name in ("beta", "alpha", "gamma")]

    assert main(["compare", *map(str, paths), "--json"]) == 0

    assert [item["treaty"] for item in json.loads(capsys.readouterr().out)] == ["beta", "alpha", "gamma"]


def test_compare_text(fake_solver, tmp_path, capsys):
    paths = [named(tmp_path, name) for name in ("beta", "alpha")]

    assert main(["compare", *map(str, paths)]) == 0
    assert capsys.readouterr().out == "beta | alpha\n"


def test_compare_validates_all_before_solving(fake_solver, tmp_path, capsys):
    good = named(tmp_path, "alpha")
    bad_one = tmp_path / "bad1.yaml"
    bad_two = tmp_path / "bad2.yaml"
    bad_one.write_text("schema: treaty/v1\n")
    bad_two.write_text("[]\n")

    assert main(["compare", str(good), str(bad_one), str(bad_two)]) == 2

    err = capsys.readouterr().err
    assert f"{bad_one}:1:1: error: name: missing required field" in err
    assert f"{bad_two}:1:1: error: the top level must be a mapping" in err
    assert fake_solver == []


def test_compare_solver_failure(fake_solver, tmp_path, capsys):
    paths = [named(tmp_path, "alpha"), named(tmp_path, "fails")]

    assert main(["compare", *map(str, paths), "--json"]) == 3

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: {paths[1]}: value iteration did not converge")


INF = str(Path(__file__).resolve().parents[1] / "treaties" / "inf.yaml")


def test_compare_needs_two_files(capsys):
    code = main(["compare", INF])

    assert code == 2
    assert "compare needs at least two treaty files" in capsys.readouterr().err


@pytest.mark.parametrize("options, named", [
    (["--draws", "10"], "--draws applies only with --vary"),
    (["--seed", "3", "--workers", "2"], "--seed, --workers apply only with --vary"),
])
def test_vary_options_need_vary(capsys, options, named):
    code = main(["score", INF, *options])

    assert code == 2
    assert named in capsys.readouterr().err
