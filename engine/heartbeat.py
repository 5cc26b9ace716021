"""A line on stderr while a long solve runs, so that a silent terminal is not taken for a hang.

Most treaties score in a second or two, but a fine period on a treaty with
provisions can take minutes (see docs/benchmarks.md). The solver has no
natural points at which to report a fraction done. So the command reports
the time spent instead, at 10 s, 20 s, 40 s and so on. The doubling keeps a
long run to a few lines.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

FIRST_NOTE_SECONDS = 10.0


class Heartbeat:
    """Write ``"{label}: still solving, N s"`` to ``stream`` at doubling intervals until the block ends.

    Used as a context manager around the work. The lines come from a daemon
    thread, which stops as soon as the block ends, so that no line follows
    the command's own output.
    """

    def __init__(self, label: str, stream: TextIO | None = None, first: float = FIRST_NOTE_SECONDS):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.first = first
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        due = self.first
        while not self._done.wait(max(0.0, due - (time.monotonic() - self._started))):
            elapsed = time.monotonic() - self._started
            try:
                self.stream.write(f"{self.label}: still solving, {elapsed:.0f} s\n")
                self.stream.flush()
            except (OSError, ValueError):
                # A closed or broken stream ends the notes, not the solve.
                return
            due *= 2.0
