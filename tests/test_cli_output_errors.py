"""`treaty schema -o` when its output file cannot be written.

The schema goes to a temporary file beside the target, so a failed write keeps
an earlier file of that name.
"""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import output_files
from engine.cli import EXIT_INVALID, main

ROOT = Path(__file__).resolve().parents[1]


class FailingFile:
    """A file object that accepts ``limit`` bytes or characters, then fails as at a size limit."""

    def __init__(self, stream, limit):
        self.stream = stream
        self.limit = limit

    def write(self, data):
        room = self.limit - self.stream.tell()
        if len(data) > room:
            self.stream.write(data[:max(room, 0)])
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
        return self.stream.write(data)

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stream.close()


def fail_file_writes_after(monkeypatch, limit):
    """Make every output file written by ``engine.output_files`` fail after ``limit`` units."""
    def open_limited(path, mode, **kwargs):
        return FailingFile(open(path, mode, **kwargs), limit)

    monkeypatch.setattr(output_files, "open", open_limited, raising=False)


def test_schema_write_failure_keeps_old_file(tmp_path, monkeypatch, capsys):
    target = tmp_path / "treaty.schema.json"
    target.write_text('{"earlier": "schema"}\n')
    fail_file_writes_after(monkeypatch, 1024)

    code = main(["schema", "-o", str(target)])

    err = capsys.readouterr().err
    assert code == EXIT_INVALID
    assert err.splitlines() == [f"error: {target}: cannot write the schema file: File too large"]
    assert target.read_text() == '{"earlier": "schema"}\n'
    assert [item.name for item in tmp_path.iterdir()] == ["treaty.schema.json"]


@pytest.mark.skipif(sys.platform == "win32", reason="needs the POSIX file size limit")
def test_schema_under_file_size_limit(tmp_path):
    # The real failure: `ulimit -f` with SIGXFSZ ignored makes the write fail
    # with EFBIG after the first kilobyte.
    import resource
    import signal

    target = tmp_path / "treaty.schema.json"
    target.write_text('{"earlier": "schema"}\n' + " " * 4000)
    earlier = target.read_text()

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    completed = subprocess.run(
        [sys.executable, "-m", "engine.cli", "schema", "-o", str(target)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, preexec_fn=limit_file_size,
    )

    assert completed.stderr.splitlines() == [f"error: {target}: cannot write the schema file: File too large"]
    assert completed.returncode == EXIT_INVALID
    assert target.read_text() == earlier
    assert [item.name for item in tmp_path.iterdir()] == ["treaty.schema.json"]
