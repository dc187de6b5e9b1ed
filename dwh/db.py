"""Connections and ordered statement runs shared by create_tables.py and etl.py."""

from __future__ import annotations

import logging
import re
import time
from contextlib import contextmanager

import psycopg2

from dwh.errors import WarehouseError

log = logging.getLogger("dwh")

CONNECT_TIMEOUT = 10
_STATEMENT = re.compile(
    r"\s*(DROP TABLE IF EXISTS|CREATE TABLE IF NOT EXISTS|CREATE TABLE|COPY|INSERT INTO|DELETE FROM|TRUNCATE|MERGE INTO)\s+(\w+)",
    re.IGNORECASE,
)
_VERBS = {"drop table if exists": "drop", "create table if not exists": "create", "create table": "create",
          "insert into": "insert", "delete from": "delete", "merge into": "merge"}


class RedshiftWarehouse:
    """A psycopg2 connection to a Redshift cluster or Serverless workgroup (TLS required)."""

    kind = "redshift"

    def __init__(self, settings):
        c = settings.redshift
        self.description = f"Redshift at {c.host}:{c.port}/{c.dbname}"
        try:
            self.conn = psycopg2.connect(
                host=c.host, port=c.port, dbname=c.dbname, user=c.user, password=c.password,
                connect_timeout=CONNECT_TIMEOUT, sslmode="require",
            )
        except psycopg2.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
            raise WarehouseError(
                f"cannot connect to {self.description}: {reason}. Check that the cluster is available "
                "(python iac_setup.py status) and that its security group admits your address."
            ) from None
        self.last_load_errors = []

    def close(self) -> None:
        self.conn.close()

    def execute(self, statement: str) -> int:
        """Run one statement; return the rows it loaded or changed (-1 when not applicable)."""
        with self.conn.cursor() as cur:
            cur.execute(statement)
            if statement.lstrip()[:4].upper() == "COPY":
                cur.execute("SELECT pg_last_copy_count();")
                return cur.fetchone()[0]
            return cur.rowcount


def open_warehouse(settings):
    """The warehouse dwh.cfg's [WAREHOUSE] TARGET names, connected."""
    if settings.target == "local":
        from dwh.local.warehouse import LocalWarehouse

        return LocalWarehouse(settings)
    return RedshiftWarehouse(settings)


@contextmanager
def connect(settings):
    warehouse = open_warehouse(settings)
    try:
        yield warehouse
    finally:
        warehouse.close()


@contextmanager
def transaction(warehouse):
    """Commit what the block ran, or roll all of it back."""
    try:
        yield
    except BaseException:
        warehouse.conn.rollback()
        raise
    warehouse.conn.commit()


def describe(statement: str) -> str:
    """A short label for a statement: 'copy staging_events', 'insert songplays'."""
    match = _STATEMENT.match(statement)
    if not match:
        return " ".join(statement.split())[:40]
    verb = match.group(1).lower()
    return f"{_VERBS.get(verb, verb)} {match.group(2).lower()}"


def run_statements(warehouse, statements) -> list[tuple[str, int, float]]:
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
