"""The ``--workers`` bounds, the same for every command that starts worker processes."""

import os
import subprocess
import sys

import pytest

from engine import worker_pool
from engine.cli import main

FLEXIBLE = os.path.join(os.path.dirname(__file__), os.pardir, "treaties", "cyber-flexible.yaml")

COMMANDS = {
    "sweep": ["sweep", FLEXIBLE, "--x", "environment.persistence=0.1:0.9:3"],
    "vary": ["score", FLEXIBLE, "--vary", "environment.persistence=uniform(0.1,0.9)", "--draws", "3"],
    "simulate": ["simulate", FLEXIBLE, "--paths", "10"],
    "compare": ["compare", FLEXIBLE, FLEXIBLE, "--simulate", "--paths", "10"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("workers, message", [
    ("0", "--workers must be at least 1, got 0"),
    # Two processors allow 4 * 2 = 8 workers.
    ("9", "--workers must be at most 8 (4 per processor, and this process may use 2), got 9"),
])
def test_worker_count_rejected(monkeypatch, capsys, command, workers, message):
    monkeypatch.setattr(worker_pool, "available_processors", lambda: 2)

    assert main([*COMMANDS[command], "--workers", workers]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert "Traceback" not in captured.err


def test_processors_follow_affinity():
    # Limited to one processor, as `taskset -c 0` would, a process may start 4 workers.
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no processor affinity on this platform")
    code = ("import os, sys; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from engine.cli import main; sys.exit(main(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", code, *COMMANDS["simulate"], "--workers", "5"],
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 2
    assert "--workers must be at most 4 (4 per processor, and this process may use 1), got 5" in result.stderr
