"""The notes on stderr while a long solve runs."""

import io
import time

from engine.heartbeat import Heartbeat


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
