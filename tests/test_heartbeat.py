"""The notes on stderr while a long solve, simulation or set of draws runs."""

import io
import time

import pytest

from engine.heartbeat import MAX_NOTE_INTERVAL, Heartbeat, ProgressNotes, duration_text


def test_heartbeat_doubles_interval_and_stops():
    # First note after 0.05 s, then at 0.1 s and 0.2 s: three notes in 0.3 s,
    # where notes every 0.05 s would give six. A busy machine may delay the
    # last one past the end, so two also count.
    stream = io.StringIO()
    with Heartbeat("slow.yaml", stream=stream, first=0.05):
        time.sleep(0.3)
    lines = stream.getvalue().splitlines()

    assert 2 <= len(lines) <= 3
    assert all(line.startswith("slow.yaml: still solving, ") for line in lines)

    # Nothing is written once the block has ended.
    time.sleep(0.15)
    assert stream.getvalue().splitlines() == lines


def test_heartbeat_silent_for_short_work():
    stream = io.StringIO()
    with Heartbeat("fast.yaml", stream=stream, first=10.0):
        pass
    assert stream.getvalue() == ""


def test_heartbeat_survives_closed_stream():
    # A reader that went away must not turn into an error of the solve.
    stream = io.StringIO()
    stream.close()
    with Heartbeat("closed.yaml", stream=stream, first=0.01):
        time.sleep(0.05)


class FakeClock:
    """A monotonic clock that moves only when the test sets it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_notes_report_fraction_done():
    clock = FakeClock()
    stream = io.StringIO()
    notes = ProgressNotes("simulate", 2_000_000, "paths", stream=stream, first=10.0, clock=clock)
    notes.advance(1_200_000)

    clock.now = 9.0
    notes.write_due_note()
    assert stream.getvalue() == ""

    clock.now = 45.0
    notes.write_due_note()
    assert stream.getvalue() == "simulate: 1,200,000 of 2,000,000 paths (60%), 45 s\n"


def test_progress_notes_interval_doubles_then_capped():
    clock = FakeClock()
    stream = io.StringIO()
    notes = ProgressNotes("draws", 10, "draws", stream=stream, first=10.0, clock=clock)

    times = []
    for second in range(0, 3000):
        clock.now = float(second)
        before = len(stream.getvalue())
        notes.write_due_note()
        if len(stream.getvalue()) > before:
            times.append(second)

    assert times[:7] == [10, 20, 40, 80, 160, 320, 640]
    assert times[7:] == [640 + MAX_NOTE_INTERVAL * k for k in range(1, len(times) - 6)]


def test_progress_notes_last_note_after_long_run():
    clock = FakeClock()
    stream = io.StringIO()
    with ProgressNotes("score --vary", 200, "draws", stream=stream, first=10.0, clock=clock) as notes:
        notes.advance(50)
        clock.now = 12.0
        notes.write_due_note()
        notes.advance(150)
        clock.now = 75.0

    assert stream.getvalue().splitlines() == [
        "score --vary: 50 of 200 draws (25%), 12 s",
        "score --vary: 200 of 200 draws (100%), 1 min 15 s",
    ]


def test_progress_notes_no_last_note_on_error():
    clock = FakeClock()
    stream = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        with ProgressNotes("simulate", 100, "paths", stream=stream, first=10.0, clock=clock) as notes:
            clock.now = 10.0
            notes.write_due_note()
            clock.now = 15.0
            raise KeyboardInterrupt

    assert stream.getvalue().splitlines() == ["simulate: 0 of 100 paths (0%), 10 s"]


def test_progress_notes_silent_for_short_run():
    stream = io.StringIO()
    with ProgressNotes("simulate", 100, "paths", stream=stream, first=10.0) as notes:
        notes.advance(100)
    assert stream.getvalue() == ""


def test_progress_notes_disabled_writes_nothing():
    stream = io.StringIO()
    with ProgressNotes("simulate", 100, "paths", stream=stream, first=0.01, enabled=False) as notes:
        time.sleep(0.05)
        notes.advance(100)
    assert stream.getvalue() == ""


def test_progress_notes_written_by_thread():
    # The notes come from a thread while the block runs, even when no chunk
    # finishes in between.
    stream = io.StringIO()
    with ProgressNotes("simulate", 100, "paths", stream=stream, first=0.02):
        time.sleep(0.1)
    lines = stream.getvalue().splitlines()

    assert lines
    assert all(line.startswith("simulate: 0 of 100 paths (0%), ") for line in lines)


def test_first_note_time_must_be_positive():
    with pytest.raises(ValueError, match="must be positive"):
        Heartbeat("slow.yaml", first=0.0)


@pytest.mark.parametrize("seconds, text", [
    (0.4, "0 s"), (45.2, "45 s"), (59.6, "1 min 0 s"), (605, "10 min 5 s"),
    (3600, "1 h 0 min"), (10_250, "2 h 50 min"),
])
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text
