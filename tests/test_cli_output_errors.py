"""`treaty` when its output cannot be written, or when the model does not fit in memory.

A write to stdout can fail with a full disk, a file size limit or a stdout that the
shell closed (`>&-`). Each must end the command with one `error:` line on stderr and
exit code 2, never a traceback. Most tests call ``main`` with ``sys.stdout`` replaced
by a stream that fails. The subprocess tests write to ``/dev/full`` and to a closed
stdout, where the interpreter's own flush at exit could fail a second time.
"""

import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import cli, output_files
from engine.cli import EXIT_INVALID, EXIT_SOLVER, main

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = str(ROOT / "tests" / "data" / "minimal.yaml")
FULL_DISK = "error: cannot write the output: No space left on device"

COMMANDS = {
    "check": ["check", MINIMAL],
    "schema": ["schema"],
    "score": ["score", MINIMAL],
    "score-json": ["score", "--json", MINIMAL],
    "compare-json": ["compare", "--json", MINIMAL, MINIMAL],
    "sweep": ["sweep", MINIMAL, "--x", "parties.A.discount=0.5:0.9:2", "--quiet"],
    "sweep-json": ["sweep", MINIMAL, "--x", "parties.A.discount=0.5:0.9:2", "--json", "--quiet"],
    "help": ["--help"],
}


class FullStream(io.StringIO):
    """A text stream on a full disk: every write and flush of pending text fails."""

    def write(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


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


@pytest.mark.parametrize("name", list(COMMANDS))
def test_full_stdout_one_error_line(name, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", FullStream())

    code = main(COMMANDS[name])

    err = capsys.readouterr().err
    assert code == EXIT_INVALID
    assert err.splitlines() == [FULL_DISK]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_closed_stdout_one_error_line(name, monkeypatch, capsys):
    # Python sets sys.stdout to None when the shell starts it with stdout closed.
    monkeypatch.setattr(sys, "stdout", None)

    code = main(COMMANDS[name])

    err = capsys.readouterr().err
    assert code == EXIT_INVALID
    assert err.splitlines() == ["error: cannot write the output: standard output is closed"]


def test_closed_stdout_schema_to_file(tmp_path, monkeypatch, capsys):
    # A command that prints nothing does not need stdout.
    target = tmp_path / "treaty.schema.json"
    monkeypatch.setattr(sys, "stdout", None)

    code = main(["schema", "-o", str(target)])

    assert code == 0
    assert capsys.readouterr().err == ""
    assert target.read_text(encoding="utf-8") == cli.schema_text()


def test_stdout_restored_after_failure(monkeypatch, capsys):
    full = FullStream()
    monkeypatch.setattr(sys, "stdout", full)

    main(["check", MINIMAL])

    assert sys.stdout is full


def test_other_os_error_keeps_traceback(monkeypatch, capsys):
    # Only a failed write to stdout is reported in one line. An OSError from
    # elsewhere is a bug, which keeps its traceback.
    def fail_elsewhere(filename):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cli, "_score_file", fail_elsewhere)

    with pytest.raises(OSError):
        main(["score", MINIMAL])


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("name", ["check", "schema", "score-json", "sweep-json"])
def test_dev_full_stdout(name, buffered):
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"

    with open("/dev/full", "w") as full:
        completed = subprocess.run(
            [sys.executable, "-m", "engine.cli", *COMMANDS[name]],
            cwd=ROOT, env=env, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
        )

    # One line, and no second error from the interpreter's flush at exit.
    assert completed.stderr.splitlines() == [FULL_DISK]
    assert completed.returncode == EXIT_INVALID


@pytest.mark.skipif(sys.platform == "win32", reason="closes stdout with a POSIX shell")
def test_shell_closed_stdout():
    completed = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "engine.cli", "score", MINIMAL],
        cwd=ROOT, stderr=subprocess.PIPE, text=True, timeout=120,
    )

    assert completed.stderr.splitlines() == ["error: cannot write the output: standard output is closed"]
    assert completed.returncode == EXIT_INVALID


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


@pytest.mark.parametrize("argv", [
    pytest.param(["score", MINIMAL], id="score"),
    pytest.param(["score", "--json", MINIMAL], id="score-json"),
    pytest.param(["compare", MINIMAL, MINIMAL], id="compare"),
    # A sweep also counts its finished points (tests/test_sweep_stopped.py).
])
def test_memory_error_one_line_exit_3(argv, monkeypatch, capsys):
    # numpy raises a subclass of MemoryError for an array larger than the memory left.
    def allocate_too_much(*args, **kwargs):
        raise MemoryError("Unable to allocate 130. MiB for an array")

    monkeypatch.setattr("engine.score.score_game", allocate_too_much)

    code = main(argv)

    captured = capsys.readouterr()
    assert code == EXIT_SOLVER
    assert captured.out == ""
    assert captured.err.splitlines() == [cli.OUT_OF_MEMORY]
    assert "more memory" in cli.OUT_OF_MEMORY
    for advice in ("`period`", "`model.grid`", "`model.horizon`"):
        assert advice in cli.OUT_OF_MEMORY
