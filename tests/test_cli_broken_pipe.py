"""`treaty` writing to a pipe whose reader is gone, as in `treaty score --json FILE | head`.

Each command runs in a subprocess whose stdout pipe the test closes before the
command writes anything. Closing it at once, instead of after reading a few bytes,
makes the outcome certain: every write then fails, whatever the output size and
the timing. Python ignores SIGPIPE, so the write raises BrokenPipeError, which the
command must absorb without a traceback.

The commands run with and without PYTHONUNBUFFERED. Unbuffered, the first write
fails. Buffered, short output fails only at the last flush, which the interpreter
performs at exit unless the command flushes first.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import EXIT_BROKEN_PIPE

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = str(ROOT / "tests" / "data" / "minimal.yaml")
# The required `parties` field is missing, so `check` rejects this file.
INVALID = "schema: treaty/v1\nname: No parties\n"

COMMANDS = {
    "check": ["check", MINIMAL],
    "schema": ["schema"],
    "score": ["score", MINIMAL],
    "score-json": ["score", "--json", MINIMAL],
    "compare-json": ["compare", "--json", MINIMAL, MINIMAL],
    "simulate-json": ["simulate", "--json", "--paths", "50", "--seed", "1", MINIMAL],
}


def environment(buffered: bool) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    return env


def run_closed(arguments: list[str], buffered: bool, close_stderr: bool = False):
    """Run ``treaty`` with its stdout (and optionally stderr) already closed by the reader.

    Returns the exit status and whatever the command wrote to stderr.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *arguments],
        cwd=ROOT,
        env=environment(buffered),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()
    if close_stderr:
        process.stderr.close()
        return process.wait(timeout=120), ""
    stderr = process.stderr.read().decode()
    process.stderr.close()
    return process.wait(timeout=120), stderr


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("name", list(COMMANDS))
def test_closed_stdout_quiet(name, buffered):
    status, stderr = run_closed(COMMANDS[name], buffered)

    assert stderr == ""
    assert status == EXIT_BROKEN_PIPE


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_closed_stdout_sweep_quiet(buffered):
    # The sweep catches the closed pipe itself and reports success.
    status, stderr = run_closed(
        ["sweep", MINIMAL, "--x", "parties.A.discount=0.5:0.9:2", "--json", "--quiet"], buffered
    )

    assert stderr == ""
    assert status == 0


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_closed_stderr_quiet(tmp_path, buffered):
    # `treaty check BAD 2>&1 | head` closes the stream that carries the errors.
    # A second failure at exit would turn the status into 120.
    path = tmp_path / "invalid.yaml"
    path.write_text(INVALID)

    status, _ = run_closed(["check", str(path)], buffered, close_stderr=True)

    assert status == EXIT_BROKEN_PIPE


def test_open_stdout_unaffected():
    # The same command with a reader that stays reads the whole result.
    completed = subprocess.run(
        [sys.executable, "-m", "engine.cli", "check", MINIMAL],
        cwd=ROOT, env=environment(True), capture_output=True, text=True, timeout=120,
    )

    assert completed.returncode == 0
    assert completed.stdout == f"{MINIMAL}: ok\n"
    assert completed.stderr == ""
