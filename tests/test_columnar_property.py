"""COPY's two paths load exactly the rows, and report exactly the errors, of a per-value reference.

Hypothesis writes files of awkward JSON (blank and whitespace strings, numbers as strings, huge
integers, 1e308, NaN-ish text, invalid UTF-8, over-long text, nested objects and arrays, booleans,
nulls; one per line, pretty-printed or several on a line, with broken lines) and a COPY statement
with any of the options the emulation supports. The real COPY (orjson line parsing, the columnar
fast path, MAXERROR) loads them into one table; a reference built only from the general decoder
(dwh.s3.json_documents), JSONPaths steps and the per-value converters loads them into another, through
PostgreSQL's own COPY. Both tables must hold the same rows, and the rejected rows must be the same.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tempfile
from pathlib import Path

import duckdb
import psycopg2
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from dwh.errors import LoadError, LoadFailed
from dwh.local import native
from dwh.local.columnar import Plan, convert_documents
from dwh.local.converters import NULL, Column, FieldError, Options, converter_for, json_text
from dwh.local.json_batches import convert_files
from dwh.local.jsonpaths import follow, parse_jsonpaths
from dwh.s3.json_documents import documents_in

# Redshift DDL type, and the column as information_schema describes it: every type the project
# uses (VARCHAR, CHAR, SMALLINT, INTEGER, BIGINT, DOUBLE PRECISION, TIMESTAMP) and every other
# family of rules the converters know.
TYPES = [
    ("VARCHAR(4)", "character varying", 4),
    ("VARCHAR(12)", "character varying", 12),
    ("VARCHAR(256)", "character varying", 256),
    ("VARCHAR(MAX)", "character varying", 65535),
    ("CHAR(3)", "character", 3),
    ("SMALLINT", "smallint", None),
    ("INTEGER", "integer", None),
    ("BIGINT", "bigint", None),
    ("DOUBLE PRECISION", "double precision", None),
    ("REAL", "real", None),
    ("NUMERIC(30,4)", "numeric", None),
    ("BOOLEAN", "boolean", None),
    ("TIMESTAMP", "timestamp without time zone", None),
    ("DATE", "date", None),
]
# A private-use character that the file writer replaces with an invalid UTF-8 byte.
INVALID_BYTE = "\ue000"

awkward_text = st.sampled_from(
    [
        "",
        " ",
        " \t ",
        "\n",
        "0",
        "007",
        " 12 ",
        "-5",
        "+5",
        "1e3",
        "1.5",
        "-0",
        "32768",
        "2147483648",
        "9223372036854775808",
        "123456789012345678901234567890",
        "NaN",
        "nan",
        "inf",
        "-Infinity",
        "1_000",
        "true",
        "f",
        "YES",
        "2",
        "2018-11-01",
        "2018-11-01 20:57:10",
        "2018-11-01T20:57:10.796+05:00",
        "2018-13-45",
        "1541105830796",
        "1541105830.5",
        "99999999999999999999",
        "\u0663",
        "a\\b",
        "tab\there",
        "cr\rlf",
        "nul\x00",
        "\u00e9\u00e9\u00e9",
        "\U0001f600",
        "caf" + INVALID_BYTE,
        INVALID_BYTE * 2,
    ]
) | st.text(max_size=30)
# Short text with invalid bytes: the fast path must not let them through.
invalid_text = st.text(st.sampled_from(["a", "7", " ", "\u00e9", INVALID_BYTE]), min_size=1, max_size=12)
numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, -1, 2**15, 2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64, 10**19, 1541105830796])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e308, -1e308, 5e-324, 0.1, 1541105830.5, 1e19])
)
scalars = st.one_of(st.none(), st.booleans(), numbers, awkward_text, awkward_text, invalid_text)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["c0", "x", "C1"]), inner, max_size=2),
    max_leaves=4,
)


@st.composite
def loads(draw):
    """Columns, COPY options, JSONPaths and files of documents for them."""
    count = draw(st.integers(min_value=1, max_value=4))
    columns = []
    for i in range(count):
        ddl, data_type, length = draw(st.sampled_from(TYPES))
        columns.append((f"c{i}", ddl, Column(f"c{i}", data_type, length, draw(st.booleans()))))
    mode = draw(st.sampled_from(["auto", "auto ignorecase", "paths"]))
    paths = [
        draw(st.sampled_from([f"$.{name}", f"$['{name}']", f'$["{name.upper()}"]', f"$.o.{name}", "$.a[1]"]))
        for name, _, _ in columns
    ]

    def document():
        keys = {}
        for name, _, _ in columns:
            key = draw(st.sampled_from([name, name, name.upper(), None]))
            if key is not None:
                keys[key] = draw(scalars | values)
        if draw(st.booleans()):
            keys["o"] = {name: draw(values) for name, _, _ in columns[:2]}
            keys["a"] = draw(st.lists(values, max_size=3))
        return keys

    files, documents_by_file = [], []
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
        documents = [document() if draw(st.integers(0, 9)) else draw(values) for _ in range(draw(st.integers(0, 6)))]
        documents_by_file.append(documents)
        layout = draw(st.sampled_from(["lines", "lines", "pretty", "same line"]))
        texts = [json.dumps(d, ensure_ascii=False, indent=2 if layout == "pretty" else None) for d in documents]
        text = (" " if layout == "same line" else "\n").join(texts)
        if draw(st.integers(0, 5)) == 0:
            text += draw(st.sampled_from(['\n{"c0": ', "\n\n", "\nnot json\n", '\n{"c0": 1} {"c0": 2}', "\n  \n"]))
        data = text.encode("utf-8").replace(INVALID_BYTE.encode(), draw(st.sampled_from([b"\xff", b"\xe9", b"\xc3"])))
        files.append(data)
    options = Options(
        empty_as_null=draw(st.booleans()),
        blanks_as_null=draw(st.booleans()),
        truncate_columns=draw(st.booleans()),
        accept_inv_chars=draw(st.sampled_from([None, "?", "^"])),
        time_format=draw(st.sampled_from([None, "auto", "epochsecs", "epochmillisecs", "EPOCHMILLISECS"])),
    )
    max_error = draw(st.sampled_from([0, 1, 2, 3, 100]))
    return columns, mode, paths, files, options, max_error, documents_by_file


def with_surrogates(value):
    """The value as the general decoder gives it when the file holds invalid UTF-8 (lone surrogates)."""
    if isinstance(value, str):
        return value.replace(INVALID_BYTE, "\udcff")
    if isinstance(value, list):
        return [with_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {key: with_surrogates(item) for key, item in value.items()}
    return value


def copy_statement(folder: Path, mode: str, paths_file: Path, options: Options, max_error: int) -> str:
    source = f"'{paths_file}'" if mode == "paths" else f"'{mode}'"
    words = [f"COPY t FROM '{folder / 'src'}' IAM_ROLE default FORMAT AS JSON {source}"]
    words += ["EMPTYASNULL"] if options.empty_as_null else []
    words += ["BLANKSASNULL"] if options.blanks_as_null else []
    words += ["TRUNCATECOLUMNS"] if options.truncate_columns else []
    words += [f"ACCEPTINVCHARS AS '{options.accept_inv_chars}'"] if options.accept_inv_chars else []
    words += [f"TIMEFORMAT AS '{options.time_format}'"] if options.time_format else []
    words += [f"MAXERROR {max_error}"]
    return " ".join(words) + ";"


def native_convert(converter, data: bytes) -> tuple[bytes, int] | None:
    """One file through the native path: (COPY text rows, their count), or None when it is handed back."""
    runs = converter.convert_files([("x.json", data, 1)])
    return runs[0] if len(runs) == 1 and isinstance(runs[0], tuple) else None


def per_value_load(files: list[tuple[str, bytes]], columns: list[Column], mode: str, steps, options: Options):
    """COPY text rows and rejected rows, one document and one value at a time."""
    lines, errors = [], []
    for filename, data in files:
        decoded: list[LoadError] = []
        rows = list(documents_in(data, filename, decoded))
        errors += decoded
        file_lines, file_errors = per_value_rows(
            [(filename, line, d) for line, d in rows], columns, mode, steps, options
        )
        lines += file_lines
        errors += file_errors
    return lines, errors


def per_value_rows(documents: list[tuple[str, int, object]], columns: list[Column], mode: str, steps, options: Options):
    """COPY text rows and rejected rows of (file, line, document) triples, one value at a time."""
    converters = [converter_for(column, options) for column in columns]
    lines, errors = [], []
    for filename, line, document in documents:
        if mode != "paths" and type(document) is not dict:
            reason = "Invalid JSON: expected an object for FORMAT AS JSON 'auto'"
            errors.append(LoadError(filename, line, "", "", json_text(document)[:60], 1216, reason))
            continue
        if mode == "paths" and type(document) is not dict and all(type(s[0]) is str for s in steps):
            reason = (
                "Invalid JSON: expected an object, as the JSONPaths name members (a file written as one "
                "JSON array must hold its objects one after another instead)"
            )
            errors.append(LoadError(filename, line, "", "", json_text(document)[:60], 1216, reason))
            continue
        if mode == "auto ignorecase":
            document = {key.lower(): value for key, value in document.items()}
        fields = []
        for position, (column, convert) in enumerate(zip(columns, converters, strict=True)):
            value = follow(document, steps[position]) if mode == "paths" else document.get(column.name)
            try:
                text = None if value is None else convert(value)
                if text is None and column.not_null:
                    raise FieldError(1213, "Missing data for not-null field")
            except FieldError as problem:
                shown = problem.value[:1024] if isinstance(problem.value, str) else ""
                errors.append(
                    LoadError(filename, line, column.name, column.type_label, shown, problem.code, problem.reason)
                )
                break
            fields.append(NULL if text is None else text)
        else:
            lines.append("\t".join(fields))
    return lines, errors


def table_rows(warehouse, table: str) -> list[str]:
    """The table's rows as text, sorted (NaN equals NaN in text)."""
    with warehouse.cursor() as cur:
        cur.execute(f"SELECT * FROM {table}")
        return sorted(map(repr, cur.fetchall()))


def outcome(run):
    """What a load did: ("loaded", result) or ("failed", the PostgreSQL error code and message)."""
    try:
        return ("loaded", run())
    except psycopg2.Error as exc:
        return ("failed", exc.pgcode, exc.diag.message_primary)


def column(name: str, sql_type: str, not_null: bool = False) -> tuple[str, str, Column]:
    _, data_type, length = next(entry for entry in TYPES if entry[0] == sql_type)
    return name, sql_type, Column(name, data_type, length, not_null)


# Values whose fast-path handling differs in form from the converters' (or once differed in substance).
KNOWN_AWKWARD = (
    [
        [column("c0", "VARCHAR(256)"), column("c1", "VARCHAR(MAX)")],
        [{"c0": "caf" + INVALID_BYTE, "c1": "ok"}, {"c0": "fine", "c1": INVALID_BYTE}, {"c0": " ", "c1": ""}],
    ],
    [
        [column("c0", "SMALLINT"), column("c1", "BIGINT", True), column("c2", "TIMESTAMP")],
        [{"c0": "007", "c1": 2**63, "c2": 1541105830000}, {"c0": " 12 ", "c1": "99999999999999999999", "c2": 0}],
    ],
)


@pytest.mark.parametrize("converter", ["native", "exact"])
@pytest.mark.filterwarnings("ignore")
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(load=loads())
@example(
    load=(
        [column("c0", "VARCHAR(256)"), column("c1", "BIGINT"), column("c2", "NUMERIC(30,4)")],
        "auto",
        ["$.c0", "$.c1", "$.c2"],
        [
            b'{"c0": 20000000000000000000, "c1": 1, "c2": -18446744073709551617}\n'
            b'{"c0": "x", "c1": 18446744073709551616}'
        ],
        Options(),
        5,
        [],
    )
)
def test_columnar_path_loads_what_the_per_value_path_loads(warehouse, converter, load):
    warehouse.copy_converter = converter
    columns, mode, paths, contents, options, max_error, _ = load
    ddl = ", ".join(f"{name} {sql_type}{' NOT NULL' if column.not_null else ''}" for name, sql_type, column in columns)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "src").mkdir()
        files = []
        for n, data in enumerate(contents):
            path = root / "src" / f"{n}.json"
            path.write_bytes(data)
            files.append((str(path), data))
        paths_file = root / "paths.json"
        paths_file.write_text(json.dumps({"jsonpaths": paths}))
        steps = parse_jsonpaths(paths_file.read_bytes(), str(paths_file))
        reference_lines, reference_errors = per_value_load(files, [c for _, _, c in columns], mode, steps, options)
        try:
            warehouse.execute(f"CREATE TABLE t ({ddl});")
            warehouse.execute(f"CREATE TABLE r ({ddl});")
            statement = copy_statement(root, mode, paths_file, options, max_error)

            def fast():
                try:
                    loaded = warehouse.execute(statement)
                except LoadFailed as failure:
                    return "too many errors", sorted(failure.errors, key=repr)
                return loaded, table_rows(warehouse, "t"), sorted(warehouse.last_load_errors, key=repr)

            def reference():
                # Redshift: the load fails at max_error bad rows or more; 0 and 1 both at the first.
                if len(reference_errors) >= max(max_error, 1):
                    return "too many errors", sorted(reference_errors, key=repr)
                text = "".join(line + "\n" for line in reference_lines).encode("utf-8", "surrogateescape")
                with warehouse.cursor() as cur:
                    cur.copy_expert("COPY r FROM STDIN", io.BytesIO(text))
                return len(reference_lines), table_rows(warehouse, "r"), sorted(reference_errors, key=repr)

            fast_outcome = outcome(fast)
            warehouse.rollback()
            warehouse.execute(f"CREATE TABLE r ({ddl});")
            assert fast_outcome == outcome(reference)
        finally:
            warehouse.rollback()


def copy_into(warehouse, table: str, lines: list[str]) -> list[tuple]:
    text = "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")
    with warehouse.cursor() as cur:
        cur.copy_expert(f"COPY {table} FROM STDIN", io.BytesIO(text))
    return table_rows(warehouse, table)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(load=loads())
@example(load=(KNOWN_AWKWARD[0][0], "auto", ["$.c0", "$.c1"], [], Options(), 0, [KNOWN_AWKWARD[0][1]]))
@example(
    load=(KNOWN_AWKWARD[0][0], "auto", ["$.c0", "$.c1"], [], Options(accept_inv_chars="?"), 0, [KNOWN_AWKWARD[0][1]])
)
@example(
    load=(
        KNOWN_AWKWARD[1][0],
        "paths",
        ["$.c0", "$.c1", "$.c2"],
        [],
        Options(time_format="epochmillisecs"),
        0,
        [KNOWN_AWKWARD[1][1]],
    )
)
def test_columnar_conversion_equals_per_value_conversion_for_any_documents(warehouse, load):
    """Documents as any decoder may give them (lone surrogates, integers past 64 bits), converted
    with the fast path and with the per-value converters only, give the same rows and errors."""
    columns, mode, paths, _, options, _, documents_by_file = load
    documents = [with_surrogates(document) for file in documents_by_file for document in file]
    steps = parse_jsonpaths(json.dumps({"jsonpaths": paths}).encode(), "paths.json")
    plan_mode = {"auto": "auto", "auto ignorecase": "ignorecase", "paths": "paths"}[mode]
    plan = Plan([column for _, _, column in columns], options, plan_mode, steps)
    where = [("x.json", line) for line in range(1, len(documents) + 1)]
    fast_errors: list[LoadError] = []
    fast = convert_documents(documents, where, plan, fast_errors)
    triples = [(file, line, document) for (file, line), document in zip(where, documents, strict=True)]
    exact, exact_errors = per_value_rows(triples, [column for _, _, column in columns], mode, steps, options)
    assert fast_errors == exact_errors
    assert len(fast) == len(exact) == len(documents) - len(exact_errors)
    ddl = ", ".join(f"{name} {sql_type}" for name, sql_type, _ in columns)
    try:
        warehouse.execute(f"CREATE TABLE t ({ddl});")
        fast_outcome = outcome(lambda: copy_into(warehouse, "t", fast))
        warehouse.rollback()
        warehouse.execute(f"CREATE TABLE t ({ddl});")
        assert fast_outcome == outcome(lambda: copy_into(warehouse, "t", exact))
    finally:
        warehouse.rollback()


# Values in the native path's shapes, with their edges (and now and then one outside them).
common_text = st.sampled_from(
    ["", " ", "\u3000", "a b", "\u00e9t\u00e9", "\U0001f600", "x" * 12, "-0", "\\N"]
) | st.text(max_size=14)
common_numbers = st.sampled_from(
    [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1e22, 0.1, 1.2345678901234567, 1541105830796.0, 1e308]
) | st.floats(allow_nan=False, allow_infinity=False)
common_integers = st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.sampled_from(
    [0, -1, 2**15 - 1, 2**31 - 1, -(2**31), 1541105830796, 253_402_300_799_999, 253_402_300_800_000]
)
common_strings = st.sampled_from(["", "007", "123456789", "1234", " 1", "+1", "1e3"]) | st.text(
    "0123456789", max_size=19
)
# A column's common values by its kind; now and then any value at all.
COMMON = {
    "character varying": common_text,
    "character": common_text,
    "smallint": common_integers | common_strings,
    "integer": common_integers | common_strings,
    "bigint": common_integers | common_strings,
    "double precision": common_numbers | common_integers,
    "real": common_numbers,
    "timestamp without time zone": st.integers(min_value=-1, max_value=253_402_300_800_000),
}
NATIVE_TYPES = [entry for entry in TYPES if entry[1] in COMMON]


@st.composite
def common_loads(draw):
    """Columns, options, JSONPaths and one file of mostly common values, one object per line."""
    columns = []
    for i in range(draw(st.integers(min_value=1, max_value=4))):
        ddl, data_type, length = draw(st.sampled_from(NATIVE_TYPES if draw(st.integers(0, 9)) else TYPES))
        columns.append((f"c{i}", ddl, Column(f"c{i}", data_type, length, draw(st.integers(0, 19)) == 0)))
    mode = draw(st.sampled_from(["auto", "auto", "paths", "paths", "auto ignorecase"]))
    paths = [draw(st.sampled_from([f"$.{name}", f"$['{name}']", f"$.{name}", f"$.o.{name}"])) for name, _, _ in columns]
    documents = []
    for _ in range(draw(st.integers(1, 5))):
        document = {}
        for name, _, column in columns:
            key = draw(st.sampled_from([name] * 8 + [name.upper(), None]))
            if key is not None:
                common = COMMON.get(column.data_type) if draw(st.integers(0, 19)) else None
                document[key] = draw(st.none() | common if common is not None else values)
        documents.append(document)
    data = "\n".join(json.dumps(d, ensure_ascii=draw(st.booleans())) for d in documents).encode("utf-8")
    options = Options(
        empty_as_null=draw(st.booleans()),
        blanks_as_null=draw(st.booleans()),
        truncate_columns=draw(st.integers(0, 9)) == 0,
        accept_inv_chars=draw(st.sampled_from([None] * 9 + ["?"])),
        time_format=draw(st.sampled_from(["epochmillisecs"] * 4 + ["EPOCHMILLISECS", None, "epochsecs"])),
    )
    return columns, mode, paths, data, options


def text_lines(data: bytes) -> list[str]:
    """COPY text rows (each ends with a newline) as copy_into takes them."""
    return data.decode("utf-8", "surrogateescape").split("\n")[:-1]


def exact_conversion(files, plan):
    return convert_files(files, dataclasses.replace(plan, native=False))


def native_plan(columns, mode, paths, options) -> Plan:
    steps = parse_jsonpaths(json.dumps({"jsonpaths": paths}).encode(), "paths.json")
    plan_mode = {"auto": "auto", "auto ignorecase": "ignorecase", "paths": "paths"}[mode]
    return Plan([column for _, _, column in columns], options, plan_mode, steps, native=True)


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(load=common_loads())
@example(
    load=(
        [column("c0", "DOUBLE PRECISION"), column("c1", "VARCHAR(4)"), column("c2", "BIGINT")],
        "auto",
        ["$.c0", "$.c1", "$.c2"],
        b'{"c0": -0.0, "c1": "", "c2": "123456789012345678"}\n{"c0": 5e-324, "c1": "\\u00e9\\u00e9", "c2": -9}\n'
        b'{"c0": 1.2345678901234567, "c1": "\\u3000"}\n{"c0": 12, "c1": "abcd"}',
        Options(time_format="epochmillisecs"),
    )
)
def test_native_conversion_loads_what_the_exact_path_loads(warehouse, load):
    """Whatever batch the native path converts, the exact path converts without a rejected row, and
    PostgreSQL loads the same rows from both; every other batch is handed back (None)."""
    columns, mode, paths, data, options = load
    plan = native_plan(columns, mode, paths, options)
    converter = native.converter_for_plan(plan)
    converted = native_convert(converter, data) if converter is not None else None
    event("native" if converted is not None else "handed back")
    if converted is None:
        return
    exact = exact_conversion([("x.json", data)], plan)
    assert exact.errors == []
    assert converted[1] == exact.rows
    ddl = ", ".join(f"{name} {sql_type}" for name, sql_type, _ in columns)
    try:
        warehouse.execute(f"CREATE TABLE t ({ddl});")
        native_outcome = outcome(lambda: copy_into(warehouse, "t", text_lines(converted[0])))
        warehouse.rollback()
        warehouse.execute(f"CREATE TABLE t ({ddl});")
        assert native_outcome == outcome(lambda: copy_into(warehouse, "t", text_lines(exact.data)))
    finally:
        warehouse.rollback()


EVENTS_LIKE = [column("c0", "VARCHAR(256)"), column("c1", "INTEGER"), column("c2", "DOUBLE PRECISION")]
EVENTS_LIKE += [column("c3", "TIMESTAMP"), column("c4", "SMALLINT")]


@pytest.mark.parametrize("mode", ["auto", "paths"])
@pytest.mark.parametrize(
    "options", [Options(time_format="epochmillisecs"), Options(True, True, False, None, "epochmillisecs")]
)
def test_native_path_converts_common_batches(mode, options):
    """The property above is not vacuous: a batch of common values takes the native path."""
    data = b"\n".join(
        json.dumps({"c0": f"user {n} \u00e9", "c1": n, "c2": n / 7, "c3": 1541105830796 + n, "c4": str(n)}).encode()
        for n in range(200)
    )
    plan = native_plan(EVENTS_LIKE, mode, ["$.c0", "$.c1", "$.c2", "$.c3", "$.c4"], options)
    converter = native.converter_for_plan(plan)
    assert converter is not None
    converted = native_convert(converter, data)
    assert converted is not None and converted[1] == 200


@pytest.mark.parametrize(
    "mode, paths, options, not_null",
    [
        ("auto ignorecase", ["$.c0"], Options(), False),
        ("paths", ["$.o.c0"], Options(), False),
        ("auto", ["$.c0"], Options(truncate_columns=True), False),
        ("auto", ["$.c0"], Options(accept_inv_chars="?"), False),
        ("auto", ["$.c0"], Options(), True),
    ],
)
def test_unusual_loads_take_the_exact_path(mode, paths, options, not_null):
    plan = native_plan([column("c0", "VARCHAR(12)", not_null)], mode, paths, options)
    assert native.converter_for_plan(plan) is None


@pytest.mark.parametrize(
    "line",
    [
        b'{"c0": "a\\\\b"}',  # a backslash
        b'{"c0": "a\\tb"}',
        b'{"c0": "a\\u0000b"}',
        b'{"c0": "x", "c1": -0}',
        b'\xef\xbb\xbf{"c0": "x"}',
        b'{"c0": "x",}',
        b'{"c0": 12}',
        b'{"c0": "x", "c1": 1.5}',
        b'{"c0": "x", "c1": NaN}',
        b'{"c0": "x", "c0": "y"}',
        b'{"c0": "x"} {"c0": "y"}',
        b'{"c0": "\\ud800"}',
        b'{"c0": "x", "c1": 2147483648}',
        b'{"c0": "x", "c1": "1234567890"}',
        b'{"c0": "x", "c1": " 1"}',
        b'{"c0": "' + "\u00e9".encode() * 7 + b'"}',  # 14 bytes in VARCHAR(12)
        b'{"c0": "\\u3000 "}',  # blank under BLANKSASNULL
        b"[1, 2]",
    ],
)
def test_unusual_values_hand_the_batch_to_the_exact_path(line):
    columns = [column("c0", "VARCHAR(12)"), column("c1", "INTEGER")]
    plan = native_plan(columns, "auto", ["$.c0", "$.c1"], Options(blanks_as_null=True))
    converter = native.converter_for_plan(plan)
    assert converter is not None
    assert native_convert(converter, b'{"c0": "ok", "c1": 1}\n' + line + b"\n") is None


def test_files_keep_their_order_when_some_take_the_exact_path():
    """Runs of files go native or exact in turn; the rows come out in the files' order either way."""
    plan = native_plan([column("c0", "VARCHAR(12)"), column("c1", "INTEGER")], "auto", ["$.c0", "$.c1"], Options())

    files = []
    for n in range(6):
        documents = [{"c0": f"f{n}r{r}", "c1": r} for r in range(3)]
        pretty = n % 3 == 1  # pretty-printed: the exact path
        texts = [json.dumps(d, indent=2 if pretty else None) for d in documents]
        files.append((f"{n}.json", "\n".join(texts).encode()))
    converter = native.converter_for_plan(plan)
    assert converter is not None
    assert [converter.documents_in(data) for _, data in files] == [3, 0, 3, 3, 0, 3]
    mixed = convert_files(files, plan)
    exact = exact_conversion(files, plan)
    assert mixed.rows == exact.rows == 18
    assert mixed.data == exact.data
    assert mixed.data.split(b"\n")[:4] == [b"f0r0\t0", b"f0r1\t1", b"f0r2\t2", b"f1r0\t0"]


def test_the_blank_guard_knows_every_character_python_calls_space():
    """BLANKSASNULL on the exact path tests str.isspace; the native guard trims these characters."""
    assert sorted(native._SPACES) == [chr(c) for c in range(0x110000) if chr(c).isspace()]


def test_one_function_chooses_the_path_by_size_and_configuration():
    plan = native_plan([column("k", "INTEGER")], "auto", ["$.k"], Options())
    assert not native.fast_path(plan, native.MIN_BYTES - 1) and native.fast_path(plan, native.MIN_BYTES)
    assert native.fast_path(plan, 0, "native") and not native.fast_path(plan, 10 * native.MIN_BYTES, "exact")
    inexpressible = native_plan([column("k", "INTEGER")], "auto", ["$.k"], Options(truncate_columns=True))
    assert not native.fast_path(inexpressible, 10 * native.MIN_BYTES, "native")


def test_a_process_keeps_a_few_converters_and_closes_the_rest():
    plans = [native_plan([column(f"k{n}", "INTEGER")], "auto", [f"$.k{n}"], Options()) for n in range(native._KEPT + 2)]
    first = native.converter_for_plan(plans[0])
    assert first is not None and native_convert(first, b'{"k0": 1}\n') == (b"1\n", 1)
    for plan in plans[1:]:
        native.converter_for_plan(plan)
    assert sum(key[0] == os.getpid() for key in native._converters) == native._KEPT
    with pytest.raises(duckdb.Error):
        first.connection.execute("SELECT 1")
    assert native.converter_for_plan(plans[0]) is not first


def test_local_files_duckdb_reads_in_place_convert_like_their_bytes(tmp_path):
    """A worker hands DuckDB the paths of local files it read (no temporary copy): same rows, same order,
    with or without a final newline, and a pretty-printed file in between still goes the exact way."""
    plan = native_plan([column("c0", "VARCHAR(12)"), column("c1", "INTEGER")], "auto", ["$.c0", "$.c1"], Options())
    files = []
    for n in range(5):
        texts = [json.dumps({"c0": f"f{n}r{r}", "c1": r}, indent=2 if n == 3 else None) for r in range(3)]
        path = tmp_path / f"{n}.json"
        path.write_bytes("\n".join(texts).encode() + (b"\n" if n % 2 else b""))
        files.append((str(path), path.read_bytes()))
    in_place = convert_files([(name, None) for name, _ in files], plan)
    assert in_place == convert_files(files, plan)
    assert in_place.data == exact_conversion(files, plan).data
    assert in_place.rows == 15
