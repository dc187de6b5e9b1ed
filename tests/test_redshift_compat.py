"""The local warehouse refuses what Redshift refuses, and runs everything the project sends.

Each PostgreSQL-only statement below runs on PostgreSQL as it stands (proved on a driver connection),
and is refused through the real LocalWarehouse with a one-line error naming the construct; the same
words inside literals, quoted identifiers and comments pass.
"""

import pytest
from helpers import project_sql

from dwh import cli
from dwh.local import redshift_compat
from dwh.local.redshift_compat import RedshiftWouldReject, refusal

SETUP = """
DROP TABLE IF EXISTS compat_plays;
CREATE TABLE compat_plays (user_id INT, song VARCHAR(256), level VARCHAR(10), ts BIGINT, tags VARCHAR(256));
INSERT INTO compat_plays VALUES (1, 'A', 'free', 1, '{}'), (1, 'B', 'paid', 2, '{}'), (2, 'C', 'free', 3, '{}');
"""

# (what Redshift lacks, a statement PostgreSQL runs, words the refusal names)
POSTGRESQL_ONLY = [
    ("DISTINCT ON", "SELECT DISTINCT ON (user_id) user_id, song FROM compat_plays ORDER BY user_id, ts", "DISTINCT ON"),
    (
        "ON CONFLICT",
        "INSERT INTO compat_plays (user_id) VALUES (3) ON CONFLICT DO NOTHING",
        "ON CONFLICT",
    ),
    ("RETURNING", "DELETE FROM compat_plays WHERE user_id = 9 RETURNING user_id", "RETURNING"),
    (
        "FILTER",
        "SELECT COUNT(*) FILTER (WHERE level = 'paid') FROM compat_plays",
        "FILTER (WHERE ...)",
    ),
    ("string_agg", "SELECT STRING_AGG(song, ',') FROM compat_plays", "unsupported aggregate"),
    ("array_agg", "SELECT ARRAY_AGG(song) FROM compat_plays", "unsupported aggregate"),
    ("every", "SELECT EVERY(user_id > 0) FROM compat_plays", "unsupported aggregate"),
    ("corr", "SELECT CORR(user_id, ts) FROM compat_plays", "unsupported aggregate"),
    (
        "generate_series over a table",
        "SELECT p.user_id, g FROM compat_plays AS p CROSS JOIN GENERATE_SERIES(1, 3) AS g",
        "generate_series() over a table",
    ),
    ("jsonb ->>", "SELECT tags::JSONB ->> 'a' FROM compat_plays", "JSON operator"),
    ("json ->", "SELECT CAST(tags AS JSON) -> 'a' FROM compat_plays", "JSON operator"),
    ("jsonb @>", "SELECT user_id FROM compat_plays WHERE tags::JSONB @> '{}'", "JSON operator"),
    ("jsonb ?", "SELECT user_id FROM compat_plays WHERE tags::JSONB ? 'a'", "JSON operator"),
    ("::jsonb", "SELECT tags::JSONB FROM compat_plays", "JSON or JSONB type"),
    ("CAST AS JSON", "SELECT CAST(tags AS JSON) FROM compat_plays", "JSON or JSONB type"),
    ("jsonb column", "CREATE TEMP TABLE compat_j (doc JSONB)", "JSON or JSONB type"),
    ("jsonb_build_object", "SELECT JSONB_BUILD_OBJECT('u', user_id) FROM compat_plays", "JSON function"),
    ("array constructor", "SELECT ARRAY[user_id, ts] FROM compat_plays", "an array"),
    ("array type", "CREATE TEMP TABLE compat_a (ids INT[])", "an array"),
    ("unnest", "SELECT UNNEST(STRING_TO_ARRAY(song, ',')) FROM compat_plays", "array function"),
    ("IS DISTINCT FROM", "SELECT user_id FROM compat_plays WHERE level IS DISTINCT FROM 'paid'", "IS [NOT] DISTINCT"),
    ("row constructor", "SELECT ROW(user_id, song) FROM compat_plays", "row constructor"),
    ("VALUES as a table", "SELECT * FROM (VALUES (1), (2)) AS v (n)", "VALUES list"),
    ("index", "CREATE INDEX compat_idx ON compat_plays (user_id)", "an index"),
    ("sequence", "CREATE TEMP SEQUENCE compat_seq", "a sequence"),
    ("nextval", "SELECT NEXTVAL('compat_seq')", "sequence function"),
    ("serial", "CREATE TEMP TABLE compat_s (id SERIAL, n INT)", "unsupported data type"),
    ("uuid", "CREATE TEMP TABLE compat_u (id UUID)", "unsupported data type"),
    ("bytea cast", "SELECT song::BYTEA FROM compat_plays", "unsupported data type"),
    ("check constraint", "CREATE TEMP TABLE compat_c (n INT CHECK (n > 0))", "CHECK constraint"),
    ("clock_timestamp", "SELECT CLOCK_TIMESTAMP()", "date/time function"),
    ("pg_sleep", "SELECT PG_SLEEP(0)", "date/time function"),
    ("regexp_matches", "SELECT REGEXP_MATCHES(song, 'A') FROM compat_plays", "string function"),
    ("format", "SELECT FORMAT('%s!', song) FROM compat_plays", "string function"),
    ("width_bucket", "SELECT WIDTH_BUCKET(ts, 0, 10, 5) FROM compat_plays", "mathematical function"),
    ("savepoint", "SAVEPOINT compat_point", "SAVEPOINT"),
    ("lock mode", "LOCK TABLE compat_plays IN SHARE MODE", "LOCK with a lock mode"),
    ("lock nowait", "LOCK compat_plays NOWAIT", "LOCK with a lock mode"),
    ("advisory lock", "SELECT PG_TRY_ADVISORY_LOCK(42)", "system information function"),
    ("full text search", "SELECT TO_TSVECTOR(song) @@ TO_TSQUERY('a') FROM compat_plays", "full text search"),
    ("collation", 'SELECT song FROM compat_plays ORDER BY song COLLATE "C"', "a collation"),
    ("two columns in one ALTER", "ALTER TABLE compat_plays ADD COLUMN a INT, ADD COLUMN b INT", "ALTER TABLE"),
]

# The same words where they mean nothing: literals, quoted identifiers, comments.
HARMLESS = [
    "SELECT COUNT(*) FROM compat_plays WHERE song = 'DISTINCT ON (user_id)'",
    "SELECT COUNT(*) FROM compat_plays WHERE song = 'string_agg(x) RETURNING -> ? @> [1]'",
    "SELECT COUNT(*) FROM compat_plays WHERE song = 'It''s ON CONFLICT DO NOTHING'",
    'SELECT song AS "distinct on" FROM compat_plays',
    "SELECT user_id FROM compat_plays -- DISTINCT ON, FILTER (WHERE x), ::jsonb\n",
    "SELECT /* RETURNING array[1] */ user_id FROM compat_plays",
    "SELECT user_id FROM compat_plays WHERE song = E'it\\'s [1] ?'",
    "SELECT GENERATE_SERIES(1, 3)",
    "SELECT COUNT(*) FROM compat_plays AS p WHERE p.ts BETWEEN 1 AND 3 AND p.level IN ('paid', 'free')",
    "SELECT LISTAGG(song, ',') WITHIN GROUP (ORDER BY song) FROM compat_plays",
    "LOCK TABLE compat_plays",
    "LOCK compat_plays, compat_plays",
]


@pytest.fixture
def plays(warehouse):
    with warehouse.cursor() as cur:
        cur.execute(SETUP)
    return warehouse


@pytest.mark.parametrize("construct, statement, named", POSTGRESQL_ONLY, ids=[c[0] for c in POSTGRESQL_ONLY])
def test_postgresql_runs_it_and_the_local_warehouse_refuses_it(plays, construct, statement, named):
    with plays.cursor() as cur:  # PostgreSQL itself takes it: the refusal is the checker's, not the server's
        cur.execute("SAVEPOINT before_the_statement")
        if construct == "nextval":
            cur.execute("CREATE TEMP SEQUENCE compat_seq")
        cur.execute(statement)
        cur.execute("ROLLBACK TO SAVEPOINT before_the_statement")
    with pytest.raises(RedshiftWouldReject) as caught:
        plays.execute(statement)
    message = str(caught.value)
    assert message.startswith("Redshift would reject this statement")
    assert named in message and "\n" not in message


@pytest.mark.parametrize("statement", HARMLESS)
def test_the_same_words_in_literals_identifiers_and_comments_pass(plays, statement):
    assert refusal(statement) is None
    if "LISTAGG" not in statement:  # LISTAGG is Redshift's string_agg; PostgreSQL lacks it
        plays.execute(statement)


STATEMENTS = project_sql()


@pytest.mark.parametrize("name", STATEMENTS)
def test_every_statement_the_project_runs_passes(name):
    assert refusal(STATEMENTS[name]) is None, STATEMENTS[name]


def test_a_refused_statement_is_one_line_and_exit_1(plays, capsys):
    args = cli.argument_parser("test").parse_args([])
    code = cli.run(lambda: plays.execute("SELECT DISTINCT ON (user_id) song FROM compat_plays"), args)
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "Redshift would reject this statement" in err and "DISTINCT ON" in err and "Traceback" not in err


def test_a_refused_statement_changes_nothing(plays):
    plays.execute("INSERT INTO compat_plays (user_id) VALUES (7)")
    with pytest.raises(RedshiftWouldReject):
        plays.execute("DELETE FROM compat_plays WHERE user_id = 7 RETURNING user_id")
    assert plays.scalar("SELECT COUNT(*) FROM compat_plays WHERE user_id = 7") == 1


def test_the_verdict_is_cached_by_statement_text():
    redshift_compat.refusal.cache_clear()
    statement = "SELECT STRING_AGG(song, ',') FROM compat_plays"
    first = refusal(statement)
    assert refusal(statement) == first and redshift_compat.refusal.cache_info().hits == 1
