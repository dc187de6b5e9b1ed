"""The real scripts, run as a user runs them, load the real sample into the local warehouse."""

import pytest
from helpers import EXPECTED_ROWS, run_script

# What a correct load of data/udacity-dend gives (data/README.md).


@pytest.mark.parametrize("table,rows", EXPECTED_ROWS.items())
def test_sample_loads_expected_row_counts(loaded_sample, query, table, rows):
    assert query(f"SELECT COUNT(*) FROM {table}") == [(rows,)]


def test_39_plays_match_a_song_and_artist(loaded_sample, query):
    assert query("SELECT COUNT(song_id), COUNT(artist_id) FROM songplays") == [(39, 39)]


def test_every_nextsong_event_is_one_play(loaded_sample, query):
    staged = query("SELECT COUNT(*) FROM staging_events WHERE page = 'NextSong'")
    assert query("SELECT COUNT(*) FROM songplays") == staged


def test_start_time_keeps_milliseconds(loaded_sample, query):
    rows = query("SELECT COUNT(*) FROM songplays WHERE EXTRACT(milliseconds FROM start_time)::int % 1000 <> 0")
    assert rows[0][0] > 6000


def test_user_level_comes_from_latest_event(loaded_sample, query):
    assert query("SELECT COUNT(*) FROM users WHERE level = 'paid'") == [(22,)]


def test_matched_plays_point_at_the_song_they_played(loaded_sample, query):
    mismatched = query(
        "SELECT COUNT(*) FROM songplays p JOIN songs s ON s.song_id = p.song_id WHERE s.artist_id <> p.artist_id"
    )
    assert mismatched == [(0,)]


def test_scripts_report_each_step_with_rows_and_time(make_config):
    config = make_config()
    assert run_script("create_tables.py", config).returncode == 0
    result = run_script("etl.py", config)
    assert result.returncode == 0, result.stderr
    assert "copy staging_events" in result.stdout and "8,056 rows" in result.stdout
    assert "insert songplays" in result.stdout and "6,820 rows" in result.stdout
    assert " s\n" in result.stdout


def test_rerunning_etl_gives_the_same_star_schema(make_config, query):
    config = make_config()
    assert run_script("create_tables.py", config).returncode == 0
    assert run_script("etl.py", config).returncode == 0
    snapshot = {t: query(f"SELECT * FROM {t} ORDER BY 1, 2") for t in ("users", "songs", "artists", "time")}
    plays = query("SELECT start_time, user_id, song_id, session_id FROM songplays ORDER BY 1, 2, 3, 4")
    assert run_script("etl.py", config).returncode == 0
    assert {t: query(f"SELECT * FROM {t} ORDER BY 1, 2") for t in snapshot} == snapshot
    assert query("SELECT start_time, user_id, song_id, session_id FROM songplays ORDER BY 1, 2, 3, 4") == plays
