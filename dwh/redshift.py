"""Everything Redshift-specific: connecting with retries, COPY's load-error diagnostics, system-view SQL."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

import psycopg2

from dwh.config import Settings
from dwh.db import Warehouse
from dwh.errors import LoadError, LoadFailed, NoSourceFiles, WarehouseError
from dwh.iam_auth import credentials_for

log = logging.getLogger("dwh")

CONNECT_ATTEMPTS = 3
_NOT_TRANSIENT = ("password authentication failed", "does not exist", "no pg_hba.conf entry", "SSL")
_MISSING_PREFIX = re.compile(r"S3 prefix .* does not exist", re.IGNORECASE)
_COPY_TABLE = re.compile(r"\s*COPY\s+(\w+)", re.IGNORECASE)

# LOAD ERRORS (Redshift system views)
#
# After a failed COPY, the rejected rows of this session's last load: sys_load_error_detail
# works on provisioned clusters and Serverless (it has no raw value); stl_load_errors is
# the fallback. Columns in the order of dwh.errors.LoadError.

last_copy_count = "SELECT PG_LAST_COPY_COUNT();"
sys_load_errors = """
SELECT
    TRIM(d.file_name)   AS filename,
    d.line_number,
    TRIM(d.column_name) AS colname,
    TRIM(d.column_type) AS type,
    ''                  AS raw_field_value,
    d.error_code        AS err_code,
    TRIM(d.error_message) AS err_reason
FROM sys_load_error_detail AS d
WHERE d.query_id = (
    SELECT latest.query_id FROM sys_load_error_detail AS latest
    WHERE latest.session_id = PG_BACKEND_PID()
    ORDER BY latest.start_time DESC
    LIMIT 1
)
ORDER BY d.line_number
LIMIT 20;
"""
stl_load_errors = """
SELECT
    TRIM(filename)        AS filename,
    line_number,
    TRIM(colname)         AS colname,
    TRIM(type)            AS type,
    TRIM(raw_field_value) AS raw_field_value,
    err_code,
    TRIM(err_reason)      AS err_reason
FROM stl_load_errors
WHERE query = PG_LAST_COPY_ID()
ORDER BY line_number
LIMIT 20;
"""
SYSTEM_VIEW_QUERIES = [last_copy_count, sys_load_errors, stl_load_errors]


def connect_with_retry(
    description: str,
    sleep: Callable[[float], None] = time.sleep,
    login: Callable[[], dict[str, str]] | None = None,
    **params: Any,
) -> Any:
    """psycopg2.connect, retried with backoff (1 s, 2 s) when the failure may be transient.

    A refused password or a missing database is not retried; each attempt is bounded
    by connect_timeout, so a wrong host fails within seconds, not minutes. ``login``, when
    given, supplies user and password for each attempt (AUTH = iam: dwh.iam_auth).
    """
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            return psycopg2.connect(**{**params, **(login() if login else {})})
        except psycopg2.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
            transient = not any(marker in reason for marker in _NOT_TRANSIENT)
            if transient and attempt < CONNECT_ATTEMPTS:
                log.warning("cannot connect to %s (%s); retrying in %d s", description, reason, attempt)
                sleep(attempt)
                continue
            password_hint = (
                "The database refused the credentials AWS issued (AUTH = iam): check that the cluster "
                "allows your IAM identity (IAM_LOGIN, DB_USER) and that DB_NAME exists."
                if login
                else "Check DB_USER and DB_PASSWORD in dwh.cfg (or SPARKIFY_DB_PASSWORD)."
            )
            hint = (
                password_hint
                if "password" in reason
                else "Check that the cluster is available (python iac_setup.py status), that HOST and "
                "DB_PORT are right, and that its security group admits your address."
            )
            raise WarehouseError(f"cannot connect to {description}: {reason}. {hint}") from None
    raise AssertionError("unreachable: the last attempt returns or raises")


class RedshiftWarehouse(Warehouse):
    """A psycopg2 connection to a Redshift cluster or Serverless workgroup (TLS by default).

    ``conn`` replaces the connection (tests pass a stand-in that answers like Redshift).
    """

    def __init__(self, settings: Settings, conn: Any = None):
        c = settings.redshift
        if c is None:
            raise WarehouseError(f"{settings.path.name}: [WAREHOUSE] TARGET is not redshift")
        description = f"Redshift at {c.host}:{c.port}/{c.dbname}"
        password: dict[str, Any] = {} if c.iam else {"user": c.user, "password": c.password}
        super().__init__(
            conn
            or connect_with_retry(
                description,
                login=credentials_for(c) if c.iam else None,
                host=c.host,
                port=c.port,
                dbname=c.dbname,
                connect_timeout=c.connect_timeout,
                sslmode=c.sslmode,
                **password,
            ),
            description,
        )

    def execute(self, statement: str) -> int:
        """Run one statement; return the rows it loaded or changed (-1 when not applicable)."""
        copy = _COPY_TABLE.match(statement)
        with self.cursor() as cur:
            try:
                cur.execute(statement)
            except psycopg2.Error as exc:
                if not copy:
                    raise
                reason = (exc.pgerror or str(exc)).strip().splitlines()[0]
                self._conn.rollback()
                errors = self.load_errors()
                shown = "".join(f"\n  {error}" for error in errors)
                failure = NoSourceFiles if _MISSING_PREFIX.search(reason) else LoadFailed
                raise failure(f"COPY {copy.group(1)} failed: {reason}{shown}", errors) from None
            if not copy:
                return cur.rowcount
            cur.execute(last_copy_count)
            rows = cur.fetchone()[0]
        self.last_load_errors = []
        if any("could not be loaded" in notice for notice in self._conn.notices[-3:]):
            self.last_load_errors = self.load_errors()
            for error in self.last_load_errors:
                log.warning("COPY %s skipped a row (MAXERROR): %s", copy.group(1), error)
        return rows

    def load_errors(self) -> list[LoadError]:
        """The rejected rows of this session's last COPY: sys_load_error_detail, else stl_load_errors."""
        with self.cursor() as cur:
            for query in (sys_load_errors, stl_load_errors):
                try:
                    cur.execute(query)
                    rows = cur.fetchall()
                except psycopg2.Error:
                    self._conn.rollback()
                    continue
                if rows:
                    return [LoadError(*row) for row in rows]
        return []
