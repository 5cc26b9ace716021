"""Standard output that distinguishes its failed writes from other errors.

A write to stdout fails when it goes to a full disk or to ``/dev/full``, or
when it exceeds a file size limit (``ulimit -f``). It also fails when the shell
started the command with stdout closed (``>&-``), and Python then sets
``sys.stdout`` to None. ``CheckedOutput`` replaces ``sys.stdout`` while a
command runs and raises ``OutputWriteError`` for each of these, so that
``engine.cli`` reports them in one ``error:`` line, while an ``OSError`` from
elsewhere keeps its traceback.
"""

from __future__ import annotations

import errno
from typing import Any, TextIO


class OutputWriteError(OSError):
    """A write to standard output that failed for a reason other than a closed pipe."""


class CheckedOutput:
    """A wrapper of ``sys.stdout`` that turns a failed write or flush into ``OutputWriteError``.

    ``BrokenPipeError`` passes unchanged, because the command ends quietly when
    its reader has gone (``| head``). Every other attribute is the wrapped
    stream's. A closed stdout (``stream`` None) accepts a flush but no write.

    The first failure is also kept in ``failure``, because argparse prints
    ``--help`` and ``--version`` with a call that ignores an ``OSError``.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.failure: OutputWriteError | None = None

    def write(self, text: str) -> int:
        if self.stream is None:
            raise self._failed(OutputWriteError(errno.EBADF, "standard output is closed"))
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise self._failed(_output_error(error)) from error

    def flush(self) -> None:
        if self.stream is None:
            return
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise self._failed(_output_error(error)) from error

    def _failed(self, error: OutputWriteError) -> OutputWriteError:
        if self.failure is None:
            self.failure = error
        return error

    def __getattr__(self, name: str) -> Any:
        if self.stream is None:
            raise AttributeError(f"standard output is closed, so it has no attribute {name!r}")
        return getattr(self.stream, name)


def _output_error(error: OSError) -> OutputWriteError:
    return OutputWriteError(error.errno, error.strerror or str(error) or type(error).__name__)
