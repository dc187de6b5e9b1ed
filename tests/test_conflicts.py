"""A transaction the warehouse aborts for a serialization conflict is run again, a bounded number of times.

Redshift answers concurrent writes it cannot serialize with "ERROR:1023 ... Serializable isolation
violation" and asks for the transaction to be retried; PostgreSQL's SQLSTATE 40001 is the same
answer. Here a real server raises it, from a function that fails the first N times it runs.
"""

import psycopg2
import pytest
from helpers import run_script

from dwh.db import retrying_conflicts, serialization_conflict

CONFLICTING = """
CREATE SEQUENCE IF NOT EXISTS conflicts;
CREATE OR REPLACE FUNCTION conflict_first() RETURNS TRIGGER AS $$
BEGIN
    IF nextval('conflicts') <= CAST(TG_ARGV[0] AS INTEGER) THEN  -- a sequence is not rolled back with the transaction
        RAISE EXCEPTION 'could not serialize access due to concurrent update' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
"""


@pytest.fixture
def conflict_on_history_writes(query, db_name, config):
    """etl_runs refuses the next `times` inserts with a serialization failure."""

    def arm(times: int) -> None:
        trigger = (
            f"CREATE TRIGGER conflict BEFORE INSERT ON etl_runs FOR EACH ROW EXECUTE FUNCTION conflict_first({times});"
        )
        query(f"{CONFLICTING} SELECT setval('conflicts', 1, false); {trigger} SELECT 1;", db=db_name)

    return arm


def test_a_history_write_that_conflicts_is_run_again(conflict_on_history_writes, config, query, db_name):
    conflict_on_history_writes(2)
    rerun = run_script("create_tables.py", config)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.count("a concurrent transaction conflicted with this one") == 2
    statuses = query("SELECT status FROM etl_runs ORDER BY started_at", db=db_name)
    assert statuses == [("succeeded",), ("succeeded",)]


def test_conflicts_past_the_bound_fail_the_run_with_one_line(conflict_on_history_writes, config):
    conflict_on_history_writes(3)
    rerun = run_script("create_tables.py", config)
    assert rerun.returncode == 1
    assert rerun.stderr.startswith("error: ") and "could not serialize access" in rerun.stderr
    assert len(rerun.stderr.strip().splitlines()) == 1


def test_retries_are_bounded_and_only_for_conflicts(plain_warehouse):
    plain_warehouse.execute(CONFLICTING + "SELECT setval('conflicts', 1, false);")
    plain_warehouse.execute("CREATE TEMP TABLE t (n INTEGER);")
    plain_warehouse.execute(
        "CREATE TRIGGER conflict BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION conflict_first(2);"
    )
    plain_warehouse.execute("COMMIT;")
    slept: list[float] = []

    def insert() -> int:
        with plain_warehouse.transaction():
            return plain_warehouse.execute("INSERT INTO t VALUES (1);")

    assert retrying_conflicts(insert, sleep=slept.append) == 1
    assert len(slept) == 2 and plain_warehouse.scalar("SELECT COUNT(*) FROM t") == 1
    plain_warehouse.execute("SELECT setval('conflicts', 1, false);")
    with pytest.raises(psycopg2.errors.SerializationFailure):
        retrying_conflicts(insert, attempts=2, sleep=slept.append)

    def fails() -> None:
        with plain_warehouse.transaction():
            plain_warehouse.execute("SELECT 1 / 0;")

    slept.clear()
    with pytest.raises(psycopg2.errors.DivisionByZero):
        retrying_conflicts(fails, sleep=slept.append)
    assert slept == []


def test_redshifts_conflict_message_is_recognised():
    redshift = psycopg2.InternalError(
        "ERROR:  1023\nDETAIL:  Serializable isolation violation on table - 100512, "
        "transactions forming the cycle are: 1, 2 (pid:3)"
    )
    assert serialization_conflict(redshift)
    assert not serialization_conflict(psycopg2.InternalError("ERROR:  disk full"))
