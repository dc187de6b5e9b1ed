"""bench/generate.py: deterministic by seed, shaped like the real sample, and loaded by the real
pipeline into exactly the counts it reports."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re

import pytest
from helpers import ROOT, SAMPLE, load_with_scripts

_spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

DB = "bench_generate"  # a database of its own: the sample's tables stay as other tests expect


def digest(folder) -> str:
    """One hash over every file's relative path and bytes."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated") / "udacity-dend"
    summary = generate.generate(out, events=20_000, songs=500, seed=7)
    return out, summary


def test_same_seed_gives_identical_bytes(tmp_path):
    first = generate.generate(tmp_path / "a", events=3_000, songs=200, seed=11)
    second = generate.generate(tmp_path / "b", events=3_000, songs=200, seed=11)
    assert first == second
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_different_seed_gives_different_data(tmp_path):
    generate.generate(tmp_path / "a", events=3_000, songs=200, seed=11)
    generate.generate(tmp_path / "b", events=3_000, songs=200, seed=12)
    for part in ("log_data", "song_data"):
        assert digest(tmp_path / "a" / part) != digest(tmp_path / "b" / part)


def test_refuses_to_overwrite_without_force(tmp_path):
    generate.generate(tmp_path / "a", events=10, songs=1, seed=1)
    with pytest.raises(FileExistsError):
        generate.generate(tmp_path / "a", events=10, songs=1, seed=1)
    assert generate.generate(tmp_path / "a", events=20, songs=1, seed=1, force=True)["events"] == 20


def test_layout_is_that_of_the_bucket(sample):
    out, summary = sample
    logs = sorted(out.glob("log_data/*/*/*"))
    assert len(logs) == summary["log_files"] == 30
    assert all(
        re.fullmatch(r"(\d{4})/(\d\d)/\1-\2-\d\d-events\.json", str(p.relative_to(out / "log_data"))) for p in logs
    )
    songs = sorted(out.glob("song_data/*/*/*/*.json"))
    assert len(songs) == summary["song_files"] == 500
    for path in songs:
        a, b, c = path.parent.relative_to(out / "song_data").parts
        assert re.fullmatch(r"TR[A-Z]{5}[0-9A-Z]{11}", path.stem) and path.stem[2:5] == a + b + c
    assert (out / "log_json_path.json").read_bytes() == (SAMPLE / "log_json_path.json").read_bytes()


def test_events_keep_the_quirks_of_the_real_logs(sample):
    out, summary = sample
    raw = [p.read_bytes() for p in sorted(out.glob("log_data/**/*.json"))]
    assert not any(data.endswith(b"\n") for data in raw)  # no trailing newline
    text = b"\n".join(raw).decode("ascii")  # non-ASCII only as \uXXXX
    events = [json.loads(line) for line in text.split("\n")]
    assert len(events) == summary["events"] == 20_000
    keys = list(json.loads((SAMPLE / "log_data/2018/11/2018-11-01-events.json").read_text().split("\n")[0]))
    assert all(list(e) == keys for e in events)
    pages = {e["page"] for e in events}
    assert {"NextSong", "Home", "Login", "Logout", "Upgrade", "Submit Upgrade", "Error"} <= pages
    assert 0.80 < sum(e["page"] == "NextSong" for e in events) / len(events) < 0.90
    guests = [e for e in events if e["userId"] == ""]
    assert guests and all(
        e["auth"] == "Logged Out" and e["firstName"] is None and e["lastName"] is None for e in guests
    )
    assert all(type(e["ts"]) is int for e in events) and any(e["ts"] % 1000 for e in events)  # epoch ms
    assert all(type(e["registration"]) is float for e in events if e["userId"])
    assert '\\"Mozilla\\/5.0' in text  # escaped quotes and slashes in userAgent
    assert "\\u00c3\\u0083" in text  # mojibake: UTF-8 encoded twice
    levels = {}
    for e in events:
        if e["userId"]:
            levels.setdefault(e["userId"], set()).add(e["level"])
    assert any(len(v) == 2 for v in levels.values())  # levels change over time
    ts = [e["ts"] for e in events if e["page"] == "NextSong"]
    assert len(set(ts)) == summary["distinct_nextsong_ts"] < len(ts)  # some plays share a timestamp
    for data in raw:  # each day's file is sorted by time
        day_ts = [json.loads(line)["ts"] for line in data.split(b"\n")]
        assert day_ts == sorted(day_ts)


def test_songs_keep_the_quirks_of_the_real_files(sample):
    out, summary = sample
    raw = [p.read_bytes() for p in sorted(out.glob("song_data/**/*.json"))]
    assert not any(data.endswith(b"\n") for data in raw)
    pretty = [data for data in raw if b"\n" in data]
    assert len(pretty) == summary["pretty_song_files"] and 0 < len(pretty) < len(raw) / 5
    compact = [data for data in raw if b"\n" not in data]
    assert all(list(json.loads(d)) == sorted(json.loads(d)) for d in compact)  # sorted keys, as in S3
    text = b"".join(raw).decode("ascii")
    assert "\\u00" in text
    songs = [json.loads(data) for data in raw]
    assert any(type(s["artist_name"]) is int for s in songs)  # artist_name 112
    assert any(type(s["artist_location"]) is int for s in songs)  # artist_location 27
    assert any(s["year"] == 0 for s in songs) and any(s["year"] > 1900 for s in songs)
    assert any(s["artist_location"] == "" for s in songs)
    assert any(s["artist_latitude"] is None for s in songs) and any(s["artist_latitude"] for s in songs)
    assert any(s["title"] != s["title"].strip() for s in songs)
    assert len({s["song_id"] for s in songs}) == summary["songs"]
    assert len({s["artist_id"] for s in songs}) == summary["distinct_artist_ids"]


def test_generated_data_loads_to_the_counts_it_reports(sample, make_config, query):
    out, summary = sample
    config = make_config(
        {
            ("LOCAL", "DB_NAME"): DB,
            ("LOCAL", "LOG_DATA"): str(out / "log_data"),
            ("LOCAL", "SONG_DATA"): str(out / "song_data"),
            ("LOCAL", "LOG_JSONPATH"): str(out / "log_json_path.json"),
        }
    )
    load_with_scripts(config)

    def count(sql):
        return query(sql, db=DB)[0][0]

    assert count("SELECT COUNT(*) FROM staging_events") == summary["events"]
    assert count("SELECT COUNT(*) FROM staging_songs") == summary["songs"]
    assert count("SELECT COUNT(*) FROM songplays") == summary["nextsong_events"]
    assert count("SELECT COUNT(song_id) FROM songplays") == summary["expected_matched_plays"] > 0
    assert count("SELECT COUNT(*) FROM users") == summary["distinct_users"]
    assert count("SELECT COUNT(*) FROM users WHERE level = 'paid'") == summary["users_latest_paid"]
    assert count("SELECT COUNT(*) FROM songs") == summary["songs"]
    assert count("SELECT COUNT(*) FROM artists") == summary["distinct_artist_ids"]
    assert count("SELECT COUNT(*) FROM time") == summary["distinct_nextsong_ts"]
    assert count("SELECT COUNT(*) FROM staging_events WHERE user_id IS NULL") == summary["guest_events"]
    several = (
        "SELECT COUNT(*) FROM (SELECT artist_id FROM staging_songs GROUP BY 1 HAVING COUNT(DISTINCT artist_name) > 1) a"
    )
    assert count(several) == summary["artist_ids_with_several_names"]
    assert count("SELECT COUNT(*) FROM staging_songs WHERE artist_name ~ '^[0-9]+$'") > 0  # 112 loads as text
