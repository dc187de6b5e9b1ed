"""A script's run as the operator sees it: it waits for the load lock, is recorded in the load history, shows progress.

locked_run() opens three connections: the load lock's (held all run, used for nothing else), the
history's (each write committed at once) and the load's, which it yields wrapped in a Tally.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import psycopg2

from dwh import db, history, progress, runlock
from dwh.cli import explain
from dwh.config import Settings
from dwh.dryrun import DryRunWarehouse, Printer

log = logging.getLogger("dwh")

#: (settings, what the connection is for) -> an open warehouse
Opener = Callable[[Settings, str], db.Warehouse]


def connect(settings: Settings, purpose: str) -> db.Warehouse:
    return db.open_warehouse(settings)


def dry_run_opener(printer: Printer) -> Opener:
    return lambda settings, purpose: DryRunWarehouse(settings, printer, purpose)


def failure_message(exc: BaseException) -> str:
    """The one line the script will print for this failure (see dwh.cli.exit_code)."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    known = explain(exc) if isinstance(exc, Exception) else None
    return known[1] if known else f"{type(exc).__name__}: {exc}"


@contextmanager
def locked_run(
    settings: Settings,
    command: str,
    *,
    wait: float,
    quiet: bool,
    control_tables: list[str],
    opener: Opener = connect,
) -> Iterator[history.Tally]:
    """Hold the load lock and record the run in etl_runs while the block runs on the yielded warehouse.

    A run that cannot get the lock within `wait` seconds is recorded as failed and raises
    runlock.LockTimeout having changed nothing else. The history row is finished before the
    lock is released, so the next run never sees this one as 'running'.
    """
    record = history.RunRecord(command)
    with ExitStack() as opened:
        log_book = history.History(_opened(opened, opener(settings, "history")))
        lock = _opened(opened, opener(settings, "load lock"))
        opened.callback(lock.rollback)
        try:
            runlock.acquire(lock, wait, log_book.holder, control_tables)
        except runlock.LockTimeout as exc:
            log_book.refused(record, str(exc))
            raise
        record = dataclasses.replace(record, started_at=history.now())  # a run starts when it holds the lock
        log_book.start(record)
        warehouse = _opened(opened, opener(settings, "load"))
        tally = _tally(warehouse, quiet)

        def reopen() -> history.History:
            return history.History(opener(settings, "history"))

        try:
            yield tally
        except BaseException as exc:
            _finish(log_book, reopen, record, history.FAILED, tally.counts, failure_message(exc))
            raise
        _finish(log_book, reopen, record, history.SUCCEEDED, tally.counts)


def _opened(stack: ExitStack, warehouse: db.Warehouse) -> db.Warehouse:
    """Close the warehouse when the stack unwinds."""
    stack.callback(warehouse.close)
    return warehouse


def _tally(warehouse: db.Warehouse, quiet: bool) -> history.Tally:
    """The load's warehouse, counting rows; its COPYs show progress (local) or elapsed time (Redshift)."""
    silent = quiet or isinstance(warehouse, DryRunWarehouse)
    tally = history.Tally(warehouse)
    if progress.watch_copies(warehouse, silent, sys.stderr, tally.counts.files) or silent:
        return tally
    return history.Tally(warehouse, around_copy=progress.elapsed_ticker)


def _finish(
    log_book: history.History,
    reopen: Callable[[], history.History],
    record: history.RunRecord,
    status: str,
    counts: history.Counts,
    error: str | None = None,
) -> None:
    """Finish the history row; a history that cannot be written is a warning, never the run's failure.

    A history connection that was lost (the warehouse server stopped mid-run) is opened again
    once, so the row says why the run failed rather than being found 'abandoned' later."""
    try:
        try:
            log_book.finish(record, status, counts, error)
        except (psycopg2.InterfaceError, psycopg2.OperationalError):  # the connection is gone: once more
            again = reopen()
            try:
                again.finish(record, status, counts, error)
            finally:
                again.warehouse.close()
    except Exception as exc:
        log.warning("could not record the run's end in etl_runs: %s", failure_message(exc))


def show_history(settings: Settings, limit: int) -> str:
    """The last `limit` runs as a table; a 'running' run that no longer holds the lock shows as abandoned.

    One connection reads the rows, then tries the lock for a moment (each in its own transaction).
    """
    with db.connect(settings) as warehouse:
        rows = history.History(warehouse).recent(limit)
        alive = any(row[6] == history.RUNNING for row in rows) and runlock.holder_alive(warehouse)
        return history.format_runs(rows, alive)
