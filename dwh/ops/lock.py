"""One load at a time, on Redshift and the local warehouse alike: `LOCK etl_lock;` held on a connection of its own.

Redshift has no advisory locks; its LOCK takes an ACCESS EXCLUSIVE table lock that lasts until the
transaction ends, and so does PostgreSQL's. A run opens a transaction on a dedicated connection,
locks the (empty) control table and keeps the transaction open until it ends; a run killed with
kill -9 loses its session, and the warehouse rolls the transaction back and frees the lock.

To wait with feedback and a deadline, the LOCK is tried with a short statement_timeout (a
setting both warehouses have) in a loop: between tries the waiting run names the holder.

Redshift ends idle sessions, and a lock session that died would free the lock silently. So the
held lock's session runs a statement every few minutes (HeldLock), and every transaction of the
load commits only after the lock's session has answered (Guarded): a run that lost its lock rolls
back instead of publishing alongside another run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.errors

from dwh.db import Statement, Warehouse, WarehouseWrapper, commit_retrying_conflicts
from dwh.errors import WarehouseError, first_line
from dwh.ops.history import etl_runs_table_create

log = logging.getLogger("dwh")

DEFAULT_WAIT = 30 * 60
#: How long one LOCK attempt waits before the loop reports and tries again; the first is short,
#: so a waiting run says so at once.
FIRST_ATTEMPT_SECONDS = 0.25
ATTEMPT_SECONDS = 2.0
#: While waiting, the holder is named when it changes and at least this often.
REMIND_SECONDS = 60.0
#: The held lock's session runs a statement this often: well inside Redshift Serverless's
#: 3,600 s default session timeout and any idle timeout a cluster sets.
KEEPALIVE_SECONDS = 300.0

# Holds no rows; kept across create_tables.py runs (created IF NOT EXISTS, never dropped).
etl_lock_table_create = Statement(
    "create",
    "etl_lock",
    """
CREATE TABLE IF NOT EXISTS etl_lock (
    lock_id SMALLINT
)
DISTSTYLE ALL;
""",
)
#: The load lock and the load history, created when missing (a warehouse from before they existed).
control_table_queries = [etl_lock_table_create, etl_runs_table_create]
statement_timeout = "SET statement_timeout TO {milliseconds};"
still_held = "SELECT 1;"
run_lock = "LOCK etl_lock;"


class LockTimeout(WarehouseError):
    """Another run held the load lock for longer than --wait; nothing was changed."""


class LockLost(WarehouseError):
    """The load lock's session ended during the run, so another run may have started."""


def timed_out(exc: psycopg2.Error) -> bool:
    """A LOCK stopped by statement_timeout (PostgreSQL: query_canceled; Redshift: "canceled on user's request")."""
    return isinstance(exc, psycopg2.errors.QueryCanceled) or "cancel" in str(exc).lower()


def try_lock(warehouse: Warehouse, seconds: float) -> bool:
    """Try LOCK etl_lock for up to `seconds`; True when this connection now holds it (until rollback)."""
    try:
        warehouse.execute(statement_timeout.format(milliseconds=max(100, int(seconds * 1000))))
        warehouse.execute(run_lock)
    except psycopg2.Error as exc:
        warehouse.rollback()
        if timed_out(exc):
            return False
        raise
    return True


def acquire(
    warehouse: Warehouse,
    wait: float,
    holder: Callable[[], object],
    clock: Callable[[], float] = time.monotonic,
) -> HeldLock:
    """Hold the load lock on `warehouse` (a connection used for nothing else), waiting up to `wait` seconds.

    `holder()` describes who holds it (from the load history). The control tables are created
    when missing (a warehouse from before they existed). Past the deadline: LockTimeout.
    """
    deadline = clock() + wait
    announced: str | None = None
    reminded = clock()
    attempt = FIRST_ATTEMPT_SECONDS
    while True:
        remaining = deadline - clock()
        try:
            if try_lock(warehouse, min(attempt, max(remaining, 0.1))):
                if announced is not None:
                    log.info("Got the load lock.")
                return HeldLock(warehouse)
        except psycopg2.errors.UndefinedTable:
            _create(warehouse)
            continue
        attempt = ATTEMPT_SECONDS
        who = str(holder() or "a run that has not recorded itself in etl_runs yet")
        if clock() >= deadline:
            raise LockTimeout(
                f"another load holds the load lock: {who}; gave up after waiting {wait:g} s "
                "(--wait SECONDS to wait longer); nothing was changed"
            )
        if who != announced or clock() - reminded >= REMIND_SECONDS:
            log.warning("Waiting for the load lock, held by %s (giving up in %.0f s)", who, deadline - clock())
            announced, reminded = who, clock()


class HeldLock:
    """The load lock, held by `warehouse`'s open transaction: kept busy, checked, released.

    A thread runs `still_held` every `interval` seconds so the session is never idle; check() runs
    it now. Either way a failure marks the lock lost for good. A dry run's warehouse is left alone.
    """

    def __init__(self, warehouse: Warehouse, interval: float = KEEPALIVE_SECONDS):
        self.warehouse = warehouse
        self.interval = interval
        self.lost: str | None = None
        self._in_use = threading.Lock()
        self._stop = threading.Event()
        self._keeper = threading.Thread(target=self._keep_alive, name="load lock keepalive", daemon=True)
        if not warehouse.dry_run:
            self._keeper.start()

    def _keep_alive(self) -> None:
        while not self._stop.wait(self.interval) and self._answers():
            pass

    def _answers(self) -> bool:
        with self._in_use:
            if self.lost is None:
                try:
                    self.warehouse.query(still_held)
                except psycopg2.Error as exc:
                    self.lost = first_line(exc)
            return self.lost is None

    def check(self) -> None:
        """Raise LockLost unless the lock's session still answers (and so still holds the lock)."""
        if not self.warehouse.dry_run and not self._answers():
            raise LockLost(
                f"lost the load lock: its session ended during the run ({self.lost}), so another load may "
                "have started; this run's open transaction was rolled back: run it again"
            )

    def guard(self, load: Warehouse) -> Warehouse:
        """The load's warehouse, whose transactions commit only while this lock is held."""
        return Guarded(load, self)

    def release(self) -> None:
        """End the lock's transaction. A session already gone has released it: a warning, not a failure."""
        self._stop.set()
        if self._keeper.is_alive():
            self._keeper.join()
        try:
            self.warehouse.rollback()
        except psycopg2.Error as exc:
            log.warning("the load lock's session had already ended (%s); the lock is free", first_line(exc))


class Guarded(WarehouseWrapper):
    """A warehouse whose transactions commit only after the load lock's session has answered."""

    def __init__(self, inner: Warehouse, held: HeldLock):
        super().__init__(inner)
        self.held = held

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.inner.transaction():
            yield
            self.held.check()  # raising here rolls the transaction back


def _create(warehouse: Warehouse) -> None:
    """Create etl_lock and etl_runs; a concurrent run creating them too is not an error, and a
    serialization conflict with it is tried again."""
    log.info("Creating the load lock and history tables (%s)", ", ".join(s.table for s in control_table_queries))
    try:
        commit_retrying_conflicts(warehouse, control_table_queries)
    except (psycopg2.errors.UniqueViolation, psycopg2.errors.DuplicateTable):
        pass


def holder_alive(warehouse: Warehouse) -> bool:
    """Whether some run holds the load lock now (tried for a moment, released at once)."""
    if try_lock(warehouse, 0.5):
        warehouse.rollback()
        return False
    return True
