"""The installed ``treaty`` command while the engine is still being imported."""

import subprocess
import sys
from pathlib import Path

from engine import cli, entry_point

ROOT = Path(__file__).resolve().parent.parent

# Ctrl-C arrives while ``engine.cli`` is being imported: a finder placed first
# on the import path sends SIGINT to the process when that import starts.
CTRL_C_DURING_IMPORT = """
import os
import signal
import sys

from engine.entry_point import main


class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "engine.cli":
            os.kill(os.getpid(), signal.SIGINT)
        return None


sys.meta_path.insert(0, CtrlC())
sys.exit(main())
"""


def test_ctrl_c_during_import():
    result = subprocess.run([sys.executable, "-c", CTRL_C_DURING_IMPORT, "check", "treaties/abm.yaml"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert result.returncode == 130
    assert result.stderr == "interrupted\n"
    assert result.stdout == ""


def test_runs_the_command():
    result = subprocess.run([sys.executable, "-c", "import sys; from engine.entry_point import main; "
                             "sys.exit(main())", "check", "treaties/abm.yaml"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0
    assert "abm.yaml" in result.stdout


def test_exit_code_matches_cli():
    assert entry_point.EXIT_INTERRUPTED == cli.EXIT_INTERRUPTED
    assert entry_point.EXIT_OUT_OF_MEMORY == cli.EXIT_SOLVER


# The imports run out of memory, as they can under a tight `ulimit -v`.
NO_MEMORY_DURING_IMPORT = CTRL_C_DURING_IMPORT.replace("os.kill(os.getpid(), signal.SIGINT)", "raise MemoryError")


def test_no_memory_during_import():
    result = subprocess.run([sys.executable, "-c", NO_MEMORY_DURING_IMPORT, "check", "treaties/abm.yaml"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert result.returncode == 3
    assert result.stderr == entry_point.START_FAILED + "\n"
    assert result.stdout == ""


# The system loader cannot map a compiled module, as under a tight `ulimit -v`.
NO_MAPPING_DURING_IMPORT = CTRL_C_DURING_IMPORT.replace(
    "os.kill(os.getpid(), signal.SIGINT)",
    "raise ImportError('libx.so: failed to map segment from shared object')")

# Any other import failure is a broken installation, whose traceback is kept.
BROKEN_IMPORT = CTRL_C_DURING_IMPORT.replace("os.kill(os.getpid(), signal.SIGINT)",
                                             "raise ImportError('no module named x')")


def test_no_memory_to_map_module():
    result = subprocess.run([sys.executable, "-c", NO_MAPPING_DURING_IMPORT, "check", "treaties/abm.yaml"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert result.returncode == 3
    assert result.stderr == entry_point.START_FAILED + "\n"


def test_other_import_error_kept():
    result = subprocess.run([sys.executable, "-c", BROKEN_IMPORT, "check", "treaties/abm.yaml"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert result.returncode == 1
    assert "ImportError: no module named x" in result.stderr
