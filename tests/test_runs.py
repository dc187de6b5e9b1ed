"""Runs an operator can trust: one load at a time, a history of every run, progress, cron-fit logs, --dry-run.

Real processes throughout: the load lock is held by a real etl.py, the kill is a real kill -9, and
every wait is a poll for a state with a deadline.
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import struct
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import psycopg2
import pytest
from helpers import FEW_SONGS, REDSHIFT, ROOT, SAMPLE, posix_only, run_script, wait_until, write_config

from dwh import progress
from sql_queries import STAR_KEYS, data_quality_checks

DAYS = [date(2018, 11, 1) + timedelta(days=n) for n in range(9)]
ISO_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def start(script: str, config, *args: str, app: str = "sparkify-test-run", log=None) -> subprocess.Popen:
    """Start a script as a user would, in the background; its sessions carry the application name `app`.

    Its output goes to the file `log` if given (to be read while it runs), else to a pipe.
    """
    return subprocess.Popen(
        [sys.executable, str(ROOT / script), "--config", str(config), *args],
        stdout=subprocess.PIPE if log is None else log,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PGAPPNAME": app},
    )


def expected_plays(days) -> Counter:
    """Plays per day of start_time in these days' files: NextSong events, one per identity."""
    plays = set()
    for day in days:
        path = SAMPLE / "log_data" / f"{day:%Y}" / f"{day:%m}" / f"{day:%Y-%m-%d}-events.json"
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event["page"] == "NextSong":
                plays.add((event["sessionId"], event["itemInSession"], event["userId"], event["ts"]))
    return Counter(datetime.fromtimestamp(ts / 1000, UTC).date() for *_, ts in plays)


@pytest.fixture
def runs_query(query, db_name):
    return lambda sql, args=None: query(sql, args, db=db_name)


def history(runs_query) -> list[tuple]:
    return runs_query("SELECT command, status, rows_copied, rows_published, error FROM etl_runs ORDER BY started_at")


def plays_per_day(runs_query) -> Counter:
    return Counter(dict(runs_query("SELECT CAST(start_time AS DATE), COUNT(*) FROM songplays GROUP BY 1")))


def star(runs_query) -> dict:
    tables = {**STAR_KEYS, "staging_events": "ts, session_id, item_in_session", "staging_songs": "song_id"}
    return {table: runs_query(f"SELECT * FROM {table} ORDER BY {key}") for table, key in tables.items()}


class BlockedLoad:
    """A real etl.py run that holds the load lock and is stuck publishing: the test holds songplays in SHARE mode.

    Reads go on; the run's DELETE FROM songplays waits until release().
    """

    def __init__(self, local_server, config, db_name, runs_query, day: str = "2018-11-02"):
        from dwh.local import server

        self.blocker = psycopg2.connect(**{**server.connect_params(local_server), "dbname": db_name})
        self.blocker.cursor().execute("LOCK songplays IN SHARE MODE")
        self.process = start("etl.py", config, "--date", day, app="sparkify-holder")
        wait_until(
            lambda: (
                self.process.poll() is None
                and runs_query(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'sparkify-holder' "
                    "AND wait_event_type = 'Lock' AND query LIKE '%DELETE FROM songplays%'"
                )[0][0]
            ),
            "the holder never got to publishing",
            timeout=60,
        )

    def release(self) -> None:
        self.blocker.rollback()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.blocker.close()


@pytest.fixture
def few_songs(make_config, config, db_name):
    """config's database, with 24 of the sample's song files: the first day's load with --songs, for tests
    of the lock and the history, which no song changes."""
    return make_config(
        {("LOCAL", "DB_NAME"): db_name, ("LOCAL", "SONG_DATA"): str(FEW_SONGS)},
        name="few-songs.cfg",
    )


@pytest.fixture
def blocked_load(local_server, config, few_songs, db_name, runs_query):
    """A loaded first day (with a few songs), then a second day's load stuck while holding the lock."""
    first = run_script("etl.py", few_songs, "--date", DAYS[0].isoformat(), "--songs")
    assert first.returncode == 0, first.stderr
    load = BlockedLoad(local_server, config, db_name, runs_query)
    yield load
    load.close()


def waiting_for_lock(runs_query, app: str) -> bool:
    return bool(
        runs_query(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND wait_event_type = 'Lock' AND query = 'LOCK etl_lock;'",
            (app,),
        )[0][0]
    )


def test_eight_overlapping_daily_loads_all_succeed_and_every_day_holds_its_plays(config, few_songs, runs_query):
    first = run_script("etl.py", few_songs, "--date", DAYS[0].isoformat(), "--songs")
    assert first.returncode == 0, first.stderr
    runs = [start("etl.py", config, "--date", day.isoformat(), "-q") for day in DAYS[1:]]
    results = [(run.wait(timeout=300), run.communicate()) for run in runs]
    assert [code for code, _ in results] == [0] * 8, [err for _, (_, err) in results]
    expected = expected_plays(DAYS)
    assert plays_per_day(runs_query) == expected
    assert set(expected) == set(DAYS)
    statuses = Counter(status for _, status, *_ in history(runs_query))
    assert statuses == Counter(succeeded=10)  # create_tables.py, the first day, the eight


def test_a_run_that_waits_past_wait_exits_1_naming_the_holder_and_changes_nothing(blocked_load, config, runs_query):
    before = star(runs_query)
    waited = run_script("etl.py", config, "--date", "2018-11-05", "--wait", "0.5")
    assert waited.returncode == 1
    message = waited.stderr.strip()
    assert message.startswith("error: another load holds the load lock: etl.py")
    assert "--date 2018-11-02" in message and f"pid {blocked_load.process.pid}" in message
    assert "gave up after waiting 0.5 s" in message and "nothing was changed" in message
    assert "Waiting for the load lock, held by etl.py" in waited.stdout
    assert star(runs_query) == before
    refused = history(runs_query)[-1]
    assert refused[0].endswith("--date 2018-11-05 --wait 0.5") and refused[1] == "failed"
    assert refused[4].startswith("another load holds the load lock")
    blocked_load.release()
    assert blocked_load.process.wait(timeout=60) == 0


def test_kill_9_of_the_holder_lets_the_waiting_run_proceed(blocked_load, config, runs_query, tmp_path):
    log = tmp_path / "waiter.log"
    with open(log, "w") as output:
        waiter = start("etl.py", config, "--date", "2018-11-03", log=output)
    wait_until(
        lambda: "Waiting for the load lock, held by etl.py" in log.read_text(),
        "the second run never waited",
        timeout=60,
    )
    blocked_load.process.kill()
    blocked_load.process.wait()
    wait_until(
        lambda: ("abandoned",) in runs_query("SELECT status FROM etl_runs WHERE command LIKE '%%2018-11-02%%'"),
        "the waiting run never took over the lock from the killed one",
        timeout=60,
    )
    blocked_load.release()
    _, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    assert "Got the load lock." in log.read_text()
    assert plays_per_day(runs_query)[date(2018, 11, 3)] == expected_plays([date(2018, 11, 3)])[date(2018, 11, 3)]
    assert [status for _, status, *_ in history(runs_query)] == ["succeeded", "succeeded", "abandoned", "succeeded"]


def test_history_shows_a_killed_run_as_abandoned_before_anyone_takes_the_lock(blocked_load, config, runs_query):
    blocked_load.process.kill()
    blocked_load.process.wait()
    wait_until(
        lambda: (
            not runs_query(
                "SELECT COUNT(*) FROM pg_stat_activity "
                "WHERE application_name = 'sparkify-holder' AND query = 'LOCK etl_lock;'"
            )[0][0]
        ),
        "the killed run's lock session is still there",
        timeout=60,
    )
    assert history(runs_query)[-1][1] == "running"  # nobody has corrected the row yet
    shown = run_script("etl.py", config, "--history", "5")
    assert shown.returncode == 0, shown.stderr
    rows = shown.stdout.splitlines()
    assert rows[0].split()[:4] == ["run", "started", "(UTC)", "took"]
    assert "abandoned" in rows[1] and "--date 2018-11-02" in rows[1]
    assert "succeeded" in rows[2] and "--date 2018-11-01 --songs" in rows[2]
    assert history(runs_query)[-1][1] == "running"  # --history only reads


def test_history_shows_a_running_load_as_running(blocked_load, config):
    shown = run_script("etl.py", config, "--history")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"\brunning\b.*--date 2018-11-02", shown.stdout.splitlines()[1])


def test_create_tables_waits_for_a_running_load(blocked_load, config, runs_query, tmp_path):
    log = tmp_path / "create.log"
    with open(log, "w") as output:
        create = start("create_tables.py", config, log=output)
    wait_until(
        lambda: "Waiting for the load lock, held by etl.py --config" in log.read_text(), "it never waited", timeout=60
    )
    assert create.poll() is None
    blocked_load.release()
    assert blocked_load.process.wait(timeout=60) == 0
    _, err = create.communicate(timeout=60)
    assert create.returncode == 0, err
    assert runs_query("SELECT COUNT(*) FROM songplays")[0][0] == 0
    runs = runs_query("SELECT command, started_at, finished_at FROM etl_runs ORDER BY started_at")
    load, recreate = runs[2], runs[3]
    assert "--date 2018-11-02" in load[0] and recreate[0].startswith("create_tables.py")
    assert load[2] <= recreate[1]


def test_history_records_success_with_rows_and_failure_with_its_error(config, runs_query):
    assert run_script("etl.py", config).returncode == 0
    failed = run_script("etl.py", config, "--date", "2018-12-15")
    assert failed.returncode == 1
    rows = runs_query(
        "SELECT status, rows_copied, rows_published, files_read, bytes_read, error, finished_at >= started_at "
        "FROM etl_runs ORDER BY started_at"
    )
    assert [row[0] for row in rows] == ["succeeded", "succeeded", "failed"]
    _, copied, published, files, size, error, ordered = rows[1]
    assert json.loads(copied) == {"staging_events": 8056, "staging_songs": 1943}
    star = {"songplays": 6820, "users": 97, "songs": 1943, "artists": 1809, "time": 6813}
    assert json.loads(published) == {**star, "loaded_events": 8056}
    source_files = [*(SAMPLE / "log_data").rglob("*.json"), *(SAMPLE / "song_data").rglob("*.json")]
    assert files == len(source_files) and size == sum(path.stat().st_size for path in source_files)
    assert error is None and ordered
    assert rows[2][5] == "no event file for 2018-12-15: nothing was loaded"
    assert rows[2][1] is None and rows[2][2] is None
    shown = run_script("etl.py", config, "--history", "2").stdout.splitlines()
    assert len(shown) == 3 and "failed" in shown[1] and "no event file for 2018-12-15" in shown[1]
    assert "songplays 6,820" in shown[2] and "staging_events 8,056" in shown[2]


def test_a_failed_publish_records_nothing_as_published(config, runs_query):
    """Counts join the history only when their transaction commits."""
    assert run_script("etl.py", config, "--date", "2018-11-01", "--songs").returncode == 0
    runs_query("ALTER TABLE time ADD CONSTRAINT no_new_times CHECK (start_time < '2018-11-02'); SELECT 1")
    failed = run_script("etl.py", config, "--date", "2018-11-02")
    assert failed.returncode == 1
    status, copied, published, error = runs_query(
        "SELECT status, rows_copied, rows_published, error FROM etl_runs ORDER BY started_at DESC LIMIT 1"
    )[0]
    assert status == "failed" and "no_new_times" in error
    assert json.loads(copied) == {"staging_events": expected_events("2018-11-02")}
    assert published is None


def expected_events(day: str) -> int:
    d = date.fromisoformat(day)
    return len((SAMPLE / "log_data" / f"{d:%Y}" / f"{d:%m}" / f"{day}-events.json").read_text().splitlines())


def test_progress_in_a_log_is_a_timestamped_line_and_q_silences_it(make_config, config, db_name):
    config = make_config({("LOCAL", "DB_NAME"): db_name, ("LOCAL", "PROGRESS_SECONDS"): "0"}, name="every-batch.cfg")
    shown = run_script("etl.py", config)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines and all(ISO_LINE.match(line) for line in lines)
    songs = [line for line in lines if "copy staging_songs: " in line]
    assert songs and re.search(
        r"\d+/1943 files, [\d.]+ of [\d.]+ MB \(\d+%\), [\d,]+ rows, [\d.]+ MB/s, about", songs[0]
    )
    assert "1943/1943 files" in songs[-1]
    quiet = run_script("etl.py", config, "-q")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def run_on_a_terminal(*args: str, timeout: float = 120) -> str:
    """Run a script with stdout and stderr on a pseudo-terminal of 120 columns; return what it showed."""
    import pty
    import termios
    from fcntl import ioctl

    leader, follower = pty.openpty()
    ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen([sys.executable, *args], stdout=follower, stderr=follower, cwd=ROOT)
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process has ended
                break
            if not chunk:
                break
            shown += chunk
    os.close(leader)
    assert process.wait(timeout=10) == 0, shown.decode(errors="replace")
    return shown.decode(errors="replace")


@posix_only("pseudo-terminal (pty)")
def test_progress_on_a_terminal_is_a_live_bar_without_timestamps(config):
    shown = run_on_a_terminal(str(ROOT / "etl.py"), "--config", str(config))
    assert re.search(r"copy staging_songs: +\d+%\|", shown), shown
    assert re.search(r"\d+/1943 files, [\d,]+ rows", shown)
    assert "Building the star schema" in shown and not ISO_LINE.search(shown.replace("\r", "\n"))
    quiet = run_on_a_terminal(str(ROOT / "etl.py"), "--config", str(config), "-q")
    assert quiet == ""


def test_redshift_copies_show_the_time_they_have_run(caplog):
    caplog.set_level(logging.INFO, logger="dwh")
    with progress.elapsed_ticker("staging_events", interval=0.01):
        wait_until(lambda: len(caplog.records) >= 2, "the ticker logged nothing", timeout=10)
    ticks = [record.getMessage() for record in caplog.records]
    assert all(re.fullmatch(r"  copy staging_events: running on the cluster, \d+ s so far", tick) for tick in ticks)
    count = len(caplog.records)
    time.sleep(0.05)  # the ticker has stopped: nothing more comes
    assert len(caplog.records) == count


@pytest.mark.parametrize("script", ["create_tables.py", "etl.py"])
def test_dry_run_prints_the_sql_in_order_and_touches_nothing(tmp_path, script):
    missing = tmp_path / "no-warehouse"
    local = write_config(
        tmp_path / "local.cfg",
        {
            ("WAREHOUSE", "TARGET"): "local",
            ("LOCAL", "DATA_DIR"): str(missing),
            ("LOCAL", "PORT"): "1",
            ("LOCAL", "LOG_DATA"): str(SAMPLE / "log_data"),
            ("LOCAL", "LOG_JSONPATH"): str(SAMPLE / "log_json_path.json"),
            ("LOCAL", "SONG_DATA"): str(SAMPLE / "song_data"),
        },
    )
    shown = run_script(script, local, "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert not missing.exists()
    sql = shown.stdout
    assert sql.startswith(f"-- dry run of {script} --config {local} --dry-run on local PostgreSQL at 127.0.0.1:1/")
    order = ["LOCK etl_lock;", "INSERT INTO etl_runs", "UPDATE etl_runs\nSET status = 'abandoned'"]
    if script == "etl.py":
        order += ["COPY staging_events", "COPY staging_songs", "DELETE FROM songplays;", "INSERT INTO songplays"]
        order += [f"-- the {len(data_quality_checks)} data-quality checks run here; a dry run loads no data", "COMMIT;"]
    else:
        order += ["DROP TABLE IF EXISTS staging_events;", "CREATE TABLE IF NOT EXISTS time", "COMMIT;"]
    order += ["UPDATE etl_runs\nSET status = 'succeeded'", "-- on the load lock connection\nROLLBACK;"]
    position = 0
    for text in order:
        found = sql.find(text, position)
        assert found >= 0, f"{text!r} is not printed after position {position}:\n{sql}"
        position = found + len(text)
    assert script == "create_tables.py" or f"FROM '{SAMPLE / 'log_data'}'" in sql
    assert shown.stderr == ""


def test_dry_run_on_redshift_fills_in_the_configuration_and_shows_no_secret(tmp_path):
    config = write_config(tmp_path / "redshift.cfg", REDSHIFT)
    shown = run_script("etl.py", config, "--date", "2018-11-15", "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert "on Redshift at sparkify-dwh.abc123.us-west-2.redshift.amazonaws.com:" in shown.stdout
    assert "IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-dwh-s3-read'" in shown.stdout
    assert "2018-11-15-events.json" in shown.stdout
    assert "Secret-Passw0rd" not in shown.stdout + shown.stderr


def test_check_waits_for_a_running_load(blocked_load, config):
    """--check compares songplays with staging, which a running load changes between its COPY and its publish."""
    checked = run_script("etl.py", config, "--check", "--wait", "0")
    assert checked.returncode == 1
    assert checked.stderr.startswith("error: another load holds the load lock: etl.py")


LOCK_SESSION = (
    "SELECT l.pid FROM pg_locks AS l INNER JOIN pg_class AS c ON l.relation = c.oid "
    "WHERE c.relname = 'etl_lock' AND l.granted"
)


def test_a_load_that_lost_its_lock_rolls_back_instead_of_publishing(blocked_load, runs_query):
    """Redshift may end the lock's session (an idle timeout, a lost host): the load must not publish then."""
    before = {table: rows for table, rows in star(runs_query).items() if table in STAR_KEYS}
    (pid,) = runs_query(LOCK_SESSION)[0]
    assert runs_query("SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]
    blocked_load.release()
    assert blocked_load.process.wait(timeout=60) == 1
    _, err = blocked_load.process.communicate()
    assert err.startswith("error: lost the load lock: its session ended during the run") and err.count("\n") == 1
    assert {table: rows for table, rows in star(runs_query).items() if table in STAR_KEYS} == before
    command, status, _, published, error = history(runs_query)[-1]
    assert "--date 2018-11-02" in command and status == "failed" and published is None
    assert error.startswith("lost the load lock")


def test_the_held_lock_keeps_its_session_busy_and_a_session_gone_at_the_end_is_no_failure(settings, query, caplog):
    from dwh.local.warehouse import LocalWarehouse
    from dwh.ops import lock

    warehouse = LocalWarehouse(settings)  # its session is ended below: not the shared fixture's
    pid = warehouse.scalar("SELECT pg_backend_pid()")
    warehouse.rollback()
    held = lock.HeldLock(warehouse, interval=0.1)

    def keepalives() -> list:
        return query("SELECT query, state_change FROM pg_stat_activity WHERE pid = %s", (pid,))

    wait_until(lambda: keepalives()[0][0] == lock.still_held, "the lock's session ran no keepalive", timeout=10)
    first = keepalives()[0][1]
    wait_until(lambda: keepalives()[0][1] > first, "the keepalive ran only once", timeout=10)
    held.check()
    assert query("SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]
    with pytest.raises(lock.LockLost):
        held.check()
    with caplog.at_level(logging.WARNING, logger="dwh"):
        held.release()
    assert "the load lock's session had already ended" in caplog.text
    assert not held._keeper.is_alive()
    warehouse.close()
