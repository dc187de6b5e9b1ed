"""Connections and ordered statement runs shared by create_tables.py and etl.py."""

from __future__ import annotations

import logging
import re
import time
from contextlib import contextmanager

import psycopg2

import sql_queries
from dwh.errors import LoadError, LoadFailed, NoSourceFiles, WarehouseError

log = logging.getLogger("dwh")

CONNECT_TIMEOUT = 10
_STATEMENT = re.compile(
    r"\s*(DROP TABLE IF EXISTS|CREATE TABLE IF NOT EXISTS|CREATE TABLE|COPY|INSERT INTO|DELETE FROM|TRUNCATE|MERGE INTO)\s+(\w+)",
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


CONNECT_ATTEMPTS = 3
_NOT_TRANSIENT = ("password authentication failed", "does not exist", "no pg_hba.conf entry", "SSL")
_MISSING_PREFIX = re.compile(r"S3 prefix .* does not exist", re.IGNORECASE)
_COPY_TABLE = re.compile(r"\s*COPY\s+(\w+)", re.IGNORECASE)


def connect_with_retry(description: str, sleep=time.sleep, **params):
    """psycopg2.connect, retried with backoff (1 s, 2 s) when the failure may be transient.

    A refused password or a missing database is not retried; each attempt is bounded
    by connect_timeout, so a wrong host fails within seconds, not minutes.
    """
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            return psycopg2.connect(**params)
        except psycopg2.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
            transient = not any(marker in reason for marker in _NOT_TRANSIENT)
            if transient and attempt < CONNECT_ATTEMPTS:
                log.warning("cannot connect to %s (%s); retrying in %d s", description, reason, attempt)
                sleep(attempt)
                continue
            hint = (
                "Check DB_USER and DB_PASSWORD in dwh.cfg (or SPARKIFY_DB_PASSWORD)."
                if "password" in reason
                else "Check that the cluster is available (python iac_setup.py status), that HOST and "
                "DB_PORT are right, and that its security group admits your address."
            )
            raise WarehouseError(f"cannot connect to {description}: {reason}. {hint}") from None


class Warehouse:
    """What both warehouses share: a psycopg2 connection and statements that return counts."""

    description = ""

    def close(self) -> None:
        self.conn.close()

    def scalar(self, statement: str):
        with self.conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchone()[0]


class RedshiftWarehouse(Warehouse):
    """A psycopg2 connection to a Redshift cluster or Serverless workgroup (TLS by default)."""

    kind = "redshift"

    def __init__(self, settings, conn=None):
        c = settings.redshift
        self.description = f"Redshift at {c.host}:{c.port}/{c.dbname}"
        self.conn = conn or connect_with_retry(
            self.description,
            host=c.host,
            port=c.port,
            dbname=c.dbname,
            user=c.user,
            password=c.password,
            connect_timeout=c.connect_timeout,
            sslmode=c.sslmode,
        )
        self.last_load_errors = []

    def execute(self, statement: str) -> int:
        """Run one statement; return the rows it loaded or changed (-1 when not applicable)."""
        copy = _COPY_TABLE.match(statement)
        with self.conn.cursor() as cur:
            try:
                cur.execute(statement)
            except psycopg2.Error as exc:
                if not copy:
                    raise
                reason = (exc.pgerror or str(exc)).strip().splitlines()[0]
                self.conn.rollback()
                errors = self.load_errors()
                shown = "".join(f"\n  {error}" for error in errors)
                failure = NoSourceFiles if _MISSING_PREFIX.search(reason) else LoadFailed
                raise failure(f"COPY {copy.group(1)} failed: {reason}{shown}", errors) from None
            if not copy:
                return cur.rowcount
            cur.execute(sql_queries.last_copy_count)
            rows = cur.fetchone()[0]
        self.last_load_errors = []
        if any("could not be loaded" in notice for notice in self.conn.notices[-3:]):
            self.last_load_errors = self.load_errors()
            for error in self.last_load_errors:
                log.warning("COPY %s skipped a row (MAXERROR): %s", copy.group(1), error)
        return rows

    def load_errors(self) -> list:
        """The rejected rows of this session's last COPY: sys_load_error_detail, else stl_load_errors."""
        with self.conn.cursor() as cur:
            for query in (sql_queries.sys_load_errors, sql_queries.stl_load_errors):
                try:
                    cur.execute(query)
                    rows = cur.fetchall()
                except psycopg2.Error:
                    self.conn.rollback()
                    continue
                if rows:
                    return [LoadError(*row) for row in rows]
        return []


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
