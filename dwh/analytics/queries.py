"""The analytic queries: what the Sparkify team asks of the star schema, run by analytics.py.

Each query runs unchanged on Redshift and on PostgreSQL, and ends its ORDER BY on a unique
key, so the same data always gives the same rows in the same order. Averages and shares are
computed in DOUBLE PRECISION: on Redshift AVG of an integer column returns an integer, and
integer / integer truncates on both. A session is (user_id, session_id).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class AnalyticsQuery:
    name: str  # identifier: the report's anchor, the chart's file name
    title: str  # the heading in the printed and Markdown report
    sql: str
    note: str = ""  # how to read the result, shown under the heading


# Every play counts, by the song title and artist name the event gives (songplays keeps them
# whether or not the catalogue matched the play). Grouped by RTRIM: Redshift compares VARCHAR
# ignoring trailing blanks and PostgreSQL does not, so trimming makes both group alike.
# matched_plays: plays matched to a song (title, artist name and length); in_catalogue: the
# catalogue (songs, artists) has a song of that title by an artist of that name, or a play matched.
top_songs_query = """
WITH played AS (
    SELECT RTRIM(song_title)       AS song,
           RTRIM(artist_name)      AS artist,
           COUNT(*)                AS plays,
           COUNT(DISTINCT user_id) AS listeners,
           COUNT(song_id)          AS matched_plays
    FROM songplays
    GROUP BY RTRIM(song_title), RTRIM(artist_name)
),

catalogue AS (
    SELECT DISTINCT
        RTRIM(s.title) AS song,
        RTRIM(a.name)  AS artist
    FROM songs AS s
    INNER JOIN artists AS a ON s.artist_id = a.artist_id
)

SELECT p.song,
       p.artist,
       p.plays,
       p.listeners,
       p.matched_plays,
       CASE WHEN p.matched_plays > 0 OR c.song IS NOT NULL THEN 'yes' ELSE 'no' END AS in_catalogue
FROM played AS p
LEFT JOIN catalogue AS c ON p.song = c.song AND p.artist = c.artist
ORDER BY p.plays DESC, p.song ASC, p.artist ASC
LIMIT 10;
"""

# As above, by artist; in_catalogue: the artists table has an artist of that name, or a play matched.
top_artists_query = """
WITH played AS (
    SELECT RTRIM(artist_name)                AS artist,
           COUNT(*)                          AS plays,
           COUNT(DISTINCT RTRIM(song_title)) AS songs,
           COUNT(DISTINCT user_id)           AS listeners,
           COUNT(artist_id)                  AS matched_plays
    FROM songplays
    GROUP BY RTRIM(artist_name)
),

catalogue AS (
    SELECT DISTINCT RTRIM(name) AS artist
    FROM artists
)

SELECT p.artist,
       p.plays,
       p.songs,
       p.listeners,
       p.matched_plays,
       CASE WHEN p.matched_plays > 0 OR c.artist IS NOT NULL THEN 'yes' ELSE 'no' END AS in_catalogue
FROM played AS p
LEFT JOIN catalogue AS c ON p.artist = c.artist
ORDER BY p.plays DESC, p.artist ASC
LIMIT 10;
"""

# One row per date (UTC) with plays; a date without plays has no row. level is compared as the
# load compares text, RTRIM'd: Redshift ignores trailing spaces in a comparison, PostgreSQL does not.
plays_by_day_query = """
SELECT CAST(start_time AS DATE)                               AS play_date,
       COUNT(*)                                               AS plays,
       SUM(CASE WHEN RTRIM(level) = 'paid' THEN 1 ELSE 0 END) AS paid_plays,
       SUM(CASE WHEN RTRIM(level) = 'free' THEN 1 ELSE 0 END) AS free_plays,
       COUNT(DISTINCT user_id)                                AS users
FROM songplays
GROUP BY CAST(start_time AS DATE)
ORDER BY play_date;
"""

# Hours are UTC: start_time is the event's epoch milliseconds, and Redshift's TIMESTAMP
# has no time zone. Hours without plays have no row.
plays_by_hour_query = """
SELECT t.hour,
       COUNT(*)                   AS plays,
       COUNT(DISTINCT sp.user_id) AS users
FROM songplays AS sp
INNER JOIN time AS t ON sp.start_time = t.start_time
GROUP BY t.hour
ORDER BY t.hour;
"""

plays_by_weekday_query = """
SELECT t.weekday,
       CASE t.weekday
           WHEN 0 THEN 'Sunday'
           WHEN 1 THEN 'Monday'
           WHEN 2 THEN 'Tuesday'
           WHEN 3 THEN 'Wednesday'
           WHEN 4 THEN 'Thursday'
           WHEN 5 THEN 'Friday'
           WHEN 6 THEN 'Saturday'
       END                                          AS day,
       COUNT(*)                                     AS plays,
       COUNT(DISTINCT sp.user_id)                   AS users,
       COUNT(DISTINCT CAST(sp.start_time AS DATE))  AS days,
       CAST(COUNT(*) AS DOUBLE PRECISION)
       / COUNT(DISTINCT CAST(sp.start_time AS DATE)) AS plays_per_day
FROM songplays AS sp
INNER JOIN time AS t ON sp.start_time = t.start_time
GROUP BY t.weekday
ORDER BY t.weekday;
"""

# level is the level at the time of each play, so a user who upgraded counts under both
# in "users"; "users_now" counts every user once, by their latest level (users table). Levels
# group RTRIM'd, as the load compares text.
plays_by_level_query = """
WITH plays_by_level AS (
    SELECT RTRIM(level) AS level, COUNT(*) AS plays, COUNT(DISTINCT user_id) AS users
    FROM songplays
    GROUP BY RTRIM(level)
),

users_by_level AS (
    SELECT RTRIM(level) AS level, COUNT(*) AS users_now
    FROM users
    GROUP BY RTRIM(level)
)

SELECT p.level,
       p.plays,
       100.0 * p.plays / SUM(CAST(p.plays AS DOUBLE PRECISION)) OVER () AS pct_plays,
       p.users,
       CAST(p.plays AS DOUBLE PRECISION) / NULLIF(p.users, 0)           AS plays_per_user,
       COALESCE(u.users_now, 0)                                         AS users_now
FROM plays_by_level AS p
LEFT JOIN users_by_level AS u ON p.level = u.level
ORDER BY p.level;
"""

most_active_users_query = """
SELECT sp.user_id,
       u.first_name,
       u.last_name,
       u.level,
       COUNT(*)                      AS plays,
       COUNT(DISTINCT sp.session_id) AS sessions
FROM songplays AS sp
LEFT JOIN users AS u ON sp.user_id = u.user_id
WHERE sp.user_id IS NOT NULL
GROUP BY sp.user_id, u.first_name, u.last_name, u.level
ORDER BY plays DESC, sp.user_id ASC
LIMIT 10;
"""

# PERCENTILE_CONT ... WITHIN GROUP is an ordered-set aggregate on both warehouses;
# Redshift wants every sort-based aggregate in a statement to order by the same value,
# and returns DECIMAL for an integer one, so both order by the same DOUBLE PRECISION.
session_length_query = """
WITH sessions AS (
    SELECT user_id, session_id, COUNT(*) AS plays
    FROM songplays
    GROUP BY user_id, session_id
)

SELECT COUNT(*)                                                                     AS sessions,
       AVG(CAST(plays AS DOUBLE PRECISION))                                         AS avg_plays,
       PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY CAST(plays AS DOUBLE PRECISION)) AS median_plays,
       PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY CAST(plays AS DOUBLE PRECISION)) AS p90_plays,
       MIN(plays)                                                                   AS min_plays,
       MAX(plays)                                                                   AS max_plays
FROM sessions;
"""

session_length_distribution_query = """
WITH sessions AS (
    SELECT user_id, session_id, COUNT(*) AS plays
    FROM songplays
    GROUP BY user_id, session_id
),

bucketed AS (
    SELECT plays,
           CASE WHEN plays = 1 THEN 1
                WHEN plays <= 5 THEN 2
                WHEN plays <= 10 THEN 3
                WHEN plays <= 25 THEN 4
                WHEN plays <= 50 THEN 5
                WHEN plays <= 100 THEN 6
                ELSE 7
           END AS bucket
    FROM sessions
)

SELECT CASE bucket
           WHEN 1 THEN '1'
           WHEN 2 THEN '2-5'
           WHEN 3 THEN '6-10'
           WHEN 4 THEN '11-25'
           WHEN 5 THEN '26-50'
           WHEN 6 THEN '51-100'
           ELSE '101+'
       END                                                                 AS plays_per_session,
       COUNT(*)                                                            AS sessions,
       100.0 * COUNT(*) / SUM(CAST(COUNT(*) AS DOUBLE PRECISION)) OVER () AS pct_sessions,
       CAST(SUM(plays) AS BIGINT)                                          AS plays
FROM bucketed
GROUP BY bucket
ORDER BY bucket;
"""

matched_share_query = """
SELECT COUNT(*)                                                               AS plays,
       COUNT(song_id)                                                         AS matched_plays,
       COUNT(DISTINCT song_id)                                                AS matched_songs,
       100.0 * COUNT(song_id) / NULLIF(CAST(COUNT(*) AS DOUBLE PRECISION), 0) AS pct_matched
FROM songplays;
"""

analytics_queries = [
    AnalyticsQuery(
        "top_songs",
        "Most played songs",
        top_songs_query,
        "Top 10 by plays. Every play counts, by the song title and artist name the event gives. "
        "matched_plays: the plays matched to a song of the catalogue on title, artist name and length; "
        "in_catalogue: whether the catalogue has a song of that title by an artist of that name "
        "(a known song played at another length is known but not matched).",
    ),
    AnalyticsQuery(
        "top_artists",
        "Most played artists",
        top_artists_query,
        "Top 10 by plays, every play counted by the artist name the event gives. songs: distinct titles played; "
        "matched_plays: the plays matched to a song of the catalogue; in_catalogue: whether the catalogue "
        "has an artist of that name (known artists often have none of their played songs in it).",
    ),
    AnalyticsQuery(
        "plays_by_day",
        "Plays per day",
        plays_by_day_query,
        "All plays, per date (UTC); level at the time of each play.",
    ),
    AnalyticsQuery(
        "plays_by_hour",
        "Plays by hour of day (UTC)",
        plays_by_hour_query,
        "All plays; hours are UTC. users: distinct users who played in that hour.",
    ),
    AnalyticsQuery(
        "plays_by_weekday",
        "Plays by weekday",
        plays_by_weekday_query,
        "All plays; weekday 0 is Sunday (UTC). days: dates with plays on that weekday, so "
        "plays_per_day compares weekdays fairly when a month has five of some.",
    ),
    AnalyticsQuery(
        "plays_by_level",
        "Free and paid plays and users",
        plays_by_level_query,
        "level at the time of each play: a user who changed level counts under both in users; "
        "users_now counts each user once, by their latest level.",
    ),
    AnalyticsQuery(
        "most_active_users",
        "Most active users",
        most_active_users_query,
        "Top 10 users by plays; level is the user's latest.",
    ),
    AnalyticsQuery(
        "session_length",
        "Session length (plays per session)",
        session_length_query,
        "A session is a user's session_id; median and p90 interpolate (PERCENTILE_CONT).",
    ),
    AnalyticsQuery("session_length_distribution", "Sessions by number of plays", session_length_distribution_query),
    AnalyticsQuery(
        "matched_share",
        "Plays matched to the song catalogue",
        matched_share_query,
        "A play matches when its song title, artist name and length equal a song's in song_data. "
        "Only matched plays have a song_id and artist_id; the rankings above count every play.",
    ),
]
