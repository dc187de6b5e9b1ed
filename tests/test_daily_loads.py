"""Daily loads and backfills: a day loaded twice, a backfill, missing days, date arguments.

That thirty days in any order equal one full load is shown in test_late_events.py, on the sample with
each day's last hour moved into the next day's file: the sample's own quirks, and late plays too."""

import json
from datetime import date, timedelta

import pytest
from helpers import SAMPLE, create_tables_in, run_script

import etl
from sql_queries import STAR_KEYS

DAILY_DB = "daily_loads"
DAYS = [date(2018, 11, 1) + timedelta(days=n) for n in range(30)]


def star(query, db=None) -> dict:
    return {table: query(f"SELECT * FROM {table} ORDER BY {key}", db=db) for table, key in STAR_KEYS.items()}


@pytest.fixture
def daily_config(make_config):
    config = make_config({("LOCAL", "DB_NAME"): DAILY_DB}, name="daily.cfg")
    create_tables_in(config)
    return config


def load(config, *args) -> None:
    assert etl.main(["--config", str(config), "--quiet", *args]) == 0


def test_loading_a_day_twice_changes_nothing(daily_config, query):
    load(daily_config, "--start", "2018-11-14", "--end", "2018-11-16", "--songs")
    before = star(query, db=DAILY_DB)
    load(daily_config, "--date", "2018-11-15")
    assert star(query, db=DAILY_DB) == before


def latest_levels(days) -> dict:
    """Each user's level at their latest event in these days, from the files themselves."""
    latest = {}
    for day in days:
        path = SAMPLE / "log_data" / f"{day:%Y}" / f"{day:%m}" / f"{day:%Y-%m-%d}-events.json"
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event["userId"]:
                key = (event["ts"], event["sessionId"], event["itemInSession"])
                user = int(event["userId"])
                if user not in latest or key > latest[user][0]:
                    latest[user] = (key, event["level"])
    return {user: level for user, (_, level) in latest.items()}


def test_a_backfill_of_an_older_day_keeps_each_users_newest_level(daily_config, query):
    early, late = DAYS[:3], DAYS[-3:]
    early_levels, late_levels = latest_levels(early), latest_levels(late)
    changed = {u for u in early_levels.keys() & late_levels.keys() if early_levels[u] != late_levels[u]}
    assert changed, "the sample has users whose level changes"
    load(daily_config, "--start", late[0].isoformat(), "--end", late[-1].isoformat(), "--songs")
    load(daily_config, "--start", early[0].isoformat(), "--end", early[-1].isoformat())
    levels = dict(query("SELECT user_id, level FROM users", db=DAILY_DB))
    expected = {**early_levels, **late_levels}
    assert levels == expected
    assert all(levels[u] == late_levels[u] for u in changed)


def test_a_range_reports_and_skips_days_without_a_file(daily_config, query):
    result = run_script("etl.py", daily_config, "--start", "2018-11-29", "--end", "2018-12-02", "--songs")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "No event file for 2018-12-01: skipped." in output and "No event file for 2018-12-02: skipped." in output
    assert query("SELECT MIN(start_time)::date, MAX(start_time)::date FROM songplays", db=DAILY_DB) == [
        (date(2018, 11, 29), date(2018, 11, 30))
    ]


def test_a_single_day_without_a_file_fails(daily_config):
    result = run_script("etl.py", daily_config, "--date", "2018-12-01")
    assert result.returncode == 1
    assert "no event file for 2018-12-01: nothing was loaded" in result.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["--start", "2018-11-01"], "--start and --end go together"),
        (["--start", "2018-11-05", "--end", "2018-11-01"], "is after --end"),
        (["--date", "2018-11-31"], "not a date"),
        (["--songs"], "--songs goes with --date"),
    ],
)
def test_bad_date_arguments_exit_2(daily_config, args, message):
    result = run_script("etl.py", daily_config, *args)
    assert result.returncode == 2 and message in result.stderr


def test_a_day_reads_only_its_own_key(daily_config, query):
    load(daily_config, "--date", "2018-11-15", "--songs")
    day_of = "(TIMESTAMP 'epoch' + {} * INTERVAL '1 millisecond')::date"
    staged = query(
        f"SELECT {day_of.format('MIN(ts)')}, {day_of.format('MAX(ts)')}, COUNT(*) FROM staging_events", db=DAILY_DB
    )[0]
    lines = (SAMPLE / "log_data" / "2018" / "11" / "2018-11-15-events.json").read_text().splitlines()
    assert staged == (date(2018, 11, 15), date(2018, 11, 15), len(lines))


def test_quiet_prints_errors_only_not_the_skipped_days_warning(daily_config):
    result = run_script("etl.py", daily_config, "--start", "2018-11-30", "--end", "2018-12-01", "--songs", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""
    failed = run_script("etl.py", daily_config, "--date", "2018-12-01", "-q")
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr == "error: no event file for 2018-12-01: nothing was loaded\n"
