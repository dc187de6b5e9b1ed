"""Everything Redshift-specific: connecting with retries, COPY's load-error diagnostics, system-view SQL."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2

from dwh.config import Settings
from dwh.db import PsycopgWarehouse, Statement
from dwh.errors import LoadError, LoadFailed, NoSourceFiles, WarehouseError
from dwh.redshift.iam_auth import credentials_for

log = logging.getLogger("dwh")

CONNECT_ATTEMPTS = 3
_NOT_TRANSIENT = ("password authentication failed", "does not exist", "no pg_hba.conf entry", "SSL")
_MISSING_PREFIX = re.compile(r"S3 prefix .* does not exist", re.IGNORECASE)

# LOAD ERRORS (Redshift system views)
#
# A COPY is identified by its session's process id and a time no later than its start, both
# read on the load's session just before the COPY (SYSDATE: the transaction's start, to the
# microsecond; GETDATE(): the statement's, perhaps to the second; the later of the two is still
# before the COPY). Both are in the session time zone, UTC unless someone sets another, as
# the views' start_time is. The rows are read on a second session, never in the load's
# transaction: sys_load_error_detail works on provisioned clusters and Serverless (no raw
# value); stl_load_errors (provisioned only) when the SYS view cannot be read. Never
# pg_last_copy_id(): a COPY that fails before loading or is rolled back does not update it.
# Columns in the order of dwh.errors.LoadError.

copy_session = "SELECT PG_BACKEND_PID() AS session_id, SYSDATE AS transaction_start, GETDATE() AS statement_start;"
last_copy_count = "SELECT PG_LAST_COPY_COUNT();"
sys_load_errors = """
SELECT
    TRIM(d.file_name)     AS filename,
    d.line_number,
    TRIM(d.column_name)   AS colname,
    TRIM(d.column_type)   AS type,
    ''                    AS raw_field_value,
    d.error_code          AS err_code,
    TRIM(d.error_message) AS err_reason
FROM sys_load_error_detail AS d
WHERE d.session_id = %(session)s AND d.start_time >= CAST(%(started)s AS TIMESTAMP)
ORDER BY d.start_time, d.line_number
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
WHERE session = %(session)s AND starttime >= CAST(%(started)s AS TIMESTAMP)
ORDER BY starttime, line_number
LIMIT 20;
"""
LOAD_ERROR_QUERIES = (sys_load_errors, stl_load_errors)


@dataclass(frozen=True)
class CopySession:
    """Where and from when to look for one COPY's rows in the system views."""

    session: int
    started: datetime

    def parameters(self) -> dict[str, Any]:
        return {"session": self.session, "started": self.started.isoformat(sep=" ", timespec="microseconds")}


def connect_with_retry(
    description: str,
    sleep: Callable[[float], None] = time.sleep,
    login: Callable[[], dict[str, str]] | None = None,
    **params: Any,
) -> Any:
    """psycopg2.connect, retried with backoff (1 s, 2 s) when the failure may be transient.

    A refused password or a missing database is not retried; each attempt is bounded
    by connect_timeout, so a wrong host fails within seconds, not minutes. ``login``, when
    given, supplies user and password for each attempt (AUTH = iam: dwh.redshift.iam_auth).
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


class RedshiftWarehouse(PsycopgWarehouse):
    """A psycopg2 connection to a Redshift cluster or Serverless workgroup (TLS by default).

    ``conn`` replaces the connection and ``session`` what opens the second session load errors are
    read on (tests pass stand-ins that answer like Redshift).
    """

    def __init__(self, settings: Settings, conn: Any = None, session: Callable[[], PsycopgWarehouse] | None = None):
        c = settings.redshift
        if c is None:
            raise WarehouseError(f"{settings.path.name}: [WAREHOUSE] TARGET is not redshift")
        password: dict[str, Any] = {} if c.iam else {"user": c.user, "password": c.password}
        super().__init__(
            conn
            or connect_with_retry(
                c.description,
                login=credentials_for(c) if c.iam else None,
                host=c.host,
                port=c.port,
                dbname=c.dbname,
                connect_timeout=c.connect_timeout,
                sslmode=c.sslmode,
                **password,
            ),
            c.description,
        )
        self._open_session = session or (lambda: RedshiftWarehouse(settings))

    def execute(self, statement: str) -> int:
        """Run one statement; return the rows it loaded or changed (-1 when not applicable).

        A failed COPY leaves the transaction to the caller (transaction() rolls it back); its
        rows are read on a second session, as are those a successful COPY skipped under MAXERROR.
        """
        if not (isinstance(statement, Statement) and statement.verb == "copy"):
            return super().execute(statement)
        table = statement.table
        with self.cursor() as cur:
            cur.execute(copy_session)
            pid, transaction_start, statement_start = cur.fetchone()
            where = CopySession(pid, max(transaction_start, statement_start))
            del self._conn.notices[:]
            try:
                cur.execute(statement)
            except psycopg2.Error as exc:
                reason = (exc.pgerror or str(exc)).strip().splitlines()[0]
                errors = self.load_errors(where)
                shown = (
                    "".join(f"\n  {error}" for error in errors)
                    if errors
                    else "\n  (no rejected row is recorded for this COPY: it failed before loading any row)"
                )
                failure = NoSourceFiles if _MISSING_PREFIX.search(reason) else LoadFailed
                raise failure(f"COPY {table} failed: {reason}{shown}", errors) from None
            cur.execute(last_copy_count)
            rows = cur.fetchone()[0]
        self.last_load_errors = []
        if any("could not be loaded" in notice for notice in self._conn.notices):
            self.last_load_errors = self.load_errors(where)
            for error in self.last_load_errors:
                log.warning("COPY %s skipped a row (MAXERROR): %s", table, error)
            if not self.last_load_errors:
                log.warning("COPY %s skipped rows (MAXERROR); the system views show none of them yet", table)
        return rows

    def load_errors(self, where: CopySession) -> list[LoadError]:
        """The rejected rows of the COPY at ``where``, read on a second session: SYS view, else STL."""
        try:
            session = self._open_session()
        except WarehouseError as exc:
            log.warning("cannot open a second session to read the load errors: %s", exc)
            return []
        try:
            with session.cursor() as cur:
                for query in LOAD_ERROR_QUERIES:
                    try:
                        cur.execute(query, where.parameters())
                        rows = cur.fetchall()
                    except psycopg2.Error:
                        session.rollback()
                        continue
                    if rows:
                        return [LoadError(*row) for row in rows]
            return []
        finally:
            session.rollback()
            session.close()
