"""Ctrl-C during ``treaty simulate`` and ``treaty compare --simulate``: the partial report.

The paths finished before Ctrl-C are whole blocks in block order, so the
partial report must equal the report of a complete run of that many paths with
the same seed, apart from the marks that it is partial.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import heartbeat, simulate
from engine.cli import main
from engine.worker_pool import WorkerPool
from helpers import ESCAPE, write_treaty

ROOT = Path(__file__).resolve().parents[1]

# Small blocks keep the runs short. The blocks still follow the rule of the
# real size: block k draws from child k of SeedSequence(seed).
BLOCK = 150
PATHS = 1000

# The functions that the interrupting replacements wrap, taken before any test replaces them.
SIMULATE_BLOCK = simulate.simulate_block
POOL_MAP = WorkerPool.map


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(simulate, "BLOCK_SIZE", BLOCK)


def interrupt_serial_blocks(monkeypatch, finished: int) -> None:
    """Make the block after the first ``finished`` ones raise KeyboardInterrupt, as Ctrl-C would."""
    calls = []

    def simulating(*args):
        calls.append(args)
        if len(calls) > finished:
            raise KeyboardInterrupt
        return SIMULATE_BLOCK(*args)

    monkeypatch.setattr(simulate, "simulate_block", simulating)


def interrupt_pool_results(monkeypatch, finished: int) -> None:
    """Make the pool's result stream raise KeyboardInterrupt after ``finished`` results.

    The workers run the real blocks, and the parent is interrupted while it
    waits for the next result, as on Ctrl-C.
    """
    def mapping(self, function, items, chunksize=1):
        results = POOL_MAP(self, function, items, chunksize)

        def stream():
            for index, result in enumerate(results):
                if index == finished:
                    raise KeyboardInterrupt
                yield result

        return stream()

    monkeypatch.setattr(WorkerPool, "map", mapping)


def without_partial_marks(report: dict) -> dict:
    """Return ``report`` without the keys that mark a partial report."""
    return {key: value for key, value in report.items()
            if key not in ("interrupted", "paths_requested")}


def test_simulate_text_equals_shorter_run(tmp_path, capsys, monkeypatch):
    path = write_treaty(tmp_path, "flexible", ESCAPE)
    assert main(["simulate", path, "--paths", str(3 * BLOCK), "--seed", "4"]) == 0
    complete = capsys.readouterr().out

    interrupt_serial_blocks(monkeypatch, 3)
    code = main(["simulate", path, "--paths", str(PATHS), "--seed", "4"])
    captured = capsys.readouterr()

    assert code == 130
    first, *rest = captured.out.splitlines()
    complete_first, *complete_rest = complete.splitlines()
    assert first == f"{complete_first} (partial: interrupted after {3 * BLOCK} of {PATHS} paths)"
    assert rest == complete_rest
    assert captured.err.splitlines() == [
        f"interrupted after {3 * BLOCK:,} of {PATHS:,} paths; "
        "the report covers only those paths and is marked partial"]


def test_simulate_json_equals_shorter_run(tmp_path, capsys, monkeypatch):
    path = write_treaty(tmp_path, "flexible", ESCAPE)
    assert main(["simulate", path, "--paths", str(2 * BLOCK), "--seed", "4", "--json"]) == 0
    complete = json.loads(capsys.readouterr().out)

    interrupt_serial_blocks(monkeypatch, 2)
    code = main(["simulate", path, "--paths", str(PATHS), "--seed", "4", "--json"])
    report = json.loads(capsys.readouterr().out)

    assert code == 130
    assert report["interrupted"] is True
    assert report["paths"] == 2 * BLOCK
    assert report["paths_requested"] == PATHS
    assert report["seed"] == 4
    assert without_partial_marks(report) == complete
    assert "interrupted" not in complete


@pytest.mark.parametrize("workers", [1, 2])
def test_simulate_interrupt_needs_whole_block(tmp_path, capsys, monkeypatch, workers):
    # With no whole block finished there is nothing to report. With one there is.
    path = write_treaty(tmp_path, "rigid")
    for finished, expected_paths in ((0, None), (1, BLOCK)):
        if workers == 1:
            interrupt_serial_blocks(monkeypatch, finished)
        else:
            interrupt_pool_results(monkeypatch, finished)
        code = main(["simulate", path, "--paths", str(PATHS), "--seed", "2", "--json",
                     "--workers", str(workers)])
        captured = capsys.readouterr()

        assert code == 130
        if expected_paths is None:
            assert captured.out == ""
            assert captured.err.splitlines() == ["interrupted"]
        else:
            assert json.loads(captured.out)["paths"] == expected_paths
            assert captured.err.startswith(f"interrupted after {expected_paths:,} of ")


def test_simulate_workers_join_blocks_in_order(tmp_path, capsys, monkeypatch):
    # Two workers finish blocks in any order, but the report holds only the
    # first blocks, joined in order, and the workers have stopped.
    path = write_treaty(tmp_path, "flexible", ESCAPE)
    assert main(["simulate", path, "--paths", str(4 * BLOCK), "--seed", "9", "--json"]) == 0
    complete = json.loads(capsys.readouterr().out)

    interrupt_pool_results(monkeypatch, 4)
    code = main(["simulate", path, "--paths", str(PATHS), "--seed", "9", "--json",
                 "--workers", "2"])
    report = json.loads(capsys.readouterr().out)

    assert code == 130
    assert report["paths"] == 4 * BLOCK
    assert without_partial_marks(report) == complete
    assert multiprocessing.active_children() == []


def test_simulate_progress_notes_end_before_report(tmp_path, capsys, monkeypatch):
    # A first note after a millisecond stands for a run longer than ten seconds.
    monkeypatch.setattr(heartbeat, "FIRST_NOTE_SECONDS", 0.001)
    path = write_treaty(tmp_path, "rigid")
    interrupt_serial_blocks(monkeypatch, 2)
    code = main(["simulate", path, "--paths", str(PATHS), "--seed", "2"])
    lines = capsys.readouterr().err.splitlines()

    assert code == 130
    assert lines[-1].startswith(f"interrupted after {2 * BLOCK:,} of {PATHS:,} paths; ")
    # The notes of the score and of the paths come first, and none claims that every path finished.
    notes = lines[:-1]
    assert all(line.startswith("simulate: ") or ": still solving, " in line for line in notes), lines
    assert any(line.startswith("simulate: ") for line in notes), lines
    assert not any(line.startswith(f"simulate: {PATHS:,} of ") for line in notes), lines


def test_compare_equals_shorter_run(tmp_path, capsys, monkeypatch):
    rigid = write_treaty(tmp_path, "rigid")
    flexible = write_treaty(tmp_path, "flexible", ESCAPE)
    files = [rigid, flexible]
    assert main(["compare", *files, "--simulate", "--paths", str(2 * BLOCK), "--seed", "5",
                 "--json"]) == 0
    complete = json.loads(capsys.readouterr().out)

    # Five blocks are two whole rounds over the two designs and block 2 of the
    # first design, which the report leaves out because the second design lacks it.
    interrupt_serial_blocks(monkeypatch, 5)
    code = main(["compare", *files, "--simulate", "--paths", str(PATHS), "--seed", "5", "--json"])
    captured = capsys.readouterr()
    result = json.loads(captured.out)

    assert code == 130
    simulation = result["simulation"]
    assert simulation["interrupted"] is True
    assert simulation["paths_requested"] == PATHS
    assert [design["paths"] for design in simulation["designs"]] == [2 * BLOCK, 2 * BLOCK]
    assert all(design["interrupted"] is True for design in simulation["designs"])
    assert result["scores"] == complete["scores"]
    assert set(simulation) == set(complete["simulation"]) | {"interrupted", "paths_requested"}
    assert simulation["seed"] == complete["simulation"]["seed"]
    assert ([without_partial_marks(design) for design in simulation["designs"]]
            == complete["simulation"]["designs"])
    assert captured.err.splitlines() == [
        f"interrupted after {2 * BLOCK:,} of {PATHS:,} paths per design; "
        "the report covers only those paths and is marked partial"]


def test_compare_text_marks_partial(tmp_path, capsys, monkeypatch):
    rigid = write_treaty(tmp_path, "rigid")
    flexible = write_treaty(tmp_path, "flexible", ESCAPE)
    files = [rigid, flexible]
    assert main(["compare", *files, "--simulate", "--paths", str(BLOCK), "--seed", "5"]) == 0
    complete = capsys.readouterr().out.splitlines()

    interrupt_serial_blocks(monkeypatch, 2)
    assert main(["compare", *files, "--simulate", "--paths", str(PATHS), "--seed", "5"]) == 130
    partial = capsys.readouterr().out.splitlines()

    assert len(partial) == len(complete)
    changed = [(old, new) for old, new in zip(complete, partial) if old != new]
    assert changed == [
        ("simulation with common random numbers, seed 5",
         "simulation with common random numbers, seed 5 "
         f"(partial: interrupted after {BLOCK} of {PATHS} paths per design)"),
        *[(line, f"{line} (partial: interrupted after {BLOCK} of {PATHS} paths)")
          for line in complete if line.startswith(("rigid: ", "flexible: "))],
    ]


# ---------------------------------------------------------------- Ctrl-C to a process

# The command with blocks of BLOCK paths and a first progress note after 0.2 s,
# so that the test can wait for finished blocks before it sends Ctrl-C.
RUN_MAIN = (f"import sys; from engine import heartbeat, simulate; simulate.BLOCK_SIZE = {BLOCK}; "
            "heartbeat.FIRST_NOTE_SECONDS = 0.2; from engine.cli import main; sys.exit(main())")
NOTE = re.compile(r"^simulate: ([\d,]+) of ")


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
def test_ctrl_c_with_workers_reports_partial(tmp_path, capsys, monkeypatch):
    path = str(ROOT / "treaties" / "new-start.yaml")
    requested = 2_000_000
    command = [sys.executable, "-c", RUN_MAIN, "simulate", path, "--paths", str(requested),
               "--seed", "3", "--workers", "2", "--json"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        # Wait for a progress note that counts finished blocks.
        while True:
            line = process.stderr.readline().decode()
            assert line, "the command ended before any block finished"
            match = NOTE.match(line)
            if match and int(match.group(1).replace(",", "")) >= 2 * BLOCK:
                break
            assert time.monotonic() < deadline, "no block finished within 120 s"
        # Ctrl-C in a terminal sends SIGINT to the whole process group.
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert process.returncode == 130
    assert b"Traceback" not in err
    last = err.decode().splitlines()[-1]
    match = re.match(r"^interrupted after ([\d,]+) of 2,000,000 paths; the report covers only "
                     r"those paths and is marked partial$", last)
    assert match, last
    finished = int(match.group(1).replace(",", ""))
    assert finished % BLOCK == 0

    report = json.loads(out)
    assert report["paths"] == finished
    assert report["paths_requested"] == requested
    assert main(["simulate", path, "--paths", str(finished), "--seed", "3", "--json"]) == 0
    assert without_partial_marks(report) == json.loads(capsys.readouterr().out)


class ClosedPipe:
    """A stdout whose reader has gone, as in `treaty simulate ... | head -1` after the first line."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        pass

    def fileno(self):
        raise OSError("no file descriptor")


@pytest.mark.parametrize("command", [["simulate"], ["compare", "--simulate"]])
def test_interrupt_counted_when_reader_gone(tmp_path, capsys, monkeypatch, command):
    # Ctrl-C stopped the run, not the reader, so the count and status 130 still follow.
    path = write_treaty(tmp_path, "flexible", ESCAPE)
    files = [path] if command == ["simulate"] else [path, path]
    interrupt_serial_blocks(monkeypatch, 4)
    monkeypatch.setattr(sys, "stdout", ClosedPipe())

    code = main([command[0], *files, *command[1:], "--paths", str(PATHS), "--seed", "4"])

    # Four blocks are two whole rounds when two designs share them.
    finished = 4 * BLOCK // len(files)
    assert code == 130
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"interrupted after {finished:,} of {PATHS:,} paths")
