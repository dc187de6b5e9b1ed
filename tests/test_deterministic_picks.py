"""Every ROW_NUMBER() pick orders by every value it publishes, so rows that offer different values for
one key give the same pick whatever order they arrive in (Redshift numbers ties nondeterministically)."""

from itertools import permutations

import psycopg2
import pytest
from helpers import run_script

import sql_queries
from dwh.local import server

DB = "deterministic_picks"
SONG = ("num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location", "artist_name")
SONG += ("song_id", "title", "duration", "year")
EVENT = ("load_day", "songplay_id", "ts", "user_id", "session_id", "item_in_session", "level", "first_name")
EVENT += ("last_name", "gender", "location", "user_agent", "song", "artist", "length")


@pytest.fixture(scope="module")
def run_sql(tmp_path_factory, base_config, local_server):
    from helpers import write_config

    config = write_config(tmp_path_factory.mktemp("picks") / "dwh.cfg", {**base_config, ("LOCAL", "DB_NAME"): DB})
    assert run_script("create_tables.py", config).returncode == 0
    conn = psycopg2.connect(**{**server.connect_params(local_server), "dbname": DB})
    conn.autocommit = True

    def run(statement: str, rows=()):
        with conn.cursor() as cur:
            if rows:
                cur.executemany(statement, rows)
            else:
                cur.execute(statement)
            return cur.fetchall() if cur.description else None

    yield run
    conn.close()


def picks(run_sql, table: str, columns: tuple[str, ...], rows: list[tuple], inserts: list[str], result: str):
    """The published rows for each order of the input rows."""
    seen = set()
    for order in permutations(rows):
        for target in ("staging_songs", "loaded_events", "songplays", "users", "songs", "artists"):
            run_sql(f"DELETE FROM {target}")
        placeholders = ", ".join(["%s"] * len(columns))
        run_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", order)
        for statement in inserts:
            run_sql(statement)
        seen.add(tuple(run_sql(result)))
    return seen


def song(title="Tune", year=2001, artist_name="Band", location="Here", latitude=1.0, longitude=2.0):
    return (1, "AR1", latitude, longitude, location, artist_name, "SO1", title, 200.5, year)


def event(level="free", first_name="Ann", location="Here", load_day="2018-11-02"):
    return (load_day, "a" * 32, 1541106106796, 8, 139, 1, level, first_name, "Lee", "F", location, "UA", "S", "A", 1.5)


@pytest.mark.parametrize(
    "rows",
    [
        [song(year=2001), song(year=1999), song(year=2005)],
        [song(title="Tune"), song(title="Tune "), song(title="Tune  ")],
    ],
    ids=["years", "trailing spaces"],
)
def test_songs_pick_the_same_row_from_any_order(run_sql, rows):
    published = picks(run_sql, "staging_songs", SONG, rows, [sql_queries.song_table_insert], "SELECT * FROM songs")
    assert len(published) == 1


@pytest.mark.parametrize(
    "rows",
    [
        [song(latitude=1.0), song(latitude=-3.5), song(latitude=None)],
        [song(longitude=5.0), song(longitude=2.0)],
        [song(artist_name="Band"), song(artist_name="Band "), song(location="Here  ")],
    ],
    ids=["latitudes", "longitudes", "trailing spaces"],
)
def test_artists_pick_the_same_row_from_any_order(run_sql, rows):
    published = picks(run_sql, "staging_songs", SONG, rows, [sql_queries.artist_table_insert], "SELECT * FROM artists")
    assert len(published) == 1


@pytest.mark.parametrize(
    "rows",
    [
        [event(level="free"), event(level="paid", load_day="2018-11-03"), event(level="paid ", load_day=None)],
        [event(location="Here"), event(location="There"), event(location="Here ")],
    ],
    ids=["levels", "locations"],
)
def test_a_play_in_several_files_picks_the_same_row_from_any_order(run_sql, rows):
    published = picks(
        run_sql, "loaded_events", EVENT, rows, [sql_queries.songplay_table_insert], "SELECT * FROM songplays"
    )
    assert len(published) == 1


def test_a_users_latest_event_in_several_files_picks_the_same_row_from_any_order(run_sql):
    rows = [event(first_name="Ann"), event(first_name="Ann "), event(level="paid"), event(first_name="Anne")]
    published = picks(run_sql, "loaded_events", EVENT, rows, [sql_queries.user_table_insert], "SELECT * FROM users")
    assert len(published) == 1
