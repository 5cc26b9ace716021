"""Entry point of the installed ``treaty`` command.

Importing the engine (numpy, pydantic and the treaty schema) takes about a
second, and Ctrl-C during the imports would end the command with Python's
traceback. This module imports nothing else first, so Ctrl-C at any time
after it has loaded prints ``interrupted`` and exits with 130, as it does
while a command runs.
"""

from __future__ import annotations

import sys

# The value of ``engine.cli.EXIT_INTERRUPTED``, repeated because that module is
# the slow import this one guards.
EXIT_INTERRUPTED = 130

# The value of ``engine.cli.EXIT_SOLVER``, which also covers running out of memory.
EXIT_OUT_OF_MEMORY = 3

# The part of the GNU C library loader's message that names a compiled module
# which does not fit in the memory left.
MAP_FAILED = "failed to map segment from shared object"

START_FAILED = ("error: not enough memory to start `treaty`: loading numpy and the engine "
                "failed; raise the memory limit (`ulimit -v`, or the batch system's)")


def main() -> int:
    """Import and run the ``treaty`` command; return its exit code."""
    try:
        try:
            from engine.cli import main as run_command
        except (MemoryError, ImportError) as error:
            # Under a tight limit such as `ulimit -v` the imports alone can fail:
            # Python runs out of memory, or the system loader cannot map a
            # compiled module. The command's own handler, which blames the
            # model, is not loaded yet.
            if isinstance(error, ImportError) and MAP_FAILED not in str(error):
                raise
            print(START_FAILED, file=sys.stderr)
            return EXIT_OUT_OF_MEMORY

        return run_command()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
