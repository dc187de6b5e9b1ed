"""The data-quality checks pass on a good load, catch each kind of damage, and gate the publish."""

import pytest
from helpers import load_with_scripts, run_script

import sql_queries
from dwh import quality
from dwh.config import load_settings
from dwh.local.warehouse import LocalWarehouse

QUALITY_DB = "quality_checks"


@pytest.fixture(scope="module")
def quality_config(tmp_path_factory, base_config):
    from helpers import write_config

    config = write_config(
        tmp_path_factory.mktemp("quality") / "dwh.cfg", {**base_config, ("LOCAL", "DB_NAME"): QUALITY_DB}
    )
    load_with_scripts(config)
    return config


@pytest.fixture
def damaged(quality_config):
    """A connection to the loaded database; what a test damages is rolled back after it."""
    warehouse = LocalWarehouse(load_settings(quality_config))
    yield warehouse
    warehouse.rollback()
    warehouse.close()


def failures(warehouse) -> dict:
    return {
        r.check.name: r.value
        for r in quality.run_checks(warehouse, sql_queries.data_quality_checks)
        if r.passed is False
    }


def test_a_good_load_passes_every_check(damaged):
    results = quality.run_checks(damaged, sql_queries.data_quality_checks)
    assert [r.check.name for r in results if r.passed is False] == []
    matched = next(r for r in results if r.check.name == "% of plays matched to a song")
    assert matched.passed is None and matched.value == pytest.approx(100 * 39 / 6820, abs=0.01)


def test_every_table_key_and_reference_has_a_check():
    names = {c.name for c in sql_queries.data_quality_checks}
    for table, key in sql_queries.STAR_KEYS.items():
        assert {f"{table} has rows", f"{table}.{key} not null", f"{table}.{key} unique"} <= names
    assert list(sql_queries.DIMENSION_KEYS) == ["users", "songs", "artists", "time"]
    for dimension, key in sql_queries.DIMENSION_KEYS.items():
        assert key == sql_queries.STAR_KEYS[dimension]
        assert f"songplays.{key} in {dimension}" in names


@pytest.mark.parametrize(
    "damage,failed",
    [
        (["INSERT INTO users SELECT * FROM users WHERE user_id = 2"], {"users.user_id unique": 1}),
        (
            [
                "ALTER TABLE songs ALTER COLUMN song_id DROP NOT NULL",
                "UPDATE songs SET song_id = NULL WHERE song_id = (SELECT MIN(song_id) FROM songs)",
            ],
            {"songs.song_id not null": 1, "songs.song_id unique": 1},
        ),
        (
            ["UPDATE songplays SET user_id = 99999 WHERE songplay_id = (SELECT MIN(songplay_id) FROM songplays)"],
            {"songplays.user_id in users": 1},
        ),
        (
            [
                "DELETE FROM artists WHERE artist_id IN "
                "(SELECT artist_id FROM songplays WHERE artist_id IS NOT NULL LIMIT 1)"
            ],
            {"songplays.artist_id in artists": None},
        ),
        (
            ["DELETE FROM time WHERE start_time = (SELECT MIN(start_time) FROM time)"],
            {"songplays.start_time in time": 1},
        ),
        (
            [
                "DELETE FROM songplays WHERE songplay_id = (SELECT MIN(songplay_id) FROM songplays WHERE start_time IN "
                "(SELECT start_time FROM songplays GROUP BY start_time HAVING COUNT(*) > 1))"
            ],
            {"NextSong events loaded without a play": 1},
        ),
        (
            ["DELETE FROM loaded_events WHERE songplay_id = (SELECT MIN(songplay_id) FROM songplays)"],
            {"songplays whose event is not loaded": 1},
        ),
        (
            ["INSERT INTO time SELECT start_time + INTERVAL '1 millisecond', 0, 1, 1, 1, 2018, 0 FROM time LIMIT 1"],
            {"time rows without a play": 1},
        ),
        (
            ["DELETE FROM loaded_events WHERE user_id = 2"],
            {"users whose events are not loaded": 1, "songplays whose event is not loaded": None},
        ),
        (
            ["DELETE FROM users"],
            # counted per loaded event: the sample's 7,770 events of known users
            {"users has rows": 0, "songplays.user_id in users": 6820, "users loaded without a row": 7770},
        ),
    ],
)
def test_each_kind_of_damage_fails_its_check(damaged, damage, failed):
    for statement in damage:
        damaged.execute(statement)
    found = failures(damaged)
    assert set(found) == set(failed)
    for name, value in failed.items():
        if value is not None:
            assert found[name] == value


@pytest.mark.parametrize("table,key", sql_queries.STAR_KEYS.items())
def test_a_repeated_key_fails_its_unique_check_and_nothing_else(damaged, table, key):
    """No table declares a key, so the duplicate loads as on Redshift; the GROUP BY count finds it.

    A repeated dimension key must not multiply the plays the referential checks count.
    """
    damaged.execute(f"INSERT INTO {table} SELECT * FROM {table} WHERE {key} = (SELECT MIN({key}) FROM {table});")
    assert failures(damaged) == {f"{table}.{key} unique": 1}


def test_check_command_names_the_failed_check_and_its_count(quality_config, query):
    assert run_script("etl.py", quality_config, "--check").returncode == 0
    query("INSERT INTO users SELECT * FROM users WHERE user_id IN (2, 3) RETURNING user_id", db=QUALITY_DB)
    try:
        result = run_script("etl.py", quality_config, "--check")
        assert result.returncode == 1
        assert "users.user_id unique" in result.stdout and "FAILED" in result.stdout
        assert "1 data-quality check(s) failed: users.user_id unique: got 2, expected == 0" in result.stderr
    finally:
        query(
            "DELETE FROM users WHERE ctid NOT IN (SELECT MIN(ctid) FROM users GROUP BY user_id) RETURNING user_id",
            db=QUALITY_DB,
        )


def test_a_failed_check_rolls_back_the_publish(quality_config, make_config, tmp_path, query):
    before = query("SELECT COUNT(*), MIN(songplay_id), MAX(songplay_id) FROM songplays", db=QUALITY_DB)
    empty_logs = tmp_path / "log_data"
    empty_logs.mkdir()
    (empty_logs / "2018-12-01-events.json").write_text("")
    config = make_config({("LOCAL", "DB_NAME"): QUALITY_DB, ("LOCAL", "LOG_DATA"): str(empty_logs)}, name="empty.cfg")
    result = run_script("etl.py", config)
    assert result.returncode == 1
    assert "songplays has rows: got 0, expected >= 1" in result.stderr
    assert query("SELECT COUNT(*), MIN(songplay_id), MAX(songplay_id) FROM songplays", db=QUALITY_DB) == before
    assert run_script("etl.py", quality_config).returncode == 0
