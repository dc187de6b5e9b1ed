"""A script's run as the operator sees it: the warehouse it opens, the load lock, the load history, progress.

run_locked() is the one place create_tables.py and etl.py share: it reads dwh.cfg, opens three
connections (the load lock's, held all run and used for nothing else; the history's, each write
committed at once; the load's) and hands the load's to the script's work, counted and showing progress.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import psycopg2

from dwh import cli, progress
from dwh.config import Settings, load_settings
from dwh.db import Warehouse
from dwh.ops import history, lock
from dwh.ops.dryrun import DryRunWarehouse, Printer, describe_target

log = logging.getLogger("dwh")

#: (settings, what the connection is for) -> an open warehouse
Opener = Callable[[Settings, str], Warehouse]
#: A script's work on the load's warehouse.
Work = Callable[[Warehouse, Settings], None]


def open_warehouse(settings: Settings) -> Warehouse:
    """The warehouse [WAREHOUSE] TARGET names, connected.

    Each warehouse's module is imported here, when one is opened: a Redshift run and iac_setup.py
    never load the local server's code, and the core never imports dwh.local.
    """
    if settings.target == "local":
        from dwh.local.warehouse import LocalWarehouse

        return LocalWarehouse(settings)
    from dwh.redshift.warehouse import RedshiftWarehouse

    return RedshiftWarehouse(settings)


@contextmanager
def connect(settings: Settings) -> Iterator[Warehouse]:
    """The configured warehouse, closed after the block."""
    warehouse = open_warehouse(settings)
    try:
        yield warehouse
    finally:
        warehouse.close()


def run_locked(script: str, argv: list[str] | None, args: argparse.Namespace, work: Work) -> int:
    """Run a script's `work` holding the load lock, recorded in the history; the script's exit code.

    args carries --config, --wait, --dry-run and -q (cli.add_run_options). A dry run prints
    every statement instead of running it, and nothing else.
    """
    command = cli.command_line(script, argv)
    args.quiet = args.quiet or args.dry_run

    def body() -> None:
        settings = load_settings(args.config)
        opener: Opener = lambda settings, purpose: open_warehouse(settings)  # noqa: E731
        if args.dry_run:
            print(f"-- dry run of {command} on {describe_target(settings)}: nothing is run")
            printer = Printer()
            opener = lambda settings, purpose: DryRunWarehouse(settings, printer, purpose)  # noqa: E731
        started = time.perf_counter()
        with locked_run(settings, command, wait=args.wait, quiet=args.quiet, opener=opener) as warehouse:
            work(warehouse, settings)
        log.info("Done in %.2f s.", time.perf_counter() - started)

    return cli.run(body, args)


def failure_message(exc: BaseException) -> str:
    """The one line the script will print for this failure (see dwh.cli.exit_code)."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    known = cli.explain(exc) if isinstance(exc, Exception) else None
    return known[1] if known else f"{type(exc).__name__}: {exc}"


@contextmanager
def locked_run(settings: Settings, command: str, *, wait: float, quiet: bool, opener: Opener) -> Iterator[Warehouse]:
    """Hold the load lock and record the run in etl_runs while the block runs on the yielded warehouse.

    A run that cannot get the lock within `wait` seconds is recorded as failed and raises
    lock.LockTimeout having changed nothing else. The history row is finished before the
    lock is released, so the next run never sees this one as 'running'.
    """
    record = history.RunRecord(command)
    with ExitStack() as opened:
        log_book = history.History(_opened(opened, opener(settings, "history")))
        lock_connection = _opened(opened, opener(settings, "load lock"))
        try:
            held = lock.acquire(lock_connection, wait, log_book.holder)
        except lock.LockTimeout as exc:
            log_book.refused(record, str(exc))
            raise
        opened.callback(held.release)
        record = dataclasses.replace(record, started_at=history.now())  # a run starts when it holds the lock
        log_book.start(record)
        counts = history.Counts()
        load = _opened(opened, opener(settings, "load"))
        interval = settings.local.progress_seconds if settings.local else progress.LOG_INTERVAL
        shows_files = progress.watch_copies(load, quiet, sys.stderr, counts.files, interval)
        load = held.guard(load)
        if not (shows_files or quiet):
            load = progress.Ticking(load)
        tally = history.Tally(load, counts)

        def finish(status: str, error: str | None = None) -> None:
            _finish(log_book, lambda: history.History(opener(settings, "history")), record, status, counts, error)

        try:
            yield tally
        except BaseException as exc:
            finish(history.FAILED, failure_message(exc))
            raise
        finish(history.SUCCEEDED)


def _opened(stack: ExitStack, warehouse: Warehouse) -> Warehouse:
    """Close the warehouse when the stack unwinds."""
    stack.callback(warehouse.close)
    return warehouse


def _finish(
    log_book: history.History,
    reopen: Callable[[], history.History],
    record: history.RunRecord,
    status: str,
    counts: history.Counts,
    error: str | None,
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
    with connect(settings) as warehouse:
        rows = history.History(warehouse).recent(limit)
        alive = any(row[6] == history.RUNNING for row in rows) and lock.holder_alive(warehouse)
        return history.format_runs(rows, alive)
