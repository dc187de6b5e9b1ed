"""On Redshift a failed COPY is reported with its rows from sys_load_error_detail (stl_load_errors as fallback).

No cluster is reachable, so the connection here stands in for Redshift: its COPY raises the
error Redshift raises, and its system views return the rows Redshift would.
"""

import logging

import psycopg2
import psycopg2.errors
import pytest
from helpers import REDSHIFT

import etl
import sql_queries
from dwh.db import RedshiftWarehouse
from dwh.errors import LoadFailed

REDSHIFT_COPY_ERROR = "Load into table 'staging_events' failed. Check 'sys_load_error_detail' system table for details."
SYS_ROWS = [
    (
        "s3://udacity-dend/log_data/2018/11/2018-11-30-events.json",
        3,
        "session_id",
        "int4",
        "",
        1207,
        "Invalid digit, Value 'a', Pos 0, Type: Integer",
    )
]
STL_ROWS = [
    (
        "s3://udacity-dend/log_data/2018/11/2018-11-30-events.json",
        3,
        "session_id",
        "int4",
        "abc",
        1207,
        "Invalid digit, Value 'a', Pos 0, Type: Integer",
    )
]


class RedshiftStandIn:
    """A psycopg2-like connection answering as Redshift does for COPY and its system views."""

    def __init__(self, copy_fails=True, sys_view=True, notices=()):
        self.copy_fails, self.sys_view = copy_fails, sys_view
        self.notices = list(notices)
        self.statements, self.rollbacks = [], 0
        self.aborted = False

    def cursor(self):
        return _Cursor(self)

    def rollback(self):
        self.rollbacks += 1
        self.aborted = False

    def commit(self):
        pass

    def close(self):
        pass


class _Cursor:
    def __init__(self, conn):
        self.conn, self.rows, self.rowcount = conn, [], -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, statement, args=None):
        conn = self.conn
        conn.statements.append(statement)
        if conn.aborted:
            raise psycopg2.errors.InFailedSqlTransaction("current transaction is aborted")
        if statement.lstrip().startswith("COPY"):
            if conn.copy_fails:
                conn.aborted = True
                raise psycopg2.errors.InternalError_(REDSHIFT_COPY_ERROR)
            return
        if statement is sql_queries.last_copy_count:
            self.rows = [(8055,)]
        elif statement is sql_queries.sys_load_errors:
            if not conn.sys_view:
                conn.aborted = True
                raise psycopg2.errors.UndefinedTable('relation "sys_load_error_detail" does not exist')
            self.rows = SYS_ROWS
        elif statement is sql_queries.stl_load_errors:
            self.rows = STL_ROWS

    def fetchall(self):
        return self.rows

    def fetchone(self):
        return self.rows[0]


@pytest.fixture
def redshift_settings(make_config):
    from dwh.config import load_settings

    return load_settings(make_config(REDSHIFT))


def test_failed_copy_reports_rows_from_sys_load_error_detail(redshift_settings):
    conn = RedshiftStandIn()
    warehouse = RedshiftWarehouse(redshift_settings, conn=conn)
    with pytest.raises(LoadFailed) as caught:
        warehouse.execute(sql_queries.copy_table_queries(redshift_settings.sources)[0])
    message = str(caught.value)
    assert REDSHIFT_COPY_ERROR in message
    assert (
        "2018-11-30-events.json, line 3, column session_id (int4): "
        "Invalid digit, Value 'a', Pos 0, Type: Integer [code 1207]" in message
    )
    assert conn.rollbacks == 1 and conn.statements.index(sql_queries.sys_load_errors) > 0
    assert sql_queries.stl_load_errors not in conn.statements


def test_without_the_sys_view_stl_load_errors_gives_the_value(redshift_settings):
    conn = RedshiftStandIn(sys_view=False)
    warehouse = RedshiftWarehouse(redshift_settings, conn=conn)
    with pytest.raises(LoadFailed) as caught:
        warehouse.execute(sql_queries.copy_table_queries(redshift_settings.sources)[0])
    assert caught.value.errors[0].raw_field_value == "abc"
    assert "value 'abc'" in str(caught.value)
    assert conn.rollbacks == 2


def test_etl_exits_1_with_the_rows_instead_of_pointing_at_system_tables(redshift_settings, capsys):
    from dwh import cli

    conn = RedshiftStandIn()
    args = cli.argument_parser("test").parse_args([])
    code = cli.run(
        lambda: etl.load_staging_tables(RedshiftWarehouse(redshift_settings, conn=conn), redshift_settings.sources),
        args,
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "line 3, column session_id" in err and "[code 1207]" in err


def test_rows_skipped_under_maxerror_are_reported(redshift_settings, caplog):
    notice = (
        "INFO:  Load into table 'staging_events' completed, 8055 record(s) loaded successfully.\n"
        "INFO:  1 record(s) could not be loaded.  Check 'sys_load_error_detail' system table for details.\n"
    )
    conn = RedshiftStandIn(copy_fails=False, notices=[notice])
    warehouse = RedshiftWarehouse(redshift_settings, conn=conn)
    with caplog.at_level(logging.WARNING, logger="dwh"):
        assert warehouse.execute(sql_queries.copy_table_queries(redshift_settings.sources)[0]) == 8055
    assert len(warehouse.last_load_errors) == 1
    assert "skipped a row (MAXERROR)" in caplog.text and "line 3, column session_id" in caplog.text
