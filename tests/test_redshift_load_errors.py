"""On Redshift a failed COPY is reported with exactly its own rejected rows, read on a second session.

No cluster is reachable, so a stand-in answers as Redshift does: real psycopg2 sessions on the
local PostgreSQL server, in a database holding Redshift's load-error views as tables
(sys_load_error_detail in schema sys_views, stl_load_errors in stl_views) and its session functions
(GETDATE(), SYSDATE, PG_LAST_COPY_COUNT(), PG_LAST_COPY_ID()). Its COPY writes the rows Redshift
logs for a COPY (outside the load's transaction, so they survive a rollback), then fails with
Redshift's error, aborting the transaction for real, or loads and sends Redshift's INFO notice.
The kind of warehouse decides which views a session can read, through its search_path:
provisioned (both), Serverless (no STL: "Redshift Serverless cannot read STL tables") and an older
provisioned cluster without the SYS views. The SQL the project sends is evaluated by PostgreSQL, so
a wrong filter returns wrong rows here as it would on Redshift.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest
from helpers import REDSHIFT, run_as_admin, system_view_queries
from psycopg2 import sql as pgsql

import etl
import sql_queries
from dwh import cli
from dwh.config import load_settings
from dwh.db import transaction
from dwh.errors import LoadError, LoadFailed, NoSourceFiles
from dwh.local import server
from dwh.redshift import warehouse as redshift
from dwh.redshift.warehouse import RedshiftWarehouse

STANDIN_DB = "redshift_standin"
KINDS = {
    "provisioned": "sys_views,stl_views,public",
    "serverless": "sys_views,public",
    "without SYS views": "stl_views,public",
}
SCHEMA = """
CREATE SCHEMA sys_views;
CREATE SCHEMA stl_views;
CREATE TABLE sys_views.sys_load_error_detail (
    user_id INT, query_id BIGINT, transaction_id BIGINT, session_id INT, database_name CHAR(128),
    table_id INT, start_time TIMESTAMP, file_name CHAR(256), line_number BIGINT, column_name CHAR(127),
    column_type CHAR(10), error_code INT, error_message CHAR(512)
);
CREATE TABLE stl_views.stl_load_errors (
    userid INT, slice INT, tbl INT, starttime TIMESTAMP, session INT, query INT, filename CHAR(256),
    line_number BIGINT, colname CHAR(127), type CHAR(10), col_length CHAR(10), position INT,
    raw_line CHAR(1024), raw_field_value CHAR(1024), err_code INT, err_reason CHAR(100)
);
CREATE TABLE staging_events (copied INT);
CREATE TABLE staging_songs (copied INT);
CREATE FUNCTION getdate() RETURNS TIMESTAMP LANGUAGE sql
    AS $$ SELECT date_trunc('second', statement_timestamp() AT TIME ZONE 'UTC') $$;
CREATE FUNCTION pg_last_copy_count() RETURNS BIGINT LANGUAGE sql
    AS $$ SELECT COALESCE(NULLIF(current_setting('standin.last_copy_count', true), ''), '0')::BIGINT $$;
CREATE FUNCTION pg_last_copy_id() RETURNS BIGINT LANGUAGE sql
    AS $$ SELECT COALESCE(NULLIF(current_setting('standin.last_copy_id', true), ''), '-1')::BIGINT $$;
"""
_COPY = re.compile(r"\s*COPY\s+(\w+)", re.IGNORECASE)
_SYSDATE = re.compile(r"\bSYSDATE\b", re.IGNORECASE)


@dataclass(frozen=True)
class Rejected:
    """One row a COPY rejects, as Redshift logs it."""

    line: int
    column: str
    value: str
    reason: str
    code: int = 1207
    file: str = "s3://udacity-dend/log_data/2018/11/2018-11-30-events.json"


@dataclass
class Copy:
    """What the next COPY does: reject some rows, then fail (before loading, or on the data) or load."""

    rejected: list[Rejected] = field(default_factory=list)
    loaded: int = 0
    fails: str | None = None
    before_loading: bool = False
    meanwhile: Callable[[], None] | None = None


class StandInCursor(psycopg2.extensions.cursor):
    """Runs SQL on PostgreSQL, translating SYSDATE; COPY does what Redshift's COPY would."""

    def execute(self, query, vars=None):
        conn = cast(StandInConnection, self.connection)
        conn.statements.append(query)
        copy = _COPY.match(query) if isinstance(query, str) else None
        if copy is None:
            return super().execute(_SYSDATE.sub("(transaction_timestamp() AT TIME ZONE 'UTC')", query), vars)
        return conn.cluster.copy(self, copy.group(1))


class StandInConnection(psycopg2.extensions.connection):
    cluster: RedshiftStandIn
    pid: int
    statements: list


class RedshiftStandIn:
    """A Redshift of one kind: sessions on the stand-in database and the COPYs they will run."""

    def __init__(self, params: dict, kind: str):
        self.params, self.search_path = params, KINDS[kind]
        self.copies: list[Copy] = []
        self.query_ids = itertools.count(5000)
        self.log = psycopg2.connect(**params)
        self.log.autocommit = True
        self.sessions: list[StandInConnection] = []

    def connect(self) -> StandInConnection:
        conn = psycopg2.connect(
            **self.params, connection_factory=StandInConnection, options=f"-c search_path={self.search_path}"
        )
        conn.cursor_factory = StandInCursor
        conn.cluster, conn.statements = self, []
        with psycopg2.extensions.cursor(conn) as cur:
            cur.execute("SELECT pg_backend_pid()")
            (conn.pid,) = cast(tuple, cur.fetchone())
        conn.rollback()
        self.sessions.append(conn)
        return conn

    def copy(self, cur: StandInCursor, table: str) -> None:
        conn, plan = cast(StandInConnection, cur.connection), self.copies.pop(0)
        run = super(StandInCursor, cur).execute
        if plan.meanwhile:
            plan.meanwhile()
        if plan.before_loading:
            run("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'XX000', MESSAGE = %s; END $$", (plan.fails,))
        query_id = next(self.query_ids)
        run("SELECT set_config('standin.last_copy_id', %s, false)", (str(query_id),))
        self.record(conn.pid, query_id, plan.rejected)
        if plan.fails:
            run("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'XX000', MESSAGE = %s; END $$", (plan.fails,))
        run(pgsql.SQL("INSERT INTO {} SELECT generate_series(1, %s)").format(pgsql.Identifier(table)), (plan.loaded,))
        run("SELECT set_config('standin.last_copy_count', %s, false)", (str(plan.loaded),))
        if plan.rejected:
            notice = (
                f"Load into table '{table}' completed, {plan.loaded} record(s) loaded successfully.\n"
                f"{len(plan.rejected)} record(s) could not be loaded.  Check 'sys_load_error_detail' system table "
                "for details."
            )
            run("DO $$ BEGIN RAISE INFO '%%', %s; END $$", (notice,))

    def record(self, pid: int, query_id: int, rejected: list[Rejected]) -> None:
        """Log a COPY's rejected rows as Redshift does, in both views, outside any transaction."""
        with self.log.cursor() as cur:
            for row in rejected:
                cur.execute(
                    "INSERT INTO sys_views.sys_load_error_detail (query_id, session_id, start_time, file_name, "
                    "line_number, column_name, column_type, error_code, error_message) "
                    "VALUES (%s, %s, clock_timestamp() AT TIME ZONE 'UTC', %s, %s, %s, 'int4', %s, %s)",
                    (query_id, pid, row.file, row.line, row.column, row.code, row.reason),
                )
                cur.execute(
                    "INSERT INTO stl_views.stl_load_errors (query, session, starttime, filename, line_number, "
                    "colname, type, raw_field_value, err_code, err_reason) "
                    "VALUES (%s, %s, clock_timestamp() AT TIME ZONE 'UTC', %s, %s, %s, 'int4', %s, %s, %s)",
                    (query_id, pid, row.file, row.line, row.column, row.value, row.code, row.reason),
                )

    def count(self, table: str) -> int:
        with self.log.cursor() as cur:
            cur.execute(pgsql.SQL("SELECT COUNT(*) FROM {}").format(pgsql.Identifier(table)))
            return cur.fetchone()[0]

    def close(self) -> None:
        for conn in self.sessions:
            conn.close()
        self.log.close()


BAD_DIGIT = Rejected(3, "session_id", "abc", "Invalid digit, Value 'a', Pos 0, Type: Integer")
BAD_USER = Rejected(7, "user_id", "x7", "Invalid digit, Value 'x', Pos 0, Type: Integer")
OLDER_LOAD = Rejected(41, "item_in_session", "zz", "Invalid digit, Value 'z', Pos 0, Type: Integer")
LOAD_FAILED = "Load into table 'staging_events' failed. Check 'sys_load_error_detail' system table for details."
NO_PREFIX = "The specified S3 prefix 'log_data/2018/11/2018-11-31' does not exist"


@pytest.fixture(scope="module")
def standin_params(local_server):
    params = server.connect_params(local_server)
    database, owner = pgsql.Identifier(STANDIN_DB), pgsql.Identifier(local_server.user)
    run_as_admin(
        local_server,
        pgsql.SQL("DROP DATABASE IF EXISTS {}").format(database),
        pgsql.SQL("CREATE DATABASE {} OWNER {}").format(database, owner),
    )
    params = {**params, "dbname": STANDIN_DB}
    with psycopg2.connect(**params) as conn, conn.cursor() as cur:
        cur.execute(SCHEMA)
    conn.close()
    return params


@pytest.fixture(params=list(KINDS))
def cluster(request, standin_params):
    with psycopg2.connect(**standin_params) as conn, conn.cursor() as cur:
        cur.execute(
            "TRUNCATE sys_views.sys_load_error_detail, stl_views.stl_load_errors, staging_events, staging_songs"
        )
    conn.close()
    stand_in = RedshiftStandIn(standin_params, request.param)
    yield stand_in
    stand_in.close()


@pytest.fixture
def redshift_settings(make_config):
    return load_settings(make_config(REDSHIFT))


@pytest.fixture
def warehouse(redshift_settings, cluster):
    wh = RedshiftWarehouse(
        redshift_settings,
        conn=cluster.connect(),
        session=lambda: RedshiftWarehouse(redshift_settings, conn=cluster.connect()),
    )
    yield wh
    wh.rollback()


def events_copy(settings) -> str:
    return sql_queries.copy_table_queries(settings.sources)[0]


def load(warehouse, statement) -> int:
    """One staging load as etl.py runs it: its own transaction."""
    with transaction(warehouse):
        return warehouse.execute(statement)


def expected(row: Rejected, cluster: RedshiftStandIn) -> LoadError:
    """The LoadError the project reports for a row: the raw value only where it came from STL."""
    value = row.value if cluster.search_path.startswith("stl_views") else ""
    return LoadError(row.file, row.line, row.column, "int4", value, row.code, row.reason)


def load_session_queries(warehouse) -> list[str]:
    return [s for s in warehouse._conn.statements if "load_error" in str(s)]


def test_failed_copy_reports_its_rows_read_on_a_second_session(warehouse, cluster, redshift_settings):
    cluster.copies.append(Copy(rejected=[BAD_DIGIT, BAD_USER], fails=LOAD_FAILED))
    with pytest.raises(LoadFailed) as caught:
        load(warehouse, events_copy(redshift_settings))
    assert caught.value.errors == [expected(BAD_DIGIT, cluster), expected(BAD_USER, cluster)]
    message = str(caught.value)
    assert LOAD_FAILED in message
    assert "2018-11-30-events.json, line 3, column session_id (int4): Invalid digit, Value 'a'" in message
    assert load_session_queries(warehouse) == []  # never read in, or after rolling back, the load's transaction
    assert len(cluster.sessions) == 2


def test_a_row_skipped_under_maxerror_is_reported_and_the_load_is_kept(warehouse, cluster, redshift_settings, caplog):
    cluster.copies.append(Copy(rejected=[BAD_DIGIT], loaded=8055))
    with caplog.at_level(logging.WARNING, logger="dwh"):
        assert load(warehouse, events_copy(redshift_settings)) == 8055
    assert warehouse.last_load_errors == [expected(BAD_DIGIT, cluster)]
    assert "skipped a row (MAXERROR)" in caplog.text and "line 3, column session_id" in caplog.text
    assert cluster.count("staging_events") == 8055  # committed: reading the errors discarded nothing
    assert load_session_queries(warehouse) == []


def test_a_copy_that_fails_before_loading_prints_no_other_loads_errors(warehouse, cluster, redshift_settings):
    cluster.copies.append(Copy(rejected=[OLDER_LOAD], loaded=10))  # earlier, same session, kept under MAXERROR
    load(warehouse, events_copy(redshift_settings))
    cluster.copies.append(Copy(rejected=[BAD_USER], fails=LOAD_FAILED))  # earlier, same session, rolled back
    with pytest.raises(LoadFailed):
        load(warehouse, events_copy(redshift_settings))
    other = RedshiftWarehouse(
        redshift_settings,
        conn=cluster.connect(),
        session=lambda: RedshiftWarehouse(redshift_settings, conn=cluster.connect()),
    )

    def another_load_fails_meanwhile():
        cluster.copies.insert(0, Copy(rejected=[BAD_DIGIT], loaded=1))
        other.execute(events_copy(redshift_settings))

    cluster.copies.append(Copy(fails=NO_PREFIX, before_loading=True, meanwhile=another_load_fails_meanwhile))
    with pytest.raises(NoSourceFiles) as caught:
        load(warehouse, events_copy(redshift_settings))
    assert caught.value.errors == []
    message = str(caught.value)
    assert NO_PREFIX in message and "no rejected row is recorded for this COPY" in message
    assert "line" not in message.replace(NO_PREFIX, "")  # neither the older loads' rows nor the other session's


def test_a_rolled_back_copy_is_found_without_pg_last_copy_id(warehouse, cluster, redshift_settings):
    cluster.copies.append(Copy(rejected=[OLDER_LOAD], loaded=10))
    load(warehouse, events_copy(redshift_settings))
    cluster.copies.append(Copy(rejected=[BAD_DIGIT], fails=LOAD_FAILED))
    with pytest.raises(LoadFailed) as caught:
        load(warehouse, events_copy(redshift_settings))
    assert caught.value.errors == [expected(BAD_DIGIT, cluster)]
    # What the old lookup relied on still names the earlier COPY: the failed one's id was rolled back.
    assert warehouse.scalar("SELECT PG_LAST_COPY_ID();") == 5000


def test_etl_exits_1_with_the_rows_instead_of_pointing_at_system_tables(warehouse, cluster, redshift_settings, capsys):
    cluster.copies.append(Copy(rejected=[BAD_DIGIT], fails=LOAD_FAILED))
    args = cli.argument_parser("test").parse_args([])
    code = cli.run(lambda: etl.load_staging_tables(warehouse, redshift_settings.sources), args)
    assert code == 1
    err = capsys.readouterr().err
    assert "line 3, column session_id" in err and "[code 1207]" in err
    assert cluster.count("staging_events") == 0


def test_no_system_view_query_relies_on_the_last_copy_id():
    """PG_LAST_COPY_ID() names the earlier COPY after a failed one (its id was rolled back)."""
    queries = system_view_queries()
    assert len(queries) == 2 + len(redshift.LOAD_ERROR_QUERIES)
    assert all("PG_LAST_COPY_ID" not in q.upper() for q in queries)
