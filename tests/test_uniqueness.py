"""Redshift enforces no PRIMARY KEY or UNIQUE: the INSERTs must make every key unique themselves."""

import json
import shutil

import pytest
from helpers import SAMPLE, load_with_scripts, run_script

from sql_queries import STAR_KEYS

DUPES_DB = "duplicated_input"
KEYS = STAR_KEYS


@pytest.fixture(scope="module")
def duplicated_load(tmp_path_factory, base_config):
    """The sample plus every log file twice and some song files three times, loaded by the scripts."""
    from helpers import write_config

    root = tmp_path_factory.mktemp("dupes")
    shutil.copytree(SAMPLE, root / "data")
    for path in sorted((root / "data" / "log_data").rglob("*.json")):
        shutil.copy(path, path.with_name(path.stem + "-again.json"))
    for path in sorted((root / "data" / "song_data").rglob("*.json"))[:50]:
        song = json.loads(path.read_text())
        path.with_name(path.stem + "-copy.json").write_text(json.dumps(song))
        song["title"] = song["title"] + " (alternate)"
        path.with_name(path.stem + "-variant.json").write_text(json.dumps(song))
    config = write_config(
        root / "dwh.cfg",
        {
            **base_config,
            ("LOCAL", "LOG_DATA"): str(root / "data" / "log_data"),
            ("LOCAL", "SONG_DATA"): str(root / "data" / "song_data"),
            ("LOCAL", "DB_NAME"): DUPES_DB,
        },
    )
    load_with_scripts(config)
    return config


@pytest.mark.parametrize("table,key", KEYS.items())
def test_key_is_unique_and_not_null_despite_duplicate_input(duplicated_load, query, table, key):
    total, distinct, nulls = query(
        f"SELECT COUNT(*), COUNT(DISTINCT {key}), COUNT(*) - COUNT({key}) FROM {table}", db=DUPES_DB
    )[0]
    assert total == distinct and nulls == 0


def test_duplicate_input_does_not_add_dimension_rows(duplicated_load, query):
    assert query("SELECT COUNT(*) FROM users", db=DUPES_DB) == [(97,)]
    assert query("SELECT COUNT(*) FROM songs", db=DUPES_DB) == [(1943,)]
    assert query("SELECT COUNT(*) FROM artists", db=DUPES_DB) == [(1809,)]
    assert query("SELECT COUNT(*) FROM time", db=DUPES_DB) == [(6813,)]


def test_an_event_delivered_twice_is_one_play_even_matching_two_identical_songs(duplicated_load, query):
    assert query("SELECT COUNT(*) FROM staging_events WHERE page = 'NextSong'", db=DUPES_DB) == [(2 * 6820,)]
    assert query("SELECT COUNT(*) FROM songplays", db=DUPES_DB) == [(6820,)]
    assert query("SELECT COUNT(song_id) FROM songplays", db=DUPES_DB) == [(39,)]


def test_songplay_id_is_the_same_on_every_load(duplicated_load, loaded_sample, query):
    ids = "SELECT songplay_id FROM songplays ORDER BY 1"
    duplicated = query(ids, db=DUPES_DB)
    assert len(duplicated) == 6820 and len(duplicated[0][0]) == 32
    assert query(ids) == duplicated
    assert run_script("etl.py", duplicated_load).returncode == 0
    assert query(ids, db=DUPES_DB) == duplicated


def test_artist_with_several_names_gets_one_deterministic_row(loaded_sample, query):
    spelled = query(
        "SELECT artist_id FROM staging_songs GROUP BY artist_id HAVING COUNT(DISTINCT artist_name) > 1 ORDER BY 1"
    )
    assert len(spelled) > 0
    picked = query(
        "SELECT a.artist_id, a.name FROM artists a WHERE a.artist_id IN "
        "(SELECT artist_id FROM staging_songs GROUP BY 1 HAVING COUNT(DISTINCT artist_name) > 1) ORDER BY 1"
    )
    expected = query(
        "SELECT artist_id, MIN(artist_name) FROM staging_songs WHERE artist_location IS NOT NULL "
        "GROUP BY 1 HAVING artist_id IN (SELECT artist_id FROM staging_songs GROUP BY 1 "
        "HAVING COUNT(DISTINCT artist_name) > 1) ORDER BY 1"
    )
    assert len(picked) == len(spelled)
    assert set(expected) <= set(picked)
