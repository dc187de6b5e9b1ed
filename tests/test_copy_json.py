"""Each rule of Redshift's COPY ... FORMAT AS JSON, as the local warehouse emulates it, on tiny inputs."""

from __future__ import annotations

import json
import threading
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from dwh.errors import LoadFailed


@pytest.fixture(autouse=True, params=["native", "exact"])
def converter(request, warehouse):
    """Every rule holds on both paths: native conversion (with its hand-back) and the exact path alone."""
    warehouse.copy_converter = request.param
    return request.param


@pytest.fixture
def load(warehouse, tmp_path):
    """Create table t, write the files, COPY them with the options; return (rows loaded, table rows)."""
    counter = iter(range(1000))

    def run(columns: str, files: dict, options: str = "FORMAT AS JSON 'auto'", source: str = "src", order: str = "1"):
        warehouse.execute("DROP TABLE IF EXISTS t;")
        warehouse.execute(f"CREATE TABLE t ({columns});")
        root = tmp_path / f"run{next(counter)}"
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        loaded = warehouse.execute(f"COPY t FROM '{root / source}' IAM_ROLE default {options};")
        with warehouse.cursor() as cur:
            cur.execute(f"SELECT * FROM t ORDER BY {order}")
            return loaded, cur.fetchall()

    return run


def failure(load, *args, **kwargs) -> LoadFailed:
    with pytest.raises(LoadFailed) as caught:
        load(*args, **kwargs)
    return caught.value


def test_from_is_a_key_prefix(load):
    files = {"src/a/1.json": '{"v": 1}', "src/ab/2.json": '{"v": 2}', "src/b/3.json": '{"v": 3}'}
    assert load("v INT", files, source="src/a") == (2, [(1,), (2,)])


def test_objects_separated_by_any_whitespace(load):
    files = {
        "src/lines.json": '{"v": 1}\n{"v": 2}',
        "src/pretty.json": '{\n  "v": 3\n}\n\n{\n  "v":\n 4}\n',
        "src/same_line.json": '{"v": 5} {"v": 6}\t{"v": 7}',
    }
    assert load("v INT", files)[1] == [(v,) for v in range(1, 8)]


def test_auto_matches_keys_case_sensitively(load):
    files = {"src/x.json": '{"firstName": "Ada", "lastname": "Lovelace"}'}
    assert load("firstname VARCHAR(10), lastname VARCHAR(10)", files)[1] == [(None, "Lovelace")]


def test_auto_ignorecase_matches_keys_case_insensitively(load):
    files = {"src/x.json": '{"firstName": "Ada", "LASTNAME": "Lovelace"}'}
    rows = load("firstname VARCHAR(10), lastname VARCHAR(10)", files, "FORMAT AS JSON 'auto ignorecase'")[1]
    assert rows == [("Ada", "Lovelace")]


def test_jsonpaths_map_by_position(load, tmp_path):
    paths = tmp_path / "paths.json"
    paths.write_text(json.dumps({"jsonpaths": ["$['userId']", "$.nested.name", "$.list[1]", '$["gone"]']}))
    files = {"src/x.json": '{"userId": "7", "nested": {"name": "n"}, "list": [10, 20]}'}
    rows = load("a INT, b VARCHAR(5), c INT, d VARCHAR(5)", files, f"FORMAT AS JSON '{paths}'")[1]
    assert rows == [(7, "n", 20, None)]


def test_jsonpaths_count_must_equal_column_count(load, tmp_path):
    paths = tmp_path / "paths.json"
    paths.write_text(json.dumps({"jsonpaths": ["$.a", "$.b"]}))
    error = failure(load, "a INT, b INT, c INT", {"src/x.json": "{}"}, f"FORMAT AS JSON '{paths}'")
    assert "has 2 paths" in str(error) and "3 columns" in str(error)


def test_missing_fields_load_null(load):
    assert load("a INT, b VARCHAR(5)", {"src/x.json": '{"a": 1}'})[1] == [(1, None)]


def test_empty_string_is_null_in_non_text_columns(load):
    files = {"src/x.json": '{"i": "", "f": "", "ts": "", "s": ""}'}
    rows = load(
        "i INT, f FLOAT, ts TIMESTAMP, s VARCHAR(5)", files, "FORMAT AS JSON 'auto' TIMEFORMAT 'epochmillisecs'"
    )[1]
    assert rows == [(None, None, None, "")]


def test_emptyasnull_makes_empty_text_null(load):
    files = {"src/x.json": '{"s": "", "b": "  "}'}
    assert load("s VARCHAR(5), b VARCHAR(5)", files, "FORMAT AS JSON 'auto' EMPTYASNULL")[1] == [(None, "  ")]


def test_blanksasnull_makes_whitespace_text_null(load):
    files = {"src/x.json": '{"s": "", "b": " \\t "}'}
    assert load("s VARCHAR(5), b VARCHAR(5)", files, "FORMAT AS JSON 'auto' BLANKSASNULL")[1] == [("", None)]


def test_timeformat_epochmillisecs_keeps_milliseconds(load):
    files = {"src/x.json": '{"ts": 1541105830796}\n{"ts": "1541105830001"}'}
    rows = load("ts TIMESTAMP", files, "FORMAT AS JSON 'auto' TIMEFORMAT AS 'epochmillisecs'")[1]
    assert rows == [(datetime(2018, 11, 1, 20, 57, 10, 1000),), (datetime(2018, 11, 1, 20, 57, 10, 796000),)]


def test_numbers_load_into_text_and_digit_strings_into_integers(load):
    files = {"src/x.json": '{"name": 112, "loc": 27.5, "id": "39", "flag": true}'}
    rows = load("name VARCHAR(5), loc VARCHAR(5), id INT, flag VARCHAR(5)", files)[1]
    assert rows == [("112", "27.5", 39, "true")]


def test_objects_and_arrays_load_into_text_as_their_json_text(load, tmp_path):
    # Redshift (COPY from JSON): "If the value ... referenced by a JSONPath expression is an object or an
    # array, the entire object or array is loaded as a string, including the braces or brackets."
    paths = tmp_path / "paths.json"
    paths.write_text(json.dumps({"jsonpaths": ["$.tags", "$.friends[1]", "$.n", "$.yes"]}))
    document = {"tags": ["nisi", "culpa"], "friends": [{}, {"id": 1, "name": "Renaldo"}], "n": 1.50, "yes": False}
    files = {"src/x.json": json.dumps(document)}
    columns = "tags VARCHAR(40), friend VARCHAR(40), n VARCHAR(8), yes VARCHAR(8)"
    rows = load(columns, files, f"FORMAT AS JSON '{paths}'")[1]
    assert rows == [('["nisi","culpa"]', '{"id":1,"name":"Renaldo"}', "1.5", "false")]
    auto = load("tags VARCHAR(40), friends VARCHAR(40)", {"src/x.json": json.dumps(document)})[1]
    assert auto == [('["nisi","culpa"]', '[{},{"id":1,"name":"Renaldo"}]')]


def test_varchar_length_is_counted_in_bytes(load):
    error = failure(load, "s VARCHAR(5)", {"src/x.json": '{"s": "h\u00e9llo"}'})
    assert "6 bytes > 5" in str(error)


def test_truncatecolumns_cuts_at_a_character_boundary(load):
    files = {"src/x.json": '{"s": "h\u00e9llo w\u00f6rld"}\n{"s": "abc"}'}
    rows = load("s VARCHAR(5)", files, "FORMAT AS JSON 'auto' TRUNCATECOLUMNS", order="s")[1]
    assert rows == [("abc",), ("h\u00e9ll",)]


def test_bad_row_fails_the_whole_copy_naming_file_line_and_column(load, warehouse):
    files = {"src/1.json": '{"n": 1}', "src/2.json": '{"n": 2}\n{"n": "two"}\n{"n": 3}'}
    error = failure(load, "n INT", files)
    message = str(error)
    assert "2.json, line 2, column n (integer): Invalid digit [code 1207], value 'two'" in message
    assert [(e.line_number, e.colname, e.err_code) for e in error.errors] == [(2, "n", 1207)]
    warehouse.rollback()
    with warehouse.cursor() as cur:
        cur.execute("SELECT to_regclass('t')")
        assert cur.fetchone() == (None,)


def test_maxerror_n_lets_at_most_n_minus_1_bad_rows_through_and_reports_each(load, warehouse):
    # Redshift: "If the load returns the error_count number of errors or greater, the load fails."
    files = {"src/x.json": '{"n": 1}\n{"n": "x"}\n{"n": 2}\n{"n": 1.5}\n'}
    assert load("n INT", files, "FORMAT AS JSON 'auto' MAXERROR 3") == (2, [(1,), (2,)])
    assert [(e.line_number, e.err_code) for e in warehouse.last_load_errors] == [(2, 1207), (4, 1207)]
    for max_error in (2, 1):
        error = failure(load, "n INT", files, f"FORMAT AS JSON 'auto' MAXERROR {max_error}")
        assert len(error.errors) == 2
        assert f"2 bad row(s), MAXERROR is {max_error} (at most {max_error - 1} skipped)" in str(error)
        warehouse.rollback()


@pytest.mark.parametrize("max_error", [0, 1])
def test_maxerror_0_and_1_both_fail_at_the_first_bad_row(load, warehouse, max_error):
    # Redshift: "Set this value to 0 or 1 if you want the load to fail as soon as the first error occurs."
    files = {"src/x.json": '{"n": 1}\n{"n": "x"}\n{"n": 2}\n'}
    error = failure(load, "n INT", files, f"FORMAT AS JSON 'auto' MAXERROR {max_error}")
    assert [(e.line_number, e.err_code) for e in error.errors] == [(2, 1207)]
    warehouse.rollback()
    assert load("n INT", {"src/x.json": '{"n": 1}\n{"n": 2}\n'}, f"FORMAT AS JSON 'auto' MAXERROR {max_error}")[0] == 2


def test_integer_overflow_is_rejected(load):
    error = failure(load, "n SMALLINT", {"src/x.json": '{"n": 40000}'})
    assert error.errors[0].err_code == 1222


def test_not_null_column_rejects_missing_value(load):
    error = failure(load, "a INT NOT NULL, b INT", {"src/x.json": '{"b": 1}'})
    assert (error.errors[0].colname, error.errors[0].err_code) == ("a", 1213)


def test_invalid_utf8_fails_naming_the_column(load):
    files = {"src/x.json": b'{"a": "ok", "b": "caf\xe9"}'}
    error = failure(load, "a VARCHAR(9), b VARCHAR(9)", files)
    assert (error.errors[0].colname, error.errors[0].err_code, error.errors[0].line_number) == ("b", 1220, 1)


def test_acceptinvchars_replaces_each_invalid_byte(load):
    files = {"src/x.json": b'{"b": "caf\xe9\xff!"}'}
    assert load("b VARCHAR(9)", files, "FORMAT AS JSON 'auto' ACCEPTINVCHARS AS '?'")[1] == [("caf??!",)]


def test_truncated_json_names_its_line(load):
    files = {"src/x.json": '{"n": 1}\n{"n": 2}\n{"n": 3'}
    error = failure(load, "n INT", files)
    assert (error.errors[0].line_number, error.errors[0].err_code) == (3, 1216)
    assert "x.json, line 3" in str(error)


def test_non_json_text_is_rejected(load):
    error = failure(load, "n INT", {"src/notes.txt": "hello\nworld\n"})
    assert error.errors[0].err_code == 1216 and "notes.txt, line 1" in str(error)


def test_empty_file_loads_no_rows(load):
    assert load("n INT", {"src/empty.json": "", "src/one.json": '{"n": 1}'}) == (1, [(1,)])


def test_prefix_matching_nothing_is_an_error(load):
    error = failure(load, "n INT", {"src/x.json": "{}"}, source="nothing_here")
    assert "matches no file" in str(error)


def test_identity_column_is_skipped_without_a_column_list(load):
    rows = load("id BIGINT IDENTITY(0,1), v INT", {"src/x.json": '{"v": 5, "id": 99}'})[1]
    assert rows == [(0, 5)]


def test_manifest_loads_exactly_the_listed_files(load, tmp_path):
    base = tmp_path / "data"
    base.mkdir()
    for name, value in (("a.json", 1), ("b.json", 2), ("c.json", 3)):
        (base / name).write_text(json.dumps({"v": value}))
    manifest = {
        "entries": [
            {"url": str(base / "a.json"), "mandatory": True},
            {"url": str(base / "c.json")},
            {"url": str(base / "gone.json")},
        ]
    }
    files = {"m.manifest": json.dumps(manifest)}
    assert load("v INT", files, "MANIFEST FORMAT AS JSON 'auto'", source="m.manifest") == (2, [(1,), (3,)])
    manifest["entries"][2]["mandatory"] = True
    error = failure(
        load, "v INT", {"m.manifest": json.dumps(manifest)}, "MANIFEST FORMAT AS JSON 'auto'", source="m.manifest"
    )
    assert "gone.json does not exist" in str(error)


def test_unsupported_option_is_named(load):
    error = failure(load, "v INT", {"src/x.json": "{}"}, "FORMAT AS JSON 'auto' GZIP")
    assert "GZIP" in str(error)


text_values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(text_values, min_size=1, max_size=5))
def test_any_text_round_trips_unchanged(load, values):
    files = {"src/x.json": "\n".join(json.dumps({"i": i, "s": v}) for i, v in enumerate(values))}
    rows = load("i INT, s VARCHAR(200)", files)[1]
    assert rows == list(enumerate(values))


def test_worker_processes_give_the_same_rows_and_errors(load, warehouse, monkeypatch):
    from dwh.local import pipeline

    files = {f"src/{i:02}.json": "\n".join(json.dumps({"n": i * 10 + j}) for j in range(5)) for i in range(12)}
    in_process = load("n INT", files)
    warehouse.copy_workers = 2
    monkeypatch.setattr(pipeline, "BATCH_FILES", 2)  # six batches, three in flight at a time
    assert load("n INT", files) == in_process
    files["src/07.json"] += '\n{"n": "seven"}'
    error = failure(load, "n INT", files)
    assert "07.json, line 6, column n (integer): Invalid digit" in str(error)


def test_a_large_file_loads_in_pieces_with_the_same_rows_and_line_numbers(load, warehouse, monkeypatch):
    from dwh.local import pipeline

    lines = [json.dumps({"n": n}) for n in range(3_000)] + ['{\n  "n": 3000\n}', '{"n": 3001}']
    files = {"src/big.json": "\n".join(lines)}
    in_process = load("n INT", files)
    warehouse.copy_workers = 2
    monkeypatch.setattr(pipeline, "SPLIT_BYTES", 1_000)
    monkeypatch.setattr(pipeline, "PIECE_BYTES", 1_000)  # some forty pieces, converted by two workers
    assert load("n INT", files) == in_process == (3_002, [(n,) for n in range(3_002)])
    files["src/big.json"] = files["src/big.json"].replace('{"n": 2500}', '{"n": "x"}')
    error = failure(load, "n INT", files)
    assert "big.json, line 2501, column n (integer): Invalid digit" in str(error)


@pytest.mark.parametrize("slice_size", [1, 2, 3, 1000])
def test_files_are_converted_in_slices_with_the_same_rows_and_line_numbers(load, monkeypatch, slice_size):
    from dwh.local import json_batches

    monkeypatch.setattr(json_batches, "SLICE_DOCUMENTS", slice_size)
    files = {
        "src/a.json": "\n".join(json.dumps({"n": n}) for n in range(7)),
        "src/b.json": '{"n": 7}\n{"n": 8}\n{\n  "n": 9\n}\n{"n": 10} {"n": 11}',
        "src/c.json": '{"n": 12}\n\n{"n": "bad"}\n{"n": 13}\n{"n": 14',
    }
    loaded, rows = load("n INT", files, "FORMAT AS JSON 'auto' MAXERROR 3")
    assert (loaded, rows) == (14, [(n,) for n in range(14)])
    error = failure(load, "n INT", files)
    assert [(e.filename.rsplit("/", 1)[1], e.line_number, e.err_code) for e in error.errors] == [
        ("c.json", 3, 1207),
        ("c.json", 5, 1216),
    ]


def test_many_small_files_are_converted_together_keeping_each_files_name(load):
    files = {f"src/{i:03}.json": json.dumps({"n": i}) for i in range(300)}
    files["src/150.json"] = '{"n": "x"}'
    error = failure(load, "n INT", files)
    assert [(e.filename.rsplit("/", 1)[1], e.line_number) for e in error.errors] == [("150.json", 1)]


def test_copy_analyzes_the_table_and_leaves_the_session_settings_alone(load, warehouse):
    with warehouse.cursor() as cur:
        cur.execute("SET default_statistics_target = 77")
    rows = "\n".join(json.dumps({"a": n, "b": f"v{n}"}) for n in range(500))
    load("a INTEGER, b VARCHAR(8)", {"src/1.json": rows})
    with warehouse.cursor() as cur:
        cur.execute("SHOW default_statistics_target")
        assert cur.fetchone() == ("77",)
        # Statistics target 10 (a small sample, fast): at most 11 histogram bounds per column.
        cur.execute("SELECT attname, cardinality(histogram_bounds::text::text[]) FROM pg_stats WHERE tablename = 't'")
        assert sorted(cur.fetchall()) == [("a", 11), ("b", 11)]


def test_a_failed_copy_with_fork_server_workers_ends_and_names_the_row(load, warehouse, monkeypatch):
    # A second thread makes the pool start its workers from a fork server; the failure must end the
    # load (on Python 3.11.2, cancelling the batches in flight hung the pool's shutdown for good).
    from dwh.local import pipeline

    files = {f"src/{i:02}.json": "\n".join(json.dumps({"n": i * 10 + j}) for j in range(5)) for i in range(12)}
    files["src/07.json"] += '\n{"n": "seven"}'
    warehouse.copy_workers = 2
    monkeypatch.setattr(pipeline, "BATCH_FILES", 2)
    stop = threading.Event()
    second_thread = threading.Thread(target=stop.wait)
    second_thread.start()
    try:
        assert pipeline.worker_context().get_start_method() == "forkserver"
        error = failure(load, "n INT", files)
    finally:
        stop.set()
        second_thread.join()
    assert "07.json, line 6, column n (integer): Invalid digit" in str(error)
