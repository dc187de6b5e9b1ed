"""A load killed at any point (kill -9) leaves the previous star schema readable, and a rerun completes."""

import os
import random
import shutil
import subprocess
import sys
import threading
import time

import psycopg2
import pytest
from helpers import KILLED, ROOT, SAMPLE, load_with_scripts, run_script, wait_until, write_config

from dwh.local import server
from sql_queries import STAR_KEYS

ATOMIC_DB = "atomic_loads"
STAR = tuple(STAR_KEYS)
APP_NAME = "etl-under-kill-test"


def star(query, tables=STAR) -> dict:
    """Each star table's row count and a checksum of its keys."""
    return {
        table: query(
            f"SELECT COUNT(*), MD5(STRING_AGG(CAST({STAR_KEYS[table]} AS VARCHAR), ',' ORDER BY {STAR_KEYS[table]})) "
            f"FROM {table}",
            db=ATOMIC_DB,
        )[0]
        for table in tables
    }


@pytest.fixture(scope="module")
def versions(tmp_path_factory, base_config):
    """Two configs: 'old' (the sample without its last ten days) and 'new' (all of it)."""
    root = tmp_path_factory.mktemp("atomic")
    shutil.copytree(SAMPLE / "log_data", root / "old_logs")
    for path in sorted((root / "old_logs").rglob("*.json"))[-10:]:
        path.unlink()
    common = {**base_config, ("LOCAL", "DB_NAME"): ATOMIC_DB}
    return {
        "old": write_config(root / "old.cfg", {**common, ("LOCAL", "LOG_DATA"): str(root / "old_logs")}),
        "new": write_config(root / "new.cfg", common),
    }


@pytest.fixture
def old_star(versions, query):
    """The 'old' version loaded and published; returns its star() fingerprint."""
    load_with_scripts(versions["old"])
    return star(query)


def start_etl(config) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "etl.py"), "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PGAPPNAME": APP_NAME},
    )


def wait_for_line(process, text: str, timeout: float = 60) -> None:
    """Read etl.py's output up to a line containing text; a silent or hung etl.py is killed at the deadline."""
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        for line in process.stdout:
            if text in line:
                return
    finally:
        watchdog.cancel()
    raise AssertionError(f"etl.py ended (exit {process.wait()}) without a line with {text!r} within {timeout:g} s")


def wait_until_blocked_on(query, table: str) -> None:
    """etl.py's session waits for the lock on table: its next statement has reached the server."""
    wait_until(
        lambda: query(
            "SELECT COUNT(*) FROM pg_locks JOIN pg_stat_activity USING (pid) "
            "WHERE application_name = %s AND NOT granted AND relation = to_regclass(%s)",
            (APP_NAME, table),
            db=ATOMIC_DB,
        )[0][0],
        f"etl.py never waited for the lock on {table}",
    )


def wait_until_backend_gone(query) -> None:
    """The killed client's server session ends (and rolls back) once it notices the client is gone."""
    wait_until(
        lambda: not query("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s", (APP_NAME,))[0][0],
        "the killed load's session is still there",
    )


@pytest.mark.parametrize(
    "blocked_table,last_line",
    [
        ("staging_songs", "copy staging_events"),
        ("time", "delete artists"),
    ],
)
def test_kill_9_mid_load_keeps_the_old_star_and_a_rerun_completes(
    versions, old_star, query, local_server, blocked_table, last_line
):
    params = {**server.connect_params(local_server), "dbname": ATOMIC_DB}
    blocker = psycopg2.connect(**params)
    try:
        blocker.cursor().execute(f"LOCK TABLE {blocked_table} IN ACCESS EXCLUSIVE MODE")
        etl = start_etl(versions["new"])
        wait_for_line(etl, last_line)
        wait_until_blocked_on(query, blocked_table)
        etl.kill()
        assert etl.wait(timeout=30) == KILLED
        readable = [t for t in STAR if t != blocked_table]
        assert star(query, readable) == {t: old_star[t] for t in readable}
    finally:
        blocker.rollback()
        blocker.close()
    wait_until_backend_gone(query)
    assert star(query) == old_star
    result = run_script("etl.py", versions["new"])
    assert result.returncode == 0, result.stderr
    new_star = star(query)
    assert new_star != old_star and new_star["songplays"][0] == 6820


def test_kill_9_at_random_moments_never_publishes_half_a_load(versions, old_star, query):
    """Killed at random points of a load, the star is always all old or all new, never a mix."""
    rng = random.Random(20181130)
    started = time.monotonic()
    assert run_script("etl.py", versions["new"]).returncode == 0
    duration = time.monotonic() - started
    new_star = star(query)
    assert run_script("etl.py", versions["old"]).returncode == 0
    seen = set()
    for _ in range(6):
        etl = start_etl(versions["new"])
        time.sleep(rng.uniform(0.1, duration))
        etl.kill()
        etl.wait(timeout=30)
        wait_until_backend_gone(query)
        current = star(query)
        assert current in (old_star, new_star)
        seen.add("new" if current == new_star else "old")
        if current == new_star:
            assert run_script("etl.py", versions["old"]).returncode == 0
    assert "old" in seen
    assert run_script("etl.py", versions["new"]).returncode == 0
    assert star(query) == new_star
