"""--dry-run: a warehouse that prints each statement, in order, instead of running it.

The scripts run their real code against it, so what is printed is what would run, with the
configuration filled in; it connects to nothing and reads no source file. Secrets never reach
SQL (the password is a connection parameter), so none can be printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dwh.config import Settings
from dwh.db import Reads, describe
from dwh.errors import LoadError, WarehouseError


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


class DryRunWarehouse(Reads):
    """Prints what it is asked to run; a query, which it cannot answer, is refused.

    The data-quality checks ask for `dry_run` and skip themselves, saying so in the printed SQL.
    """

    dry_run = True

    def __init__(self, settings: Settings, printer: Printer, connection: str):
        self.description = describe_target(settings)
        self.printer = printer
        self.connection = connection
        self.last_load_errors: list[LoadError] = []

    def execute(self, statement: str) -> int:
        self.printer.show(self.connection, statement)
        return -1

    def result(self, statement: str) -> tuple[list[str], list[tuple]]:
        raise WarehouseError(f"a dry run cannot answer a query: {describe(statement)}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.printer.show(self.connection, "BEGIN;")
        yield
        self.printer.show(self.connection, "COMMIT;")

    def rollback(self) -> None:
        self.printer.show(self.connection, "ROLLBACK;")

    def close(self) -> None:
        """Nothing is open."""
