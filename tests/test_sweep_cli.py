"""`treaty sweep` end to end: grids, statuses, outputs, workers and plots.

These sweeps use the closed forms (``--formula``), which need the loader and
the game builder but not the solver, so every expected number below is
derived in the test.
"""

import csv
import errno
import io
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from engine import sweep
from engine.cli import main
from engine.closed_forms import per_period_threshold, permanent_threshold, printed_threshold
from engine.score import STRICTNESS_DECIMALS

FIXTURE = """\
schema: treaty/v1
name: Sweep fixture
environment:
  start: today
  persistence: 0.5
  states: {today: 0.5, later: 0.5}
parties:
  - name: A
    discount: 0.9
    defection_value: {today: B_VALUE, later: 0.1}
    regime_value: [[0, 0], [1, 1]]
  - name: B
    discount: 0.9
    defection_value: {today: B_VALUE, later: 0.1}
    regime_value: [[0, 1], [1, 0]]
"""

DURATION = """\
  - kind: duration
    term: 10 years
"""


def write_fixture(directory, name="treaty.yaml", b=0.2, provisions=""):
    text = FIXTURE.replace("B_VALUE", str(b))
    if provisions:
        text += "provisions:\n" + provisions
    path = directory / name
    path.write_text(text)
    return str(path)


def run(argv, capsys):
    code = main(["sweep", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(argv, capsys):
    code, out, err = run([*argv, "--json", "--quiet"], capsys)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize(
    ("formula", "threshold"),
    [("printed", printed_threshold), ("permanent", permanent_threshold), ("per-period", per_period_threshold)],
)
def test_formula_zone_matches_threshold(tmp_path, capsys, formula, threshold):
    # A needs gamma >= t and B needs 1 - gamma >= t, with t = f(0.2, delta, 0.5)
    # (b in the start state, yearly values and a one-year period). The zone is
    # [t, 1 - t]. Equal discount factors give equal weights, and the symmetric
    # Nash product log(gamma - t) + log(1 - t - gamma) peaks at gamma = 0.5.
    path = write_fixture(tmp_path)
    rows = run_json([path, "--x", "parties.*.discount=0.5:0.9:5", "--formula", formula], capsys)

    assert [row["parties.*.discount"] for row in rows] == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])
    for row in rows:
        expected = float(threshold(0.2, row["parties.*.discount"], 0.5))
        assert row["status"] == "ok"
        assert row["agreement"] is True
        # The output rounds the exact roots inwards to STRICTNESS_DECIMALS
        # decimals, which moves them by less than one unit of the last decimal.
        unit = 10.0**-STRICTNESS_DECIMALS
        assert expected - 1e-12 <= row["zone_low"] < expected + unit
        assert 1 - expected - unit < row["zone_high"] <= 1 - expected + 1e-12
        assert row["terms"] == pytest.approx(0.5, abs=1e-8)
        # margin = (z(0.5) - t) / (1 - delta).
        margin = (0.5 - expected) / (1 - row["parties.*.discount"])
        # The terms are found to about 1e-8 (the optimum is flat), hence abs=1e-7.
        assert row["margin_A"] == pytest.approx(margin, abs=1e-7)
        assert row["margin_B"] == pytest.approx(margin, abs=1e-7)
        assert row["expected_lifetime_years"] is None


def test_no_agreement_where_threshold_above_half(tmp_path, capsys):
    # b = 0.3, p = 0.5, permanent reading: t = 0.3 (2 - 2 delta + 0.5 delta).
    # delta = 0: t = 0.6 > 0.5, so A's [0.6, 1] and B's [0, 0.4] do not meet.
    # delta = 0.9: t = 0.3 * 0.65 = 0.195, zone [0.195, 0.805].
    path = write_fixture(tmp_path, b=0.3)
    rows = run_json([path, "--x", "parties.*.discount=0:0.9:2", "--formula", "permanent"], capsys)
    assert rows[0]["status"] == "ok"
    assert rows[0]["agreement"] is False
    assert rows[0]["zone_low"] is None
    assert rows[0]["terms"] is None
    assert rows[1]["agreement"] is True
    assert rows[1]["zone_low"] == pytest.approx(0.195)


def test_invalid_point_reported(tmp_path, capsys):
    path = write_fixture(tmp_path)
    rows = run_json([path, "--x", "parties.A.discount=0.8:1.0:3", "--formula", "printed"], capsys)
    assert [row["status"] for row in rows] == ["ok", "ok", "invalid"]
    # Empty cells are null in JSON, the message of a point that scored too.
    assert rows[0]["message"] is None
    assert rows[2]["agreement"] is None
    assert "discount" in rows[2]["message"]
    # The problem names the line where the swept field is written.
    assert "treaty.yaml:9:" in rows[2]["message"]


def test_duration_not_whole_periods_invalid(tmp_path, capsys):
    # With one-year periods, 7.5 years is not a whole number of periods.
    path = write_fixture(tmp_path, provisions=DURATION)
    code, out, err = run(
        [path, "--x", "provisions.duration.term=5:10:3", "--formula", "per-period", "--json", "--quiet"],
        capsys,
    )
    assert code == 0
    rows = json.loads(out)
    assert [row["status"] for row in rows] == ["ok", "invalid", "ok"]
    assert "7.5 years" in rows[1]["message"]
    assert "warning:" in err
    assert "ignore the provisions (duration)" in err


HALF_YEAR = """\
schema: treaty/v1
name: Half-year fixture
period: 6 months
environment:
  start: today
  persistence: 0.64
  states: {today: 0.5, later: 0.5}
parties:
  - name: A
    discount: 0.81
    defection_value: {today: 0.2, later: 0.1}
    regime_value: [[0, 0], [1, 1]]
BELIEFS  - name: B
    discount: 0.81
    defection_value: {today: 0.2, later: 0.1}
    regime_value: [[0, 1], [1, 0]]
"""


def write_half_year(directory, beliefs=""):
    path = directory / "half-year.yaml"
    path.write_text(HALF_YEAR.replace("BELIEFS", beliefs))
    return str(path)


def permanent_reading(b, delta, p):
    """Return b (2 - 2 delta + p delta), the first-period threshold of the permanent reading."""
    return b * (2 - 2 * delta + p * delta)


def test_formula_persistence_per_period(tmp_path, capsys):
    # Six-month periods: the yearly discount d and persistence 0.64 become
    # delta = d ** 0.5 and p = 0.64 ** 0.5 = 0.8 per period. Defection and
    # regime values are per year and both halve per period, so the zone
    # [t, 1 - t] uses t = 0.2 (2 - 2 delta + p delta) with the yearly b = 0.2.
    # Equal discounts and values put the terms at 0.5. Each margin is the
    # per-period surplus over the per-period threshold, 0.5 (0.5 - t), over
    # 1 - delta.
    path = write_half_year(tmp_path)
    rows = run_json([path, "--x", "parties.*.discount=0.64:0.81:2", "--formula", "permanent"], capsys)

    for row in rows:
        delta = row["parties.*.discount"] ** 0.5
        threshold = permanent_reading(0.2, delta, 0.8)
        margin = 0.5 * (0.5 - threshold) / (1 - delta)
        assert row["status"] == "ok"
        assert row["zone_low"] == pytest.approx(threshold, abs=1e-8)
        assert row["zone_high"] == pytest.approx(1 - threshold, abs=1e-8)
        assert row["terms"] == pytest.approx(0.5, abs=1e-8)
        assert row["margin_A"] == pytest.approx(margin, abs=1e-7)
        assert row["margin_B"] == pytest.approx(margin, abs=1e-7)


def test_formula_party_beliefs_persistence(tmp_path, capsys):
    # A's own yearly persistence 0.36 gives it p_A = 0.6 per six-month period,
    # and B keeps the environment's p_B = 0.64 ** 0.5 = 0.8. A accepts
    # gamma >= t_A and B accepts gamma <= 1 - t_B, with
    # t_i = 0.2 (2 - 2 delta + p_i delta). Equal discounts give equal Nash
    # weights, so the terms gamma* = (1 + t_A - t_B) / 2 split the zone in
    # half, and both margins are 0.5 (1 - t_A - t_B) / 2 / (1 - delta).
    path = write_half_year(tmp_path, beliefs="    beliefs: {persistence: 0.36}\n")
    rows = run_json([path, "--x", "parties.*.discount=0.64:0.81:2", "--formula", "permanent"], capsys)

    for row in rows:
        delta = row["parties.*.discount"] ** 0.5
        threshold_a = permanent_reading(0.2, delta, 0.6)
        threshold_b = permanent_reading(0.2, delta, 0.8)
        margin = 0.5 * (1 - threshold_a - threshold_b) / 2 / (1 - delta)
        assert row["status"] == "ok"
        assert row["zone_low"] == pytest.approx(threshold_a, abs=1e-8)
        assert row["zone_high"] == pytest.approx(1 - threshold_b, abs=1e-8)
        assert row["terms"] == pytest.approx((1 + threshold_a - threshold_b) / 2, abs=1e-8)
        assert row["margin_A"] == pytest.approx(margin, abs=1e-7)
        assert row["margin_B"] == pytest.approx(margin, abs=1e-7)


def test_duration_thirds_of_year_valid(tmp_path, capsys):
    # With one-month periods, 3 1/3 years is 40 periods and 3 2/3 years is 44,
    # so every point of the grid 3, 3 1/3, 3 2/3, 4 is a valid term.
    text = FIXTURE.replace("B_VALUE", "0.2").replace("name: Sweep fixture\n", "name: Sweep fixture\nperiod: 1 month\n")
    path = tmp_path / "monthly.yaml"
    path.write_text(text + "provisions:\n" + DURATION)
    rows = run_json([str(path), "--x", "provisions.duration.term=3:4:4", "--formula", "per-period"], capsys)

    assert [row["provisions.duration.term"] for row in rows] == pytest.approx([3, 10 / 3, 11 / 3, 4])
    assert [row["status"] for row in rows] == ["ok", "ok", "ok", "ok"]
    assert [row["message"] for row in rows] == [None, None, None, None]


@pytest.mark.parametrize(
    ("argv_tail", "fragment"),
    [
        (["--x", "parties.France.discount=0.5:0.9:3"], "no party named 'France'"),
        (["--x", "environment.persistance=0.5:0.9:3"], "has no such field"),
        (["--x", "parties.*.discount=0.5:0.9:1"], "at least 2 points"),
        (["--x", "parties.*.discount=0.5:0.9"], "expected START:STOP:N"),
        (["--x", "provisions.review.every=1:5:3"], "the file has no provisions"),
        (["--x", "parties.*.discount=0.5:0.9:3", "--workers", "0"], "--workers must be at least 1, got 0"),
        (["--x", "parties.*.discount=0.5:0.9:3", "--plot", "out.pdf"], "expected a name ending in .png or .svg"),
    ],
)
def test_request_errors_exit_2(tmp_path, capsys, argv_tail, fragment):
    path = write_fixture(tmp_path)
    code, out, err = run([path, *argv_tail, "--formula", "printed"], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert fragment in err
    assert len(err.strip().splitlines()) == 1


def test_added_field_error_names_file(tmp_path, capsys):
    path = write_fixture(tmp_path)

    code, _, err = run([path, "--x", "environment.persistance=0.5:0.9:3", "--formula", "printed"], capsys)

    assert code == 2
    assert err.startswith(f"error: {path}: invalid path 'environment.persistance': the file has no such field")


def test_left_out_whole_number_field_writes_integers(tmp_path, capsys):
    # `grid` is left out of the file, and the format declares it a whole number.
    path = write_fixture(tmp_path)
    with open(path, "a") as file:
        file.write("model:\n")
    out = tmp_path / "grid.csv"

    code, _, _ = run([path, "--x", "model.grid=21:40:3", "--formula", "printed", "--out", str(out)], capsys)

    assert code == 0
    assert [line.split(",")[0] for line in out.read_text().splitlines()] == ["model.grid", "21", "30.5", "40"]


def test_missing_file_exit_2(tmp_path, capsys):
    code, _, err = run([str(tmp_path / "absent.yaml"), "--x", "a.b=0:1:2"], capsys)
    assert code == 2
    assert "absent.yaml" in err
    assert "file not found" in err


def test_formula_needs_two_parties(tmp_path, capsys):
    third_party = (
        "  - name: C\n"
        "    discount: 0.9\n"
        "    defection_value: {today: 0.2, later: 0.1}\n"
        "    regime_value: [[0, 0.5], [1, 0.5]]\n"
    )
    path = tmp_path / "three.yaml"
    path.write_text(FIXTURE.replace("B_VALUE", "0.2") + third_party)
    code, _, err = run([str(path), "--x", "parties.*.discount=0.5:0.9:3", "--formula", "printed"], capsys)
    assert code == 2
    assert "describes two parties, the file has 3" in err


def test_closed_form_refusal_comes_without_caveats(tmp_path, capsys):
    # A negotiation cost draws a caveat for the closed forms, but a file they
    # cannot describe at all gets only the error.
    third_party = (
        "  - name: C\n"
        "    discount: 0.9\n"
        "    negotiation_cost: 0.1\n"
        "    defection_value: {today: 0.2, later: 0.1}\n"
        "    regime_value: [[0, 0.5], [1, 0.5]]\n"
    )
    path = tmp_path / "three.yaml"
    path.write_text(FIXTURE.replace("B_VALUE", "0.2") + third_party)
    code, _, err = run([str(path), "--x", "parties.*.discount=0.5:0.9:3", "--formula", "printed"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: {path}: --formula printed describes two parties, the file has 3; use --formula engine"]


def test_csv_columns_and_rows(tmp_path, capsys):
    path = write_fixture(tmp_path)
    out_path = tmp_path / "rows.csv"
    code, out, _ = run(
        [path, "--x", "parties.*.discount=0.5:0.9:3", "--y", "environment.persistence=0:1:2",
         "--formula", "per-period", "--out", str(out_path), "--quiet"],
        capsys,
    )
    assert code == 0
    assert f"wrote {out_path}" in out

    rows = list(csv.DictReader(out_path.open()))
    assert list(rows[0]) == [
        "parties.*.discount", "environment.persistence", "status", "agreement", "zone_low",
        "zone_high", "terms", "margin_A", "margin_B", "expected_lifetime_years", "message",
        "evaluated_at", "evaluated_strictness",
    ]
    assert len(rows) == 6
    # x varies fastest.
    assert [float(row["parties.*.discount"]) for row in rows] == [0.5, 0.7, 0.9, 0.5, 0.7, 0.9]
    assert [float(row["environment.persistence"]) for row in rows] == [0, 0, 0, 1, 1, 1]
    # Per-period threshold at delta = 0.7, p = 1 is the folk bound 0.2 * 1.3 = 0.26.
    assert float(rows[4]["zone_low"]) == pytest.approx(0.26)
    assert rows[4]["agreement"] == "true"
    assert rows[4]["expected_lifetime_years"] == ""


def test_2d_human_map(tmp_path, capsys):
    # b = 0.3, p = 1 (persistence axis), so t = 0.3 (2 - delta):
    # delta = 0 gives 0.6 > 0.5 (no agreement), delta = 0.9 gives 0.33.
    # p = 0 (permanent reading) gives t = 0.6 (1 - delta): 0.6 and 0.06.
    path = write_fixture(tmp_path, b=0.3)
    code, out, _ = run(
        [path, "--x", "parties.*.discount=0:0.9:2", "--y", "environment.persistence=0:1:2",
         "--formula", "permanent", "--quiet"],
        capsys,
    )
    assert code == 0
    lines = out.splitlines()
    # The top row is the largest y value.
    assert lines[1].split() == ["1", ".#"]
    assert lines[2].split() == ["0", ".#"]
    assert "4 points, 2 with agreement" in out


def test_1d_human_table(tmp_path, capsys):
    path = write_fixture(tmp_path)
    code, out, _ = run(
        [path, "--x", "parties.A.discount=0.8:1.0:3", "--formula", "printed", "--quiet"], capsys
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["parties.A.discount", "status", "agree"]
    assert lines[4].split()[:3] == ["1", "invalid", "-"]
    # The validation message follows the table in full, naming the x value.
    assert lines[5].startswith("at parties.A.discount = 1: ")
    assert "treaty.yaml:9:" in lines[5]


def test_workers_give_identical_output(tmp_path, capsys):
    path = write_fixture(tmp_path)
    outputs = []
    for workers in ("1", "4"):
        out_path = tmp_path / f"rows-{workers}.csv"
        code, _, err = run(
            [path, "--x", "parties.*.discount=0.5:0.95:6", "--y", "environment.persistence=0:1:4",
             "--formula", "per-period", "--workers", workers, "--out", str(out_path), "--quiet"],
            capsys,
        )
        assert code == 0, err
        outputs.append(out_path.read_text())
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 1 + 24


def test_compare_rows_and_difference(tmp_path, capsys):
    # b = 0.2 agrees at every delta here; b = 0.3 fails at delta = 0 (t = 0.6).
    first = write_fixture(tmp_path, "first.yaml", b=0.2)
    second = write_fixture(tmp_path, "second.yaml", b=0.3)
    rows = run_json(
        [first, "--x", "parties.*.discount=0:0.9:2", "--compare", second, "--formula", "permanent"],
        capsys,
    )
    assert [row["design"] for row in rows] == [first, first, second, second]
    assert [row["agreement"] for row in rows] == [True, True, False, True]

    code, out, _ = run(
        [first, "--x", "parties.*.discount=0:0.9:2", "--compare", second, "--formula", "permanent", "--quiet"],
        capsys,
    )
    assert code == 0
    assert f"agreement only under {first}: 1 point; only under {second}: 0 points" in out


def test_compare_path_missing_in_second_file(tmp_path, capsys):
    first = write_fixture(tmp_path, "first.yaml", provisions=DURATION)
    second = write_fixture(tmp_path, "second.yaml")
    code, _, err = run(
        [first, "--x", "provisions.duration.term=5:10:2", "--compare", second, "--formula", "printed"],
        capsys,
    )
    assert code == 2
    assert second in err
    assert "no provisions" in err


def test_plot_without_matplotlib(tmp_path, capsys, monkeypatch):
    real_find_spec = sweep.importlib.util.find_spec
    monkeypatch.setattr(
        sweep.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "matplotlib" else real_find_spec(name, *args),
    )
    path = write_fixture(tmp_path)
    out_path = tmp_path / "rows.csv"
    code, out, err = run(
        [path, "--x", "parties.*.discount=0.5:0.9:3", "--plot", str(tmp_path / "p.png"),
         "--out", str(out_path)],
        capsys,
    )
    assert code == 2
    assert err.strip().splitlines() == [
        "error: --plot needs matplotlib, which is not installed; install it with pip install -e '.[plot]'"
    ]
    # The check runs before the sweep, so nothing is written.
    assert not out_path.exists()


def png_size(path):
    # Width and height are big-endian 32-bit integers at bytes 16 to 24 (IHDR).
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def grey_pixels(path):
    from matplotlib.image import imread

    from engine.plotting import NO_AGREEMENT_COLOR

    image = imread(path)[..., :3]
    grey = int(NO_AGREEMENT_COLOR[1:3], 16) / 255
    return int(np.all(np.abs(image - grey) < 0.5 / 255, axis=-1).sum())


@pytest.mark.parametrize(("b", "expect_region"), [(0.1, False), (0.45, True)])
def test_plot_all_or_none_agree(tmp_path, capsys, b, expect_region):
    # Per-period reading: t = b (1 - delta)(2 - delta p) / (1 - delta p), which
    # falls with delta and rises with p (its p-derivative has the sign of delta).
    # b = 0.1: the largest t, at delta = 0, is 2b = 0.2 < 0.5, so all agree.
    # b = 0.45: the smallest t on delta in [0, 0.3], p in [0.5, 1] is at
    # delta = 0.3, p = 0.5: 0.45 * 0.7 * 1.85 / 0.85 = 0.686 > 0.5, so A's
    # [t, 1] and B's [0, 1 - t] never meet and no point agrees.
    pytest.importorskip("matplotlib")
    path = write_fixture(tmp_path, b=b)
    plot_path = tmp_path / "sweep.png"
    code, out, err = run(
        [path, "--x", "parties.*.discount=0:0.3:4", "--y", "environment.persistence=0.5:1:3",
         "--formula", "per-period", "--plot", str(plot_path), "--quiet"],
        capsys,
    )
    assert code == 0, err
    assert f"wrote {plot_path}" in out
    assert plot_path.stat().st_size > 5000
    assert png_size(plot_path) == (900, 720)
    if expect_region:
        assert "12 points, 0 with agreement" in out
        assert grey_pixels(plot_path) > 20000
    else:
        assert "12 points, 12 with agreement" in out
        assert grey_pixels(plot_path) < 200


class FakeStderr(io.StringIO):
    """A text stream that reports itself as a terminal or not."""

    def __init__(self, terminal: bool):
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def test_progress_bar_after_one_second(monkeypatch):
    clock = iter([100.0, 100.5, 101.5, 101.6])
    monkeypatch.setattr(sweep.time, "monotonic", lambda: next(clock))
    stream = FakeStderr(terminal=True)
    bar = sweep.Progress(4, enabled=True, stream=stream)
    bar.update(1)  # 0.5 s: too early to draw
    assert stream.getvalue() == ""
    bar.update(2)  # 1.5 s
    assert stream.getvalue().startswith("\rsweep [")
    assert "2/4 points" in stream.getvalue()
    bar.update(4)  # finished: always drawn
    bar.close()
    assert stream.getvalue().endswith("4/4 points, 1.6 s\n")
    assert stream.getvalue().count("\n") == 1


def test_progress_bar_redraw_limit(monkeypatch):
    # Updates 1/16 s apart from 1 s on, so the 0.1 s limit draws every other one.
    # The finished bar comes 3/32 s after the last drawn one and is drawn all the same.
    # The times are exact in binary, so no comparison rests on rounding.
    clock = iter([0.0, 1.0, 1.0625, 1.125, 1.1875, 1.21875])
    monkeypatch.setattr(sweep.time, "monotonic", lambda: next(clock))
    stream = FakeStderr(terminal=True)
    bar = sweep.Progress(5, enabled=True, stream=stream)
    for done in range(1, 6):
        bar.update(done)
    bar.close()

    drawn = stream.getvalue().split("\r")[1:]
    assert [frame.split("] ")[1].split(" points")[0] for frame in drawn] == ["1/5", "3/5", "5/5"]


def test_progress_lines_when_not_a_terminal(monkeypatch):
    # Point k of 20 finishes at 0.25 k s (exact in binary), so points 1 to 3 come
    # before the first second and write nothing. From point 4 on, a line is written
    # when 10 * k // 20 = k // 2 reaches a new tenth: at k = 4, 6, ..., 20.
    clock = iter([100.0 + 0.25 * k for k in range(21)])
    monkeypatch.setattr(sweep.time, "monotonic", lambda: next(clock))
    stream = FakeStderr(terminal=False)
    bar = sweep.Progress(20, enabled=True, stream=stream)
    for done in range(1, 21):
        bar.update(done)
    bar.close()
    text = stream.getvalue()

    assert "\r" not in text
    assert text.endswith("\n")
    lines = text.splitlines()
    expected = [f"sweep: {k}/20 points ({5 * k}%), {0.25 * k:.1f} s" for k in range(4, 21, 2)]
    assert lines == expected


def test_progress_lines_end_only_once(monkeypatch):
    # A grid smaller than ten points still writes one line per update after the
    # first second, and the finished sweep is not written twice by close().
    clock = iter([0.0, 2.0, 3.0, 4.0])
    monkeypatch.setattr(sweep.time, "monotonic", lambda: next(clock))
    stream = FakeStderr(terminal=False)
    bar = sweep.Progress(3, enabled=True, stream=stream)
    for done in range(1, 4):
        bar.update(done)
    bar.close()

    assert stream.getvalue().splitlines() == [
        "sweep: 1/3 points (33%), 2.0 s",
        "sweep: 2/3 points (66%), 3.0 s",
        "sweep: 3/3 points (100%), 4.0 s",
    ]


def test_progress_stream_without_isatty(monkeypatch):
    class Sink:
        def __init__(self):
            self.parts = []

        def write(self, text):
            self.parts.append(text)

        def flush(self):
            pass

    clock = iter([0.0, 1.5])
    monkeypatch.setattr(sweep.time, "monotonic", lambda: next(clock))
    sink = Sink()
    bar = sweep.Progress(1, enabled=True, stream=sink)
    bar.update(1)
    bar.close()

    assert sink.parts == ["sweep: 1/1 points (100%), 1.5 s\n"]


def test_progress_bar_quiet():
    stream = io.StringIO()
    bar = sweep.Progress(2, enabled=False, stream=stream)
    bar.update(2)
    bar.close()
    assert stream.getvalue() == ""


def test_solver_error_is_failed_not_no_agreement(tmp_path, capsys, monkeypatch):
    import engine.score
    from engine.errors import SolverError

    real_score = engine.score.score_game

    def score_or_fail(game, **options):
        if game.parties[0].discount > 0.85:
            raise SolverError("value iteration did not settle within 20000 iterations (tolerance 1e-09)")
        return real_score(game, **options)

    monkeypatch.setattr(engine.score, "score_game", score_or_fail)
    path = write_fixture(tmp_path)
    rows = run_json([path, "--x", "parties.*.discount=0.5:0.9:2"], capsys)
    assert [row["status"] for row in rows] == ["ok", "failed"]
    assert rows[1]["agreement"] is None
    assert rows[1]["terms"] is None
    assert "did not settle" in rows[1]["message"]


def test_unconverged_score_is_flagged(tmp_path, capsys, monkeypatch):
    import engine.score

    real_score = engine.score.score_game

    def unconverged(game, **options):
        score = real_score(game, **options)
        score.converged = False
        return score

    monkeypatch.setattr(engine.score, "score_game", unconverged)
    path = write_fixture(tmp_path)
    rows = run_json([path, "--x", "parties.*.discount=0.5:0.9:2"], capsys)
    assert [row["status"] for row in rows] == ["unconverged", "unconverged"]
    assert all("may be wrong" in row["message"] for row in rows)
    # The numbers are kept, so a reader can judge them.
    assert all(row["terms"] is not None for row in rows)


def test_treaty_command_runs_sweep(tmp_path, capsys):
    from engine.cli import main as treaty_main

    path = write_fixture(tmp_path)
    code = treaty_main(["sweep", path, "--x", "parties.*.discount=0.5:0.9:2", "--formula", "printed", "--json", "--quiet"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    assert len(rows) == 2
    assert rows[0]["zone_low"] == pytest.approx(float(printed_threshold(0.2, 0.5, 0.5)))


def test_compare_csv_party_columns(tmp_path, capsys):
    # The second design calls its second party C: its margin must land under
    # margin_C, and margin_B must stay empty for it.
    first = write_fixture(tmp_path, "first.yaml")
    second = tmp_path / "second.yaml"
    second.write_text(Path(first).read_text().replace("  - name: B", "  - name: C"))
    out_path = tmp_path / "rows.csv"

    code, _, err = run([first, "--compare", str(second), "--x", "parties.A.discount=0.5:0.9:2",
                        "--out", str(out_path), "--quiet"], capsys)
    assert code == 0, err

    rows = list(csv.DictReader(out_path.open()))
    assert "margin_B" in rows[0]
    assert "margin_C" in rows[0]
    axis = "parties.A.discount"
    expected = {(row["design"], row[axis]): row for row in run_json(
        [first, "--compare", str(second), "--x", f"{axis}=0.5:0.9:2"], capsys)}
    for row in rows:
        design = expected[(row["design"], float(row[axis]))]
        other = "margin_C" if row["design"] == first else "margin_B"
        own = "margin_B" if row["design"] == first else "margin_C"
        assert row[other] == ""
        assert float(row[own]) == pytest.approx(design[own])


def test_compare_with_itself_exit_2(tmp_path, capsys):
    path = write_fixture(tmp_path)
    same = str(tmp_path / "." / "treaty.yaml")
    code, out, err = run([path, "--x", "parties.A.discount=0.8:0.9:2", "--compare", same], capsys)
    assert code == 2
    assert out == ""
    assert "it is FILE itself" in err


def test_duration_axis_label_has_unit(tmp_path, capsys):
    path = write_fixture(tmp_path, provisions=DURATION)
    code, out, _ = run(
        [path, "--x", "provisions.duration.term=5:10:2", "--formula", "printed", "--quiet"], capsys
    )
    assert code == 0
    assert out.splitlines()[1].split()[:2] == ["provisions.duration.term", "(years)"]


def test_compare_with_hard_link_exit_2(tmp_path, capsys):
    path = write_fixture(tmp_path)
    link = tmp_path / "link.yaml"
    os.link(path, link)
    code, _, err = run([path, "--x", "parties.A.discount=0.8:0.9:2", "--compare", str(link)], capsys)
    assert code == 2
    assert "it is FILE itself" in err


def test_missing_whole_number_field_swept(tmp_path, capsys):
    # The file has a model section without a grid; grid values 21 and 41 are
    # written as whole numbers, which the grid field requires.
    path = write_fixture(tmp_path)
    with open(path, "a") as stream:
        stream.write("model: {}\n")
    rows = run_json([path, "--x", "model.grid=21:41:2"], capsys)
    assert [row["status"] for row in rows] == ["ok", "ok"]


def test_whole_number_axis_written_as_integers(tmp_path, capsys):
    path = write_fixture(tmp_path)
    with open(path, "a") as stream:
        stream.write("model: {grid: 21}\n")
    out_path = tmp_path / "rows.csv"
    argv = [path, "--x", "model.grid=21:41:3", "--formula", "per-period", "--quiet"]

    code, _, err = run([*argv, "--out", str(out_path)], capsys)
    rows = run_json(argv, capsys)

    assert code == 0, err
    with open(out_path, newline="") as stream:
        assert [row["model.grid"] for row in csv.DictReader(stream)] == ["21", "31", "41"]
    assert [json.dumps(row["model.grid"]) for row in rows] == ["21", "31", "41"]


def test_interrupted_csv_keeps_old_file(tmp_path, capsys, monkeypatch):
    # Writing in place would empty the earlier file before the first row.
    path = write_fixture(tmp_path)
    out_path = tmp_path / "rows.csv"
    out_path.write_text("earlier rows\n")

    def write_part_then_interrupt(results, stream):
        stream.write("parties.*.discount,status\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "write_csv", write_part_then_interrupt)
    code, _, err = run([path, "--x", "parties.*.discount=0.5:0.9:3", "--formula", "per-period",
                        "--out", str(out_path), "--quiet"], capsys)

    assert code == 130
    assert err.strip() == "interrupted"
    assert out_path.read_text() == "earlier rows\n"
    assert sorted(item.name for item in tmp_path.iterdir()) == ["rows.csv", "treaty.yaml"]


def fail_savefig(monkeypatch):
    """Make matplotlib's write of the plot fail after a first part, as at a file size limit."""
    from matplotlib.figure import Figure

    def write_part_then_fail(figure, stream, **options):
        stream.write(b"\x89PNG partial")
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(Figure, "savefig", write_part_then_fail)


def test_failed_plot_keeps_rows_and_old_file(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    path = write_fixture(tmp_path)
    out_path = tmp_path / "rows.csv"
    plot_path = tmp_path / "sweep.png"
    plot_path.write_bytes(b"earlier plot")
    fail_savefig(monkeypatch)

    code, out, err = run([path, "--x", "parties.*.discount=0.5:0.9:3", "--formula", "per-period",
                          "--out", str(out_path), "--plot", str(plot_path), "--quiet"], capsys)

    assert code == 2
    assert err.splitlines() == [f"error: {plot_path}: cannot write the plot: File too large"]
    # The table and the CSV file still hold every solved point.
    assert [line.split()[0] for line in out.splitlines()[2:5]] == ["0.5", "0.7", "0.9"]
    assert f"wrote {out_path}" in out
    assert f"wrote {plot_path}" not in out
    assert len(list(csv.DictReader(out_path.open()))) == 3
    assert plot_path.read_bytes() == b"earlier plot"
    assert sorted(item.name for item in tmp_path.iterdir()) == ["rows.csv", "sweep.png", "treaty.yaml"]


def test_failed_plot_keeps_json_rows(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    path = write_fixture(tmp_path)
    plot_path = tmp_path / "sweep.png"
    fail_savefig(monkeypatch)

    code, out, err = run([path, "--x", "parties.*.discount=0.5:0.9:3", "--formula", "per-period",
                          "--plot", str(plot_path), "--json", "--quiet"], capsys)

    assert code == 2
    assert err.splitlines() == [f"error: {plot_path}: cannot write the plot: File too large"]
    assert len(json.loads(out)) == 3
    assert not plot_path.exists()


def test_failed_csv_keeps_plot_and_rows(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    path = write_fixture(tmp_path)
    out_path = tmp_path / "rows.csv"
    out_path.write_text("earlier rows\n")
    plot_path = tmp_path / "sweep.png"

    def write_part_then_fail(results, stream):
        stream.write("parties.*.discount,status\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sweep, "write_csv", write_part_then_fail)
    code, out, err = run([path, "--x", "parties.*.discount=0.5:0.9:3", "--formula", "per-period",
                          "--out", str(out_path), "--plot", str(plot_path), "--quiet"], capsys)

    assert code == 2
    assert err.splitlines() == [f"error: {out_path}: cannot write the CSV file: No space left on device"]
    assert [line.split()[0] for line in out.splitlines()[2:5]] == ["0.5", "0.7", "0.9"]
    assert f"wrote {plot_path}" in out
    assert f"wrote {out_path}" not in out
    assert png_size(plot_path) == (900, 720)
    assert out_path.read_text() == "earlier rows\n"


def test_plot_error_reported_when_stdout_fails(tmp_path, capsys, monkeypatch):
    # The files are written before the rows are printed, and a failed file is
    # still reported when printing the rows fails too.
    pytest.importorskip("matplotlib")
    path = write_fixture(tmp_path)
    out_path = tmp_path / "rows.csv"
    plot_path = tmp_path / "sweep.png"
    fail_savefig(monkeypatch)

    class FullStream(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("sys.stdout", FullStream())
    code = main(["sweep", path, "--x", "parties.*.discount=0.5:0.9:3", "--formula", "per-period",
                 "--out", str(out_path), "--plot", str(plot_path), "--quiet"])

    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {plot_path}: cannot write the plot: File too large",
        "error: cannot write the output: No space left on device",
    ]
    assert len(list(csv.DictReader(out_path.open()))) == 3


@pytest.mark.skipif(os.name != "posix", reason="needs the POSIX file size limit")
def test_plot_under_file_size_limit(tmp_path):
    # The real failure: `ulimit -f` with SIGXFSZ ignored makes the PNG write
    # fail with EFBIG, deep inside Pillow.
    pytest.importorskip("matplotlib")
    import resource
    import signal
    import subprocess
    import sys

    path = write_fixture(tmp_path)
    out_path = tmp_path / "rows.csv"
    plot_path = tmp_path / "sweep.png"
    plot_path.write_bytes(b"earlier plot")

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    completed = subprocess.run(
        [sys.executable, "-m", "engine.cli", "sweep", path, "--x", "parties.*.discount=0.5:0.9:3",
         "--formula", "per-period", "--out", str(out_path), "--plot", str(plot_path), "--quiet"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120,
        preexec_fn=limit_file_size,
    )

    assert completed.stderr.splitlines() == [f"error: {plot_path}: cannot write the plot: File too large"]
    assert completed.returncode == 2
    assert f"wrote {out_path}" in completed.stdout
    assert [line.split()[0] for line in completed.stdout.splitlines()[2:5]] == ["0.5", "0.7", "0.9"]
    assert plot_path.read_bytes() == b"earlier plot"
    assert sorted(item.name for item in tmp_path.iterdir()) == ["rows.csv", "sweep.png", "treaty.yaml"]


@pytest.mark.parametrize("stream", [None, "full"], ids=["closed", "full"])
def test_progress_unwritable_stderr_keeps_sweeping(monkeypatch, stream):
    # A closed or full stderr ends the progress report, not the sweep.
    class FullStream(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("sys.stderr", FullStream() if stream == "full" else None)
    clock = iter([100.0, 101.5, 102.5, 103.5])
    monkeypatch.setattr(sweep.time, "monotonic", lambda: next(clock))

    bar = sweep.Progress(3, enabled=True)
    bar.update(1)
    bar.update(2)
    bar.close()

    assert not bar.enabled
