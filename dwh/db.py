"""The warehouse interface, its psycopg2 implementation, the project's statements, and ordered statement runs.

A warehouse owns its driver connection: code outside the warehouse classes runs SQL through
execute(), query(), result() and transaction(), never through the connection itself.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, TypeVar

import psycopg2
import psycopg2.errors

from dwh.errors import LoadError, first_line

log = logging.getLogger("dwh")
T = TypeVar("T")


class Statement(str):
    """A SQL string that also says what it does (`verb`) to which `table`, so no code parses it back."""

    verb: str
    table: str

    def __new__(cls, verb: str, table: str, text: str) -> Statement:
        statement = super().__new__(cls, text)
        statement.verb, statement.table = verb, table
        return statement

    def format(self, *args: Any, **kwargs: Any) -> Statement:
        return Statement(self.verb, self.table, str.format(self, *args, **kwargs))


def describe(statement: str) -> str:
    """A short label for a statement: 'copy staging_events', 'insert songplays', or its first words."""
    if isinstance(statement, Statement):
        return f"{statement.verb} {statement.table}"
    return " ".join(statement.split())[:40]


def verb_of(statement: str) -> str | None:
    """What a project statement does ('copy', 'insert', ...); None for any other SQL."""
    return statement.verb if isinstance(statement, Statement) else None


class Warehouse(Protocol):
    """What both warehouses, and the wrappers around them, offer."""

    #: Where the statements run, for messages (never a password).
    description: str
    #: True when statements are printed, not run (--dry-run): nothing can be queried.
    dry_run: bool

    @property
    def last_load_errors(self) -> list[LoadError]:
        """The rows the last COPY skipped under MAXERROR."""

    def execute(self, statement: str) -> int:
        """Run one statement; return the rows it loaded or changed (-1 when not applicable)."""

    def result(self, statement: str) -> tuple[list[str], list[tuple]]:
        """Run one SELECT; return its column names and every row."""

    def query(self, statement: str) -> list[tuple]:
        """Run one SELECT; return every row it fetched."""

    def scalar(self, statement: str) -> Any:
        """Run a SELECT of one value; return that value."""

    def transaction(self) -> AbstractContextManager[None]:
        """Commit what the block ran, or roll all of it back."""

    def rollback(self) -> None:
        """End the open transaction without keeping anything it did (e.g. after read-only queries)."""

    def close(self) -> None: ...


class Reads(ABC):
    """query() and scalar(), from the result() a warehouse implements."""

    @abstractmethod
    def result(self, statement: str) -> tuple[list[str], list[tuple]]: ...

    def query(self, statement: str) -> list[tuple]:
        return self.result(statement)[1]

    def scalar(self, statement: str) -> Any:
        return self.query(statement)[0][0]


class PsycopgWarehouse(Reads):
    """A warehouse on one psycopg2 connection; each warehouse class changes only what its server needs."""

    dry_run = False

    def __init__(self, conn: Any, description: str):
        self._conn = conn
        self.description = description
        self.last_load_errors: list[LoadError] = []

    def execute(self, statement: str) -> int:
        with self.cursor() as cur:
            cur.execute(statement)
            return int(cur.rowcount)

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A driver cursor in the warehouse's open transaction, closed after the block."""
        with self._conn.cursor() as cur:
            yield cur

    def result(self, statement: str) -> tuple[list[str], list[tuple]]:
        with self.cursor() as cur:
            cur.execute(statement)
            return [column.name for column in cur.description], [tuple(row) for row in cur.fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            try:
                self._conn.rollback()
            except (psycopg2.InterfaceError, psycopg2.OperationalError):
                pass  # the connection is gone, and the server rolled its transaction back: keep the first error
            raise
        self._conn.commit()

    def rollback(self) -> None:
        self._conn.rollback()

    def close(self) -> None:
        self._conn.close()


class WarehouseWrapper:
    """A warehouse around another, adding one concern (counting, progress); the rest is the inner one's."""

    def __init__(self, inner: Warehouse):
        self.inner = inner
        self.description = inner.description
        self.dry_run = inner.dry_run

    @property
    def last_load_errors(self) -> list[LoadError]:
        return self.inner.last_load_errors

    def execute(self, statement: str) -> int:
        return self.inner.execute(statement)

    def result(self, statement: str) -> tuple[list[str], list[tuple]]:
        return self.inner.result(statement)

    def query(self, statement: str) -> list[tuple]:
        return self.inner.query(statement)

    def scalar(self, statement: str) -> Any:
        return self.inner.scalar(statement)

    def transaction(self) -> AbstractContextManager[None]:
        return self.inner.transaction()

    def rollback(self) -> None:
        self.inner.rollback()

    def close(self) -> None:
        self.inner.close()


#: How many times a transaction that met a serialization conflict is run in all.
CONFLICT_ATTEMPTS = 3


def serialization_conflict(exc: BaseException) -> bool:
    """Redshift's "ERROR:1023 ... Serializable isolation violation" (PostgreSQL: SQLSTATE 40001).

    AWS's answer to it is to run the transaction again (Troubleshooting serializable isolation errors).
    """
    return (
        isinstance(exc, psycopg2.errors.SerializationFailure) or "serializable isolation violation" in str(exc).lower()
    )


def retrying_conflicts(
    write: Callable[[], T], attempts: int = CONFLICT_ATTEMPTS, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Run `write` (one whole transaction) again when the warehouse aborted it for a serialization conflict."""
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except psycopg2.Error as exc:
            if attempt == attempts or not serialization_conflict(exc):
                raise
            log.warning("a concurrent transaction conflicted with this one (%s); running it again", first_line(exc))
            sleep(0.5 * attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


def commit_retrying_conflicts(warehouse: Warehouse, statements: Iterable[str]) -> None:
    """Run the statements in one transaction, the whole of it again after a serialization conflict."""

    def write() -> None:
        with warehouse.transaction():
            for statement in statements:
                warehouse.execute(statement)

    retrying_conflicts(write)


def transaction(warehouse: Warehouse) -> AbstractContextManager[None]:
    """Commit what the block ran, or roll all of it back: warehouse.transaction()."""
    return warehouse.transaction()


def run_statements(warehouse: Warehouse, statements: Iterable[str]) -> list[tuple[str, int, float]]:
    """Run statements in order, logging each one's rows and seconds."""
    results = []
    for statement in statements:
        label = describe(statement)
        started = time.perf_counter()
        rows = warehouse.execute(statement)
        seconds = time.perf_counter() - started
        log.info("  %-26s %11s %8.2f s", label, f"{rows:,} rows" if rows >= 0 else "", seconds)
        results.append((label, rows, seconds))
    return results
