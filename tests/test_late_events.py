"""Every play kept, whatever order the days arrive, load and reload in: a daily load replaces exactly
what its file contributed, when files hold events of the day before (a logger that flushes after
midnight), repeat each other's events, or change between loads."""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import psycopg2
import pytest
from helpers import SAMPLE, run_script, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import create_tables
import etl
from dwh.config import load_settings
from dwh.local import server
from sql_queries import STAR_KEYS

DAYS = [date(2018, 11, 1) + timedelta(days=n) for n in range(30)]
LATE_MINUTES = 60  # the last hour of each day sits in the next day's file


def star(query, db) -> dict:
    return {table: query(f"SELECT * FROM {table} ORDER BY {key}", db=db) for table, key in STAR_KEYS.items()}


def day_file(log_data: Path, day: date) -> Path:
    return log_data / f"{day:%Y}" / f"{day:%m}" / f"{day:%Y-%m-%d}-events.json"


def write_day(log_data: Path, day: date, events: list[dict]) -> None:
    path = day_file(log_data, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(event) + "\n" for event in events))


def event_day(event: dict) -> date:
    return datetime.fromtimestamp(event["ts"] / 1000, UTC).date()


def run(*args) -> None:
    assert etl.main([*args, "--quiet"]) == 0


def fresh(config: Path) -> Path:
    assert create_tables.main(["--config", str(config), "--quiet"]) == 0
    return config


@pytest.fixture(scope="module")
def late_sample(tmp_path_factory) -> tuple[Path, int]:
    """The sample's log files with each day's last hour moved into the next day's file."""
    log_data = tmp_path_factory.mktemp("late") / "log_data"
    events = {
        day: [json.loads(line) for line in day_file(SAMPLE / "log_data", day).read_text().splitlines()] for day in DAYS
    }
    moved = 0
    for day, next_day in pairwise(DAYS):
        midnight = datetime.combine(next_day, datetime.min.time(), UTC).timestamp() * 1000
        late = [e for e in events[day] if e["ts"] >= midnight - LATE_MINUTES * 60_000]
        events[day] = [e for e in events[day] if e not in late]
        events[next_day] = late + events[next_day]
        moved += sum(e["page"] == "NextSong" for e in late)
    for day, day_events in events.items():
        write_day(log_data, day, day_events)
    return log_data, moved


@pytest.fixture
def configs(make_config, late_sample):
    log_data, _ = late_sample
    daily = make_config({("LOCAL", "DB_NAME"): "late_daily", ("LOCAL", "LOG_DATA"): str(log_data)}, name="daily.cfg")
    full = make_config({("LOCAL", "DB_NAME"): "late_full", ("LOCAL", "LOG_DATA"): str(log_data)}, name="full.cfg")
    run("--config", str(fresh(full)))
    return fresh(daily), full


def plays_in_files(log_data: Path) -> int:
    """Distinct NextSong events across the files, counted from the JSON itself."""
    keys = set()
    for path in log_data.rglob("*.json"):
        for line in path.read_text().splitlines():
            e = json.loads(line)
            if e["page"] == "NextSong":
                keys.add((e["sessionId"], e["itemInSession"], e["userId"], e["ts"]))
    return len(keys)


def test_the_rearranged_sample_has_late_plays_and_loads_the_samples_counts(configs, late_sample, query):
    log_data, moved = late_sample
    assert moved > 50
    assert query("SELECT COUNT(*) FROM songplays", db="late_full") == [(6820,)] == [(plays_in_files(log_data),)]
    counts = {table: query(f"SELECT COUNT(*) FROM {table}", db="late_full")[0][0] for table in STAR_KEYS}
    assert counts == {"songplays": 6820, "users": 97, "songs": 1943, "artists": 1809, "time": 6813}


def test_a_reload_of_a_day_keeps_the_late_plays_the_next_days_file_brought(configs, query):
    daily, _ = configs
    day = date(2018, 11, 14)
    run("--config", str(daily), "--date", (day + timedelta(days=1)).isoformat(), "--songs")
    late_plays = query(
        "SELECT COUNT(*) FROM songplays WHERE start_time < %s", (day + timedelta(days=1),), db="late_daily"
    )[0][0]
    assert late_plays > 0
    run("--config", str(daily), "--date", day.isoformat())
    assert query(
        "SELECT COUNT(*) FROM songplays WHERE start_time >= %s AND start_time < %s",
        (datetime.combine(day, datetime.min.time()) + timedelta(hours=23), day + timedelta(days=1)),
        db="late_daily",
    ) == [(late_plays,)]


def test_thirty_days_in_any_order_then_any_reload_equal_one_full_load(configs, query):
    daily, _ = configs
    days = DAYS[:]
    random.Random(21).shuffle(days)
    run("--config", str(daily), "--date", days[0].isoformat(), "--songs")
    for day in days[1:]:
        run("--config", str(daily), "--date", day.isoformat())
    expected = star(query, "late_full")
    assert star(query, "late_daily") == expected
    for day in random.Random(22).sample(DAYS, 3):
        run("--config", str(daily), "--date", day.isoformat())
        assert star(query, "late_daily") == expected


def test_a_warehouse_from_before_loaded_events_says_in_one_line_how_to_upgrade(configs, query):
    daily, _ = configs
    run("--config", str(daily))
    with psycopg2.connect(**{**server.connect_params(load_settings(daily).local), "dbname": "late_daily"}) as conn:
        conn.cursor().execute("DROP TABLE loaded_events")
    result = run_script("etl.py", daily, "--date", "2018-11-15")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        'error: the warehouse lacks a table (relation "loaded_events" does not exist: made by an older version, '
        "or never created); run python create_tables.py, then a full load with python etl.py"
    ]
    assert query("SELECT COUNT(*) FROM songplays", db="late_daily") == [(6820,)]


# Property: any sequence of daily loads, reloads and file changes, with every file loaded last in its
# final state, gives the star of one full load of the final files.

FEW_DAYS = DAYS[:3]
SONGS = [("Song A", "Artist A", 200.0), ("Song B", "Artist B", 180.5)]


@st.composite
def event_sets(draw) -> dict[date, list[dict]]:
    """Events of three days; some late (in the next day's file), some also in another file. Each file
    starts with a play of its own day that is never dropped, so every star table has rows."""
    files: dict[date, list[dict]] = {
        day: [
            {
                "ts": int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000) + 3_600_000,
                "sessionId": 9,
                "itemInSession": i,
                "userId": "9",
                "level": "free",
                "page": "NextSong",
                "song": SONGS[0][0],
                "artist": SONGS[0][1],
                "length": SONGS[0][2],
            }
        ]
        for i, day in enumerate(FEW_DAYS)
    }
    for n in range(draw(st.integers(3, 14))):
        day_index = draw(st.integers(0, len(FEW_DAYS) - 1))
        late = draw(st.booleans()) and day_index + 1 < len(FEW_DAYS)
        midnight = datetime.combine(FEW_DAYS[day_index] + timedelta(days=1), datetime.min.time(), UTC)
        minutes_before = draw(st.integers(1, 10)) if late else draw(st.integers(120, 1400))
        song = draw(st.sampled_from([*SONGS, None]))
        event = {
            "ts": int(midnight.timestamp() * 1000) - minutes_before * 60_000,
            "sessionId": draw(st.integers(1, 3)),
            "itemInSession": n,
            "userId": str(draw(st.integers(1, 4))),
            "firstName": draw(st.sampled_from(["Ann", "Ann ", "Bo"])),
            "level": draw(st.sampled_from(["free", "paid"])),
            "page": "NextSong" if song else "Home",
            "song": song and song[0],
            "artist": song and song[1],
            "length": song and song[2],
        }
        files[FEW_DAYS[day_index + 1 if late else day_index]].append(event)
        if draw(st.integers(0, 4)) == 0:  # re-delivered in another day's file
            files[draw(st.sampled_from(FEW_DAYS))].append(dict(event))
    return files


steps = st.lists(
    st.tuples(st.sampled_from(["load", "load", "drop an event", "change a level"]), st.sampled_from(FEW_DAYS)),
    max_size=8,
)


@pytest.fixture(scope="module")
def property_dirs(tmp_path_factory, base_config):
    root = tmp_path_factory.mktemp("property")
    songs = root / "song_data"
    for i, (title, artist, duration) in enumerate(SONGS):
        (songs / f"{i}").mkdir(parents=True)
        song = {"song_id": f"SO{i}", "title": title, "artist_id": f"AR{i}", "artist_name": artist, "duration": duration}
        (songs / f"{i}" / "song.json").write_text(json.dumps(song))
    log_data = root / "log_data"
    common = {**base_config, ("LOCAL", "LOG_DATA"): str(log_data), ("LOCAL", "SONG_DATA"): str(songs)}
    daily = write_config(root / "daily.cfg", {**common, ("LOCAL", "DB_NAME"): "property_daily"})
    full = write_config(root / "full.cfg", {**common, ("LOCAL", "DB_NAME"): "property_full"})
    return log_data, daily, full


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=event_sets(), sequence=steps, seed=st.integers(0, 1000))
def test_any_sequence_of_loads_reloads_and_changes_equals_a_full_load_of_the_final_files(
    property_dirs, query, files, sequence, seed
):
    log_data, daily, full = property_dirs
    shutil.rmtree(log_data, ignore_errors=True)
    for day, events in files.items():
        write_day(log_data, day, events)
    fresh(daily)
    loaded: dict[date, str] = {}  # what each day's file held when it was last loaded
    rng = random.Random(seed)

    def load(day: date) -> None:
        run("--config", str(daily), "--date", day.isoformat(), *([] if loaded else ["--songs"]))
        loaded[day] = day_file(log_data, day).read_text()

    for action, day in sequence:
        events = files[day]
        if action == "load":
            load(day)
        elif action == "drop an event" and len(events) > 1:
            events.pop(rng.randrange(1, len(events)))
        elif action == "change a level" and events:
            event = events[rng.randrange(len(events))]
            event["level"] = "paid" if event["level"] == "free" else "free"
        write_day(log_data, day, events)
    for day in FEW_DAYS:  # every file loaded last in its current state
        if loaded.get(day) != day_file(log_data, day).read_text():
            load(day)

    run("--config", str(fresh(full)))
    assert star(query, "property_daily") == star(query, "property_full")
