"""The warehouse interface, how a script opens the configured warehouse, and ordered statement runs.

A warehouse owns its driver connection: code outside the warehouse classes runs SQL through
execute(), query(), cursor() and transaction(), never through the connection itself.
"""

from __future__ import annotations

import importlib
import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, cast

from dwh.config import Settings
from dwh.errors import LoadError

log = logging.getLogger("dwh")

#: [WAREHOUSE] TARGET -> the class that implements it, as "module:Class". The class is imported
#: only when a warehouse of that kind is opened, so the core never imports dwh.local (see
#: docs/architecture.md, "Choosing the warehouse").
WAREHOUSE_CLASSES = {
    "redshift": "dwh.redshift:RedshiftWarehouse",
    "local": "dwh.local.warehouse:LocalWarehouse",
}

_STATEMENT = re.compile(
    r"\s*(DROP TABLE IF EXISTS|CREATE TABLE IF NOT EXISTS|CREATE TABLE|COPY|INSERT INTO|DELETE FROM|TRUNCATE"
    r"|MERGE INTO)\s+(\w+)",
    re.IGNORECASE,
)
_VERBS = {
    "drop table if exists": "drop",
    "create table if not exists": "create",
    "create table": "create",
    "insert into": "insert",
    "delete from": "delete",
    "merge into": "merge",
}


class Warehouse(ABC):
    """What both warehouses offer: statements that return counts, queries that return rows, transactions.

    Subclasses open the psycopg2 connection and pass it here; execute() is theirs, since each
    warehouse runs COPY its own way.
    """

    def __init__(self, conn: Any, description: str):
        self._conn = conn
        self.description = description
        #: The rows the last COPY skipped under MAXERROR.
        self.last_load_errors: list[LoadError] = []

    @abstractmethod
    def execute(self, statement: str) -> int:
        """Run one statement; return the rows it loaded or changed (-1 when not applicable)."""

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A driver cursor in the warehouse's open transaction, closed after the block."""
        with self._conn.cursor() as cur:
            yield cur

    def query(self, statement: str) -> list[tuple]:
        """Run one SELECT; return every row it fetched."""
        with self.cursor() as cur:
            cur.execute(statement)
            return [tuple(row) for row in cur.fetchall()]

    def scalar(self, statement: str) -> Any:
        """Run a SELECT of one value; return that value."""
        return self.query(statement)[0][0]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit what the block ran, or roll all of it back."""
        try:
            yield
        except BaseException:
            self._conn.rollback()
            raise
        self._conn.commit()

    def rollback(self) -> None:
        """End the open transaction without keeping anything it did (e.g. after read-only queries)."""
        self._conn.rollback()

    def close(self) -> None:
        self._conn.close()


def warehouse_class(target: str) -> Callable[[Settings], Warehouse]:
    """The class that implements a [WAREHOUSE] TARGET (constructed with the settings), imported now."""
    module_name, class_name = WAREHOUSE_CLASSES[target].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Warehouse)):
        raise TypeError(f"{WAREHOUSE_CLASSES[target]} is not a Warehouse")
    return cast(Callable[[Settings], Warehouse], cls)


def open_warehouse(settings: Settings) -> Warehouse:
    """The warehouse dwh.cfg's [WAREHOUSE] TARGET names, connected."""
    return warehouse_class(settings.target)(settings)


@contextmanager
def connect(settings: Settings) -> Iterator[Warehouse]:
    warehouse = open_warehouse(settings)
    try:
        yield warehouse
    finally:
        warehouse.close()


def transaction(warehouse: Warehouse) -> AbstractContextManager[None]:
    """Commit what the block ran, or roll all of it back: warehouse.transaction()."""
    return warehouse.transaction()


def describe(statement: str) -> str:
    """A short label for a statement: 'copy staging_events', 'insert songplays'."""
    match = _STATEMENT.match(statement)
    if not match:
        return " ".join(statement.split())[:40]
    verb = match.group(1).lower()
    return f"{_VERBS.get(verb, verb)} {match.group(2).lower()}"


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
