"""Sweeps, ``--vary`` draws and simulations on two workers, stopped by SIGTERM or Ctrl-C.

The command runs in its own process group. When stopped it must exit with the
shell's code for the signal (143 or 130) and leave no worker process behind,
because a worker that outlives it keeps the output pipe open and a reader waits
for ever.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLEXIBLE = str(ROOT / "treaties" / "cyber-flexible.yaml")
NEW_START = str(ROOT / "treaties" / "new-start.yaml")
RUN_MAIN = "import sys; from engine.cli import main; sys.exit(main())"

# Each takes far longer than the four seconds before the signal, so it is still
# running when stopped.
LONG_RUNS = {
    "sweep": ["sweep", FLEXIBLE, "--x", "environment.persistence=0.1:0.9:40", "--workers", "2", "--quiet"],
    "vary": ["score", FLEXIBLE, "--vary", "environment.persistence=uniform(0.1,0.9)",
             "--draws", "400", "--seed", "1", "--workers", "2"],
    "simulate": ["simulate", NEW_START, "--paths", "2000000", "--seed", "1", "--workers", "2"],
}

# The last line of a simulation stopped by Ctrl-C. Whether a block of paths has
# finished by then depends on the machine, and without one there is no report.
SIMULATE_INTERRUPTED = re.compile(r"^interrupted( after [\d,]+ of 2,000,000 paths; the report "
                                  r"covers only those paths and is marked partial)?$")


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGTERM are POSIX")
@pytest.mark.parametrize("run, stop", [
    pytest.param("sweep", signal.SIGTERM, id="sweep-SIGTERM"),
    pytest.param("vary", signal.SIGTERM, id="vary-SIGTERM"),
    pytest.param("simulate", signal.SIGTERM, id="simulate-SIGTERM"),
    # The sweep's Ctrl-C has its own test with the progress lines.
    pytest.param("vary", signal.SIGINT, id="vary-SIGINT"),
    pytest.param("simulate", signal.SIGINT, id="simulate-SIGINT"),
])
def test_stop_request_ends_workers(run, stop):
    command = [sys.executable, "-c", RUN_MAIN, *LONG_RUNS[run]]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    # Long enough for the workers to start and take their first tasks.
    time.sleep(4)
    assert process.poll() is None, process.stderr.read().decode()

    # SIGINT goes to the whole group, as Ctrl-C in a terminal sends it. SIGTERM
    # goes to the command alone, as `timeout` sends it.
    if stop == signal.SIGINT:
        os.killpg(process.pid, stop)
    else:
        process.send_signal(stop)
    try:
        # Waiting for the queued tasks instead would take minutes.
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"`treaty {LONG_RUNS[run][0]}` was still running 60 s after {stop.name}")

    assert process.returncode == 128 + stop
    assert b"Traceback" not in err
    if stop == signal.SIGINT and run == "vary":
        # The line counts the finished draws, whose report, if any, is on stdout.
        assert re.match(r"^interrupted after \d+ of 400 draws; ", err.decode().splitlines()[-1])
    elif stop == signal.SIGINT and run == "simulate":
        assert SIMULATE_INTERRUPTED.match(err.decode().splitlines()[-1])
    elif stop == signal.SIGINT:
        assert err.decode().splitlines()[-1] == "interrupted"

    # Every process of the group, workers included, is gone within a few seconds.
    deadline = time.monotonic() + 10
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("worker processes outlived the command")
        time.sleep(0.2)


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGTERM are POSIX")
def test_repeated_stop_requests_stop_once():
    # Ctrl-C pressed again, or a SIGTERM, while the command stops its workers
    # must not cut that cleanup short, which would print a traceback from inside it.
    command = [sys.executable, "-c", RUN_MAIN, *LONG_RUNS["simulate"]]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    time.sleep(4)
    assert process.poll() is None, process.stderr.read().decode()

    # SIGTERM right behind each SIGINT, as a batch system that also ends the job
    # would send it: both arrive before Python runs the first handler.
    for _ in range(20):
        try:
            os.killpg(process.pid, signal.SIGINT)
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            break
        time.sleep(0.01)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("`treaty simulate` was still running 60 s after Ctrl-C")

    assert process.returncode == 130
    assert b"Traceback" not in err
    assert SIMULATE_INTERRUPTED.match(err.decode().splitlines()[-1])
