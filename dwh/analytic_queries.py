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


# Only plays matched to a known song (title + artist + duration) have a song_id: the
# star schema keeps no title for the others, so "most played" counts matched plays only.
top_songs_query = """
SELECT s.title                    AS song,
       a.name                     AS artist,
       COUNT(*)                   AS plays,
       COUNT(DISTINCT sp.user_id) AS listeners
FROM songplays AS sp
INNER JOIN songs AS s ON sp.song_id = s.song_id
LEFT JOIN artists AS a ON sp.artist_id = a.artist_id
GROUP BY s.song_id, s.title, a.name
ORDER BY plays DESC, s.title ASC, s.song_id ASC
LIMIT 10;
"""

top_artists_query = """
SELECT a.name                     AS artist,
       COUNT(*)                   AS plays,
       COUNT(DISTINCT sp.song_id) AS songs,
       COUNT(DISTINCT sp.user_id) AS listeners
FROM songplays AS sp
INNER JOIN artists AS a ON sp.artist_id = a.artist_id
GROUP BY a.artist_id, a.name
ORDER BY plays DESC, a.name ASC, a.artist_id ASC
LIMIT 10;
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
# in "users"; "users_now" counts every user once, by their latest level (users table).
plays_by_level_query = """
WITH plays_by_level AS (
    SELECT level, COUNT(*) AS plays, COUNT(DISTINCT user_id) AS users
    FROM songplays
    GROUP BY level
),

users_by_level AS (
    SELECT level, COUNT(*) AS users_now
    FROM users
    GROUP BY level
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
        "Top 10 by plays. Only plays matched to a known song (title, artist and duration) count: "
        "the star schema keeps no title for the others (see the matched share below).",
    ),
    AnalyticsQuery(
        "top_artists", "Most played artists", top_artists_query, "Top 10 by plays, matched plays only, as above."
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
        "Plays matched to a known song",
        matched_share_query,
        "A play matches when its song title, artist name and length equal a song's in song_data.",
    ),
]
