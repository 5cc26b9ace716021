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


def main() -> int:
    """Import and run the ``treaty`` command; return its exit code."""
    try:
        from engine.cli import main as run_command

        return run_command()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
