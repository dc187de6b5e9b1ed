"""Plain helpers shared by the tests: paths, config files, running the scripts, counting rows.

Test files import from here (never from conftest or from each other); fixtures live in plugins.
"""

from __future__ import annotations

import configparser
import functools
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlfluff.core import FluffConfig, Linter

from dwh.config import Sources

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "udacity-dend"
# 24 of the sample's song files: for tests where the songs' number proves nothing.
FEW_SONGS = SAMPLE / "song_data" / "A" / "A" / "A"

# The sample's row counts after a full load (also quoted in the README).
EXPECTED_ROWS = {
    "staging_events": 8056,
    "staging_songs": 1943,
    "songplays": 6820,
    "users": 97,
    "songs": 1943,
    "artists": 1809,
    "time": 6813,
}

# A Redshift target that no test ever reaches: config values only.
REDSHIFT = {
    ("WAREHOUSE", "TARGET"): "redshift",
    ("CLUSTER", "HOST"): "sparkify-dwh.abc123.us-west-2.redshift.amazonaws.com",
    ("CLUSTER", "DB_PASSWORD"): "Secret-Passw0rd",
    ("IAM_ROLE", "ARN"): "arn:aws:iam::123456789012:role/sparkify-dwh-s3-read",
}

REDSHIFT_SOURCES = Sources(
    log_data="s3://udacity-dend/log_data",
    log_jsonpath="s3://udacity-dend/log_json_path.json",
    song_data="s3://udacity-dend/song_data",
    region="us-west-2",
    iam_role="arn:aws:iam::123456789012:role/sparkify-dwh-s3-read",
)

# The platform, as the tests check it. sys.platform rather than os.name: test_platforms' import check
# can say win32 with it, while pathlib keeps working.
POSIX = sys.platform != "win32"
IS_ROOT = POSIX and os.geteuid() == 0
#: A process's returncode after Popen.kill(): -SIGKILL on POSIX; on Windows, TerminateProcess's exit code 1.
KILLED = -9 if POSIX else 1


def posix_only(what: str):
    """Skip a test whose subject Windows does not have (a pseudo-terminal, POSIX file modes, ...)."""
    return pytest.mark.skipif(not POSIX, reason=f"Windows has no {what}")


def assert_owner_only(path: Path) -> None:
    """The file is readable by its owner only (mode 0600); Windows has no POSIX modes to check."""
    if POSIX:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def user_nobody():
    """The user `nobody`'s passwd entry (pwd exists on POSIX only: the tests that use it run as root)."""
    import pwd

    return pwd.getpwnam("nobody")


def run_as_admin(server_settings, *statements) -> None:
    """Statements the login role may not run (CREATE or DROP DATABASE, ...), each in autocommit as the
    test server's admin role."""
    import psycopg2

    from dwh.local.server.connection import admin_params

    conn = psycopg2.connect(**admin_params(server_settings))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def plain_postgresql(server_settings):
    """The project's psycopg2 warehouse on the test server, without the local warehouse's Redshift rules."""
    import psycopg2

    from dwh.db import PsycopgWarehouse
    from dwh.local import server

    return PsycopgWarehouse(psycopg2.connect(**server.connect_params(server_settings)), "plain PostgreSQL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], object], failure: str, timeout: float = 30, interval: float = 0.05) -> None:
    """Poll condition() until it is true; fail with the message if it is not within timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{failure} (waited {timeout:g} s)")
        time.sleep(interval)


def write_config(path: Path, values: dict[tuple[str, str], str]) -> Path:
    """Write dwh.cfg.example to path with the given (section, key) values replaced."""
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None)
    parser.optionxform = str
    parser.read(ROOT / "dwh.cfg.example", encoding="utf-8")
    for (section, key), value in values.items():
        if not parser.has_section(section):
            parser.add_section(section)
        parser.set(section, key, value)
    with open(path, "w", encoding="utf-8") as handle:
        parser.write(handle)
    return path


def run_script(script: str, config: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run one of the project's scripts as a user would, in a subprocess."""
    return subprocess.run(
        [sys.executable, str(ROOT / script), "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def python_output(code: str) -> str:
    """Run code in a fresh interpreter from the project root (nothing imported yet); return what it printed."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, timeout=120
    ).stdout


def link_or_copy(source: str, target: str) -> None:
    """shutil.copytree's copy_function: a hard link (same bytes, no copy), or a copy across devices."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def packages_another_user_can_read(folder: Path) -> list[str]:
    """This interpreter's site-packages folders, hard-linked (copied where links fail) into folder, for a
    test that runs the project as another user: the checkout's own .venv may sit under a 0700 folder
    (root's home) that the user cannot enter. Linking 18,000 files takes well under a second."""
    copies = []
    for number, path in enumerate(p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)):
        copy = folder / f"site-packages-{number}"
        shutil.copytree(path, copy, symlinks=True, copy_function=link_or_copy)
        copies.append(str(copy))
    return copies


def project_code_copy(folder: Path) -> Path:
    """The project's scripts and dwh package copied into folder (for another user to import)."""
    for script in ROOT.glob("*.py"):
        shutil.copy(script, folder / script.name)
    shutil.copytree(ROOT / "dwh", folder / "dwh", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def copy_cluster(cluster: Path, data_dir: Path) -> Path:
    """A copy of an initialised, stopped DATA_DIR (the initialised_cluster fixture's) at data_dir."""
    shutil.copytree(cluster, data_dir, symlinks=True, ignore=shutil.ignore_patterns("server.log", ".lock"))
    return data_dir


def create_tables_in(config: Path) -> None:
    """create_tables.py's main() on this config, in this process; it must succeed."""
    import create_tables

    assert create_tables.main(["--config", str(config), "--quiet"]) == 0


def load_with_scripts(config: Path) -> None:
    """create_tables.py then etl.py, their main() in this process (the programs themselves, as a user
    starts them, are test_end_to_end's); both must succeed. Errors show in the test's captured stderr."""
    import etl

    create_tables_in(config)
    assert etl.main(["--config", str(config), "--quiet"]) == 0


WAREHOUSE_TABLES = ("staging_events", "staging_songs", "songplays", "users", "songs", "artists", "time")


def row_counts(query, db: str | None = None) -> dict:
    return {table: query(f"SELECT COUNT(*) FROM {table}", db=db)[0][0] for table in WAREHOUSE_TABLES}


@functools.cache
def sql_linter() -> Linter:
    """sqlfluff with the project's .sqlfluff (the redshift dialect and the house style), built once per
    process: its dialect takes seconds to load."""
    return Linter(config=FluffConfig.from_path(str(ROOT)))


def sql_violations(statement: str) -> list:
    """What the linter finds: style rules, and PRS where the redshift dialect cannot parse the SQL."""
    return sql_linter().lint_string(statement).get_violations()


def sql_findings(statement: str) -> list[str]:
    """sql_violations() as lines for a failure message."""
    return [f"line {v.line_no}, column {v.line_pos}: {v.rule_code()} {v.desc()}" for v in sql_violations(statement)]


def parses_as_redshift(statement: str) -> bool:
    return not sql_linter().parse_string(statement).violations


def system_view_queries() -> list[str]:
    """Every system-view query as it reaches Redshift, its parameters bound as psycopg2 binds them."""
    from datetime import datetime

    from psycopg2.extensions import adapt

    from dwh.redshift import warehouse as redshift

    parameters = redshift.CopySession(1073, datetime(2018, 11, 30, 12, 0, 0, 1)).parameters()
    bound = {name: adapt(value).getquoted().decode() for name, value in parameters.items()}
    return [redshift.copy_session, redshift.last_copy_count] + [query % bound for query in redshift.LOAD_ERROR_QUERIES]


def history_statements() -> list[str]:
    """Every history statement, filled as a run fills it."""
    from collections import Counter

    from dwh.config import sql_literal
    from dwh.ops import history

    run = history.RunRecord("etl.py --date 2018-11-15 --config C:\\sparkify\\it's.cfg")
    counts = history.Counts(Counter(staging_events=533), Counter(songplays=479))
    counts.files(1, 224_000)
    return [
        history.run_insert.format(**run.values(), status=sql_literal(history.RUNNING)),
        history.runs_abandon.format(now=history.timestamp_literal(history.now()), run_id=sql_literal(run.run_id)),
        history.finish_statement(run, history.FAILED, counts, "COPY staging_events failed: 'x'\n  line 2"),
        history.lock_holder,
        history.recent_runs.format(limit=20),
    ]


def project_sql() -> dict[str, str]:
    """Every SQL statement the project runs, by a name for test ids: scripts, checks, analytics, system views."""
    from datetime import date

    import sql_queries
    from dwh.analytics.queries import analytics_queries
    from dwh.ops import lock

    local = Sources(log_data="/data/log_data", log_jsonpath="/data/paths.json", song_data="/data/song_data")
    with_options = Sources(**{**REDSHIFT_SOURCES.__dict__, "max_error": 5, "accept_inv_chars": "?"})
    manifest = Sources(**{**REDSHIFT_SOURCES.__dict__, "song_manifest": "s3://bucket/songs.manifest"})
    groups = {
        "drop": sql_queries.drop_table_queries,
        "create": sql_queries.create_table_queries,
        "clear staging": sql_queries.clear_staging_queries,
        "copy": sql_queries.copy_table_queries(REDSHIFT_SOURCES),
        "copy one day": sql_queries.copy_table_queries(REDSHIFT_SOURCES, date(2018, 11, 15)),
        "local copy": sql_queries.copy_table_queries(local),
        "copy with load options": sql_queries.copy_table_queries(with_options),
        "copy with a manifest": sql_queries.copy_table_queries(manifest),
        "clear": sql_queries.clear_table_queries,
        "insert": sql_queries.insert_table_queries,
        "daily": sql_queries.daily_event_queries(date(2018, 11, 15)),
        "song upsert": sql_queries.song_upsert_queries,
        "system view": system_view_queries(),
        "control": lock.control_table_queries,
        "lock": [lock.statement_timeout.format(milliseconds=2000), lock.run_lock],
        "history": history_statements(),
    }
    statements = {f"{group} {i}": sql for group, queries in groups.items() for i, sql in enumerate(queries)}
    statements.update({f"check {check.name}": check.sql for check in sql_queries.data_quality_checks})
    statements.update({f"analytics {query.name}": query.sql for query in analytics_queries})
    return statements
