"""`treaty sweep` request checks, interrupts, comparisons and unbounded lifetimes.

A request that cannot run must fail with exit code 2 and one ``error:`` line
before the first grid point is scored. The tests replace ``evaluate_point``
with a function that fails the test, so a check that runs too late shows up
as a failure rather than as a slow test.
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine import sweep
from engine.sweep_axes import MAX_AXIS_POINTS, MAX_TOTAL_POINTS
from test_sweep_cli import DURATION, run, write_fixture

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_solving(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a grid point was scored although the request is invalid")

    monkeypatch.setattr(sweep, "evaluate_point", fail)


def assert_one_error(code, out, err, *fragments):
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error: " in lines[0]
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


# --------------------------------------------------------------------------
# Output paths
# --------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--out", "--plot"])
def test_output_in_missing_directory(tmp_path, capsys, no_solving, option):
    path = write_fixture(tmp_path)
    suffix = ".csv" if option == "--out" else ".png"
    target = str(tmp_path / "absent" / f"x{suffix}")
    code, out, err = run([path, "--x", "parties.*.discount=0.5:0.9:3", option, target], capsys)
    assert_one_error(code, out, err, option, "not found", str(tmp_path / "absent"))


@pytest.mark.parametrize("option", ["--out", "--plot"])
def test_output_is_directory(tmp_path, capsys, no_solving, option):
    path = write_fixture(tmp_path)
    suffix = ".csv" if option == "--out" else ".png"
    directory = tmp_path / f"d{suffix}"
    directory.mkdir()
    code, out, err = run([path, "--x", "parties.*.discount=0.5:0.9:3", option, str(directory)], capsys)
    assert_one_error(code, out, err, option, "is a directory")


def test_compare_empty_name(tmp_path, capsys, no_solving):
    # An empty name must not quietly drop the comparison.
    path = write_fixture(tmp_path)
    code, out, err = run([path, "--x", "parties.*.discount=0.5:0.9:3", "--compare", ""], capsys)
    assert_one_error(code, out, err, "--compare", "the name is empty")


def test_out_directory_without_suffix_named_as_directory(tmp_path, capsys, no_solving):
    # A directory is the more useful message than the missing .csv suffix.
    path = write_fixture(tmp_path)
    code, out, err = run([path, "--x", "parties.*.discount=0.5:0.9:3", "--out", str(tmp_path)], capsys)
    assert_one_error(code, out, err, "--out", "it is a directory; give a file name ending in .csv")


@pytest.mark.parametrize("option", ["--out", "--plot"])
def test_output_empty_name(tmp_path, capsys, no_solving, option):
    path = write_fixture(tmp_path)
    code, out, err = run([path, "--x", "parties.*.discount=0.5:0.9:3", option, ""], capsys)
    assert_one_error(code, out, err, option, "the name is empty")


@pytest.mark.parametrize("option", ["--out", "--plot"])
def test_output_under_a_file(tmp_path, capsys, no_solving, option):
    path = write_fixture(tmp_path)
    suffix = ".csv" if option == "--out" else ".png"
    parent = tmp_path / "notes.txt"
    parent.write_text("not a directory\n")
    code, out, err = run([path, "--x", "parties.*.discount=0.5:0.9:3", option, str(parent / f"x{suffix}")],
                         capsys)
    assert_one_error(code, out, err, option, "is a file, not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to any directory")
def test_output_directory_not_writable(tmp_path, capsys, no_solving):
    path = write_fixture(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, out, err = run(
            [path, "--x", "parties.*.discount=0.5:0.9:3", "--out", str(locked / "rows.csv")], capsys
        )
    finally:
        locked.chmod(0o700)
    assert_one_error(code, out, err, "not writable")


@pytest.mark.parametrize("name", ["rows.txt", "rows.json", "treaty.yaml", "rows"])
def test_out_needs_csv_suffix(tmp_path, capsys, no_solving, name):
    path = write_fixture(tmp_path)
    code, out, err = run([path, "--x", "parties.*.discount=0.5:0.9:3", "--out", str(tmp_path / name)], capsys)
    assert_one_error(code, out, err, "expected a name ending in .csv")


def test_out_rejects_input_file(tmp_path, capsys, no_solving):
    # The treaty file ends in .csv so that only the check on the input file applies.
    # It is named through a detour, so the paths match only once resolved.
    path = write_fixture(tmp_path, name="treaty.csv")
    original = Path(path).read_text()
    (tmp_path / "sub").mkdir()
    detour = str(tmp_path / "sub" / ".." / "treaty.csv")
    code, out, err = run([path, "--x", "parties.*.discount=0.5:0.9:3", "--out", detour], capsys)
    assert_one_error(code, out, err, "is the treaty file", "overwritten")
    assert Path(path).read_text() == original


def test_out_rejects_compare_file(tmp_path, capsys, no_solving):
    first = write_fixture(tmp_path, "first.yaml")
    second = write_fixture(tmp_path, "second.csv")
    original = Path(second).read_text()
    code, out, err = run(
        [first, "--x", "parties.*.discount=0.5:0.9:3", "--compare", second, "--out", second], capsys
    )
    assert_one_error(code, out, err, "is the treaty file")
    assert Path(second).read_text() == original


def test_plot_rejects_input_file(tmp_path, capsys, no_solving):
    path = write_fixture(tmp_path, name="treaty.png")
    code, out, err = run([path, "--x", "parties.*.discount=0.5:0.9:3", "--plot", path], capsys)
    assert_one_error(code, out, err, "--plot", "is the treaty file")


def test_out_accepts_upper_case_suffix(tmp_path, capsys):
    path = write_fixture(tmp_path)
    target = tmp_path / "ROWS.CSV"
    code, _, err = run(
        [path, "--x", "parties.*.discount=0.5:0.9:2", "--formula", "printed", "--out", str(target), "--quiet"],
        capsys,
    )
    assert code == 0, err
    assert target.read_text().startswith("parties.*.discount,status")


# --------------------------------------------------------------------------
# Grid size
# --------------------------------------------------------------------------


def test_axis_point_limit(tmp_path, capsys, no_solving):
    path = write_fixture(tmp_path)
    code, out, err = run([path, "--x", "parties.A.discount=0.1:0.9:100000000000"], capsys)
    assert_one_error(code, out, err, f"at most {MAX_AXIS_POINTS:,} points", "coarser grid")


def test_axis_at_limit_accepted(tmp_path):
    # Only the grid of the largest allowed axis is computed. No point is scored.
    path, values = sweep.parse_axis(f"parties.A.discount=0.1:0.9:{MAX_AXIS_POINTS}")
    assert len(values) == MAX_AXIS_POINTS


def test_total_point_limit(tmp_path, capsys, no_solving):
    # 5,000 x 5,000 = 25,000,000 points: each axis is within its limit, the total is not.
    path = write_fixture(tmp_path)
    code, out, err = run(
        [path, "--x", "parties.A.discount=0.1:0.9:5000", "--y", "parties.B.discount=0.1:0.9:5000"],
        capsys,
    )
    assert_one_error(code, out, err, "25,000,000 points", f"at most {MAX_TOTAL_POINTS:,}", "coarser grid")


def test_million_per_axis_rejected(tmp_path, capsys, no_solving):
    path = write_fixture(tmp_path)
    code, out, err = run(
        [path, "--x", "parties.A.discount=0.1:0.9:1000000", "--y", "parties.B.discount=0.1:0.9:1000000"],
        capsys,
    )
    assert_one_error(code, out, err, "coarser grid")


# --------------------------------------------------------------------------
# Interrupts
# --------------------------------------------------------------------------


def _live_group_members(group: int) -> list[int]:
    """Return the processes of ``group`` that still run (zombies excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command name: state, ppid, pgrp.
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("workers", [1, 2])
def test_interrupt_writes_finished_points(tmp_path, workers):
    # Scoring 5,000 points takes tens of seconds, so the sweep is still running
    # when its first progress line appears (after one second). SIGINT goes to the
    # whole process group, as Ctrl-C in a terminal does.
    points = 5000
    path = write_fixture(tmp_path)
    out_path = tmp_path / "rows.csv"
    command = [
        sys.executable, "-c", "import sys; from engine.cli import main; sys.exit(main())", "sweep", path,
        "--x", f"parties.A.discount=0.1:0.9:{points}", "--workers", str(workers), "--out", str(out_path),
    ]
    process = subprocess.Popen(
        command, cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        first_line = process.stderr.readline()
        assert first_line.startswith("sweep: "), first_line
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    # More progress lines may come before the signal arrives, then the count.
    lines = err.strip().splitlines()
    assert process.returncode == 130
    assert all(line.startswith("sweep: ") for line in lines[:-1]), err
    counted = re.fullmatch(r"interrupted after (\d+) of 5,000 points; the output contains only "
                           r"those, and the other points have status not_run", lines[-1])
    assert counted, err
    finished = int(counted.group(1))
    assert 0 < finished < points

    with open(out_path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    statuses = [row["status"] for row in rows]
    assert statuses == ["ok"] * finished + ["not_run"] * (points - finished)
    table = out.splitlines()
    assert table[-1] == f"wrote {out_path}"
    assert [line.split()[1] for line in table[2:-1]] == statuses

    # The rows are the first points of the grid, each with its own values.
    x_values = np.linspace(0.1, 0.9, points)
    assert [float(row["parties.A.discount"]) for row in rows] == list(x_values)
    loaded = sweep.read_treaty_mapping(path)
    axes = sweep.build_axes(loaded.data, [f"parties.A.discount=0.1:0.9:{points}"])
    for index in (0, finished - 1):
        expected = sweep.evaluate_point(loaded.data, loaded.positions, path, axes,
                                        [float(x_values[index])], "engine", ["A", "B"])
        assert float(rows[index]["terms"]) == round(expected["terms"], 8)
        assert float(rows[index]["margin_A"]) == expected["margin_A"]

    deadline = time.monotonic() + 10
    while _live_group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _live_group_members(process.pid) == []


# --------------------------------------------------------------------------
# Comparisons and invalid files
# --------------------------------------------------------------------------


def test_compare_invalid_file_exit_2(tmp_path, capsys, no_solving):
    first = write_fixture(tmp_path, "first.yaml")
    second = Path(write_fixture(tmp_path, "second.yaml"))
    # B's discount factor (line 13) is out of range, and the sweep changes only A's.
    head, _, tail = second.read_text().rpartition("discount: 0.9")
    second.write_text(head + "discount: 1.5" + tail)
    assert "discount: 1.5" in second.read_text()

    code, out, err = run([first, "--x", "parties.A.discount=0.1:0.9:2", "--compare", str(second)], capsys)
    assert_one_error(code, out, err, f"{second}:13:", "parties[1].discount")


def test_invalid_swept_field_is_not_file_error(tmp_path, capsys):
    # The file as written is invalid only in the swept field, which every grid
    # value replaces, so the sweep runs and every point is scored.
    path = Path(write_fixture(tmp_path))
    path.write_text(path.read_text().replace("discount: 0.9", "discount: 1.5", 1))
    code, out, err = run(
        [str(path), "--x", "parties.A.discount=0.5:0.9:2", "--formula", "printed", "--json", "--quiet"],
        capsys,
    )
    assert code == 0, err
    assert [row["status"] for row in json.loads(out)] == ["ok", "ok"]


def test_compare_leaves_out_invalid_points(tmp_path, capsys):
    # A term of 1.5 years is a whole number of six-month periods but not of
    # one-year periods, so the middle point is invalid under the first file
    # only. The per-period threshold is t = b (1 - d)(2 - d p) / (1 - d p) with
    # b = 0.2 and d, p per period: 0.056 for one-year periods (d = 0.9, p = 0.5)
    # and 0.041 for six-month ones (d = 0.9 ** 0.5, p = 0.5 ** 0.5). Both are
    # below 0.5, so the zone [t, 1 - t] is never empty and both files agree at
    # every valid point. No point may count as agreement under one design only.
    first = write_fixture(tmp_path, "first.yaml", provisions=DURATION)
    second = Path(write_fixture(tmp_path, "second.yaml", provisions=DURATION))
    second.write_text(second.read_text().replace("name: Sweep fixture\n", "name: Sweep fixture\nperiod: 6 months\n"))

    argv = [first, "--x", "provisions.duration.term=1:2:3", "--compare", str(second), "--formula", "per-period"]
    code, out, err = run([*argv, "--json", "--quiet"], capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert [row["status"] for row in rows] == ["ok", "invalid", "ok", "ok", "ok", "ok"]
    assert [row["agreement"] for row in rows] == [True, None, True, True, True, True]

    code, out, err = run([*argv, "--quiet"], capsys)
    assert code == 0, err
    assert f"agreement only under {first}: 0 points; only under {second}: 0 points" in out
    assert "1 point not scored under one design or both, left out" in out


# --------------------------------------------------------------------------
# Unbounded lifetimes
# --------------------------------------------------------------------------


def test_unbounded_lifetime_outputs(tmp_path, capsys):
    # Without provisions nothing can end the treaty once it is signed, so with
    # agreement (delta = 0.9) the lifetime is unbounded. At delta = 0 and b = 0.3
    # A needs gamma >= 0.6 and B needs gamma <= 0.4, so there is no agreement and
    # no lifetime to report.
    path = write_fixture(tmp_path, b=0.3)
    out_path = tmp_path / "rows.csv"
    argv = [path, "--x", "parties.*.discount=0:0.9:2", "--quiet"]

    code, out, err = run([*argv, "--json"], capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert [row["agreement"] for row in rows] == [False, True]
    assert rows[0]["expected_lifetime_years"] is None
    assert rows[1]["expected_lifetime_years"] == "inf"

    code, out, err = run([*argv, "--out", str(out_path)], capsys)
    assert code == 0, err
    with out_path.open(newline="") as stream:
        cells = [row["expected_lifetime_years"] for row in csv.DictReader(stream)]
    assert cells == ["", "inf"]

    table_rows = [line.split() for line in out.splitlines()[2:4]]
    assert table_rows[0][-1] == "-"
    assert table_rows[1][-1] == "unbounded"


def test_closed_form_lifetime_not_available(tmp_path, capsys):
    path = write_fixture(tmp_path)
    code, out, err = run(
        [path, "--x", "parties.*.discount=0.5:0.9:2", "--formula", "printed", "--json", "--quiet"], capsys
    )
    assert code == 0, err
    assert [row["expected_lifetime_years"] for row in json.loads(out)] == [None, None]


def test_summary_line_singular(tmp_path, capsys):
    path = write_fixture(tmp_path)
    code, out, err = run(
        [path, "--x", "parties.A.discount=0.9:0.9:2", "--y", "parties.B.discount=0.5:0.9:2",
         "--formula", "printed", "--quiet"],
        capsys,
    )
    assert code == 0, err
    assert "4 points, 4 with agreement" in out
    assert sweep.count_text(1) == "1 point"
    assert sweep.count_text(0) == "0 points"
