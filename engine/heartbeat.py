"""Lines on stderr while a long command runs, so that a silent terminal is not taken for a hang.

Most treaties score in a second or two, but a fine period on a treaty with
provisions can take minutes (see docs/benchmarks.md). The solver has no
natural points at which to report a fraction done. So the command reports
the time spent instead, at 10 s, 20 s, 40 s and so on. The doubling keeps a
long run to a few lines.

Simulated paths and ``--vary`` draws come in chunks, so ``ProgressNotes``
reports the fraction done on the same schedule.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

FIRST_NOTE_SECONDS = 10.0
# The maximum interval between two progress notes. Simulations and draws can
# run for hours, and a purely doubling interval would leave the second half of
# such a run without a line.
MAX_NOTE_INTERVAL = 600.0


class Heartbeat:
    """Write ``"{label}: still solving, N s"`` to ``stream`` at doubling intervals until the block ends.

    Used as a context manager around the work. The lines come from a daemon
    thread, which stops as soon as the block ends, so that no line follows
    the command's own output. ``first`` defaults to ``FIRST_NOTE_SECONDS``,
    read when the object is created.
    """

    def __init__(self, label: str, stream: TextIO | None = None, first: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.first = first if first is not None else FIRST_NOTE_SECONDS
        if self.first <= 0:
            # The interval doubles from the first note time, so zero would never grow.
            raise ValueError(f"the first note time must be positive, got {self.first}")
        self.clock = clock
        self.due = self.first
        self.notes_written = 0
        self._started = clock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._started = self.clock()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def elapsed(self) -> float:
        """Return the seconds since the block started."""
        return self.clock() - self._started

    def write_due_note(self) -> bool:
        """Write a note if one is due and schedule the next. Return False once the stream fails."""
        elapsed = self.elapsed()
        if elapsed < self.due:
            return True
        if not self._write(self.note(elapsed)):
            return False
        self.notes_written += 1
        self.due = self.next_due(self.due)
        return True

    def note(self, elapsed: float) -> str:
        """Return the text of the note at ``elapsed`` seconds."""
        return f"{self.label}: still solving, {elapsed:.0f} s"

    def next_due(self, due: float) -> float:
        """Return when the note after the one due at ``due`` seconds is due."""
        return 2.0 * due

    def _write(self, text: str) -> bool:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            # A closed or broken stream ends the notes, not the work.
            return False
        return True

    def _run(self) -> None:
        while not self._done.wait(max(0.0, self.due - self.elapsed())):
            if not self.write_due_note():
                return


class ProgressNotes(Heartbeat):
    """Write ``"{label}: 1,200 of 2,000 {unit} (60%), 45 s"`` to ``stream`` while the block runs.

    The notes follow the schedule of ``Heartbeat``, at 10 s, 20 s, 40 s and so
    on, but at most ``MAX_NOTE_INTERVAL`` apart. When the block ends
    without an exception after at least one note, a last note gives the count
    and the time at the end. A run shorter than the first note time writes
    nothing. With ``enabled`` False the block writes nothing at all.
    The work calls ``advance`` as each chunk finishes.
    """

    def __init__(self, label: str, total: int, unit: str, stream: TextIO | None = None,
                 first: float | None = None, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(label, stream, first, clock)
        self.total = total
        self.unit = unit
        self.enabled = enabled
        self.done = 0

    def __enter__(self) -> "ProgressNotes":
        if self.enabled:
            super().__enter__()
        return self

    def __exit__(self, kind, error, trace) -> None:
        if not self.enabled:
            return
        super().__exit__(kind, error, trace)
        # The last note gives the total time of a long run. After an error or an
        # interrupt the command's own message reports what happened instead.
        if kind is None and self.notes_written:
            self._write(self.note(self.elapsed()))

    def advance(self, count: int) -> None:
        """Count ``count`` more units as done."""
        # Only the thread that runs the work writes this, and the note thread
        # reads it, so a plain integer is enough.
        self.done += count

    def note(self, elapsed: float) -> str:
        percent = 100 * self.done // self.total if self.total > 0 else 100
        return (f"{self.label}: {self.done:,} of {self.total:,} {self.unit} ({percent}%), "
                f"{duration_text(elapsed)}")

    def next_due(self, due: float) -> float:
        return min(2.0 * due, due + MAX_NOTE_INTERVAL)


def duration_text(seconds: float) -> str:
    """Return ``seconds`` as ``45 s``, ``12 min 5 s`` or ``2 h 50 min``."""
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"
