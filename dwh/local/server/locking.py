"""One process at a time initialises, starts or stops the server of a DATA_DIR.

fasteners' InterProcessLock takes an OS file lock (fcntl on POSIX, msvcrt on Windows) that the
operating system drops when its holder dies, so a killed start never leaves the folder locked.
It locks per process (POSIX record locks), so a threading lock serialises threads as well.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import fasteners

from dwh.config import ServerSettings
from dwh.local.server.errors import ServerError
from dwh.local.server.layout import data_dir, lock_file

_THREADS = threading.Lock()


class DataDirLock:
    """An exclusive lock on DATA_DIR/.lock, held for the `with` block."""

    def __init__(self, s: ServerSettings):
        self.path = lock_file(s)
        self.lock = fasteners.InterProcessLock(self.path)

    def __enter__(self) -> DataDirLock:
        _THREADS.acquire()
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))  # private before fasteners opens it
            self.lock.acquire()
        except (OSError, threading.ThreadError) as exc:
            _THREADS.release()
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ServerError(
                f"cannot write to {self.path.parent} ({reason}); run as the user who created "
                "[LOCAL] DATA_DIR, or point DATA_DIR elsewhere"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.lock.release()
        finally:
            _THREADS.release()


def make_data_dir(s: ServerSettings) -> None:
    try:
        data_dir(s).mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ServerError(
            f"cannot create {data_dir(s)} ({exc.strerror}); set [LOCAL] DATA_DIR to a writable folder"
        ) from None


def write_private(path: Path, text: str) -> None:
    """Write a file readable only by its owner, atomically (a temp file renamed into place).

    Python opens files non-inheritable, so no started program keeps it open.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
