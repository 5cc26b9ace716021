"""`treaty sweep` stopped by Ctrl-C or by running out of memory: the finished points are kept.

The sweeps use a closed form (``--formula``), so that a full sweep to compare
with takes milliseconds. A patched ``evaluate_point`` raises
``KeyboardInterrupt`` or ``MemoryError`` after a given number of points, as
Ctrl-C or a model too large for the memory left would.
"""

import csv
import json

import pytest

from engine import cli, sweep
from engine.sweep_results import NOT_RUN
from test_sweep_cli import run, write_fixture

X_AXIS = "parties.*.discount=0.5:0.9:5"
Y_AXIS = "environment.persistence=0.2:0.8:3"


def stop_after(monkeypatch, finished: int, error: type[BaseException]) -> None:
    """Make the point after the first ``finished`` ones raise ``error``."""
    evaluate = sweep.evaluate_point
    calls = []

    def evaluate_then_stop(*args, **kwargs):
        if len(calls) == finished:
            raise error()
        calls.append(args)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(sweep, "evaluate_point", evaluate_then_stop)


def full_rows(path, capsys, *axes):
    code, out, err = run([path, *axes, "--formula", "per-period", "--json", "--quiet"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_interrupt_keeps_finished_rows(tmp_path, capsys, monkeypatch):
    path = write_fixture(tmp_path)
    expected = full_rows(path, capsys, "--x", X_AXIS)
    out_path = tmp_path / "rows.csv"
    stop_after(monkeypatch, 2, KeyboardInterrupt)

    code, out, err = run([path, "--x", X_AXIS, "--formula", "per-period", "--json", "--quiet",
                          "--out", str(out_path)], capsys)

    assert code == cli.EXIT_INTERRUPTED
    assert err.splitlines() == [
        f"interrupted after 2 of 5 points; the output contains only those, and the other points "
        f"have status {NOT_RUN}"]
    rows = json.loads(out)
    assert rows[:2] == expected[:2]
    assert [row["status"] for row in rows] == ["ok", "ok", NOT_RUN, NOT_RUN, NOT_RUN]
    for row, full in zip(rows[2:], expected[2:]):
        assert row["parties.*.discount"] == full["parties.*.discount"]
        assert all(value is None for column, value in row.items()
                   if column not in ("parties.*.discount", "status")), row

    with open(out_path, newline="") as stream:
        csv_rows = list(csv.DictReader(stream))
    assert [row["status"] for row in csv_rows] == [row["status"] for row in rows]
    assert float(csv_rows[1]["terms"]) == expected[1]["terms"]
    assert float(csv_rows[1]["margin_A"]) == expected[1]["margin_A"]
    assert csv_rows[3]["terms"] == ""
    assert csv_rows[3]["agreement"] == ""
    assert sorted(item.name for item in tmp_path.iterdir()) == ["rows.csv", "treaty.yaml"]


def test_memory_error_keeps_finished_rows(tmp_path, capsys, monkeypatch):
    path = write_fixture(tmp_path)
    stop_after(monkeypatch, 3, MemoryError)

    code, out, err = run([path, "--x", X_AXIS, "--formula", "per-period", "--quiet"], capsys)

    assert code == cli.EXIT_SOLVER
    assert err.splitlines() == [
        cli.OUT_OF_MEMORY,
        f"stopped after 3 of 5 points; the output contains only those, and the other points "
        f"have status {NOT_RUN}"]
    table = out.splitlines()[2:]
    assert [line.split()[1] for line in table] == ["ok", "ok", "ok", NOT_RUN, NOT_RUN]
    assert table[4].split() == ["0.9", NOT_RUN, "-", "-", "-", "-", "-", "-", "-"]


def map_cells(out):
    """Return the cells of a printed map, top row first."""
    return [line.split()[-1] for line in out.splitlines()[1:4]]


def test_interrupt_map_marks_not_run(tmp_path, capsys, monkeypatch):
    path = write_fixture(tmp_path)
    argv = [path, "--x", X_AXIS, "--y", Y_AXIS, "--formula", "per-period", "--quiet"]
    _, complete, _ = run(argv, capsys)
    stop_after(monkeypatch, 7, KeyboardInterrupt)

    code, out, _ = run(argv, capsys)

    assert code == cli.EXIT_INTERRUPTED
    # y rises upwards, so the first 7 points are the bottom row and 2 of the middle one.
    top, middle, bottom = map_cells(complete)
    assert map_cells(out) == ["-----", middle[:2] + "---", bottom]
    lines = out.splitlines()
    assert lines[5].endswith("   - not run")
    assert "not run" not in complete
    assert lines[6].startswith("15 points, ")
    assert lines[6].endswith(f", 8 {NOT_RUN}")


def test_interrupt_before_first_point(tmp_path, capsys, monkeypatch):
    path = write_fixture(tmp_path)
    out_path = tmp_path / "rows.csv"
    out_path.write_text("earlier rows\n")
    stop_after(monkeypatch, 0, KeyboardInterrupt)

    code, out, err = run([path, "--x", X_AXIS, "--formula", "per-period", "--quiet",
                          "--out", str(out_path)], capsys)

    assert code == cli.EXIT_INTERRUPTED
    assert out == ""
    assert err.splitlines() == ["interrupted after 0 of 5 points; there is no result to report"]
    assert out_path.read_text() == "earlier rows\n"


def test_memory_error_before_first_point(tmp_path, capsys, monkeypatch):
    path = write_fixture(tmp_path)
    stop_after(monkeypatch, 0, MemoryError)

    code, out, err = run([path, "--x", X_AXIS, "--formula", "per-period", "--json"], capsys)

    assert code == cli.EXIT_SOLVER
    assert out == ""
    assert err.splitlines() == [cli.OUT_OF_MEMORY,
                                "stopped after 0 of 5 points; there is no result to report"]


@pytest.mark.parametrize(("finished", "statuses"), [
    # Stopped in the first design: the second never starts.
    pytest.param(3, ["ok"] * 3 + [NOT_RUN] * 7, id="first-design"),
    # Stopped in the second design, after the first has finished.
    pytest.param(6, ["ok"] * 6 + [NOT_RUN] * 4, id="second-design"),
])
def test_interrupt_compare_counts_both_designs(tmp_path, capsys, monkeypatch, finished, statuses):
    first = write_fixture(tmp_path, "first.yaml")
    second = write_fixture(tmp_path, "second.yaml", b=0.3)
    stop_after(monkeypatch, finished, KeyboardInterrupt)

    code, out, err = run([first, "--compare", second, "--x", X_AXIS, "--formula", "per-period",
                          "--json", "--quiet"], capsys)

    assert code == cli.EXIT_INTERRUPTED
    rows = json.loads(out)
    assert [row["status"] for row in rows] == statuses
    assert [row["design"] for row in rows] == [first] * 5 + [second] * 5
    assert err.splitlines()[-1].startswith(f"interrupted after {finished} of 10 points; ")


def test_interrupt_keeps_earlier_plot(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    path = write_fixture(tmp_path)
    plot_path = tmp_path / "sweep.png"
    plot_path.write_bytes(b"earlier plot")
    stop_after(monkeypatch, 2, KeyboardInterrupt)

    code, out, err = run([path, "--x", X_AXIS, "--formula", "per-period", "--quiet",
                          "--plot", str(plot_path)], capsys)

    assert code == cli.EXIT_INTERRUPTED
    assert plot_path.read_bytes() == b"earlier plot"
    assert "wrote" not in out
    assert err.splitlines()[0] == (f"warning: {plot_path} was not written, because the sweep "
                                   "stopped before its last point")


def test_run_sweep_interrupt_carries_rows(tmp_path, monkeypatch):
    # A caller of run_sweep that looks only for KeyboardInterrupt still stops on it.
    path = write_fixture(tmp_path)
    stop_after(monkeypatch, 4, KeyboardInterrupt)

    with pytest.raises(KeyboardInterrupt) as caught:
        sweep.run_sweep(path, [X_AXIS], formula="per-period", progress=False)

    assert isinstance(caught.value, sweep.SweepInterrupted)
    assert caught.value.finished == 4
    assert caught.value.total == 5
    assert [row["status"] for row in caught.value.results[0].rows] == ["ok"] * 4 + [NOT_RUN]


def test_run_sweep_memory_error_carries_rows(tmp_path, monkeypatch):
    path = write_fixture(tmp_path)
    stop_after(monkeypatch, 1, MemoryError)

    with pytest.raises(MemoryError) as caught:
        sweep.run_sweep(path, [X_AXIS], formula="per-period", progress=False)

    assert isinstance(caught.value, sweep.SweepOutOfMemory)
    assert caught.value.finished == 1
    # Raised outside the handler of the MemoryError, whose traceback could keep large arrays alive.
    assert caught.value.__context__ is None


def test_memory_error_in_solver_keeps_rows(tmp_path, capsys, monkeypatch):
    # numpy raises a subclass of MemoryError for an array larger than the memory left.
    import engine.score

    path = write_fixture(tmp_path)
    argv = [path, "--x", X_AXIS, "--json", "--quiet"]
    _, complete, _ = run(argv, capsys)
    score_game = engine.score.score_game
    calls = []

    def score_then_fail(*args, **kwargs):
        if len(calls) == 2:
            raise MemoryError("Unable to allocate 130. MiB for an array")
        calls.append(args)
        return score_game(*args, **kwargs)

    monkeypatch.setattr(engine.score, "score_game", score_then_fail)

    code, out, err = run(argv, capsys)

    assert code == cli.EXIT_SOLVER
    assert err.splitlines()[0] == cli.OUT_OF_MEMORY
    assert err.splitlines()[1].startswith("stopped after 2 of 5 points; ")
    rows = json.loads(out)
    assert rows[:2] == json.loads(complete)[:2]
    assert [row["status"] for row in rows[2:]] == [NOT_RUN] * 3
