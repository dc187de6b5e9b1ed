"""Analytics: every query is Redshift SQL, and its results on the sample equal what Python
computes straight from the JSON files (not from the warehouse); analytics.py prints them,
writes report.md and real PNG charts; the committed docs are the sample's results."""

from __future__ import annotations

import collections
import datetime
import decimal
import json
import re
import struct
from pathlib import Path

import pytest
from helpers import ROOT, SAMPLE, run_script

from dwh.analytics import report
from dwh.analytics.queries import analytics_queries
from dwh.config import load_settings
from dwh.ops.run import connect

QUERIES = {q.name: q for q in analytics_queries}
SINGLE_ROW = {"session_length", "matched_share"}
CHART_NAMES = ["top_artists", "plays_by_day", "plays_by_hour", "plays_by_weekday"]
DOCS = ROOT / "docs"
ANALYTICS_DOC = DOCS / "analytics.md"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- The sample, read with Python's json, loaded the way the COPY rules say ---------------


def json_objects(path: Path):
    """Every JSON object in a file, whatever whitespace separates them."""
    text, decoder, pos = path.read_text(encoding="utf-8"), json.JSONDecoder(), 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return
        obj, pos = decoder.raw_decode(text, pos)
        yield obj


def text(value):
    """A value as a text column loads it: "" and blanks are NULL, numbers their JSON text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value if isinstance(value, str) else json.dumps(value)


def utc(ts_ms: int) -> datetime.datetime:
    return datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=ts_ms)


def percentile_cont(values: list[float], p: float) -> float:
    """Linear interpolation at row 1 + p * (n - 1), as Redshift documents PERCENTILE_CONT."""
    ordered = sorted(values)
    position = p * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class Sample:
    def __init__(self):
        self.events = [e for f in sorted((SAMPLE / "log_data").rglob("*.json")) for e in json_objects(f)]
        for e in self.events:
            e["user"] = int(e["userId"]) if text(e["userId"]) else None
            e["time"] = utc(e["ts"])
        self.plays = [e for e in self.events if e["page"] == "NextSong"]
        songs = [s for f in sorted((SAMPLE / "song_data").rglob("*.json")) for s in json_objects(f)]

        # The match: title + artist name + duration; the smallest song_id among equals wins.
        matches: dict[tuple, dict] = {}
        for s in songs:
            key = (text(s["title"]), text(s["artist_name"]), s["duration"])
            if None not in key and (key not in matches or s["song_id"] < matches[key]["song_id"]):
                matches[key] = s
        for e in self.plays:
            e["match"] = matches.get((text(e["song"]), text(e["artist"]), e["length"]))
        self.matched = [e for e in self.plays if e["match"]]
        for e in self.plays:  # what was played, as the rankings group it (RTRIM: trailing blanks only)
            e["title"] = e["song"].rstrip(" ") if e["song"] is not None else None
            e["artist_name"] = e["artist"].rstrip(" ") if e["artist"] is not None else None

        # artists: per artist_id, a row with a location first, then the first name.
        rows = collections.defaultdict(list)
        for s in songs:
            rows[s["artist_id"]].append(s)
        self.artist_name = {}
        for artist_id, candidates in rows.items():
            best = min(
                candidates,
                key=lambda s: (
                    text(s["artist_location"]) is None,
                    text(s["artist_name"]) is None,
                    text(s["artist_name"]) or "",
                    text(s["artist_location"]) or "",
                    s["song_id"],
                ),
            )
            self.artist_name[artist_id] = text(best["artist_name"])

        # The catalogue as the star schema holds it: songs (one row per song_id, the first title) by
        # artists' names, and those names; trailing blanks trimmed, as the rankings compare them.
        by_id = {}
        for s in sorted(songs, key=lambda s: (s["song_id"], s["title"], s["artist_id"], s["duration"])):
            by_id.setdefault(s["song_id"], s)
        self.known_songs = {
            (s["title"].rstrip(" "), (self.artist_name[s["artist_id"]] or "").rstrip(" ")) for s in by_id.values()
        }
        self.known_artists = {name.rstrip(" ") for name in self.artist_name.values() if name}

        # users: the latest event of each user (by ts, then session, then item).
        latest = {}
        for e in self.events:
            if e["user"] is not None:
                order = (e["ts"], e["sessionId"], e["itemInSession"])
                if e["user"] not in latest or order > latest[e["user"]][0]:
                    latest[e["user"]] = (order, e)
        self.latest = {user: e for user, (_, e) in latest.items()}

        self.sessions = collections.Counter((e["user"], e["sessionId"]) for e in self.plays)


@pytest.fixture(scope="module")
def sample() -> Sample:
    return Sample()


# --- The warehouse, holding exactly the sample -------------------------------------------


@pytest.fixture(scope="module")
def sample_config(loaded_sample):
    """loaded_sample, rebuilt from staging: tests that run earlier may have reloaded the star."""
    result = run_script("etl.py", loaded_sample)
    assert result.returncode == 0, result.stderr
    return loaded_sample


@pytest.fixture(scope="module")
def results(sample_config, local_server) -> dict[str, report.Result]:
    """Every analytic query's result on the sample, fetched once."""
    with connect(load_settings(sample_config)) as warehouse:
        return {q.name: report.run_query(warehouse, q) for q in analytics_queries}


def rows_of(result: report.Result) -> list[tuple]:
    return [tuple(float(v) if isinstance(v, decimal.Decimal) else v for v in row) for row in result.rows]


def approx_rows(rows: list[tuple]):
    return [tuple(pytest.approx(v) if isinstance(v, float) else v for v in row) for row in rows]


@pytest.fixture(scope="module")
def script_run(sample_config, tmp_path_factory):
    """analytics.py --out DIR --doc FILE, with FILE a copy of docs/analytics.md laid out as in docs/."""
    folder = tmp_path_factory.mktemp("docs")
    out, doc = folder / "analytics", folder / "analytics.md"
    doc.write_text(ANALYTICS_DOC.read_text(encoding="utf-8") + "this line is replaced\n", encoding="utf-8")
    result = run_script("analytics.py", sample_config, "--out", str(out), "--doc", str(doc))
    assert result.returncode == 0, result.stderr
    return result, out


# --- The SQL ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", QUERIES)
def test_query_avoids_what_redshift_does_differently(name):
    """sqlfluff's redshift dialect accepts some PostgreSQL-only syntax; these must not appear."""
    sql = " ".join(QUERIES[name].sql.upper().split())
    for construct in ("::", "DISTINCT ON", "FILTER (", "GENERATE_SERIES", "FETCH FIRST", "LATERAL", "MEDIAN("):
        assert construct not in sql, f"{name} uses {construct}"
    # Redshift's AVG of an integer is an integer: every average is taken over a DOUBLE PRECISION.
    for argument in re.findall(r"AVG\((.*?)\)", sql):
        assert argument.startswith("CAST(") and "DOUBLE PRECISION" in argument, f"{name}: AVG({argument})"


@pytest.mark.parametrize("name", sorted(set(QUERIES) - SINGLE_ROW))
def test_multi_row_query_orders_its_rows(name):
    assert "ORDER BY" in QUERIES[name].sql.rsplit("FROM", 1)[-1]


def test_every_query_has_a_unique_name_and_title():
    assert len({q.name for q in QUERIES.values()}) == len({q.title for q in QUERIES.values()}) == len(QUERIES)


# --- The results against the JSON files ---------------------------------------------------


def expected_top_songs(sample) -> list[tuple]:
    groups = collections.defaultdict(list)
    for e in sample.plays:
        groups[(e["title"], e["artist_name"])].append(e)
    rows = [
        (
            title,
            artist,
            len(plays),
            len({p["user"] for p in plays}),
            sum(1 for p in plays if p["match"]),
            "yes" if any(p["match"] for p in plays) or (title, artist) in sample.known_songs else "no",
        )
        for (title, artist), plays in groups.items()
    ]
    return sorted(rows, key=lambda row: (-row[2], row[0], row[1]))[:10]


def expected_top_artists(sample) -> list[tuple]:
    groups = collections.defaultdict(list)
    for e in sample.plays:
        groups[e["artist_name"]].append(e)
    rows = [
        (
            artist,
            len(plays),
            len({p["title"] for p in plays}),
            len({p["user"] for p in plays}),
            sum(1 for p in plays if p["match"]),
            "yes" if any(p["match"] for p in plays) or artist in sample.known_artists else "no",
        )
        for artist, plays in groups.items()
    ]
    return sorted(rows, key=lambda row: (-row[1], row[0]))[:10]


def test_top_songs_count_every_play_by_what_was_played(results, sample):
    expected = expected_top_songs(sample)
    assert rows_of(results["top_songs"]) == expected
    assert expected[0][:3] == ("You're The One", "Dwight Yoakam", 37)


def test_top_artists_count_every_play_by_what_was_played(results, sample):
    expected = expected_top_artists(sample)
    assert rows_of(results["top_artists"]) == expected
    assert sum(row[4] for row in expected) <= len(sample.matched) and expected[0][0] == "Coldplay"


def test_rankings_tell_known_from_matched(results):
    """On the sample the catalogue knows some of the most played artists without matching any of their plays."""
    artists = {row[0]: row[4:] for row in rows_of(results["top_artists"])}
    assert artists["Kings Of Leon"] == (0, "yes") and artists["Coldplay"] == (0, "no")
    assert all(row[4:] == (0, "no") for row in rows_of(results["top_songs"]))


def test_songplays_keep_what_was_played_on_every_play(sample_config, local_server, sample):
    """Every play, matched or not, carries its event's song title, artist name and length."""
    with connect(load_settings(sample_config)) as warehouse:
        loaded = warehouse.query(
            "SELECT session_id, user_id, start_time, song_title, artist_name, song_length FROM songplays"
        )
    expected = collections.Counter(
        (e["sessionId"], e["user"], e["time"], text(e["song"]), text(e["artist"]), e["length"]) for e in sample.plays
    )
    assert collections.Counter(tuple(row) for row in loaded) == expected
    assert sum(1 for row in loaded if row[3] is None) == 0


def test_plays_per_day_paid_and_free(results, sample):
    by_date = collections.defaultdict(list)
    for e in sample.plays:
        by_date[e["time"].date()].append(e)
    expected = [
        (
            day,
            len(plays),
            sum(1 for p in plays if p["level"] == "paid"),
            sum(1 for p in plays if p["level"] == "free"),
            len({p["user"] for p in plays}),
        )
        for day, plays in sorted(by_date.items())
    ]
    assert rows_of(results["plays_by_day"]) == expected
    assert len(expected) == 30 and sum(row[2] for row in expected) == 5591


def test_plays_by_hour_of_day_utc(results, sample):
    by_hour = collections.defaultdict(list)
    for e in sample.plays:
        by_hour[e["time"].hour].append(e)
    expected = [(hour, len(e), len({p["user"] for p in e})) for hour, e in sorted(by_hour.items())]
    assert rows_of(results["plays_by_hour"]) == expected
    assert sum(row[1] for row in expected) == 6820


def test_plays_by_weekday(results, sample):
    by_day = collections.defaultdict(list)
    for e in sample.plays:
        by_day[(e["time"].weekday() + 1) % 7].append(e)  # 0 = Sunday
    names = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    expected = []
    for day, e in sorted(by_day.items()):
        dates = len({p["time"].date() for p in e})
        expected.append((day, names[day], len(e), len({p["user"] for p in e}), dates, len(e) / dates))
    assert rows_of(results["plays_by_weekday"]) == approx_rows(expected)
    assert [row[4] for row in expected] == [4, 4, 4, 4, 5, 5, 4]  # November 2018 began on a Thursday


def test_free_and_paid_plays_and_users(results, sample):
    by_level = collections.defaultdict(list)
    for e in sample.plays:
        by_level[e["level"]].append(e)
    now = collections.Counter(e["level"] for e in sample.latest.values())
    expected = [
        (
            level,
            len(e),
            100 * len(e) / len(sample.plays),
            len({p["user"] for p in e}),
            len(e) / len({p["user"] for p in e}),
            now[level],
        )
        for level, e in sorted(by_level.items())
    ]
    assert rows_of(results["plays_by_level"]) == approx_rows(expected)
    assert [row[:2] for row in expected] == [("free", 1229), ("paid", 5591)]


def test_most_active_users(results, sample):
    by_user = collections.defaultdict(list)
    for e in sample.plays:
        by_user[e["user"]].append(e)
    expected = []
    for user, e in sorted(by_user.items(), key=lambda item: (-len(item[1]), item[0]))[:10]:
        latest = sample.latest[user]
        expected.append(
            (user, latest["firstName"], latest["lastName"], latest["level"], len(e), len({p["sessionId"] for p in e}))
        )
    assert rows_of(results["most_active_users"]) == expected


def test_session_length_summary(results, sample):
    lengths = list(sample.sessions.values())
    expected = (
        len(lengths),
        sum(lengths) / len(lengths),
        percentile_cont(lengths, 0.5),
        percentile_cont(lengths, 0.9),
        min(lengths),
        max(lengths),
    )
    assert rows_of(results["session_length"]) == approx_rows([expected])
    assert expected[0] == 776 and expected[2:4] == (2.0, 29.0)


def test_session_length_distribution(results, sample):
    bounds = [
        (1, 1, "1"),
        (2, 5, "2-5"),
        (6, 10, "6-10"),
        (11, 25, "11-25"),
        (26, 50, "26-50"),
        (51, 100, "51-100"),
        (101, 10**9, "101+"),
    ]
    lengths = list(sample.sessions.values())
    expected = []
    for low, high, label in bounds:
        inside = [n for n in lengths if low <= n <= high]
        if inside:
            expected.append((label, len(inside), 100 * len(inside) / len(lengths), sum(inside)))
    assert rows_of(results["session_length_distribution"]) == approx_rows(expected)


def test_share_of_plays_matched_to_a_known_song(results, sample):
    matched = len(sample.matched)
    expected = (
        len(sample.plays),
        matched,
        len({e["match"]["song_id"] for e in sample.matched}),
        100 * matched / len(sample.plays),
    )
    assert rows_of(results["matched_share"]) == approx_rows([expected])
    assert expected[:2] == (6820, 39)


# --- analytics.py and what it writes -----------------------------------------------------


def test_script_prints_every_result_as_a_table(script_run, results):
    completed, _ = script_run
    for result in results.values():
        assert f"{result.query.title}\n" in completed.stdout
        assert report.text_table(result) in completed.stdout
    assert "Chloe" in completed.stdout and "6820" in completed.stdout


def test_script_writes_the_report_with_every_table_and_chart(script_run, results):
    _, out = script_run
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for result in results.values():
        assert f"## {result.query.title}\n" in markdown
        assert report.markdown_table(result) in markdown
    for name in CHART_NAMES:
        assert f"]({name}.png)" in markdown


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert (length, chunk) == (13, b"IHDR")
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("name", CHART_NAMES)
def test_charts_are_pngs_of_the_fixed_size(script_run, name):
    _, out = script_run
    assert report.CHART_PIXELS == (800, 450)
    assert png_size(out / f"{name}.png") == (800, 450)


def test_report_says_what_people_play_and_how_much_the_catalogue_matched(script_run, sample):
    """The report's summary, computed here from the JSON files: true for whatever data it runs on."""
    _, out = script_run
    markdown = (out / "report.md").read_text(encoding="utf-8")
    plays, matched = len(sample.plays), len(sample.matched)
    song = expected_top_songs(sample)[0]
    artist = expected_top_artists(sample)[0]
    paid = sum(1 for e in sample.plays if e["level"] == "paid")
    known = {"yes": "in the catalogue", "no": "not in the catalogue"}
    for line in (
        f"- {plays:,} plays; the song catalogue matched {matched:,} of them ({100 * matched / plays:.2f} %).",
        f"- Most played song: “{song[0]}” by {song[1]} ({known[song[5]]}), {song[2]:,} plays.",
        f"- Most played artist: {artist[0]} ({known[artist[5]]}), {artist[1]:,} plays.",
        f"- {paid:,} paid plays ({100 * paid / plays:.2f} % of all plays).",
    ):
        assert line in markdown
    assert "- 6,820 plays; the song catalogue matched 39 of them (0.57 %)." in markdown
    assert "- Most played song: “You're The One” by Dwight Yoakam (not in the catalogue), 37 plays." in markdown
    assert "- 5,591 paid plays" in markdown


def test_committed_docs_are_what_the_script_writes_for_the_sample(script_run):
    """docs/analytics.md and docs/analytics/ are generated: rerun
    python analytics.py --out docs/analytics --doc docs/analytics.md when the results change."""
    _, out = script_run
    assert (DOCS / "analytics" / "report.md").read_text(encoding="utf-8") == (out / "report.md").read_text(
        encoding="utf-8"
    )
    assert ANALYTICS_DOC.read_text(encoding="utf-8") == (out.parent / "analytics.md").read_text(encoding="utf-8")
    for name in CHART_NAMES:
        assert png_size(DOCS / "analytics" / f"{name}.png") == (800, 450)
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", ANALYTICS_DOC.read_text(encoding="utf-8")):
        assert (DOCS / image).is_file()


def test_doc_keeps_its_hand_written_part_and_carries_the_report(script_run):
    _, out = script_run
    doc = (out.parent / "analytics.md").read_text(encoding="utf-8")
    intro, generated = doc.split(report.REPORT_MARKER + "\n")
    assert ANALYTICS_DOC.read_text(encoding="utf-8").startswith(intro) and "this line is replaced" not in doc
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for name in CHART_NAMES:
        assert f"](analytics/{name}.png)" in generated and f"]({name}.png)" in markdown
    assert generated.count("\n### ") == markdown.count("\n## ") == len(QUERIES)


def test_doc_without_its_marker_is_refused_and_left_alone(sample_config, tmp_path):
    doc = tmp_path / "notes.md"
    doc.write_text("# Notes\n", encoding="utf-8")
    result = run_script("analytics.py", sample_config, "--out", str(tmp_path / "out"), "--doc", str(doc))
    assert result.returncode == 2
    assert f"error: --doc {doc}: no line {report.REPORT_MARKER!r}" in result.stderr
    assert doc.read_text(encoding="utf-8") == "# Notes\n" and not (tmp_path / "out").exists()
    result = run_script("analytics.py", sample_config, "--doc", str(doc))
    assert result.returncode == 2 and "--doc needs --out" in result.stderr


# --- The report helpers ----------------------------------------------------------------------


def test_cells_are_formatted_predictably():
    assert [report.format_value(v) for v in (None, 7, 2.5, decimal.Decimal("3"), decimal.Decimal("0.125"), "x")] == [
        "NULL",
        "7",
        "2.50",
        "3",
        "0.12",
        "x",
    ]


def test_markdown_cells_cannot_break_the_table():
    result = report.Result(QUERIES["top_songs"], ["song", "plays"], [("a | b *c* <i>\nd", 1)])
    assert report.markdown_table(result).splitlines()[2] == r"| a \| b \*c\* &lt;i&gt; d | 1 |"


def test_empty_result_prints_no_rows_and_charts_zeros(tmp_path):
    result = report.Result(QUERIES["plays_by_hour"], ["hour", "plays", "users"], [])
    assert report.text_table(result).endswith("(no rows)")
    assert report.counts_by_position([(3, 5, 1)], 0, 1, 24) == [0, 0, 0, 5] + [0] * 20
    assert png_size(report.plays_by_hour_chart(result, tmp_path / "empty.png")) == report.CHART_PIXELS


def test_empty_results_still_draw_every_chart(results, tmp_path):
    for name, draw in report.CHARTS.items():
        result = report.Result(QUERIES[name], results[name].columns, [])
        assert png_size(draw(result, tmp_path / f"{name}.png")) == report.CHART_PIXELS


def test_plays_per_day_chart_shows_days_without_plays_as_zero():
    first, third = datetime.date(2018, 11, 1), datetime.date(2018, 11, 3)
    rows = [
        {"play_date": third, "paid_plays": 4, "free_plays": 1},
        {"play_date": first, "paid_plays": 2, "free_plays": 0},
    ]
    assert report.daily_series(rows) == ([first, datetime.date(2018, 11, 2), third], [2, 0, 4], [0, 0, 1])
    assert report.daily_series([]) == ([], [], [])


def test_summary_names_every_leader_of_a_tie_and_skips_what_is_missing():
    columns = ["song", "artist", "plays", "listeners", "matched_plays", "in_catalogue"]
    rows = [("B*", "X", 5, 1, 5, "yes"), ("A", "Y", 5, 2, 0, "no"), ("C", "Z", 1, 1, 0, "no")]
    lines = report.summary([report.Result(QUERIES["top_songs"], columns, rows)])
    assert lines == [
        "- Most played songs, tied at 5 plays: “B\\*” by X (in the catalogue); “A” by Y (not in the catalogue)."
    ]
    assert report.summary([]) == []


def test_chart_labels_are_printable_and_short():
    assert report.short_label("Bj\x83rk\n ") == "Bjrk"
    assert report.short_label("x" * 50) == "x" * (report.LABEL_CHARACTERS - 1) + "…"


def test_levels_compare_as_the_load_compares_text(warehouse):
    """A level stored as 'paid ' counts as paid and groups with 'paid': RTRIM, as the load compares text."""
    warehouse.execute("CREATE TEMP TABLE songplays (start_time TIMESTAMP, level VARCHAR(16), user_id INTEGER);")
    warehouse.execute("CREATE TEMP TABLE users (user_id INTEGER, level VARCHAR(16));")
    warehouse.execute(
        "INSERT INTO songplays VALUES "
        "('2018-11-01 10:00', 'paid ', 1), ('2018-11-01 11:00', 'paid', 2), ('2018-11-01 12:00', 'free', 3);"
    )
    warehouse.execute("INSERT INTO users VALUES (1, 'paid '), (2, 'paid'), (3, 'free');")
    assert warehouse.query(QUERIES["plays_by_day"].sql) == [(datetime.date(2018, 11, 1), 3, 2, 1, 3)]
    by_level = warehouse.query(QUERIES["plays_by_level"].sql)
    assert [(level, plays, users_now) for level, plays, _, _, _, users_now in by_level] == [
        ("free", 1, 1),
        ("paid", 2, 2),
    ]
