"""Each project statement says what it does (verb, table), and says it truly: the code reads that, never the SQL."""

from datetime import date

import pytest
from helpers import REDSHIFT_SOURCES, project_sql

import sql_queries
from dwh.db import Statement, describe
from dwh.ops import lock

OPENING = {
    "drop": "DROP TABLE IF EXISTS",
    "create": "CREATE TABLE IF NOT EXISTS",
    "copy": "COPY",
    "insert": "INSERT INTO",
    "delete": "DELETE FROM",
}
STATEMENTS = {name: sql for name, sql in project_sql().items() if isinstance(sql, Statement)}


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_the_verb_and_table_are_the_statements_own(name):
    statement = STATEMENTS[name]
    words = statement.split()
    opening = OPENING[statement.verb].split()
    assert words[: len(opening)] == opening
    assert words[len(opening)].rstrip(";") == statement.table


def test_every_statement_the_scripts_run_carries_its_verb_and_table():
    lists = [
        sql_queries.drop_table_queries,
        sql_queries.create_table_queries,
        sql_queries.clear_staging_queries,
        sql_queries.copy_table_queries(REDSHIFT_SOURCES),
        sql_queries.clear_table_queries,
        sql_queries.insert_table_queries,
        sql_queries.daily_event_queries(date(2018, 11, 15)),
        sql_queries.song_upsert_queries,
        lock.control_table_queries,
    ]
    assert all(isinstance(statement, Statement) for statements in lists for statement in statements)


def test_filling_a_template_keeps_what_the_statement_is():
    filled = sql_queries.loaded_day_delete.format(day="'2018-11-15'")
    assert isinstance(filled, Statement) and describe(filled) == "delete loaded_events"
    assert "'2018-11-15'" in filled
    assert describe("SELECT COUNT(*)\n  FROM songplays") == "SELECT COUNT(*) FROM songplays"
