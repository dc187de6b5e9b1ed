"""Progress of long COPYs: a live bar on a terminal, a plain line every few seconds in a log, nothing with -q.

The local warehouse reads the files itself, so it reports files and bytes read of the total and
rows converted (CopyProgress); the bar shows rate and time left. On Redshift the cluster runs the
COPY and tells nothing until it ends: elapsed_ticker() logs the time waited.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, Protocol, runtime_checkable

from tqdm import tqdm

from dwh.config import PROGRESS_SECONDS
from dwh.db import Statement, WarehouseWrapper

log = logging.getLogger("dwh")

# tqdm's monitor is a thread that outlives the bar; a process with a second thread can no longer
# fork its conversion workers safely (dwh.local.pipeline then starts them from a fork server), so a
# later COPY in the same run would start them the slow way. Bars here refresh as rows arrive.
tqdm.monitor_interval = 0

#: In a log, one progress line per this many seconds ([LOCAL] PROGRESS_SECONDS; none for a COPY
#: that ends sooner; 0: a line per batch of files read).
LOG_INTERVAL = PROGRESS_SECONDS
#: On Redshift, one elapsed-time line per this many seconds of a running COPY.
TICK_INTERVAL = 10.0


class CopyProgress:
    """What one COPY has read: files and bytes handed to conversion, rows converted. Shows nothing itself."""

    def __init__(self, table: str, files: int, total_bytes: int):
        self.table = table
        self.files = files
        self.total_bytes = total_bytes
        self.files_read = 0
        self.bytes_read = 0
        self.rows = 0
        self.started = time.monotonic()
        #: Told this progress when the COPY ends (etl.py counts files and bytes for the load history).
        self.on_close: Callable[[CopyProgress], None] | None = None

    def file_read(self, size: int) -> None:
        self.files_read += 1
        self.bytes_read += size
        self.show()

    def rows_converted(self, rows: int) -> None:
        self.rows = rows
        self.show()

    def show(self) -> None:
        """Subclasses display the counts."""

    def finish(self) -> None:
        """Subclasses end their display."""

    def close(self) -> None:
        self.finish()
        if self.on_close is not None:
            self.on_close(self)

    def __enter__(self) -> CopyProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def summary(self) -> str:
        """'12/30 files, 45.1 of 120.0 MB (38%), 812,345 rows, 9.8 MB/s, about 8 s left'."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.bytes_read / elapsed
        share = self.bytes_read / self.total_bytes if self.total_bytes else 1.0
        left = (self.total_bytes - self.bytes_read) / rate if rate else 0.0
        return (
            f"{self.files_read}/{self.files} files, {self.bytes_read / 1e6:.1f} of {self.total_bytes / 1e6:.1f} MB "
            f"({share:.0%}), {self.rows:,} rows, {rate / 1e6:.1f} MB/s, about {left:.0f} s left"
        )


#: (table, files, total bytes) -> the progress of that COPY.
ProgressFactory = Callable[[str, int, int], CopyProgress]


@runtime_checkable
class ReportsCopyProgress(Protocol):
    """A warehouse that reads COPY's files itself and reports its progress (the local one)."""

    copy_progress: ProgressFactory


class LogProgress(CopyProgress):
    """A plain line every LOG_INTERVAL seconds: for cron logs and pipes."""

    def __init__(self, table: str, files: int, total_bytes: int, interval: float = LOG_INTERVAL):
        super().__init__(table, files, total_bytes)
        self.interval = interval
        self.next_line = self.started + interval

    def show(self) -> None:
        if time.monotonic() >= self.next_line:
            log.info("  copy %s: %s", self.table, self.summary())
            self.next_line = time.monotonic() + self.interval


class BarProgress(CopyProgress):
    """A live tqdm bar of bytes read, with files and rows beside it: for a terminal."""

    def __init__(self, table: str, files: int, total_bytes: int, stream: IO[str]):
        super().__init__(table, files, total_bytes)
        self.bar = tqdm(
            total=total_bytes,
            desc=f"  copy {table}",
            unit="B",
            unit_scale=True,
            unit_divisor=1000,
            file=stream,
            leave=False,
            dynamic_ncols=True,
            mininterval=0.2,
            postfix=f"0/{files} files, 0 rows",
        )

    def file_read(self, size: int) -> None:
        self.bar.update(size)
        super().file_read(size)

    def show(self) -> None:
        self.bar.set_postfix_str(f"{self.files_read}/{self.files} files, {self.rows:,} rows", refresh=False)

    def finish(self) -> None:
        self.bar.close()


def progress_factory(quiet: bool, stream: IO[str], interval: float = LOG_INTERVAL) -> ProgressFactory:
    """Silent with -q; a bar when `stream` is a terminal; log lines otherwise."""
    if quiet:
        return CopyProgress
    if stream.isatty():
        return lambda table, files, total_bytes: BarProgress(table, files, total_bytes, stream)
    return lambda table, files, total_bytes: LogProgress(table, files, total_bytes, interval)


@contextmanager
def elapsed_ticker(table: str, interval: float = TICK_INTERVAL) -> Iterator[None]:
    """Log the elapsed time every `interval` seconds while the block (a COPY on the cluster) runs."""
    stop = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not stop.wait(interval):
            log.info("  copy %s: running on the cluster, %.0f s so far", table, time.monotonic() - started)

    thread = threading.Thread(target=tick, name=f"copy {table} ticker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class Ticking(WarehouseWrapper):
    """A warehouse whose COPYs log the time they have run (elapsed_ticker): the cluster tells nothing sooner."""

    def execute(self, statement: str) -> int:
        if not (isinstance(statement, Statement) and statement.verb == "copy"):
            return self.inner.execute(statement)
        with elapsed_ticker(statement.table):
            return self.inner.execute(statement)


def watch_copies(
    warehouse: Any, quiet: bool, stream: IO[str], on_files: Callable[[int, int], None], interval: float = LOG_INTERVAL
) -> bool:
    """Show the progress of the warehouse's COPYs if it reports any; True when it does.

    `on_files(files, bytes)` is told what each COPY read (for the load history).
    """
    if not isinstance(warehouse, ReportsCopyProgress):
        return False
    shown = progress_factory(quiet, stream, interval)

    def counted(table: str, files: int, total_bytes: int) -> CopyProgress:
        progress = shown(table, files, total_bytes)
        progress.on_close = lambda ended: on_files(ended.files_read, ended.bytes_read)
        return progress

    warehouse.copy_progress = counted
    return True
