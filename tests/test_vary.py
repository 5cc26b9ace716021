"""``treaty score --vary``: draws, agreement probability, sensitivity, invalid draws."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from engine import calibration, heartbeat
from engine.calibration import VaryError, draw_values, parse_distribution, parse_varied, run_vary
from engine.cli import main
from helpers import TWO_PARTY_TREATY

# One state, both parties with defection value b = 0.3 and regime values
# z_A = 0.2 + 0.6 g, z_B = 0.8 - 0.6 g.  Grim trigger needs z >= b (2 - delta)
# for each party.  The larger of min(z_A, z_B) is 0.5, at g = 0.5, so some
# strictness is self-enforcing iff 0.5 >= 0.3 (2 - delta), i.e. delta >= 1/3.
# Participation (z >= b) is weaker.  So agreement holds exactly when the drawn
# common discount is at least 1/3.
NAME = "Two parties, one state"
SPEC = TWO_PARTY_TREATY.replace("name: Test treaty", f"name: {NAME}") + "model: {grid: 21}\n"
THRESHOLD = 1 / 3


@pytest.fixture()
def treaty_file(tmp_path):
    path = tmp_path / "one-state.yaml"
    path.write_text(SPEC)
    return str(path)


def test_agreement_matches_closed_form(treaty_file):
    result = run_vary(treaty_file, ["parties.*.discount=uniform(0.1, 0.6)"], draws=40, seed=4)
    drawn = result.values[:, 0]
    agreed = np.array([outcome["agreement"] for outcome in result.outcomes])
    clear = np.abs(drawn - THRESHOLD) > 1e-6
    assert np.array_equal(agreed[clear], drawn[clear] >= THRESHOLD)

    report = result.to_dict()
    assert report["valid_draws"] == 40
    assert report["p_agreement"] == pytest.approx(agreed.mean())
    # The draws are uniform on [0.1, 0.6], so P(delta >= 1/3) = (0.6 - 1/3) / 0.5 = 8/15.
    assert abs(report["p_agreement"] - 8 / 15) <= 4 * report["p_agreement_standard_error"]


def test_sensitivity_sign(treaty_file):
    fields = ["parties.*.discount=uniform(0.1, 0.6)", "parties.A.breach_cost=uniform(0, 0.001)"]
    report = run_vary(treaty_file, fields, draws=30, seed=2).to_dict()

    # With these draws the lowest third of the discounts lies below 1/3 and the
    # highest third above it, so the closed form gives agreement rates of 0 and
    # 1 there: a difference of exactly 1 with no sampling error.
    data = {"parties": [{"name": "A", "discount": 0.9, "breach_cost": 0.0},
                        {"name": "B", "discount": 0.9, "breach_cost": 0.0}]}
    discounts = np.sort(draw_values(parse_varied(data, fields), 30, 2)[:, 0])
    assert discounts[9] < THRESHOLD < discounts[20]

    first = report["sensitivity"][0]
    assert first["path"] == "parties.*.discount"
    assert first["difference"] == 1.0
    assert first["standard_error"] == 0.0


def test_invalid_draws_are_counted(treaty_file):
    report = run_vary(treaty_file, ["parties.A.discount=normal(0.9, 0.2)"], draws=40, seed=9).to_dict()
    values = draw_values(parse_varied({"parties": [{"name": "A", "discount": 0.9}]},
                                      ["parties.A.discount=normal(0.9, 0.2)"]), 40, 9)[:, 0]
    expected = int(np.sum((values >= 1) | (values < 0)))
    assert expected > 0
    assert report["invalid_draws"] == expected
    assert report["valid_draws"] == 40 - expected
    assert sum(problem["draws"] for problem in report["problems"]) == expected


def test_same_seed_same_report(treaty_file):
    first = run_vary(treaty_file, ["parties.B.discount=beta(4, 2)"], draws=6, seed=1).to_dict()
    again = run_vary(treaty_file, ["parties.B.discount=beta(4, 2)"], draws=6, seed=1).to_dict()
    other = run_vary(treaty_file, ["parties.B.discount=beta(4, 2)"], draws=6, seed=2).to_dict()
    assert first == again
    assert first["terms"] != other["terms"] or first["p_agreement"] != other["p_agreement"]


@pytest.mark.parametrize("text", [
    "uniform(1, 0)", "beta(0, 1)", "normal(0, 0)", "triangular(0, 2, 1)", "gamma(1, 2)",
    "uniform(0)", "uniform(a, b)", "uniform 0 1",
])
def test_invalid_distribution(text):
    with pytest.raises(VaryError):
        parse_distribution(text)


def test_triangular_draws_stay_in_range():
    distribution = parse_distribution("triangular(0.2, 0.5, 0.9)")
    sample = distribution.sample(np.random.default_rng(0), 1000)
    assert sample.min() >= 0.2
    assert sample.max() <= 0.9


def test_cli_vary_json(treaty_file, capsys):
    code = main(["score", treaty_file, "--vary", "parties.*.discount=triangular(0.2, 0.5, 0.9)",
                 "--draws", "5", "--seed", "3", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["seed"] == 3
    assert report["draws"] == 5
    # The same meaning as in a score: the treaty's name, with the file apart.
    assert report["treaty"] == NAME
    assert report["file"] == treaty_file


def test_cli_vary_unknown_path(treaty_file, capsys):
    code = main(["score", treaty_file, "--vary", "parties.C.discount=uniform(0, 1)", "--draws", "5"])
    assert code == 2
    assert capsys.readouterr().err.startswith("error:")


@pytest.mark.parametrize(
    "vary, message",
    [
        ("parties.A.dicount=uniform(0.8, 0.9)",
         "error: invalid path 'parties.A.dicount': parties.A has no field 'dicount' in the treaty "
         "format, so every draw would be invalid; did you mean `discount`?"),
        ("model.gird=uniform(10, 20)",
         "error: invalid path 'model.gird': model has no field 'gird' in the treaty format, so "
         "every draw would be invalid; did you mean `grid`?"),
    ],
)
def test_cli_vary_misspelt_field(treaty_file, capsys, vary, message):
    code = main(["score", treaty_file, "--vary", vary, "--draws", "5", "--seed", "1"])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.splitlines() == [message]


def test_cli_vary_added_field_never_valid(treaty_file, capsys):
    # The file leaves `bargaining` out, and no number can go there: as in a
    # sweep, that is an error in the request, not 5 invalid draws.
    code = main(["score", treaty_file, "--vary", "model.bargaining=uniform(0, 1)", "--draws", "5",
                 "--seed", "1"])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {treaty_file}: invalid path 'model.bargaining': the file has no "
                               "such field, and adding it fails validation at every drawn value: ")
    assert "model.bargaining: not an allowed value" in lines[0]


def test_cli_vary_misspelt_section(treaty_file, capsys):
    code = main(["score", treaty_file, "--vary", "parties.A.belifs.persistence=uniform(0, 1)"])

    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: invalid path 'parties.A.belifs.persistence': parties.A has no field 'belifs' in the "
        "treaty format; did you mean `beliefs`?"]


def test_cli_vary_optional_field_left_out(treaty_file, capsys):
    # A field the format has but the file leaves out is still varied.
    code = main(["score", treaty_file, "--vary", "parties.A.breach_cost=uniform(0, 0.1)",
                 "--draws", "3", "--seed", "1"])

    assert code == 0
    assert "3 valid" in capsys.readouterr().out


def test_varied_twice_named_as_typed():
    data = {"parties": [{"name": "A", "discount": 0.9}, {"name": "B", "discount": 0.8}]}
    with pytest.raises(VaryError, match=r"^--vary parties\.A\.discount is given twice; vary each field once$"):
        parse_varied(data, ["parties.A.discount=uniform(0.8, 0.9)", "parties.A.discount=uniform(0.8, 0.9)"])
    # Two spellings of one field: the field is named by its party, not its index.
    with pytest.raises(VaryError, match=r"^--vary parties\.A\.discount and --vary parties\.\*\.discount "
                                        r"both set parties\.A\.discount; vary each field once$"):
        parse_varied(data, ["parties.A.discount=uniform(0.8, 0.9)", "parties.*.discount=uniform(0.8, 0.9)"])


def test_party_name_with_equals_sign():
    # A distribution never contains "=", so the path ends at the last one.
    data = {"parties": [{"name": "A=B", "discount": 0.9}, {"name": "C", "discount": 0.8}]}
    fields = parse_varied(data, ["parties.A=B.discount=uniform(0.8, 0.95)"])
    assert len(fields) == 1
    assert [target.keys for target in fields[0].targets] == [("parties", 0, "discount")]


def test_cli_vary_on_invalid_file_exit_2(tmp_path, capsys):
    # A notice of six months does not fit yearly periods, whatever the draws.
    path = tmp_path / "bad.yaml"
    path.write_text(
        "schema: treaty/v1\nname: bad\nparties:\n"
        "  - {name: A, discount: 0.9, defection_value: 0.3, regime_value: [[0, 0.2], [1, 0.8]]}\n"
        "  - {name: B, discount: 0.9, defection_value: 0.3, regime_value: [[0, 0.8], [1, 0.2]]}\n"
        "provisions:\n  - kind: withdrawal\n    notice: 6 months\n")
    code = main(["score", str(path), "--vary", "parties.A.discount=uniform(0.8, 0.95)",
                 "--draws", "4", "--seed", "1"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert f"{path}:8:13: error: provisions[0].notice" in captured.err


def test_cli_vary_too_many_draws(treaty_file, capsys):
    code = main(["score", treaty_file, "--vary", "parties.A.discount=uniform(0.8, 0.95)",
                 "--draws", "100000001"])
    assert code == 2
    assert "--draws must be at most 100,000" in capsys.readouterr().err


# A term of ten years, a whole number of the default yearly period.
DURATION_SPEC = SPEC + "provisions:\n  - kind: duration\n    term: 10 years\n"


@pytest.mark.parametrize(("vary", "advice"), [
    # The file writes the term, so the error suggests a sweep of whole years.
    ("provisions.duration.term=uniform(5, 20)",
     "for example treaty sweep {file} --x provisions.duration.term=5:20:16 (steps of 1 year)"),
    # The file leaves the horizon out, and a sweep would write it without a unit.
    ("model.horizon=uniform(20, 60)", "write `horizon: 1 year` into the file"),
])
def test_cli_vary_duration_rejected(tmp_path, capsys, vary, advice):
    path = tmp_path / "term.yaml"
    path.write_text(DURATION_SPEC)
    code = main(["score", str(path), "--vary", vary, "--draws", "3", "--seed", "1"])
    captured = capsys.readouterr()

    assert code == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    field = vary.partition("=")[0]
    assert lines[0].startswith(f"error: --vary {field} names a duration, so every draw would be invalid")
    assert "whole number of model periods (period: 1 year)" in lines[0]
    assert advice.format(file=path) in lines[0]


ESCAPE_SPEC = SPEC + "provisions:\n  - {kind: escape_hatch, suspension: 1 year, max_uses: 2}\n"


@pytest.mark.parametrize("vary", ["model.grid=uniform(21, 101)",
                                  "provisions.escape_hatch.max_uses=uniform(1, 4)"])
def test_cli_vary_whole_number_rejected(tmp_path, capsys, vary):
    path = tmp_path / "escape.yaml"
    path.write_text(ESCAPE_SPEC)
    code = main(["score", str(path), "--vary", vary, "--draws", "3", "--seed", "1"])
    captured = capsys.readouterr()

    assert code == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    field = vary.partition("=")[0]
    assert lines[0].startswith(f"error: --vary {field} names a whole-number field, so every draw "
                               "would be invalid")
    assert f"treaty sweep {path} --x {field}=START:STOP:N" in lines[0]


def test_cli_invalid_draws_grouped(treaty_file, capsys):
    # normal(0.9, 0.2) with seed 1 draws 4 of 10 discounts at or above 1.
    vary = "parties.A.discount=normal(0.9, 0.2)"
    values = draw_values(parse_varied({"parties": [{"name": "A", "discount": 0.9}]}, [vary]), 10, 1)[:, 0]
    invalid = values[(values >= 1) | (values < 0)]
    assert invalid.size == 4

    code = main(["score", treaty_file, "--vary", vary, "--draws", "10", "--seed", "1"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    problem_lines = [line for line in lines if line.startswith("    ")]
    assert problem_lines == [
        f"    4 x {treaty_file}:5:15: error: parties[0].discount: must be below 1 and not negative; "
        "at 1 a party values the far future as much as today and no stream of payoffs has a finite "
        f"value (got 4 values in [{invalid.min():.6g}, {invalid.max():.6g}]; "
        "allowed: 0 <= discount < 1)"
    ]

    main(["score", treaty_file, "--vary", vary, "--draws", "10", "--seed", "1", "--json"])
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert len(problems) == 1
    assert problems[0]["draws"] == 4
    assert problems[0]["field"] == "parties[0].discount"
    assert problem_lines[0] == f"    4 x {problems[0]['message']}"


def test_row_sum_draws_grouped(tmp_path):
    # Each draw of one transition probability gives the row another sum, which
    # the message contains, so only a group that merges the numbers has one entry.
    path = tmp_path / "chain.yaml"
    path.write_text(SPEC.replace("defection_value: 0.3", "defection_value: {a: 0.3, b: 0.3}")
                    + "environment:\n  start: a\n  transitions:\n"
                      "    a: {a: 0.5, b: 0.5}\n    b: {a: 0.5, b: 0.5}\n")
    vary = "environment.transitions.a.a=uniform(0.1, 0.9)"
    report = run_vary(str(path), [vary], draws=4, seed=1).to_dict()
    data = {"environment": {"transitions": {"a": {"a": 0.5, "b": 0.5}}}}
    sums = draw_values(parse_varied(data, [vary]), 4, 1)[:, 0] + 0.5

    assert report["invalid_draws"] == 4
    assert len(report["problems"]) == 1
    problem = report["problems"][0]
    assert problem["draws"] == 4
    assert problem["field"] == "environment.transitions.a"
    assert f"row sums to [{min(sums):.6g}, {max(sums):.6g}]; each row must sum to 1" in problem["message"]


def interrupt_after(monkeypatch, finished: int) -> None:
    """Make the draw after the first ``finished`` ones raise KeyboardInterrupt, as Ctrl-C would."""
    score = calibration.score_draw
    calls = []

    def scoring(*args):
        calls.append(args)
        if len(calls) > finished:
            raise KeyboardInterrupt
        return score(*args)

    monkeypatch.setattr(calibration, "score_draw", scoring)


def test_cli_vary_interrupt_prints_partial_report(treaty_file, capsys, monkeypatch):
    interrupt_after(monkeypatch, 4)
    code = main(["score", treaty_file, "--vary", "parties.*.discount=uniform(0.1, 0.6)",
                 "--draws", "10", "--seed", "4"])
    captured = capsys.readouterr()

    assert code == 130
    assert captured.out.startswith(f"{treaty_file} ({NAME}): 4 draws, seed 4 "
                                   "(partial: interrupted after 4 of 10 draws)\n")
    assert "over 4 valid draws" in captured.out
    assert captured.err.splitlines() == [
        "interrupted after 4 of 10 draws; the report covers only those draws and is marked partial"]


def test_cli_vary_interrupt_json_is_partial(treaty_file, capsys, monkeypatch):
    complete = run_vary(treaty_file, ["parties.*.discount=uniform(0.1, 0.6)"], draws=10, seed=4)
    interrupt_after(monkeypatch, 4)
    code = main(["score", treaty_file, "--vary", "parties.*.discount=uniform(0.1, 0.6)",
                 "--draws", "10", "--seed", "4", "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)

    assert code == 130
    assert report["interrupted"] is True
    assert report["draws"] == 4
    assert report["draws_requested"] == 10
    assert report["valid_draws"] == 4

    # The finished draws are the first four of the full run with the same seed.
    agreed = [outcome["agreement"] for outcome in complete.outcomes[:4]]
    assert report["p_agreement"] == sum(agreed) / 4


def test_cli_vary_interrupt_before_first_draw(treaty_file, capsys, monkeypatch):
    interrupt_after(monkeypatch, 0)
    code = main(["score", treaty_file, "--vary", "parties.*.discount=uniform(0.1, 0.6)",
                 "--draws", "10", "--seed", "4"])
    captured = capsys.readouterr()

    assert code == 130
    assert captured.out == ""
    assert captured.err.splitlines() == ["interrupted after 0 of 10 draws; there is no result to report"]


def test_cli_vary_progress_on_stderr(treaty_file, capsys, monkeypatch):
    # A first note after a millisecond stands for a run longer than ten seconds.
    monkeypatch.setattr(heartbeat, "FIRST_NOTE_SECONDS", 0.001)
    code = main(["score", treaty_file, "--vary", "parties.*.discount=uniform(0.1, 0.6)",
                 "--draws", "20", "--seed", "4", "--json"])
    captured = capsys.readouterr()
    lines = captured.err.splitlines()

    assert code == 0
    assert lines, captured.err
    assert all(re.match(r"^score --vary: \d+ of 20 draws \(\d+%\), \d+ s$", line) for line in lines), lines
    assert lines[-1].startswith("score --vary: 20 of 20 draws (100%), ")
    assert json.loads(captured.out)["draws"] == 20


def test_cli_vary_quiet_when_short(treaty_file, capsys):
    assert main(["score", treaty_file, "--vary", "parties.*.discount=uniform(0.1, 0.6)",
                 "--draws", "5", "--seed", "4"]) == 0
    assert capsys.readouterr().err == ""
