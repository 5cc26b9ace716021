"""Output files that are replaced whole or not at all.

The commands write every output file (the sweep's CSV and plot, the schema of
``treaty schema -o``) through a temporary file in the same directory, which
``os.replace`` then renames over the target. A write that fails or is
interrupted (a full disk, a file size limit, Ctrl-C) leaves an earlier file of
that name as it was, where writing in place would have truncated it first.
The temporary file sits beside the target because a rename replaces a file
atomically only within one file system.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomically(path: str | Path, write: Callable[[IO], None], binary: bool = False) -> None:
    """Call ``write`` on a new temporary file beside ``path``, then rename it to ``path``.

    ``write`` gets a text stream (UTF-8, newlines written as given) or, with
    ``binary``, a byte stream. On any exception, ``KeyboardInterrupt``
    included, the temporary file is removed and the exception propagates.
    """
    partial = f"{path}.{os.getpid()}.partial"
    # Mode "x" fails on an existing file rather than write into it, and a file
    # that this call did not create is not removed below.
    if binary:
        stream = open(partial, "xb")
    else:
        stream = open(partial, "x", encoding="utf-8", newline="")

    try:
        with stream:
            write(stream)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise


def os_error_reason(error: OSError) -> str:
    """Return the operating system's reason for ``error``, such as "No space left on device"."""
    return error.strerror or str(error) or type(error).__name__
