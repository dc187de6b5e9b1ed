"""A load that fails says what and where, exits non-zero, and leaves the previous good data intact."""

import shutil

import pytest

from conftest import SAMPLE, run_script

TABLES = ("staging_events", "staging_songs", "songplays", "users", "songs", "artists", "time")


def counts(query):
    return {table: query(f"SELECT COUNT(*) FROM {table}")[0][0] for table in TABLES}


@pytest.fixture
def good_load(make_config, query):
    config = make_config()
    assert run_script("create_tables.py", config).returncode == 0
    assert run_script("etl.py", config).returncode == 0
    return counts(query)


@pytest.fixture
def broken_logs(tmp_path):
    """A copy of the sample's log folder whose last file has a bad value on line 3."""
    logs = tmp_path / "log_data"
    shutil.copytree(SAMPLE / "log_data", logs)
    last = sorted(logs.rglob("*.json"))[-1]
    lines = last.read_text().splitlines()
    lines[2] = lines[2].replace('"sessionId":', '"sessionId":"abc","was":', 1)
    last.write_text("\n".join(lines))
    return logs, last


def test_bad_value_fails_naming_file_line_and_column_and_keeps_old_data(good_load, broken_logs, make_config, query):
    logs, bad_file = broken_logs
    result = run_script("etl.py", make_config({("LOCAL", "LOG_DATA"): str(logs)}, name="broken.cfg"))
    assert result.returncode == 1
    assert f"{bad_file}, line 3, column session_id (integer): Invalid digit [code 1207], value 'abc'" in result.stderr
    assert counts(query) == good_load


def test_truncated_file_fails_and_keeps_old_data(good_load, tmp_path, make_config, query):
    songs = tmp_path / "song_data"
    shutil.copytree(SAMPLE / "song_data", songs)
    victim = sorted(songs.rglob("*.json"))[100]
    victim.write_text(victim.read_text()[:-20])
    result = run_script("etl.py", make_config({("LOCAL", "SONG_DATA"): str(songs)}, name="broken.cfg"))
    assert result.returncode == 1
    assert f"{victim}, line 1: Invalid JSON" in result.stderr and "[code 1216]" in result.stderr
    assert counts(query) == good_load


def test_missing_prefix_fails_and_keeps_old_data(good_load, tmp_path, make_config, query):
    result = run_script("etl.py", make_config({("LOCAL", "LOG_DATA"): str(tmp_path / "nope" / "log_data")}, name="broken.cfg"))
    assert result.returncode == 1
    assert "matches no file" in result.stderr
    assert counts(query) == good_load


def test_etl_before_create_tables_says_which_table_is_missing(make_config):
    config = make_config({("LOCAL", "DB_NAME"): "fresh_db"}, name="fresh.cfg")
    result = run_script("etl.py", config)
    assert result.returncode == 1
    assert "staging_events" in result.stderr and "does not exist" in result.stderr
    assert "run python create_tables.py first" in result.stderr
