#!/usr/bin/env python3
"""Generate Sparkify-shaped input data at any scale, deterministic by seed.

    python bench/generate.py OUT [--events 1000000] [--songs 100000] [--seed 42] [--force]

OUT is laid out as s3://udacity-dend is (and as data/udacity-dend/):

    OUT/log_data/YYYY/MM/YYYY-MM-DD-events.json   newline-delimited events, one file per day
    OUT/song_data/A/B/C/TRABC....json             one song object per file
    OUT/log_json_path.json                        copy of data/udacity-dend/log_json_path.json
    OUT/summary.json                              what a correct load of OUT must give

The data keeps the quirks of the real sample (data/README.md): guests with an empty userId and
null names, users whose level changes over time, NextSong events sharing a timestamp, escaped
quotes and slashes in userAgent, non-ASCII text written as \\uXXXX, mojibake (UTF-8 encoded twice)
in event names, numbers where strings are expected (artist_name 112, artist_location 27),
artist_ids spelled several ways, year 0, empty artist_location, null coordinates, compact and
pretty-printed song files, titles with leading or trailing spaces, no trailing newline.

A share of the NextSong events (--match-rate) copies title, artist name and duration exactly
from a generated song, so it matches in songplays; every other play has an odd number of
1e-5 s in its length while every song has an even number, so it can never match by accident.

It streams: songs are derived from (seed, index) and events are built one day at a time, so
memory stays flat whatever the scale (it grows with the users and the largest day only).
Same seed and parameters give identical bytes; summary.json holds no timing for that reason.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from bisect import bisect_right
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
JSONPATHS = ROOT / "data" / "udacity-dend" / "log_json_path.json"
FORMAT_VERSION = 1  # bump when the output for the same parameters changes (invalidates caches)

DAY_MS = 86_400_000
FIRST_DAY = date(2018, 11, 1)
EVENTS_PER_DAY_MAX = 10_000  # the default --days keeps each log file at most this long
ID_SPACE = 36**11  # ids end in 11 base-36 digits derived bijectively from the index
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# --------------------------------------------------------------------------------------------
# vocabulary

FIRST_F = [
    "Kaylee",
    "Lily",
    "Jacqueline",
    "Chloe",
    "Tegan",
    "Aleena",
    "Mohammad",
    "Jayden",
    "Sara",
    "Kate",
    "Ava",
    "Rylan",
    "Layla",
    "Stefany",
    "Anabelle",
    "Hannah",
    "Cecilia",
    "Harper",
    "Amiya",
    "Brooklyn",
    "Morris",
    "Madison",
    "Emily",
    "Olivia",
    "Zoe",
    "Sophie",
]
FIRST_M = [
    "Walter",
    "Ryan",
    "Aiden",
    "Jordan",
    "Jahiem",
    "Wyatt",
    "Matthew",
    "Kevin",
    "Alivia",
    "Jizelle",
    "Cienna",
    "Colm",
    "Sean",
    "Theodore",
    "Bronson",
    "Connar",
    "Elijah",
    "Logan",
    "Lucas",
    "Noah",
    "Oliver",
    "Ethan",
    "Mason",
    "Caleb",
    "Joseph",
    "Samuel",
]
LAST = [
    "Frye",
    "Summers",
    "Koch",
    "Lynch",
    "Cuevas",
    "Williams",
    "Smith",
    "Jones",
    "Brown",
    "Garrison",
    "Montgomery",
    "Santiago",
    "Harrell",
    "Robinson",
    "Jones",
    "Rodriguez",
    "Gomez",
    "Martinez",
    "Rosales",
    "Fox",
    "Clayton",
    "Hughes",
    "Moore",
    "Taylor",
    "Nguyen",
    "O'Brien",
    "Zimmerman",
    "Larson",
    "Carter",
    "Bell",
]
METROS = [
    "San Francisco-Oakland-Hayward, CA",
    "Phoenix-Mesa-Scottsdale, AZ",
    "Portland-South Portland, ME",
    "Lansing-East Lansing, MI",
    "Chicago-Naperville-Elgin, IL-IN-WI",
    "Atlanta-Sandy Springs-Roswell, GA",
    "Waterloo-Cedar Falls, IA",
    "Tampa-St. Petersburg-Clearwater, FL",
    "New York-Newark-Jersey City, NY-NJ-PA",
    "Houston-The Woodlands-Sugar Land, TX",
    "Los Angeles-Long Beach-Anaheim, CA",
    "Red Bluff, CA",
    "Birmingham-Hoover, AL",
    "Janesville-Beloit, WI",
    "Winston-Salem, NC",
    "Detroit-Warren-Dearborn, MI",
    "Marinette, WI-MI",
    "Chicago-Naperville-Elgin, IL-IN-WI",
    "Lake Havasu City-Kingman, AZ",
    "Santa Maria-Santa Barbara, CA",
    "Dallas-Fort Worth-Arlington, TX",
    "Washington-Arlington-Alexandria, DC-VA-MD-WV",
    "Seattle-Tacoma-Bellevue, WA",
    "Miami-Fort Lauderdale-West Palm Beach, FL",
    "Boston-Cambridge-Newton, MA-NH",
]
USER_AGENTS = [
    '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) '
    'Chrome/36.0.1985.143 Safari/537.36"',
    '"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/35.0.1916.153 Safari/537.36"',
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.78.2 (KHTML, like Gecko) '
    'Version/7.0.6 Safari/537.78.2"',
    '"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu Chromium/36.0.1985.125 '
    'Chrome/36.0.1985.125 Safari/537.36"',
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; WOW64; Trident/6.0)",
    '"Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) '
    'Version/7.0 Mobile/11D257 Safari/9537.53"',
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:31.0) Gecko/20100101 Firefox/31.0",
    '"Mozilla/5.0 (Windows NT 6.3; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36"',
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
]
TITLE_WORDS = [
    "Love",
    "Night",
    "Heart",
    "Fire",
    "Dream",
    "Rain",
    "Home",
    "Time",
    "Girl",
    "Boy",
    "Song",
    "Blue",
    "Gone",
    "Light",
    "Road",
    "Summer",
    "Dance",
    "Money",
    "Sweet",
    "Angel",
    "Ghost",
    "River",
    "Stars",
    "Kiss",
    "Falling",
    "Golden",
    "Wild",
    "Broken",
    "Midnight",
    "Paradise",
    "Secret",
    "Fever",
    "Shadow",
    "Electric",
    "Silver",
    "Heaven",
    "Crazy",
    "Little",
    "Lonely",
    "Yesterday",
    "Tomorrow",
    "Forever",
    "City",
    "Ocean",
    "Way",
    "Hold",
    "Run",
    "Stay",
    "Everything",
    "Nothing",
    "You're",
    "Don't",
    "I'm",
    "It's",
    "Can't",
    "Who's",
    "We",
    "Me",
    "You",
    "My",
    "The",
    "In",
    "Of",
    "On",
    "To",
]
TITLE_SUFFIXES = [
    " (Album Version)",
    " (Live)",
    " (Remix)",
    " (Radio Edit)",
    " (LP Version)",
    " (2006 Digital Remaster)",
    " [Explicit]",
    " - Original Mix",
    " (Acoustic)",
]
NON_ASCII_WORDS = [
    "Björk",
    "Röyksopp",
    "Café",
    "Tacuba",
    "Sigur",
    "Rós",
    "Motörhead",
    "Beyoncé",
    "Mötley",
    "Crüe",
    "Zoé",
    "Maná",
    "Niño",
    "Soldado",
    "São",
    "Paulo",
    "Belém",
    "Représente",
    "Sincérité",
    "Jalousie",
    "Koité",
    "Société",
    "Dvořák",
    "Ørsted",
    "Mañana",
    "Corazón",
    "Canción",
    "Été",
    "Señor",
    "Straße",
    "Über",
    "Ça",
    "Déjà",
    "Monóico",
    "astronómico",
    "Bandabardò",
    "réputation",
    "Mafuá",
    "Leftöver",
    "Jóga",
    "Hyperballad",
    "Ñu",
    "坂本龍一",
    "東京",
    "Ελλάδα",
    "Москва",
]
BAND_WORDS = [
    "Crack",
    "Kings",
    "Lions",
    "Electric",
    "Brothers",
    "Sisters",
    "Project",
    "Machine",
    "Orchestra",
    "Band",
    "Boys",
    "Girls",
    "Collective",
    "Society",
    "Club",
    "Theory",
    "Experience",
    "Union",
    "Empire",
    "Riot",
    "Noise",
    "Conspiracy",
    "Way",
    "Trio",
]
ARTIST_LOCATIONS = [
    ("London, England", 51.50632, -0.12714),
    ("Los Angeles, CA", 34.05349, -118.24532),
    ("New York, NY", 40.71455, -74.00712),
    ("California - LA", None, None),
    ("Chicago, IL", 41.88415, -87.63241),
    ("Detroit, MI", 42.33168, -83.04792),
    ("NY - New York City", 40.71455, -74.00712),
    ("Memphis, TN", 35.14968, -90.04892),
    ("San Francisco, CA", 37.77916, -122.42005),
    ("Paris, France", 48.85692, 2.34121),
    ("Berlin, Germany", 52.51607, 13.37698),
    ("Reykjavík, Iceland", 64.13512, -21.89521),
    ("Kingston, Jamaica", 17.99702, -76.79358),
    ("Rio de Janeiro, Brazil", -22.9765, -43.19556),
    ("Seattle, WA", 47.60356, -122.32944),
    ("Atlanta, GA", 33.74831, -84.39111),
    ("Texas", 31.1689, -100.07715),
    ("UK", None, None),
    ("Sweden", 59.33217, 18.06423),
    ("Montréal, Québec, Canada", 45.51228, -73.55439),
    ("Tokyo, Japan", 35.68364, 139.68082),
]
INT_NAMES = [112, 311, 702, 2002, 98]
INT_LOCATIONS = [27, 1, 13]
LONG_LOCATION = (
    "Somewhere between the Appalachian foothills and the Atlantic coast, touring out of a "
    "van that was registered in one county, insured in another and parked most nights "
    "behind a diner in a third, which the band insists is their spiritual and legal "
    "home, according to the liner notes of every album they ever self-released"
)

# Pages of logged-in events, weighted as in the sample (Login belongs to guests there).
USER_PAGES = [
    ("NextSong", "PUT", 200, 6820),
    ("Home", "GET", 200, 635),
    ("Downgrade", "GET", 200, 60),
    ("Settings", "GET", 200, 56),
    ("Help", "GET", 200, 38),
    ("About", "GET", 200, 22),
    ("Upgrade", "GET", 200, 21),
    ("Save Settings", "PUT", 307, 10),
    ("Error", "GET", 404, 9),
    ("Submit Upgrade", "PUT", 307, 8),
    ("Submit Downgrade", "PUT", 307, 1),
]
GUEST_BROWSE = [("Home", "GET", 200, 171), ("About", "GET", 200, 14), ("Help", "GET", 200, 9)]
LOGIN = ("Login", "PUT", 307)
LOGOUT = ("Logout", "PUT", 307)
GUEST_HOME = ("Home", "GET", 200)
NOT_A_PLAY, UNMATCHED, MATCHED = 0, 1, 2  # field 10 of an event tuple


# --------------------------------------------------------------------------------------------
# helpers


def not_a_play(
    offset: int, sid: int, item: int, template: Any, method: str, page: str, status: int, user: Any
) -> tuple:
    """An event tuple (see EventWriter._session) of a page that plays nothing: no artist, length or song."""
    return (offset, sid, item, template, "null", "null", method, page, "null", status, NOT_A_PLAY, user)


def js(value) -> str:
    """JSON as the sources write it: \\uXXXX for non-ASCII, escaped slashes, compact."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/")


def mojibake(text: str) -> str:
    """UTF-8 encoded twice, as the log files spell non-ASCII names (Björk -> BjÃ\\x83Â¶rk)."""
    for _ in range(2):
        text = text.encode("utf-8").decode("latin-1")
    return text


def base36(number: int, width: int = 11) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 36)
        digits.append(ALNUM[digit])
    return "".join(reversed(digits))


def bijective_id(prefix: str, rng: random.Random, index: int, salt: int) -> str:
    """prefix + 5 random characters + 11 base-36 digits that are unique per index."""
    # 0x9E3779B97F4A7C15 is odd and not a multiple of 3, so coprime with 36**11: a bijection.
    mixed = (index * 0x9E3779B97F4A7C15 + salt) % ID_SPACE
    return prefix + "".join(rng.choice(UPPER) for _ in range(5)) + base36(mixed)


def cumulative(weights) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def title_text(rng: random.Random, non_ascii: float) -> str:
    words = [rng.choice(TITLE_WORDS) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))]
    if rng.random() < non_ascii:
        words[rng.randrange(len(words))] = rng.choice(NON_ASCII_WORDS)
    title = " ".join(words)
    roll = rng.random()
    if roll < 0.08:
        title += rng.choice(TITLE_SUFFIXES)
    elif roll < 0.10:
        title = f'"{title}"'  # quotes inside the value: escaped in JSON
    elif roll < 0.11:
        title = f"{title} / {rng.choice(TITLE_WORDS)}"  # a slash: written as \/
    return title


def artist_text(rng: random.Random, non_ascii: float) -> str:
    kind = rng.random()
    if kind < 0.45:
        name = f"{rng.choice(FIRST_F + FIRST_M)} {rng.choice(LAST)}"
    elif kind < 0.85:
        name = f"The {rng.choice(TITLE_WORDS)} {rng.choice(BAND_WORDS)}"
        if rng.random() < 0.4:
            name = name[4:]
    elif kind < 0.95:
        name = f"{rng.choice(LAST)} featuring {rng.choice(FIRST_F + FIRST_M)} {rng.choice(LAST)}"
    else:
        name = f"{rng.choice(LAST)} / {rng.choice(LAST)}"
    if rng.random() < non_ascii:
        name = f"{rng.choice(NON_ASCII_WORDS)} {rng.choice(BAND_WORDS)}"
    return name


# --------------------------------------------------------------------------------------------
# songs: every song and artist is a function of (seed, index)


class Catalog:
    """The generated songs and artists, each derived from (seed, index) without state."""

    def __init__(self, seed: int, songs: int):
        self.seed = seed
        self.songs = songs
        self.artists = max(1, round(songs * 0.93)) if songs else 0  # 1,809 artists for 1,943 songs
        salts = random.Random(f"{seed}/salts")
        self.song_salt, self.artist_salt, self.track_salt = (salts.randrange(ID_SPACE) for _ in range(3))

    def artist(self, j: int) -> dict:
        rng = random.Random(f"{self.seed}/artist/{j}")
        name: str | int = artist_text(rng, 0.06)
        # The rare quirks sit at fixed indexes, so that even a small data set has each of them.
        if j % 1000 == 7:
            name = rng.choice(INT_NAMES)  # a number where a string is expected (the band 112)
        alt = None
        if isinstance(name, str) and rng.random() < 0.15:  # several spellings of one artist
            alt = rng.choice([f"The {name}", name.replace(" ", "_ ", 1), name.upper(), f"{name} & Friends"])
            if alt == name:
                alt = name + " Band"
        roll = rng.random()
        location: str | int
        lat: float | None
        lon: float | None
        if j % 1000 == 17:
            location, lat, lon = rng.choice(INT_LOCATIONS), None, None
        elif j % 10000 == 27:
            location, lat, lon = LONG_LOCATION, None, None  # longer than 256 characters
        elif roll < 0.45:
            location, lat, lon = "", None, None
        else:
            location, lat, lon = rng.choice(ARTIST_LOCATIONS)
            if rng.random() < 0.4:
                lat = lon = None
        return {
            "id": bijective_id("AR", rng, j, self.artist_salt),
            "name": name,
            "alt": alt,
            "location": location,
            "lat": lat,
            "lon": lon,
        }

    def song(self, i: int) -> tuple[str, dict, bool, bool]:
        """(track id, song object, pretty-printed?, uses an alternate artist name?)"""
        rng = random.Random(f"{self.seed}/song/{i}")
        # The first `artists` songs each introduce their artist; the rest reuse a random one.
        j = i if i < self.artists else rng.randrange(self.artists)
        artist = self.artist(j)
        name, location, alt_used = artist["name"], artist["location"], False
        if i >= self.artists and artist["alt"] and rng.random() < 0.5:
            name, alt_used = artist["alt"], True
        title = title_text(rng, 0.05)
        if i % 300 == 150:
            title = rng.choice((" " + title, title + " "))  # leading or trailing space
        duration = 2 * rng.randrange(750_000, 30_000_000) / 100_000  # even count of 1e-5 s
        if rng.random() < 0.02:
            duration = 2 * rng.randrange(30_000_000, 130_000_000) / 100_000
        year = 0 if rng.random() < 0.30 else rng.choice(range(1955, 2011))
        track = (
            "TR"
            + "".join(rng.choice(UPPER) for _ in range(5))
            + base36((i * 0x9E3779B97F4A7C15 + self.track_salt) % ID_SPACE)
        )
        song = {
            "artist_id": artist["id"],
            "artist_latitude": artist["lat"],
            "artist_location": location,
            "artist_longitude": artist["lon"],
            "artist_name": name,
            "duration": duration,
            "num_songs": 1,
            "song_id": bijective_id("SO", rng, i, self.song_salt),
            "title": title,
            "year": year,
        }
        return track, song, rng.random() < self._pretty_share, alt_used

    _pretty_share = 0.05


PRETTY_ORDER = [
    "num_songs",
    "artist_id",
    "artist_latitude",
    "artist_longitude",
    "artist_location",
    "artist_name",
    "song_id",
    "title",
    "duration",
    "year",
]


def song_file_bytes(song: dict, pretty: bool) -> bytes:
    if pretty:  # the workspace sample's style: indented, another key order
        return json.dumps({k: song[k] for k in PRETTY_ORDER}, indent=4).encode("ascii")
    return json.dumps(song, separators=(",", ":")).replace("/", "\\/").encode("ascii")


def write_songs(out: Path, catalog: Catalog, reservoir_size: int) -> tuple[dict, list]:
    """Write the song files; return (stats, a sample of songs that plays can match)."""
    stride = max(1, catalog.songs // max(1, reservoir_size))
    reservoir: list[tuple[str, str, str]] = []  # (artist, song, length) as a play writes them
    made_dirs: set[Path] = set()
    several_names: set[str] = set()
    stats = {"song_files": 0, "pretty_song_files": 0, "song_bytes": 0}
    for i in range(catalog.songs):
        track, song, pretty, alt_used = catalog.song(i)
        folder = out / "song_data" / track[2] / track[3] / track[4]
        if folder not in made_dirs:
            folder.mkdir(parents=True, exist_ok=True)
            made_dirs.add(folder)
        data = song_file_bytes(song, pretty)
        with open(folder / f"{track}.json", "wb") as handle:
            handle.write(data)
        stats["song_files"] += 1
        stats["pretty_song_files"] += pretty
        stats["song_bytes"] += len(data)
        if alt_used:
            several_names.add(song["artist_id"])
        if i % stride == 0 and len(reservoir) < reservoir_size:
            reservoir.append((js(str(song["artist_name"])), js(song["title"]), repr(song["duration"])))
    stats["artist_ids_with_several_names"] = len(several_names)
    return stats, reservoir


# --------------------------------------------------------------------------------------------
# events


class User:
    __slots__ = ("id", "level", "templates", "weight")

    def __init__(self, rng: random.Random, number: int, start_ms: int):
        gender = rng.choice("FM")
        first = rng.choice(FIRST_F if gender == "F" else FIRST_M)
        last = rng.choice(LAST)
        location = rng.choice(METROS)
        agent = rng.choice(USER_AGENTS)
        registration = start_ms - rng.randrange(0, 120 * DAY_MS)
        self.id = number
        self.level = "paid" if rng.random() < 0.35 else "free"
        parts = {
            "first": js(first),
            "last": js(last),
            "gender": js(gender),
            "location": js(location),
            "agent": js(agent),
            "registration": f"{registration}.0",
            "id": js(str(number)),
        }
        self.templates = {level: _user_template(parts, level) for level in ("free", "paid")}


# Arguments of every template, in key order: artist, itemInSession, length, method, page,
# sessionId, song, status, ts. Keys are sorted as in the real files.
def _user_template(p: dict, level: str) -> str:
    t = (
        '{"artist":%s,"auth":"Logged In","firstName":FIRST,"gender":GENDER,"itemInSession":%d,'
        '"lastName":LAST,"length":%s,"level":"LEVEL","location":LOCATION,"method":"%s","page":"%s",'
        '"registration":REGISTRATION,"sessionId":%d,"song":%s,"status":%d,"ts":%d,"userAgent":AGENT,"userId":ID}'
    )
    for key, value in (
        ("FIRST", p["first"]),
        ("GENDER", p["gender"]),
        ("LAST", p["last"]),
        ("LEVEL", level),
        ("LOCATION", p["location"]),
        ("REGISTRATION", p["registration"]),
        ("AGENT", p["agent"]),
        ("ID", p["id"]),
    ):
        t = t.replace(key, value.replace("%", "%%"), 1)
    return t


GUEST_TEMPLATES = {
    level: (
        '{"artist":%s,"auth":"Logged Out","firstName":null,"gender":null,"itemInSession":%d,'
        '"lastName":null,"length":%s,"level":"' + level + '","location":null,"method":"%s","page":"%s",'
        '"registration":null,"sessionId":%d,"song":%s,"status":%d,"ts":%d,"userAgent":null,"userId":""}'
    )
    for level in ("free", "paid")
}


def play_catalog(seed: int, size: int) -> list[tuple[str, str, str]]:
    """Songs that plays refer to but no song file holds: (artist, song, length) as JSON text.

    Non-ASCII names are mojibake, as in the log files; lengths are an odd count of 1e-5 s.
    """
    rng = random.Random(f"{seed}/plays")
    out = []
    for _ in range(size):
        artist = artist_text(rng, 0.05)
        title = title_text(rng, 0.04)
        if rng.random() < 0.003:
            title = title + " "
        if not artist.isascii():
            artist = mojibake(artist)
        if not title.isascii():
            title = mojibake(title)
        length = (2 * rng.randrange(750_000, 30_000_000) + 1) / 100_000
        out.append((js(artist), js(title), repr(length)))
    return out


class EventWriter:
    def __init__(
        self,
        out: Path,
        seed: int,
        events: int,
        days: int,
        users: int,
        reservoir: list,
        match_rate: float,
        shared_ts_rate: float,
    ):
        self.out, self.events, self.days = out, events, days
        self.rng = random.Random(f"{seed}/events")
        self.match_rate = match_rate if reservoir else 0.0
        self.shared_ts_rate = shared_ts_rate
        self.reservoir = reservoir
        self.start_ms = int(datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC).timestamp() * 1000)
        user_rng = random.Random(f"{seed}/users")
        self.users = [User(user_rng, n + 1, self.start_ms) for n in range(users)]
        self.plays = play_catalog(seed, min(50_000, max(1_000, events // 20)))
        self.user_pages = USER_PAGES
        self.user_cum = cumulative(p[3] for p in USER_PAGES)
        self.guest_cum = cumulative(p[3] for p in GUEST_BROWSE)
        self.session_id = 0
        self.latest: dict[int, tuple] = {}  # user -> (ts, session, item, level) of the latest event
        self.stats = {
            "events": 0,
            "nextsong_events": 0,
            "guest_events": 0,
            "expected_matched_plays": 0,
            "distinct_nextsong_ts": 0,
            "shared_nextsong_ts_events": 0,
            "log_files": 0,
            "log_bytes": 0,
            "level_changes": 0,
        }

    # -- one session -----------------------------------------------------------------------

    def _session(self, budget: int) -> list[tuple]:
        """Events of one session as (offset_ms, session, item, template, artist, length, method,
        page, song, status, nextsong?, user or None), offsets from the session start."""
        rng = self.rng
        self.session_id += 1
        sid = self.session_id
        users = self.users
        out: list[tuple[Any, ...]] = []
        offset = 0
        item = 0
        roll = rng.random()
        if roll < 0.015:  # a guest who only browses
            level = rng.choice(("free", "paid"))
            template = GUEST_TEMPLATES[level]
            for _ in range(min(budget, 1 + int(rng.expovariate(1.0)))):
                page, method, status, _w = GUEST_BROWSE[_pick(rng, self.guest_cum)]
                out.append(not_a_play(offset, sid, item, template, method, page, status, None))
                item += 1
                offset += rng.randrange(1_000, 90_000)
            return out
        user = users[int(len(users) * rng.random() ** 2)]  # some users are far more active
        if roll < 0.115:  # logs in first: Home and Login as a guest, same session
            template = GUEST_TEMPLATES[user.level]
            for page, method, status in (GUEST_HOME, LOGIN)[:budget]:
                out.append(not_a_play(offset, sid, item, template, method, page, status, None))
                item += 1
                offset += rng.randrange(0, 30_000)
        length = min(250, 1 + int(rng.expovariate(1 / 8.0)))
        reservoir, plays, match_rate = self.reservoir, self.plays, self.match_rate
        n_plays = len(plays)
        pages, cum = self.user_pages, self.user_cum
        total = cum[-1]
        for _ in range(length):
            if len(out) >= budget or offset >= DAY_MS:
                break
            r = rng.random() * total
            k = 0 if r < cum[0] else bisect_right(cum, r)
            page, method, status, _w = pages[k]
            template = user.templates[user.level]
            if k == 0:
                if rng.random() < match_rate:
                    artist, song, length_text = reservoir[rng.randrange(len(reservoir))]
                    play = MATCHED
                else:
                    artist, song, length_text = plays[int(n_plays * rng.random() ** 3)]
                    play = UNMATCHED
                out.append((offset, sid, item, template, artist, length_text, method, page, song, status, play, user))
                offset += int(float(length_text) * 1000) + rng.randrange(-2_000, 2_000)
                offset = max(offset, out[-1][0] + 1)
            else:
                if page in ("Submit Upgrade", "Submit Downgrade"):
                    page = "Submit Upgrade" if user.level == "free" else "Submit Downgrade"
                out.append(not_a_play(offset, sid, item, template, method, page, status, user))
                if page.startswith("Submit "):
                    user.level = "paid" if user.level == "free" else "free"
                    self.stats["level_changes"] += 1
                # Home and the next song often share a timestamp, as in the sample.
                offset += 0 if rng.random() < 0.5 else rng.randrange(1_000, 60_000)
            item += 1
        if out and len(out) < budget and offset < DAY_MS and rng.random() < 0.1:
            page, method, status = LOGOUT
            out.append(not_a_play(offset, sid, item, user.templates[user.level], method, page, status, user))
            item += 1
            offset += rng.randrange(1_000, 30_000)
            if len(out) < budget and rng.random() < 0.5:  # back on the home page, logged out
                page, method, status = GUEST_HOME
                out.append(not_a_play(offset, sid, item, GUEST_TEMPLATES[user.level], method, page, status, None))
        return [e for e in out if e[0] < DAY_MS]

    # -- one day ----------------------------------------------------------------------------

    def _day(self, day: int, budget: int) -> list[str]:
        rng = self.rng
        day_start = self.start_ms + day * DAY_MS
        rows: list[list[Any]] = []
        while len(rows) < budget:
            session = self._session(budget - len(rows))
            if not session:
                continue
            span = session[-1][0]
            start = day_start + rng.randrange(max(1, DAY_MS - span))
            rows.extend([start + e[0], *e[1:]] for e in session)
        rows.sort()  # by ts, session, item: (session, item) is unique, so nothing further is compared
        # Two NextSong events of different sessions next to each other share a timestamp
        # now and then (the sample has 7 such pairs); the file stays sorted.
        for a, b in pairwise(rows):
            if b[10] and a[10] and a[1] != b[1] and rng.random() < self.shared_ts_rate:
                b[0] = a[0]
                self.stats["shared_nextsong_ts_events"] += 1
        stats, latest = self.stats, self.latest
        nextsong_ts = set()
        nextsong = matched = 0
        lines = []
        for ts, sid, item, template, artist, length, method, page, song, status, is_play, user in rows:
            lines.append(template % (artist, item, length, method, page, sid, song, status, ts))
            if is_play:
                nextsong_ts.add(ts)
                nextsong += 1
                matched += is_play == MATCHED
            if user is None:
                stats["guest_events"] += 1
            else:
                key = (ts, sid, item)
                seen = latest.get(user.id)
                if seen is None or key > seen[0]:
                    latest[user.id] = (key, '"level":"paid"' in template)
        stats["nextsong_events"] += nextsong
        stats["expected_matched_plays"] += matched
        stats["distinct_nextsong_ts"] += len(nextsong_ts)
        stats["events"] += len(lines)
        return lines

    def write(self) -> dict:
        for day in range(self.days):
            budget = self.events * (day + 1) // self.days - self.events * day // self.days
            if budget <= 0:
                continue
            lines = self._day(day, budget)
            when = FIRST_DAY + timedelta(days=day)
            folder = self.out / "log_data" / f"{when:%Y}" / f"{when:%m}"
            folder.mkdir(parents=True, exist_ok=True)
            data = "\n".join(lines).encode("ascii")
            (folder / f"{when:%Y-%m-%d}-events.json").write_bytes(data)
            self.stats["log_files"] += 1
            self.stats["log_bytes"] += len(data)
        self.stats["distinct_users"] = len(self.latest)
        self.stats["users_latest_paid"] = sum(1 for _, paid in self.latest.values() if paid)
        return self.stats


def _pick(rng: random.Random, cum: list[float]) -> int:
    return bisect_right(cum, rng.random() * cum[-1])


# --------------------------------------------------------------------------------------------
# entry points


def default_days(events: int) -> int:
    """A month (as the sample) or more, so that no day holds more than EVENTS_PER_DAY_MAX."""
    return max(1, min(30, events), -(-events // EVENTS_PER_DAY_MAX))


def default_users(events: int) -> int:
    return max(10, min(50_000, events // 80))  # the sample: 97 users for 8,056 events


def generate(
    out,
    events: int,
    songs: int,
    seed: int = 42,
    days: int | None = None,
    users: int | None = None,
    match_rate: float = 0.01,
    shared_ts_rate: float = 0.001,
    pretty_share: float = 0.05,
    force: bool = False,
) -> dict:
    """Write the data set to `out` (via a temporary folder renamed into place); return the summary."""
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists; pass --force to replace it")
    days = days or default_days(events)
    users = users or default_users(events)
    params = {
        "events": events,
        "songs": songs,
        "seed": seed,
        "days": days,
        "users": users,
        "match_rate": match_rate,
        "shared_ts_rate": shared_ts_rate,
        "pretty_share": pretty_share,
    }
    if events < 0 or songs < 0 or days < 1 or users < 1:
        raise ValueError("events and songs must be >= 0, days and users >= 1")
    if not 0 <= match_rate <= 1 or not 0 <= shared_ts_rate <= 1 or not 0 <= pretty_share <= 1:
        raise ValueError("rates must be between 0 and 1")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        catalog = Catalog(seed, songs)
        catalog._pretty_share = pretty_share
        song_stats, reservoir = write_songs(tmp, catalog, reservoir_size=2_000)
        writer = EventWriter(tmp, seed, events, days, users, reservoir, match_rate, shared_ts_rate)
        event_stats = writer.write()
        shutil.copyfile(JSONPATHS, tmp / "log_json_path.json")
        summary = {
            "format_version": FORMAT_VERSION,
            "params": params,
            "events": event_stats["events"],
            "nextsong_events": event_stats["nextsong_events"],
            "guest_events": event_stats["guest_events"],
            "distinct_users": event_stats["distinct_users"],
            "users_latest_paid": event_stats["users_latest_paid"],
            "level_changes": event_stats["level_changes"],
            "songs": songs,
            "distinct_artist_ids": catalog.artists if songs else 0,
            "artist_ids_with_several_names": song_stats["artist_ids_with_several_names"],
            "expected_matched_plays": event_stats["expected_matched_plays"],
            "distinct_nextsong_ts": event_stats["distinct_nextsong_ts"],
            "shared_nextsong_ts_events": event_stats["shared_nextsong_ts_events"],
            "log_files": event_stats["log_files"],
            "log_bytes": event_stats["log_bytes"],
            "song_files": song_stats["song_files"],
            "pretty_song_files": song_stats["pretty_song_files"],
            "song_bytes": song_stats["song_bytes"],
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]),
    )
    parser.add_argument("out", type=Path, help="output folder (laid out as s3://udacity-dend)")
    parser.add_argument("--events", type=int, default=100_000, help="events in log_data (default 100,000)")
    parser.add_argument("--songs", type=int, default=10_000, help="song files in song_data (default 10,000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--days",
        type=int,
        help=f"log files, one per day from {FIRST_DAY} "
        f"(default: 30, or more so that a day holds at most {EVENTS_PER_DAY_MAX:,} events)",
    )
    parser.add_argument("--users", type=int, help="user pool (default events/80, 10 to 50,000)")
    parser.add_argument(
        "--match-rate",
        type=float,
        default=0.01,
        help="share of NextSong events that play a generated song (default 0.01)",
    )
    parser.add_argument(
        "--shared-ts-rate",
        type=float,
        default=0.001,
        help="chance that a play shares the timestamp of the play before it (default 0.001)",
    )
    parser.add_argument(
        "--pretty-share", type=float, default=0.05, help="share of song files written pretty-printed (default 0.05)"
    )
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        summary = generate(
            args.out,
            args.events,
            args.songs,
            args.seed,
            args.days,
            args.users,
            args.match_rate,
            args.shared_ts_rate,
            args.pretty_share,
            args.force,
        )
    except (FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    print(f"generated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
