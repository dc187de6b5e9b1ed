"""The warehouse's SQL, in Redshift's dialect: DROP, CREATE, COPY and INSERT, and the data-quality checks.

Every list is in run order; STAR_KEYS names each star table's key, once. The same strings run
on Redshift and, through the renderer in ``dwh.local``, on the embedded local warehouse.
Redshift does not enforce PRIMARY KEY or UNIQUE, so every INSERT below makes its keys unique
itself (tests prove it), and no table declares one: Redshift's planner trusts declared keys,
which would let a duplicate fool the very checks that look for it. Text compares as Redshift
compares it (trailing spaces do not count) wherever the data decides a comparison (see
"Trailing spaces" below). Distribution and sort keys are explained in docs/schema.md ("Table design").
"""

from datetime import date

from dwh.config import Sources, sql_literal
from dwh.db import Statement
from dwh.quality import Check

# TABLES
#
# Two staging tables; the five of the star, each with its key (the one place that names them:
# checks and tests derive from it); and loaded_events, what the star is built from, kept between loads.

STAGING_TABLES = ["staging_events", "staging_songs"]
STAR_KEYS = {
    "songplays": "songplay_id",
    "users": "user_id",
    "songs": "song_id",
    "artists": "artist_id",
    "time": "start_time",
}
STAR_TABLES = list(STAR_KEYS)
RECORD_TABLES = ["loaded_events"]

# DROP TABLES

drop_table_queries = [
    Statement("drop", table, f"DROP TABLE IF EXISTS {table};") for table in STAGING_TABLES + STAR_TABLES + RECORD_TABLES
]

# CREATE TABLES

# Columns in the order of log_json_path.json: the JSONPaths file maps by position.
# Encodings are explicit (COPY's COMPUPDATE OFF changes none of them). ts is the JSON's epoch
# milliseconds as they are: the play's key is built from that integer's text, the same on both
# warehouses, and start_time from its value (START_TIME below).
staging_events_table_create = Statement("create", "staging_events", """
CREATE TABLE IF NOT EXISTS staging_events (
    artist          VARCHAR(1024)    ENCODE ZSTD,
    auth            VARCHAR(32)      ENCODE ZSTD,
    first_name      VARCHAR(256)     ENCODE ZSTD,
    gender          VARCHAR(16)      ENCODE ZSTD,
    item_in_session INTEGER          ENCODE AZ64,
    last_name       VARCHAR(256)     ENCODE ZSTD,
    length          DOUBLE PRECISION ENCODE RAW,
    level           VARCHAR(16)      ENCODE ZSTD,
    location        VARCHAR(1024)    ENCODE ZSTD,
    method          VARCHAR(16)      ENCODE ZSTD,
    page            VARCHAR(64)      ENCODE ZSTD,
    registration    DOUBLE PRECISION ENCODE RAW,
    session_id      INTEGER          ENCODE AZ64,
    song            VARCHAR(1024)    ENCODE ZSTD DISTKEY,
    status          INTEGER          ENCODE AZ64,
    ts              BIGINT           ENCODE AZ64,
    user_agent      VARCHAR(1024)    ENCODE ZSTD,
    user_id         INTEGER          ENCODE AZ64
)
DISTSTYLE KEY;
""")

# Column names equal the song files' keys: loaded with JSON 'auto'.
staging_songs_table_create = Statement("create", "staging_songs", """
CREATE TABLE IF NOT EXISTS staging_songs (
    num_songs        INTEGER          ENCODE AZ64,
    artist_id        VARCHAR(32)      ENCODE ZSTD,
    artist_latitude  DOUBLE PRECISION ENCODE RAW,
    artist_longitude DOUBLE PRECISION ENCODE RAW,
    artist_location  VARCHAR(1024)    ENCODE ZSTD,
    artist_name      VARCHAR(1024)    ENCODE ZSTD,
    song_id          VARCHAR(32)      ENCODE ZSTD,
    title            VARCHAR(1024)    ENCODE ZSTD DISTKEY,
    duration         DOUBLE PRECISION ENCODE RAW,
    year             INTEGER          ENCODE AZ64
)
DISTSTYLE KEY;
""")

# song_title, artist_name and song_length are what the event names as played, kept on every
# play, matched or not: the catalogue lookup (song_id, artist_id) fails for most plays.
songplay_table_create = Statement("create", "songplays", """
CREATE TABLE IF NOT EXISTS songplays (
    songplay_id CHAR(32)      NOT NULL,
    start_time  TIMESTAMP     NOT NULL DISTKEY SORTKEY,
    user_id     INTEGER,
    level       VARCHAR(16),
    song_id     VARCHAR(32),
    artist_id   VARCHAR(32),
    song_title  VARCHAR(1024),
    artist_name VARCHAR(1024),
    song_length DOUBLE PRECISION,
    session_id  INTEGER,
    location    VARCHAR(1024),
    user_agent  VARCHAR(1024)
)
DISTSTYLE KEY;
""")

user_table_create = Statement("create", "users", """
CREATE TABLE IF NOT EXISTS users (
    user_id    INTEGER      NOT NULL SORTKEY,
    first_name VARCHAR(256),
    last_name  VARCHAR(256),
    gender     VARCHAR(16),
    level      VARCHAR(16),
    last_event_at TIMESTAMP NOT NULL
)
DISTSTYLE ALL;
""")

song_table_create = Statement("create", "songs", """
CREATE TABLE IF NOT EXISTS songs (
    song_id   VARCHAR(32)   NOT NULL SORTKEY,
    title     VARCHAR(1024),
    artist_id VARCHAR(32),
    year      INTEGER,
    duration  DOUBLE PRECISION
)
DISTSTYLE ALL;
""")

artist_table_create = Statement("create", "artists", """
CREATE TABLE IF NOT EXISTS artists (
    artist_id VARCHAR(32)   NOT NULL SORTKEY,
    name      VARCHAR(1024),
    location  VARCHAR(1024),
    latitude  DOUBLE PRECISION,
    longitude DOUBLE PRECISION
)
DISTSTYLE ALL;
""")

time_table_create = Statement("create", "time", """
CREATE TABLE IF NOT EXISTS time (
    start_time TIMESTAMP NOT NULL DISTKEY SORTKEY,
    hour       SMALLINT  NOT NULL,
    day        SMALLINT  NOT NULL,
    week       SMALLINT  NOT NULL,
    month      SMALLINT  NOT NULL,
    year       SMALLINT  NOT NULL,
    weekday    SMALLINT  NOT NULL
)
DISTSTYLE KEY;
""")

# Every event the star is built from, with the day of the file it came from: the record that
# lets a daily load replace exactly what its file contributed (see DAILY LOADS). load_day is
# NULL for the events of a full load, which COPYs every file at once. songplay_id is the play's
# key for a NextSong event, NULL for the others (kept for users: their latest event of any page).
# Distributed on song like staging_events and staging_songs, for the song match; sorted on
# load_day, which a daily load deletes by.
loaded_events_table_create = Statement("create", "loaded_events", """
CREATE TABLE IF NOT EXISTS loaded_events (
    load_day        DATE             ENCODE AZ64 SORTKEY,
    songplay_id     CHAR(32)         ENCODE ZSTD,
    ts              BIGINT           ENCODE AZ64,
    user_id         INTEGER          ENCODE AZ64,
    session_id      INTEGER          ENCODE AZ64,
    item_in_session INTEGER          ENCODE AZ64,
    level           VARCHAR(16)      ENCODE ZSTD,
    first_name      VARCHAR(256)     ENCODE ZSTD,
    last_name       VARCHAR(256)     ENCODE ZSTD,
    gender          VARCHAR(16)      ENCODE ZSTD,
    location        VARCHAR(1024)    ENCODE ZSTD,
    user_agent      VARCHAR(1024)    ENCODE ZSTD,
    song            VARCHAR(1024)    ENCODE ZSTD DISTKEY,
    artist          VARCHAR(1024)    ENCODE ZSTD,
    length          DOUBLE PRECISION ENCODE RAW
)
DISTSTYLE KEY;
""")

# STAGING TABLES
#
# Each staging table is emptied and loaded in one transaction: DELETE, then COPY. A failed
# COPY rolls the DELETE back, so staging_songs, the catalogue later daily loads match plays
# against, is never left empty. Not TRUNCATE: on Redshift it commits the open transaction,
# and a COPY failing after it would leave the table empty.

staging_events_clear = Statement("delete", "staging_events", "DELETE FROM staging_events;")
staging_songs_clear = Statement("delete", "staging_songs", "DELETE FROM staging_songs;")
#
# Templates filled by copy_table_queries() with values validated by dwh.config.
# Without TRUNCATECOLUMNS an over-long value fails the load with its file and line
# instead of being cut silently; BLANKSASNULL and EMPTYASNULL turn "" (guests' userId,
# unknown artist_location) into NULL.

staging_events_copy = Statement("copy", "staging_events", """
COPY staging_events
FROM {log_data}
IAM_ROLE {iam_role}
FORMAT AS JSON {log_jsonpath}
{region}BLANKSASNULL EMPTYASNULL{load_options}
COMPUPDATE OFF STATUPDATE ON;
""")

staging_songs_copy = Statement("copy", "staging_songs", """
COPY staging_songs
FROM {song_data}
IAM_ROLE {iam_role}
{manifest}FORMAT AS JSON 'auto'
{song_region}BLANKSASNULL EMPTYASNULL{load_options}
COMPUPDATE OFF STATUPDATE ON;
""")

# FINAL TABLES
#
# A full load replaces each star table in the transaction that publishes it: DELETE,
# not TRUNCATE, because TRUNCATE commits the open transaction on Redshift.

clear_table_queries = [Statement("delete", table, f"DELETE FROM {table};") for table in STAR_TABLES + RECORD_TABLES]

# Trailing spaces. Redshift ignores them when it compares VARCHAR values; PostgreSQL does
# not. Wherever the data decides a comparison, the SQL compares RTRIM(...) on both sides,
# which means the same on both warehouses: the song match, page = 'NextSong', the text keys
# song_id and artist_id (stored trimmed, so their joins, GROUP BY and IN compare trimmed
# text). Integer and timestamp keys cannot differ.
#
# Deterministic picks. Where several rows offer values for one key (a song file delivered
# twice with a different year, an event in two files), ROW_NUMBER() picks one, and Redshift
# numbers tied rows "nondeterministically" (ROW_NUMBER page): every pick below orders by
# every value it publishes, so no tie is left. Text orders by RTRIM(x), then LENGTH(x), which
# counts trailing spaces in a VARCHAR on both warehouses (Redshift's LEN page): two values
# equal on both are the same text.


def _text_order(*columns: str) -> str:
    """ORDER BY terms that tell any two different texts apart, on both warehouses."""
    return ", ".join(f"RTRIM({c}), LENGTH({c})" for c in columns)


# An event's time: the epoch milliseconds as a TIMESTAMP that keeps the milliseconds.
# `ts / 1000.0` divides as a decimal, keeping them (`ts / 1000` is integer division and drops
# them); tests/test_redshift_fidelity.py checks .000, .100, .800 and .796 ms.
START_TIME = "TIMESTAMP 'epoch' + {ts} / 1000.0 * INTERVAL '1 second'"
NEXT_SONG = "RTRIM(e.page) = 'NextSong'"

# Every NextSong event is a play, a guest's too (user_id NULL; none in the sample).
# songplay_id is the MD5 of the event's identity (session, item in session, user, epoch
# milliseconds), all integers, whose text is the same on both warehouses; so the same event
# always gets the same key, and an event delivered twice is one play.
SONGPLAY_ID = """MD5(
               COALESCE(CAST(e.session_id AS VARCHAR), '') || '|' || COALESCE(CAST(e.item_in_session AS VARCHAR), '')
               || '|' || COALESCE(CAST(e.user_id AS VARCHAR), '') || '|' || CAST(e.ts AS VARCHAR)
           )"""

# The staged events join loaded_events, each marked with its load day ({load_day}: a date, or
# NULL for a full load), its play's key computed once.
loaded_events_insert = Statement("insert", "loaded_events", f"""
INSERT INTO loaded_events (
    load_day, songplay_id, ts, user_id, session_id, item_in_session, level, first_name, last_name, gender, location,
    user_agent, song, artist, length
)
SELECT CAST({{load_day}} AS DATE) AS load_day,
       CASE WHEN {NEXT_SONG} THEN {SONGPLAY_ID} END AS songplay_id,
       e.ts, e.user_id, e.session_id, e.item_in_session, e.level, e.first_name, e.last_name, e.gender, e.location,
       e.user_agent, e.song, e.artist, e.length
FROM staging_events AS e;
""")


# A play for every loaded NextSong event that has none yet (all of them in a full load). It
# matches the song whose title, artist name and duration equal the event's song, artist and
# length; when several songs match, the smallest song_id wins. Joining first and ranking after
# keeps the join an equi-join that both planners hash.
def _songplay_insert(only_missing: bool) -> Statement:
    """The plays of loaded NextSong events: all of them, or only those that have no play yet."""
    missing = (
        "\n    LEFT JOIN songplays AS known ON e.songplay_id = known.songplay_id"
        "\n    WHERE e.songplay_id IS NOT NULL AND known.songplay_id IS NULL"
    )
    every = "\n    WHERE e.songplay_id IS NOT NULL"
    return Statement("insert", "songplays", f"""
INSERT INTO songplays (
    songplay_id, start_time, user_id, level, song_id, artist_id, song_title, artist_name, song_length, session_id,
    location, user_agent
)
SELECT songplay_id, start_time, user_id, level, song_id, artist_id, song_title, artist_name, song_length, session_id,
       location, user_agent
FROM (
    SELECT e.songplay_id,
           {START_TIME.format(ts="e.ts")} AS start_time,
           e.user_id,
           e.level,
           RTRIM(s.song_id) AS song_id,
           RTRIM(s.artist_id) AS artist_id,
           e.session_id,
           e.location,
           e.user_agent,
           e.song AS song_title,
           e.artist AS artist_name,
           e.length AS song_length,
           ROW_NUMBER() OVER (
               PARTITION BY e.session_id, e.item_in_session, e.user_id, e.ts
               ORDER BY RTRIM(s.song_id), RTRIM(s.artist_id),
                        {_text_order("e.level", "e.location")},
                        {_text_order("e.user_agent", "e.song")},
                        {_text_order("e.artist")}, e.length
           ) AS pick
    FROM loaded_events AS e
    LEFT JOIN staging_songs AS s
        ON  RTRIM(e.song) = RTRIM(s.title)
        AND RTRIM(e.artist) = RTRIM(s.artist_name)
        AND e.length = s.duration{missing if only_missing else every}
) AS plays
WHERE pick = 1;
""")


# A daily load rebuilds the plays it deleted; a full load has just emptied songplays, whose deleted
# rows a search for the missing ones would scan for nothing.
songplay_table_insert = _songplay_insert(only_missing=False)
songplay_missing_insert = _songplay_insert(only_missing=True)


# A row for every loaded user that has none yet, from the user's latest event of any page
# across everything loaded: names, gender and level.
user_table_insert = Statement("insert", "users", f"""
INSERT INTO users (user_id, first_name, last_name, gender, level, last_event_at)
SELECT user_id, first_name, last_name, gender, level, last_event_at
FROM (
    SELECT e.user_id,
           e.first_name,
           e.last_name,
           e.gender,
           e.level,
           {START_TIME.format(ts="e.ts")} AS last_event_at,
           ROW_NUMBER() OVER (
               PARTITION BY e.user_id
               ORDER BY e.ts DESC, e.session_id DESC, e.item_in_session DESC,
                        {_text_order("e.level", "e.first_name")},
                        {_text_order("e.last_name", "e.gender")}
           ) AS recency
    FROM loaded_events AS e
    LEFT JOIN users AS known ON e.user_id = known.user_id
    WHERE e.user_id IS NOT NULL AND e.ts IS NOT NULL AND known.user_id IS NULL
) AS ranked
WHERE recency = 1;
""")

song_table_insert = Statement("insert", "songs", f"""
INSERT INTO songs (song_id, title, artist_id, year, duration)
SELECT song_id, title, artist_id, year, duration
FROM (
    SELECT RTRIM(song_id) AS song_id,
           title,
           RTRIM(artist_id) AS artist_id,
           year,
           duration,
           ROW_NUMBER() OVER (
               PARTITION BY RTRIM(song_id)
               ORDER BY {_text_order("title")}, RTRIM(artist_id), duration, year
           ) AS pick
    FROM staging_songs
    WHERE song_id IS NOT NULL
) AS ranked
WHERE pick = 1;
""")

# An artist_id can carry several spellings of its name: prefer a row that knows the
# location, then the alphabetically first name.
artist_table_insert = Statement("insert", "artists", f"""
INSERT INTO artists (artist_id, name, location, latitude, longitude)
SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude
FROM (
    SELECT RTRIM(artist_id) AS artist_id,
           artist_name,
           artist_location,
           artist_latitude,
           artist_longitude,
           ROW_NUMBER() OVER (
               PARTITION BY RTRIM(artist_id)
               ORDER BY CASE WHEN artist_location IS NULL THEN 1 ELSE 0 END,
                        {_text_order("artist_name", "artist_location")},
                        artist_latitude, artist_longitude
           ) AS pick
    FROM staging_songs
    WHERE artist_id IS NOT NULL
) AS ranked
WHERE pick = 1;
""")

# DATE_PART('part', ...) is valid on both warehouses (Redshift: "an identifier literal or
# string"), gives the same whole numbers as EXTRACT, and is cheaper on PostgreSQL. A row for
# every play's start time that has none yet; and none for a time no play has any more.
time_table_insert = Statement("insert", "time", """
INSERT INTO time (start_time, hour, day, week, month, year, weekday)
SELECT t.start_time,
       DATE_PART('hour', t.start_time)  AS hour,
       DATE_PART('day', t.start_time)   AS day,
       DATE_PART('week', t.start_time)  AS week,
       DATE_PART('month', t.start_time) AS month,
       DATE_PART('year', t.start_time)  AS year,
       DATE_PART('dow', t.start_time)   AS weekday
FROM (SELECT DISTINCT start_time FROM songplays) AS t
LEFT JOIN time AS known ON t.start_time = known.start_time
WHERE known.start_time IS NULL;
""")
time_orphan_delete = Statement("delete", "time", """
DELETE FROM time
WHERE start_time IN (
    SELECT t.start_time
    FROM time AS t
    LEFT JOIN songplays AS p ON t.start_time = p.start_time
    WHERE p.start_time IS NULL
);
""")

# DAILY LOADS
#
# A daily load replaces exactly what its day's file contributed: the events loaded_events
# holds for that day are replaced by the file's events as staged now, and every play and user
# those old or new events touch is deleted and built again from all loaded events (so a late
# event of day D in D+1's file survives a reload of D, an event in two files is one play, and
# an event that left its file leaves the star unless another file holds it). Time rows follow
# the plays. Songs and artists are upserted by key when song data is loaded. Delete-then-insert
# in one transaction is Redshift's documented merge pattern and runs unchanged on PostgreSQL.
# {day} is filled by daily_event_queries() with a validated date.

songplay_source_delete = Statement("delete", "songplays", f"""
DELETE FROM songplays
WHERE songplay_id IN (SELECT songplay_id FROM loaded_events WHERE load_day = {{day}})
   OR songplay_id IN (SELECT {SONGPLAY_ID} FROM staging_events AS e WHERE {NEXT_SONG});
""")
user_source_delete = Statement("delete", "users", """
DELETE FROM users
WHERE user_id IN (SELECT user_id FROM loaded_events WHERE load_day = {day})
   OR user_id IN (SELECT user_id FROM staging_events);
""")
loaded_day_delete = Statement("delete", "loaded_events", "DELETE FROM loaded_events WHERE load_day = {day};")
song_upsert_delete = Statement("delete", "songs", """
DELETE FROM songs WHERE song_id IN (SELECT RTRIM(song_id) FROM staging_songs);
""")
artist_upsert_delete = Statement("delete", "artists", """
DELETE FROM artists WHERE artist_id IN (SELECT RTRIM(artist_id) FROM staging_songs);
""")


# DATA-QUALITY CHECKS
#
# Each check is a number a query returns and what that number must be. etl.py runs them
# inside the transaction that publishes the star schema, so a failed check rolls the load
# back and readers keep the previous tables; `etl.py --check` runs them alone. Checks that
# share a query share its one run (dwh.quality): one scan per table for its row count, NULL
# keys and repeated keys, one scan of songplays for every reference.


DIMENSION_KEYS = {table: key for table, key in STAR_KEYS.items() if table != "songplays"}
ROW_COUNT_FLOOR = 1

# Keys are counted with GROUP BY, never COUNT(DISTINCT): a key is repeated when its group has
# more than one row. No table declares a key (see the top of this file), so no planner can
# assume the answer. A NULL key is one group of all NULL rows, each counted as not unique,
# as COUNT(*) - COUNT(DISTINCT key) counts them.
TABLE_KEY_COUNTS = {
    table: f"""SELECT COALESCE(SUM(k.n), 0) AS row_count,
       COALESCE(SUM(CASE WHEN k.{key} IS NULL THEN k.n ELSE 0 END), 0) AS null_keys,
       COALESCE(SUM(CASE WHEN k.{key} IS NULL THEN k.n WHEN k.n > 1 THEN k.n - 1 ELSE 0 END), 0) AS repeated_keys
FROM (SELECT {key}, COUNT(*) AS n FROM {table} GROUP BY {key}) AS k;"""
    for table, key in STAR_KEYS.items()
}
ROW_COUNT, NULL_KEYS, REPEATED_KEYS = range(3)

row_count_checks = [
    Check(f"{table} has rows", TABLE_KEY_COUNTS[table], ">=", ROW_COUNT_FLOOR, ROW_COUNT) for table in STAR_KEYS
]
key_checks = [
    check
    for table, key in STAR_KEYS.items()
    for check in (
        Check(f"{table}.{key} not null", TABLE_KEY_COUNTS[table], "==", 0, NULL_KEYS),
        Check(f"{table}.{key} unique", TABLE_KEY_COUNTS[table], "==", 0, REPEATED_KEYS),
    )
]
# A play's keys must exist in their dimensions (a guest's NULL user_id and an unmatched
# song's NULL song_id and artist_id are allowed): one scan of songplays, joined to each
# dimension. A LEFT JOIN never drops a play and never invents a missing one, so each count is
# zero exactly when every reference exists; only a repeated dimension key (which fails its own
# unique check) could multiply the plays another reference check counts.
_missing = ",\n       ".join(
    f"COUNT(CASE WHEN p.{key} IS NOT NULL AND d{i}.{key} IS NULL THEN 1 END) AS missing_{key}"
    for i, key in enumerate(DIMENSION_KEYS.values())
)
_joins = "\n".join(
    f"LEFT JOIN {dimension} AS d{i} ON p.{key} = d{i}.{key}"
    for i, (dimension, key) in enumerate(DIMENSION_KEYS.items())
)
PLAY_REFERENCES = f"""SELECT {_missing}
FROM songplays AS p
{_joins};"""
referential_checks = [
    Check(f"songplays.{key} in {dimension}", PLAY_REFERENCES, "==", 0, position)
    for position, (dimension, key) in enumerate(DIMENSION_KEYS.items())
]
# Reported only, from one scan of songplays: how many plays the catalogue matched, and how many
# events named no song at all.
PLAY_SHARES = """SELECT ROUND(100.0 * COUNT(song_id) / NULLIF(COUNT(*), 0), 2) AS matched_percent,
       COUNT(*) - COUNT(song_title) AS without_title
FROM songplays;"""

# The star against what was loaded, both ways, by key: a play whose event is no longer loaded
# (its file shrank, a reload replaced it) or a loaded NextSong event without a play (counted per
# loaded row: an event in two files counts twice); a user row no loaded event names, or a loaded
# user without a row; a time row no play has. Each is one join in a FROM clause, with no
# subquery and no DISTINCT: a row without a partner appears once, however many partners the
# others have. They prove the star is exactly what loaded_events holds; they cannot see a file
# that changed since it was loaded.
PLAYS_AGAINST_EVENTS = """SELECT COUNT(CASE WHEN l.songplay_id IS NULL THEN 1 END) AS plays_without_event,
       COUNT(CASE WHEN p.songplay_id IS NULL THEN 1 END) AS events_without_play
FROM songplays AS p
FULL OUTER JOIN loaded_events AS l ON p.songplay_id = l.songplay_id
WHERE p.songplay_id IS NOT NULL OR l.songplay_id IS NOT NULL;"""
USERS_AGAINST_EVENTS = """SELECT COUNT(CASE WHEN l.user_id IS NULL THEN 1 END) AS users_without_event,
       COUNT(CASE WHEN u.user_id IS NULL THEN 1 END) AS events_without_user
FROM users AS u
FULL OUTER JOIN loaded_events AS l ON u.user_id = l.user_id
WHERE u.user_id IS NOT NULL OR l.user_id IS NOT NULL;"""
TIMES_WITHOUT_PLAY = """SELECT COUNT(*) AS times_without_play
FROM time AS t
LEFT JOIN songplays AS p ON t.start_time = p.start_time
WHERE p.start_time IS NULL;"""

# Nothing lost silently: an event without a timestamp can be no play (a file that did not parse
# into events, such as one JSON array under JSONPaths by name, stages as such a row), and a song
# row without a song_id cannot be in songs (its artist still is): the first fails the load, the
# second is reported.
STAGED_WITHOUT_KEYS = """SELECT COUNT(CASE WHEN ts IS NULL THEN 1 END) AS events_without_ts
FROM staging_events;"""
STAGED_SONGS_WITHOUT_ID = """SELECT COUNT(CASE WHEN song_id IS NULL THEN 1 END) AS songs_without_id
FROM staging_songs;"""
coverage_checks = [
    Check("staged events without a timestamp", STAGED_WITHOUT_KEYS, "==", 0),
    Check("staged songs without a song_id (not in songs)", STAGED_SONGS_WITHOUT_ID),
    Check("songplays whose event is not loaded", PLAYS_AGAINST_EVENTS, "==", 0, 0),
    Check("NextSong events loaded without a play", PLAYS_AGAINST_EVENTS, "==", 0, 1),
    Check("users whose events are not loaded", USERS_AGAINST_EVENTS, "==", 0, 0),
    Check("users loaded without a row", USERS_AGAINST_EVENTS, "==", 0, 1),
    Check("time rows without a play", TIMES_WITHOUT_PLAY, "==", 0),
    *(
        Check(name, PLAY_SHARES, column=column)
        for column, name in enumerate(("% of plays matched to a song", "plays without a song title"))
    ),
]
data_quality_checks = row_count_checks + key_checks + referential_checks + coverage_checks

# QUERY LISTS

create_table_queries = [
    staging_events_table_create,
    staging_songs_table_create,
    songplay_table_create,
    user_table_create,
    song_table_create,
    artist_table_create,
    time_table_create,
    loaded_events_table_create,
]
# The staged events are loaded first: plays and users are built from loaded_events; time
# follows songplays.
insert_table_queries = [
    loaded_events_insert.format(load_day="NULL"),
    songplay_table_insert,
    user_table_insert,
    song_table_insert,
    artist_table_insert,
    time_table_insert,
]


# Each empties its staging table inside the COPY's transaction (see STAGING TABLES).
clear_staging_queries = [staging_events_clear, staging_songs_clear]


# An event day's key under LOG_DATA, as the files are laid out (and as Airflow templates it).
LOG_DAY_KEY = "{log_data}/{day:%Y}/{day:%m}/{day:%Y-%m-%d}-events.json"


def daily_event_queries(day: date) -> list[Statement]:
    """Replace what one day's file contributed by the staged events (see DAILY LOADS)."""
    day_literal = sql_literal(day.isoformat())
    return [
        songplay_source_delete.format(day=day_literal),
        user_source_delete.format(day=day_literal),
        loaded_day_delete.format(day=day_literal),
        loaded_events_insert.format(load_day=day_literal),
        songplay_missing_insert,
        user_table_insert,
        time_orphan_delete,
        time_table_insert,
    ]


song_upsert_queries = [song_upsert_delete, song_table_insert, artist_upsert_delete, artist_table_insert]


def _load_options(sources: Sources) -> str:
    options = ""
    if sources.max_error:
        options += f"\nMAXERROR {int(sources.max_error)}"
    if sources.accept_inv_chars:
        options += f"\nACCEPTINVCHARS AS {sql_literal(sources.accept_inv_chars)}"
    return options


def _region(region: str | None) -> str:
    return f"REGION {sql_literal(region)}\n" if region else ""


def copy_table_queries(sources: Sources, day: date | None = None) -> list[Statement]:
    """The COPY statements, filled from validated configuration, in run order.

    With a day, the events COPY reads only that day's key. REGION applies to every file a COPY
    reads (its JSONPaths file and manifest too), so each COPY names its own sources' region.
    """
    log_data = LOG_DAY_KEY.format(log_data=sources.log_data.rstrip("/"), day=day) if day else sources.log_data
    values = {
        "log_data": sql_literal(log_data),
        "log_jsonpath": sql_literal(sources.log_jsonpath),
        "song_data": sql_literal(sources.song_manifest or sources.song_data),
        "manifest": "MANIFEST\n" if sources.song_manifest else "",
        "iam_role": sql_literal(sources.iam_role) if sources.iam_role else "DEFAULT",
        "region": _region(sources.region),
        "song_region": _region(sources.song_region or sources.region),
        "load_options": _load_options(sources),
    }
    return [staging_events_copy.format(**values), staging_songs_copy.format(**values)]
