"""Load history: every run of create_tables.py and etl.py, one row in the warehouse's etl_runs table.

Written on a connection of its own, each write committed at once, so a load that rolls back
still records why. A run inserts its 'running' row only once it holds the load lock, so at most one
row can rightly be 'running': any other belongs to a run that died (kill -9, a lost host) and is
marked 'abandoned' by the next run that gets the lock.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dwh.config import sql_literal
from dwh.db import Statement, Warehouse, WarehouseWrapper, commit_retrying_conflicts

RUNNING, SUCCEEDED, FAILED, ABANDONED = "running", "succeeded", "failed", "abandoned"
DEFAULT_RUNS_SHOWN = 20
_COMMAND_CHARS = 1024
_ERROR_CHARS = 4000

# Kept across create_tables.py runs: created IF NOT EXISTS (dwh.ops.lock creates it with etl_lock
# when missing), never dropped. Row counts are JSON text, so a change of tables needs no migration.
etl_runs_table_create = Statement(
    "create",
    "etl_runs",
    """
CREATE TABLE IF NOT EXISTS etl_runs (
    run_id         VARCHAR(32)   NOT NULL,
    command        VARCHAR(1024) NOT NULL,
    host           VARCHAR(256)  NOT NULL,
    pid            INTEGER       NOT NULL,
    started_at     TIMESTAMP     NOT NULL SORTKEY,
    finished_at    TIMESTAMP,
    status         VARCHAR(16)   NOT NULL,
    rows_copied    VARCHAR(4096),
    rows_published VARCHAR(4096),
    files_read     INTEGER,
    bytes_read     BIGINT,
    error          VARCHAR(4096)
)
DISTSTYLE ALL;
""",
)
run_insert = """
INSERT INTO etl_runs (run_id, command, host, pid, started_at, status)
VALUES (
    {run_id},
    {command},
    {host},
    {pid},
    {started_at},
    {status}
);
"""
runs_abandon = """
UPDATE etl_runs
SET status = 'abandoned', finished_at = {now}
WHERE status = 'running' AND run_id != {run_id};
"""
run_finish = """
UPDATE etl_runs
SET status = {status},
    finished_at = {now},
    rows_copied = {rows_copied},
    rows_published = {rows_published},
    files_read = {files_read},
    bytes_read = {bytes_read},
    error = {error}
WHERE run_id = {run_id};
"""
lock_holder = """
SELECT command, host, pid, started_at
FROM etl_runs
WHERE status = 'running'
ORDER BY started_at DESC
LIMIT 1;
"""
recent_runs = """
SELECT run_id, command, host, pid, started_at, finished_at, status,
       rows_copied, rows_published, files_read, bytes_read, error
FROM etl_runs
ORDER BY started_at DESC
LIMIT {limit};
"""


def text_literal(value: str, limit: int) -> str:
    """A free text (a command line, an error) as a literal: one line, no control character, no backslash,
    at most `limit` bytes of UTF-8.

    Redshift counts VARCHAR lengths in bytes and reads a backslash in a literal as an escape
    (QUOTE_LITERAL doubles it) where PostgreSQL does not: a slash stores the same on both.
    """
    one_line = "".join(ch if ch >= " " else " " for ch in " ".join(value.split())).replace("\\", "/")
    return sql_literal(one_line.encode()[:limit].decode(errors="ignore"))


def timestamp_literal(moment: datetime) -> str:
    return sql_literal(moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds"))


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunRecord:
    """Who a run is: its id, command line (no secret is ever on it), host, pid and start."""

    command: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: datetime = field(default_factory=now)

    def values(self) -> dict[str, str]:
        return {
            "run_id": sql_literal(self.run_id),
            "command": text_literal(self.command, _COMMAND_CHARS),
            "host": text_literal(self.host, 256),
            "pid": str(int(self.pid)),
            "started_at": timestamp_literal(self.started_at),
        }


@dataclass(frozen=True)
class Holder:
    """The run that holds the load lock, as its history row tells."""

    command: str
    host: str
    pid: int
    started_at: datetime

    def __str__(self) -> str:
        started = self.started_at.replace(tzinfo=UTC) if self.started_at.tzinfo is None else self.started_at
        age = duration((now() - started).total_seconds())
        return f"{self.command} (pid {self.pid} on {self.host}, since {started:%Y-%m-%d %H:%M:%S} UTC, {age} ago)"


def duration(seconds: float) -> str:
    """1.5 s, 2m 05s, 1h 02m."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    return f"{minutes // 60}h {minutes % 60:02d}m"


def counts_literal(counts: dict[str, int]) -> str:
    return "NULL" if not counts else sql_literal(json.dumps(dict(sorted(counts.items())), separators=(",", ":")))


class History:
    """etl_runs on its own connection; every write is committed at once."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    def _write(self, *statements: str) -> None:
        """Run the statements and commit them together (one commit: each is a round trip on Redshift);
        again if a concurrent run's write conflicted with them."""
        commit_retrying_conflicts(self.warehouse, statements)

    def start(self, run: RunRecord) -> None:
        """Record the run as running and mark every other 'running' row abandoned (call with the lock held)."""
        self._write(
            run_insert.format(**run.values(), status=sql_literal(RUNNING)),
            runs_abandon.format(now=timestamp_literal(now()), run_id=sql_literal(run.run_id)),
        )

    def finish(self, run: RunRecord, status: str, counts: Counts | None = None, error: str | None = None) -> None:
        self._write(finish_statement(run, status, counts or Counts(), error))

    def refused(self, run: RunRecord, error: str) -> None:
        """Record a run that never got the lock: failed, having changed nothing."""
        self._write(
            run_insert.format(**run.values(), status=sql_literal(FAILED)),
            finish_statement(run, FAILED, Counts(), error),
        )

    def holder(self) -> Holder | None:
        """The newest 'running' row: the lock holder, once it has recorded itself."""
        rows = self.warehouse.query(lock_holder)
        self.warehouse.rollback()
        return Holder(*rows[0]) if rows else None

    def recent(self, limit: int) -> list[tuple]:
        rows = self.warehouse.query(recent_runs.format(limit=int(limit)))
        self.warehouse.rollback()
        return rows


def finish_statement(run: RunRecord, status: str, counts: Counts, error: str | None) -> str:
    return run_finish.format(
        status=sql_literal(status),
        now=timestamp_literal(now()),
        rows_copied=counts_literal(counts.copied),
        rows_published=counts_literal(counts.published),
        files_read="NULL" if counts.files_read is None else str(int(counts.files_read)),
        bytes_read="NULL" if counts.bytes_read is None else str(int(counts.bytes_read)),
        error="NULL" if error is None else text_literal(error, _ERROR_CHARS),
        run_id=sql_literal(run.run_id),
    )


@dataclass
class Counts:
    """What a run wrote and read: rows per table that each committed COPY and INSERT wrote, files and bytes read."""

    copied: Counter[str] = field(default_factory=Counter)
    published: Counter[str] = field(default_factory=Counter)
    files_read: int | None = None
    bytes_read: int | None = None

    def files(self, count: int, size: int) -> None:
        """Count files and bytes a COPY read (known on the local warehouse only)."""
        self.files_read = (self.files_read or 0) + count
        self.bytes_read = (self.bytes_read or 0) + size


class Tally(WarehouseWrapper):
    """The load's warehouse, counting in `counts` what each committed COPY and INSERT wrote, for the history.

    Counts join when their transaction commits; a rolled-back transaction adds nothing.
    """

    def __init__(self, inner: Warehouse, counts: Counts):
        super().__init__(inner)
        self.counts = counts
        self._pending: list[tuple[str, str, int]] = []

    def execute(self, statement: str) -> int:
        rows = self.inner.execute(statement)
        if isinstance(statement, Statement) and statement.verb in ("copy", "insert") and rows >= 0:
            self._pending.append((statement.verb, statement.table, rows))
        return rows

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self.inner.transaction():
                yield
        except BaseException:
            self._pending.clear()
            raise
        for verb, table, rows in self._pending:
            (self.counts.copied if verb == "copy" else self.counts.published)[table] += rows
        self._pending.clear()

    def rollback(self) -> None:
        self._pending.clear()
        self.inner.rollback()


def format_runs(rows: list[tuple], holder_alive: bool) -> str:
    """The history as an aligned table, newest first; a 'running' row whose run is gone shows as abandoned.

    Only the newest 'running' row can be the lock holder, and only while the lock is held.
    """
    if not rows:
        return "No load recorded yet."
    header = ("run", "started (UTC)", "took", "status", "command", "copied", "published", "read", "error")
    lines = []
    live_seen = False
    for run_id, command, host, pid, started, finished, status, copied, published, files, size, error in rows:
        if status == RUNNING:
            status = RUNNING if holder_alive and not live_seen else ABANDONED
            live_seen = True
        took = duration((finished - started).total_seconds()) if finished else ""
        read = f"{files} files, {size / 1e6:.1f} MB" if files is not None and size is not None else ""
        lines.append(
            (
                run_id[:8],
                f"{started:%Y-%m-%d %H:%M:%S}",
                took,
                status,
                f"{command} [{host}:{pid}]",
                _counts(copied),
                _counts(published),
                read,
                error or "",
            )
        )
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header) - 1)]
    return "\n".join(
        ("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) + "  " + line[-1]).rstrip()
        for line in [header, *lines]
    )


def _counts(text: str | None) -> str:
    if not text:
        return ""
    counts = json.loads(text)
    return ", ".join(f"{table} {rows:,}" for table, rows in counts.items())
