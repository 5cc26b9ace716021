"""`treaty sweep --workers 2` ended by SIGTERM, as a batch system or `timeout` would end it.

The command runs in its own process group. After SIGTERM it must exit with the
shell's code for that signal (143) and leave no worker process behind, because a
worker that outlives it keeps the output pipe open and a reader waits for ever.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLEXIBLE = str(ROOT / "treaties" / "cyber-flexible.yaml")
RUN_MAIN = "import sys; from engine.cli import main; sys.exit(main())"


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGTERM are POSIX")
def test_sigterm_stops_sweep_workers():
    command = [sys.executable, "-c", RUN_MAIN, "sweep", FLEXIBLE,
               "--x", "environment.persistence=0.1:0.9:40", "--workers", "2", "--quiet"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    # Long enough for the workers to start and take their first points.
    time.sleep(4)
    assert process.poll() is None, process.stderr.read().decode()

    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)

    assert process.returncode == 128 + signal.SIGTERM
    assert b"Traceback" not in err
    # Every process of the group, workers included, is gone within a few seconds.
    deadline = time.monotonic() + 10
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "worker processes outlived the command"
        time.sleep(0.2)
