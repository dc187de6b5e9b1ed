"""--dry-run: a warehouse that prints each statement, in order, instead of running it.

The scripts run their real code against it, so what is printed is what would run, with the
configuration filled in; it connects to nothing and reads no source file. Secrets never reach
SQL (the password is a connection parameter), so none can be printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dwh.config import Settings
from dwh.db import Warehouse
from dwh.errors import WarehouseError


class UnknownRow(tuple):
    """A dry run's one row: whichever column is asked for is Unknown."""

    def __getitem__(self, index: object) -> Unknown:  # type: ignore[override]
        return Unknown()


class Unknown:
    """A dry run's answer to a query: satisfies any check, printed as '?'."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ge__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0

    def __format__(self, spec: str) -> str:
        return "?"


def describe_target(settings: Settings) -> str:
    """Where the statements would run, as the warehouse classes describe it (never the password)."""
    target = settings.redshift or settings.local
    assert target is not None
    return target.description


class Printer:
    """Prints statements, naming the connection each runs on when it changes."""

    def __init__(self, out: Callable[[str], None] = print):
        self.out = out
        self.connection: str | None = None

    def show(self, connection: str, statement: str) -> None:
        if connection != self.connection:
            self.out(f"\n-- on the {connection} connection")
            self.connection = connection
        self.out(statement.strip())


class DryRunWarehouse(Warehouse):
    """Prints what it is asked to run; answers queries with nothing."""

    def __init__(self, settings: Settings, printer: Printer, connection: str):
        super().__init__(None, describe_target(settings))
        self.printer = printer
        self.connection = connection

    def execute(self, statement: str) -> int:
        self.printer.show(self.connection, statement)
        return -1

    def query(self, statement: str) -> list[tuple]:
        self.printer.show(self.connection, statement)
        return [UnknownRow()]

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        raise WarehouseError("a dry run runs no statement of its own")
        yield

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.printer.show(self.connection, "BEGIN;")
        yield
        self.printer.show(self.connection, "COMMIT;")

    def rollback(self) -> None:
        self.printer.show(self.connection, "ROLLBACK;")

    def close(self) -> None:
        """Nothing is open."""
