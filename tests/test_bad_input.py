"""Bad input: a clear message naming what and where, a non-zero exit, and the previous data intact."""

import json
import logging
import shutil
import socket
import threading
import time

import pytest
from helpers import (
    EXPECTED_ROWS,
    FEW_SONGS,
    REDSHIFT,
    SAMPLE,
    create_tables_in,
    free_port,
    load_with_scripts,
    row_counts,
    run_script,
)

from dwh.errors import WarehouseError
from dwh.local import server
from dwh.redshift.warehouse import connect_with_retry

OTHER_DB = "bad_input_loaded"


@pytest.fixture
def previous(loaded_sample, query):
    """The sample, loaded and published; returns its row counts.

    The session's load is reused; it is loaded again only when an earlier test changed its row counts.
    """
    if row_counts(query) != EXPECTED_ROWS:
        load_with_scripts(loaded_sample)
    return row_counts(query)


@pytest.fixture
def logs(tmp_path):
    """A private copy of the sample's logs and the path of its last file, to break."""
    folder = tmp_path / "log_data"
    shutil.copytree(SAMPLE / "log_data", folder)
    return folder, sorted(folder.rglob("*.json"))[-1]


@pytest.fixture
def songs(tmp_path):
    """A copy of FEW_SONGS and the path of the first, to break: a broken file is named and stops the
    load whatever its company."""
    folder = tmp_path / "song_data"
    shutil.copytree(FEW_SONGS, folder / FEW_SONGS.relative_to(SAMPLE / "song_data"))
    return folder, sorted(folder.rglob("*.json"))[0]


def replace_line(path, number, old, new):
    lines = path.read_bytes().split(b"\n")
    assert old in lines[number - 1]
    lines[number - 1] = lines[number - 1].replace(old, new, 1)
    path.write_bytes(b"\n".join(lines))


def fails_cleanly(result, query, previous, *expected):
    assert result.returncode == 1, result.stdout + result.stderr
    for text in expected:
        assert text in result.stderr
    assert "Traceback" not in result.stderr
    assert row_counts(query) == previous


def test_bad_value_fails_naming_file_line_and_column_and_keeps_old_data(previous, logs, make_config, query):
    folder, last = logs
    replace_line(last, 3, b'"sessionId":', b'"sessionId":"abc","was":')
    result = run_script("etl.py", make_config({("LOCAL", "LOG_DATA"): str(folder)}, name="broken.cfg"))
    assert result.returncode == 1
    assert f"{last}, line 3, column session_id (integer): Invalid digit [code 1207], value 'abc'" in result.stderr
    assert row_counts(query) == previous


def test_truncated_file_fails_and_keeps_old_data(previous, songs, make_config, query):
    folder, _ = songs
    victim = sorted(folder.rglob("*.json"))[10]
    victim.write_text(victim.read_text()[:-20])
    result = run_script("etl.py", make_config({("LOCAL", "SONG_DATA"): str(folder)}, name="broken.cfg"))
    assert result.returncode == 1
    assert f"{victim}, line 1: Invalid JSON" in result.stderr and "[code 1216]" in result.stderr
    assert row_counts(query) == previous


def test_missing_prefix_fails_and_keeps_old_data(previous, tmp_path, make_config, query):
    result = run_script(
        "etl.py", make_config({("LOCAL", "LOG_DATA"): str(tmp_path / "nope" / "log_data")}, name="broken.cfg")
    )
    assert result.returncode == 1
    assert "matches no file" in result.stderr
    assert row_counts(query) == previous


def test_etl_before_create_tables_says_which_table_is_missing(make_config):
    config = make_config({("LOCAL", "DB_NAME"): "fresh_db"}, name="fresh.cfg")
    result = run_script("etl.py", config)
    assert result.returncode == 1
    assert "staging_events" in result.stderr and "does not exist" in result.stderr
    assert "run python create_tables.py, then a full load with python etl.py" in result.stderr


def test_string_longer_than_its_column(previous, logs, make_config, query):
    folder, last = logs
    lines = last.read_text().split("\n")
    event = json.loads(lines[1])
    event["artist"] = "x" * 1100
    lines[1] = json.dumps(event)
    last.write_text("\n".join(lines))
    result = run_script("etl.py", make_config({("LOCAL", "LOG_DATA"): str(folder)}))
    fails_cleanly(
        result,
        query,
        previous,
        f"{last}, line 2, column artist (character varying(1024))",
        "String length exceeds DDL length (1100 bytes > 1024) [code 1204]",
    )


def test_value_of_the_wrong_type(previous, logs, make_config, query):
    folder, last = logs
    replace_line(last, 4, b'"status":200', b'"status":"OK"')
    result = run_script("etl.py", make_config({("LOCAL", "LOG_DATA"): str(folder)}))
    fails_cleanly(
        result, query, previous, f"{last}, line 4, column status (integer): Invalid digit [code 1207], value 'OK'"
    )


def test_invalid_utf8_fails_unless_acceptinvchars_is_configured(previous, songs, make_config, query):
    folder, first = songs
    song = json.loads(first.read_text())
    first.write_bytes(first.read_bytes().replace(song["title"].encode(), b"Caf\xe9 " + song["title"].encode()))
    config = {("LOCAL", "SONG_DATA"): str(folder)}
    result = run_script("etl.py", make_config(config))
    fails_cleanly(result, query, previous, f"{first}, line 1, column title", "[code 1220]")
    accepting = make_config(
        {**config, ("LOAD", "ACCEPTINVCHARS"): "?", ("LOCAL", "DB_NAME"): OTHER_DB}, name="accept.cfg"
    )
    load_with_scripts(accepting)
    assert query("SELECT COUNT(*) FROM songs WHERE title = %s", ("Caf? " + song["title"],), db=OTHER_DB) == [(1,)]


def test_a_file_of_non_json_text(previous, songs, make_config, query):
    folder, _ = songs
    notes = folder / "A" / "NOTES.txt"
    notes.write_text("These are the song files.\n")
    result = run_script("etl.py", make_config({("LOCAL", "SONG_DATA"): str(folder)}))
    fails_cleanly(result, query, previous, f"{notes}, line 1: Invalid JSON", "[code 1216]")


def test_a_prefix_that_matches_nothing(previous, tmp_path, make_config, query):
    result = run_script("etl.py", make_config({("LOCAL", "SONG_DATA"): str(tmp_path / "song-data")}))
    fails_cleanly(result, query, previous, "song-data' matches no file")


def test_jsonpaths_file_with_the_wrong_number_of_paths(previous, tmp_path, make_config, query):
    paths = json.loads((SAMPLE / "log_json_path.json").read_text())
    paths["jsonpaths"].pop()
    short = tmp_path / "short_paths.json"
    short.write_text(json.dumps(paths))
    result = run_script("etl.py", make_config({("LOCAL", "LOG_JSONPATH"): str(short)}))
    fails_cleanly(result, query, previous, "short_paths.json has 17 paths but the load has 18 columns")


def test_maxerror_lets_bad_rows_through_and_reports_each(logs, make_config, query):
    """MAXERROR n lets at most n - 1 bad rows through, as Redshift's COPY (README, "Trustworthy loads")."""
    folder, last = logs
    replace_line(last, 4, b'"status":200', b'"status":"OK"')
    config = make_config(
        {("LOCAL", "LOG_DATA"): str(folder), ("LOAD", "MAXERROR"): "1", ("LOCAL", "DB_NAME"): OTHER_DB}
    )
    create_tables_in(config)
    result = run_script("etl.py", config)
    assert result.returncode == 1
    assert f"{last}, line 4, column status (integer): Invalid digit [code 1207]" in result.stderr
    assert "1 bad row(s), MAXERROR is 1 (at most 0 skipped)" in result.stderr
    assert query("SELECT COUNT(*) FROM staging_events", db=OTHER_DB) == [(0,)]
    config = make_config(
        {("LOCAL", "LOG_DATA"): str(folder), ("LOAD", "MAXERROR"): "2", ("LOCAL", "DB_NAME"): OTHER_DB}
    )
    result = run_script("etl.py", config)
    assert result.returncode == 0, result.stderr
    assert f"skipped a row (MAXERROR 2): {last}, line 4, column status" in result.stdout + result.stderr
    assert query("SELECT COUNT(*) FROM staging_events", db=OTHER_DB) == [(8056 - 1,)]


def test_unreadable_config(tmp_path):
    folder = tmp_path / "dwh.cfg"
    folder.mkdir()
    result = run_script("etl.py", folder)
    assert result.returncode == 2 and "dwh.cfg: cannot be read (IsADirectoryError)" in result.stderr


def test_incomplete_config(tmp_path):
    path = tmp_path / "dwh.cfg"
    path.write_text("[WAREHOUSE]\nTARGET = local\n[LOCAL]\nHOST = 127.0.0.1\nPORT = 5432\n")
    result = run_script("etl.py", path)
    assert result.returncode == 2 and "[LOCAL] DATA_DIR is missing" in result.stderr


@pytest.fixture
def silent_endpoint():
    """A loopback port that accepts connections and never answers, like a filtered cluster endpoint."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for sock in held:
        sock.close()
    listener.close()


def test_unreachable_host_is_retried_with_backoff_then_explained(caplog):
    """A refused connection is retried after 1 s, then 2 s (the waits injected, not slept), then explained."""
    delays = []
    with caplog.at_level(logging.WARNING, logger="dwh"), pytest.raises(WarehouseError) as caught:
        connect_with_retry(
            "Redshift at 127.0.0.1",
            sleep=delays.append,
            host="127.0.0.1",
            port=free_port(),  # nothing listens there: refused at once
            dbname="dev",
            user="awsuser",
            password=REDSHIFT[("CLUSTER", "DB_PASSWORD")],
            connect_timeout=1,
        )
    assert delays == [1, 2]
    message = str(caught.value)
    assert "cannot connect to Redshift at 127.0.0.1" in message
    assert "python iac_setup.py status" in message and "security group" in message
    assert REDSHIFT[("CLUSTER", "DB_PASSWORD")] not in message + caplog.text
    assert [record.getMessage().count("retrying") for record in caplog.records] == [1, 1]


def test_a_silent_endpoint_ends_each_attempt_at_connect_timeout(silent_endpoint):
    """A filtered endpoint never answers: the attempt ends after connect_timeout, then the retry waits
    (here the injected sleep records when, and ends the attempts). Without the timeout it would hang:
    the attempt runs in a thread the test stops waiting for."""
    started, waited = time.monotonic(), []

    class Waiting(Exception):
        """Not an OperationalError: no further attempt."""

    def sleep(seconds):
        waited.append(time.monotonic() - started)
        raise Waiting

    def attempt():
        with pytest.raises(Waiting):
            connect_with_retry(
                "Redshift at 127.0.0.1", sleep=sleep, host="127.0.0.1", port=silent_endpoint, connect_timeout=1
            )

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout=15)
    assert not thread.is_alive(), "the attempt did not end at connect_timeout"
    assert len(waited) == 1 and 0.9 <= waited[0] < 10


def test_missing_database_is_not_retried_and_the_script_says_what_to_check(make_config, local_server):
    config = make_config(
        {
            **REDSHIFT,
            ("CLUSTER", "HOST"): "127.0.0.1",
            ("CLUSTER", "DB_PORT"): str(local_server.port),
            ("CLUSTER", "DB_USER"): local_server.user,
            ("CLUSTER", "DB_NAME"): "no_such_database",
            ("CLUSTER", "SSLMODE"): "disable",
            ("CLUSTER", "DB_PASSWORD"): server.connect_params(local_server)["password"],
        }
    )
    result = run_script("etl.py", config)
    assert result.returncode == 1
    assert f"cannot connect to Redshift at 127.0.0.1:{local_server.port}/no_such_database" in result.stderr
    assert 'database "no_such_database" does not exist' in result.stderr
    assert "python iac_setup.py status" in result.stderr and "security group" in result.stderr
    assert "retrying" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_password_is_not_retried_and_not_shown(make_config, local_server):
    config = make_config(
        {
            **REDSHIFT,
            ("CLUSTER", "HOST"): "127.0.0.1",
            ("CLUSTER", "DB_PORT"): str(local_server.port),
            ("CLUSTER", "DB_USER"): local_server.user,
            ("CLUSTER", "DB_NAME"): local_server.dbname,
            ("CLUSTER", "SSLMODE"): "disable",
            ("CLUSTER", "DB_PASSWORD"): "Wr0ng-Passw0rd%",
        }
    )
    result = run_script("etl.py", config)
    assert result.returncode == 1
    assert "password authentication failed" in result.stderr and "DB_PASSWORD" in result.stderr
    assert "retrying" not in result.stdout + result.stderr
    assert "Wr0ng-Passw0rd" not in result.stdout + result.stderr


def test_a_days_file_written_as_one_json_array_fails_naming_it(previous, logs, make_config, query):
    """Redshift's docs do not say what JSONPaths by name give for an array; the local warehouse
    refuses it, and on either warehouse a staged event without a time fails the load."""
    folder, last = logs
    events = [json.loads(line) for line in last.read_text().splitlines()]
    last.write_text(json.dumps(events, indent=2))
    result = run_script("etl.py", make_config({("LOCAL", "LOG_DATA"): str(folder)}, name="array.cfg"))
    fails_cleanly(result, query, previous)
    last_line = result.stderr.strip().splitlines()[-1]
    assert f"{last}, line 1: Invalid JSON: expected an object, as the JSONPaths name members" in result.stderr
    assert "1 bad row(s)" in result.stderr and "Traceback" not in last_line


def test_an_event_without_a_timestamp_fails_the_load(logs, make_config, db_name, query):
    # In a database of its own: the failed run leaves its staging tables loaded (as on Redshift), and
    # the session's sample must stay fit for the checks of other tests.
    folder, last = logs
    good = make_config({("LOCAL", "DB_NAME"): db_name}, name="good.cfg")
    load_with_scripts(good)
    published = {t: n for t, n in row_counts(query, db=db_name).items() if not t.startswith("staging")}
    replace_line(last, 2, b'"ts":', b'"ts":null,"was":')
    no_ts = make_config({("LOCAL", "LOG_DATA"): str(folder), ("LOCAL", "DB_NAME"): db_name}, name="no-ts.cfg")
    result = run_script("etl.py", no_ts)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: 1 data-quality check(s) failed: staged events without a timestamp: got 1, expected == 0"
    )
    assert {t: n for t, n in row_counts(query, db=db_name).items() if not t.startswith("staging")} == published


def test_a_song_without_a_song_id_is_counted_in_the_checks(songs, make_config, db_name, query):
    folder, first = songs
    song = json.loads(first.read_text())
    del song["song_id"]
    first.write_text(json.dumps(song))
    config = make_config({("LOCAL", "SONG_DATA"): str(folder), ("LOCAL", "DB_NAME"): db_name}, name="no-id.cfg")
    create_tables_in(config)
    result = run_script("etl.py", config)
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "staged songs without a song_id" in line)
    assert row.split()[-2:] == ["1", "info"]
    assert query("SELECT COUNT(*) FROM songs", db=db_name) == [(len(list(folder.rglob("*.json"))) - 1,)]


def test_a_gzip_file_named_json_fails_in_one_line_saying_so(previous, logs, make_config, query):
    import gzip

    folder, last = logs
    last.write_bytes(gzip.compress(last.read_bytes()))
    result = run_script("etl.py", make_config({("LOCAL", "LOG_DATA"): str(folder)}, name="gzip.cfg"))
    fails_cleanly(result, query, previous)
    assert f"{last}, line 1: the file is gzip-compressed; Redshift's COPY reads such a file only with GZIP" in (
        result.stderr
    )
    assert "1 bad row(s)" in result.stderr


def test_json_nested_too_deeply_names_its_file_and_line(previous, logs, make_config, query):
    folder, last = logs
    with last.open("a") as handle:
        handle.write("\n" + "[" * 10_000 + "]" * 10_000 + "\n")
    result = run_script("etl.py", make_config({("LOCAL", "LOG_DATA"): str(folder)}, name="deep.cfg"))
    fails_cleanly(result, query, previous)
    lines = len(last.read_text().splitlines())
    assert f"{last}, line {lines}: Invalid JSON: nested too deeply to read" in result.stderr


def test_a_dangling_link_among_the_files_is_named(previous, logs, make_config, query, tmp_path):
    folder, last = logs
    link = last.with_name("zz-gone.json")
    link.symlink_to(tmp_path / "moved-away.json")
    result = run_script("etl.py", make_config({("LOCAL", "LOG_DATA"): str(folder)}, name="link.cfg"))
    fails_cleanly(result, query, previous)
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: COPY staging_events: {link} is a link to {tmp_path / 'moved-away.json'}, which does not exist: "
        "remove the link or restore its target"
    )
