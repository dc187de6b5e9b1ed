"""Where Redshift differs from PostgreSQL (issue 11): the SQL has Redshift's meaning on both warehouses,
and the local warehouse differs the way Redshift does, so a test fails here for the reason it would there."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date, datetime, timedelta

import pytest
from helpers import SAMPLE, load_with_scripts, run_script

import sql_queries
from dwh.config import Sources, load_settings
from dwh.db import run_statements, transaction
from dwh.errors import LoadFailed
from dwh.local.warehouse import LocalWarehouse

FIDELITY_DB = "redshift_fidelity"
CATALOGUE_DB = "catalogue_survives"


@pytest.fixture
def own(make_config):
    """A LocalWarehouse on a database of its own, with the project's tables created empty."""
    warehouse = LocalWarehouse(load_settings(make_config({("LOCAL", "DB_NAME"): FIDELITY_DB}, name="own.cfg")))
    with transaction(warehouse):
        run_statements(warehouse, sql_queries.drop_table_queries + sql_queries.create_table_queries)
    yield warehouse
    warehouse.rollback()
    warehouse.close()


def bad_song_data(tmp_path):
    """The sample's songs with one file cut short: its COPY fails on that file."""
    folder = tmp_path / "song_data"
    shutil.copytree(SAMPLE / "song_data", folder)
    victim = sorted(folder.rglob("*.json"))[500]
    victim.write_text(victim.read_text()[:-20])
    return folder


# D1: TRUNCATE commits; staging is emptied inside the COPY's transaction


def test_truncate_commits_the_open_transaction_as_on_redshift(own):
    own.execute("INSERT INTO users (user_id, level, last_event_at) VALUES (1, 'free', TIMESTAMP '2018-11-01');")
    own.execute("TRUNCATE songs;")
    own.rollback()
    assert own.scalar("SELECT COUNT(*) FROM users") == 1  # committed by the TRUNCATE, as Redshift's page shows


def test_truncate_then_a_failed_copy_empties_the_table_as_on_redshift(own, tmp_path):
    """The old flow, reproduced: TRUNCATE commits, the COPY after it fails, the table is left empty."""
    good = Sources(log_data="unused", log_jsonpath="unused", song_data=str(SAMPLE / "song_data"))
    bad = Sources(log_data="unused", log_jsonpath="unused", song_data=str(bad_song_data(tmp_path)))
    with transaction(own):
        own.execute(sql_queries.copy_table_queries(good)[1])
    assert own.scalar("SELECT COUNT(*) FROM staging_songs") == 1943
    with pytest.raises(LoadFailed), transaction(own):
        run_statements(own, ["TRUNCATE staging_songs;", sql_queries.copy_table_queries(bad)[1]])
    assert own.scalar("SELECT COUNT(*) FROM staging_songs") == 0


def test_delete_then_a_failed_copy_keeps_the_table(own, tmp_path):
    good = Sources(log_data="unused", log_jsonpath="unused", song_data=str(SAMPLE / "song_data"))
    bad = Sources(log_data="unused", log_jsonpath="unused", song_data=str(bad_song_data(tmp_path)))
    with transaction(own):
        own.execute(sql_queries.copy_table_queries(good)[1])
    with pytest.raises(LoadFailed), transaction(own):
        run_statements(own, [sql_queries.staging_songs_clear, sql_queries.copy_table_queries(bad)[1]])
    assert own.scalar("SELECT COUNT(*) FROM staging_songs") == 1943


def test_no_statement_the_load_runs_truncates():
    statements = (
        sql_queries.clear_staging_queries
        + sql_queries.clear_table_queries
        + sql_queries.insert_table_queries
        + sql_queries.daily_event_queries(date(2018, 11, 15))
        + sql_queries.song_upsert_queries
    )
    assert not [s for s in statements if "TRUNCATE" in s.upper()]


def test_a_failed_songs_load_then_a_daily_load_matches_plays_as_a_full_load_does(
    loaded_sample, make_config, tmp_path, query
):
    """Issue 11's done-when: full load; `--date D --songs` whose songs COPY fails; `--date D`."""
    day = query("SELECT CAST(start_time AS DATE) FROM songplays GROUP BY 1 ORDER BY COUNT(song_id) DESC, 1 LIMIT 1")[0][
        0
    ]
    plays_of_day = (
        "SELECT songplay_id, start_time, user_id, level, song_id, artist_id, session_id, location, user_agent "
        f"FROM songplays WHERE CAST(start_time AS DATE) = '{day}' ORDER BY songplay_id"
    )
    reference = query(plays_of_day)
    assert sum(1 for play in reference if play[4] is not None) > 0, "the day must have matched plays"

    config = make_config({("LOCAL", "DB_NAME"): CATALOGUE_DB}, name="catalogue.cfg")
    load_with_scripts(config)
    broken = make_config(
        {("LOCAL", "DB_NAME"): CATALOGUE_DB, ("LOCAL", "SONG_DATA"): str(bad_song_data(tmp_path))}, name="broken.cfg"
    )
    failed = run_script("etl.py", broken, "--date", day.isoformat(), "--songs")
    assert failed.returncode == 1 and "Invalid JSON" in failed.stderr
    assert query("SELECT COUNT(*) FROM staging_songs", db=CATALOGUE_DB) == [(1943,)]

    daily = run_script("etl.py", config, "--date", day.isoformat())
    assert daily.returncode == 0, daily.stderr
    assert query(plays_of_day, db=CATALOGUE_DB) == reference


# D2: the play's key and start_time from the epoch milliseconds

MILLISECONDS = [0, 100, 800, 796]
SECOND = 1541105830000  # 2018-11-01 20:57:10 UTC, a Thursday


def events_file(folder, stamps):
    """NextSong events, one per timestamp, in the shape of the sample's log files."""
    folder.mkdir(parents=True)
    lines = []
    for item, ts in enumerate(stamps):
        event = json.loads((SAMPLE / "log_data" / "2018" / "11" / "2018-11-01-events.json").read_text().splitlines()[1])
        event.update({"ts": ts, "itemInSession": item, "sessionId": 7, "userId": "8", "page": "NextSong"})
        lines.append(json.dumps(event))
    (folder / "events.json").write_text("\n".join(lines))
    return folder


def test_key_and_start_time_keep_the_milliseconds(own, tmp_path):
    stamps = [SECOND + ms for ms in MILLISECONDS]
    sources = Sources(
        log_data=str(events_file(tmp_path / "log_data", stamps)),
        log_jsonpath=str(SAMPLE / "log_json_path.json"),
        song_data=str(SAMPLE / "song_data"),
    )
    with transaction(own):
        run_statements(own, sql_queries.copy_table_queries(sources)[:1])
        run_statements(own, sql_queries.insert_table_queries)
    assert own.query("SELECT ts FROM staging_events ORDER BY ts") == [(ts,) for ts in sorted(stamps)]
    plays = own.query("SELECT songplay_id, start_time FROM songplays ORDER BY start_time")
    expected = [
        (
            hashlib.md5(f"7|{item}|8|{ts}".encode()).hexdigest(),
            datetime(1970, 1, 1) + timedelta(milliseconds=ts),
        )
        for item, ts in sorted(enumerate(stamps), key=lambda pair: pair[1])
    ]
    assert plays == expected
    assert [moment.microsecond for _, moment in plays] == [0, 100_000, 796_000, 800_000]
    time_rows = own.query("SELECT start_time, hour, day, week, month, year, weekday FROM time ORDER BY 1")
    assert time_rows == [
        (moment, moment.hour, moment.day, moment.isocalendar()[1], moment.month, moment.year, moment.isoweekday() % 7)
        for _, moment in expected
    ]


def test_the_same_events_get_the_same_keys_on_every_load(own, tmp_path):
    sources = Sources(
        log_data=str(events_file(tmp_path / "log_data", [SECOND + ms for ms in MILLISECONDS])),
        log_jsonpath=str(SAMPLE / "log_json_path.json"),
        song_data=str(SAMPLE / "song_data"),
    )
    keys = []
    for _ in range(2):
        with transaction(own):
            run_statements(own, [sql_queries.staging_events_clear, *sql_queries.copy_table_queries(sources)[:1]])
            run_statements(own, sql_queries.clear_table_queries + sql_queries.insert_table_queries)
        keys.append(own.query("SELECT songplay_id FROM songplays ORDER BY 1"))
    assert keys[0] == keys[1] and len(keys[0]) == len(MILLISECONDS)


# D3: no declared keys


def test_no_table_declares_a_primary_key_or_unique():
    for statement in sql_queries.create_table_queries:
        assert "PRIMARY KEY" not in statement.upper() and "UNIQUE" not in statement.upper()


def test_related_checks_share_one_query_per_table_and_one_for_references():
    queries = {check.sql for check in sql_queries.data_quality_checks}
    assert len(sql_queries.data_quality_checks) == 28
    # one per star table, one for the references, two for staging (events, songs), three for the
    # coverage (plays, users, time), one for the play shares
    assert len(queries) == len(sql_queries.STAR_KEYS) + 1 + 2 + 3 + 1
    assert not [sql for sql in queries if "COUNT(DISTINCT" in sql.upper()]


# D4: trailing spaces do not count, as on Redshift


def stage_songs_and_events(warehouse, songs, events):
    for song_id, title, artist_id, artist_name, duration in songs:
        warehouse.execute(
            "INSERT INTO staging_songs (song_id, title, artist_id, artist_name, duration, num_songs, year) "
            f"VALUES ('{song_id}', '{title}', '{artist_id}', '{artist_name}', {duration}, 1, 2000);"
        )
    for item, (page, song, artist, length) in enumerate(events):
        warehouse.execute(
            "INSERT INTO staging_events (page, song, artist, length, session_id, item_in_session, user_id, ts, level) "
            f"VALUES ('{page}', '{song}', '{artist}', {length}, 1, {item}, 5, {SECOND + item}, 'free');"
        )


def test_names_that_differ_only_by_trailing_spaces_match(own):
    stage_songs_and_events(
        own,
        songs=[("SOA", "Ride ", "ARA", "The Band", 200.5)],
        events=[("NextSong", "Ride", "The Band  ", 200.5), ("NextSong ", "Ride  ", "The Band", 200.5)],
    )
    with transaction(own):
        run_statements(own, sql_queries.insert_table_queries)
    assert own.query("SELECT item_in_session FROM staging_events WHERE page = 'NextSong'") == [(0,)]
    assert own.query("SELECT song_id, artist_id FROM songplays ORDER BY start_time") == [("SOA", "ARA"), ("SOA", "ARA")]


def test_keys_that_differ_only_by_trailing_spaces_are_one_key(own):
    stage_songs_and_events(
        own,
        songs=[("SOB ", "Walk", "ARB", "Singer", 180.0), ("SOB", "Walk", "ARB ", "Singer", 180.0)],
        events=[("NextSong", "Walk", "Singer", 180.0)],
    )
    with transaction(own):
        run_statements(own, sql_queries.insert_table_queries)
    assert own.query("SELECT song_id, artist_id FROM songs") == [("SOB", "ARB")]
    assert own.query("SELECT artist_id FROM artists") == [("ARB",)]
    assert own.query("SELECT song_id, artist_id FROM songplays") == [("SOB", "ARB")]
    with transaction(own):
        run_statements(own, sql_queries.song_upsert_queries)
    assert own.query("SELECT song_id FROM songs") == [("SOB",)]
    assert own.query("SELECT artist_id FROM artists") == [("ARB",)]
