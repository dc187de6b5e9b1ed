"""Is the server of a DATA_DIR running? Read from its postmaster.pid, checked with psutil.

A server killed with SIGKILL (or a reboot) leaves postmaster.pid behind. Its pid may then be
dead, an unreaped zombie, or reused by an unrelated process, even by another postgres; and a
DATA_DIR copied from another project's running warehouse carries that server's file. The file
names our server only when it names this DATA_DIR's cluster and its pid is a live postgres
process created when the file says the server started; otherwise it is stale, and `stop`
signals nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil

from dwh.config import ServerSettings
from dwh.local.server.layout import pgdata, process_name

# postmaster.pid records its start time in whole seconds, psutil's creation time on Linux is
# derived from the boot time (also whole seconds): allow both roundings and a slow exec.
START_TIME_TOLERANCE = 3.0


@dataclass(frozen=True)
class PidFile:
    """The fields of postmaster.pid this package uses."""

    pid: int
    data_dir: Path
    started_at: float | None  # seconds since the epoch
    port: int | None
    status: str


def read_pid_file(path: Path) -> PidFile | None:
    try:
        lines = path.read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None

    def number(index: int) -> int | None:
        return int(lines[index]) if len(lines) > index and lines[index].strip().isdigit() else None

    data_dir = Path(lines[1].strip()) if len(lines) > 1 else Path()
    return PidFile(pid, data_dir, number(2), number(3), lines[7].strip() if len(lines) > 7 else "")


def is_server_process(pid: int, started_at: float | None) -> bool:
    """Is pid a live (not zombie) postgres process that started at started_at?"""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or process.name() != process_name():
            return False
        return started_at is None or abs(process.create_time() - started_at) <= START_TIME_TOLERANCE
    except (psutil.NoSuchProcess, ValueError):
        return False
    except psutil.AccessDenied:
        return True  # cannot tell: assume it is the server, so nothing starts a second one


def live_server(s: ServerSettings) -> PidFile | None:
    """The running server's postmaster.pid, or None when none runs on this DATA_DIR."""
    info = read_pid_file(pgdata(s) / "postmaster.pid")
    if info is None or not same_folder(info.data_dir, pgdata(s)):
        return None
    return info if is_server_process(info.pid, info.started_at) else None


def same_folder(recorded: Path, ours: Path) -> bool:
    """Does the data directory a server recorded name our cluster (not a copy's original)?"""
    try:
        return recorded.is_absolute() and recorded.samefile(ours)
    except OSError:
        return False


def remove_if_stale(s: ServerSettings) -> None:
    """Delete postmaster.pid when it does not name a live server (postgres would refuse to start
    when the recorded pid is a zombie or was reused)."""
    path = pgdata(s) / "postmaster.pid"
    if path.exists() and live_server(s) is None:
        path.unlink(missing_ok=True)
