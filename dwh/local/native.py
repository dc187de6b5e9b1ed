"""Files to COPY text rows in native code, for files whose every value has a common shape.

The exact path (dwh.local.columnar with dwh.local.converters) runs Python for each value. Here two
native libraries convert the files of a batch that allow it, in about half the CPU a row:

- A byte scan turns away a file whose JSON escapes a backslash, tab, newline, CR or NUL (values
  the text format would have to escape, or COPY rejects) or holds an integer -0 (the exact path
  loads 0 into a double column, DuckDB -0.0).
- msgspec decodes the file at C speed against a typed Struct built from the plan. A column's
  values must have the shapes DuckDB converts to the exact path's result: text columns take a
  string or null; integer columns an in-range integer, a string of fewer digits than could
  overflow, or null; double columns a number or null; epochmillisecs timestamps an integer in
  datetime's range or null. Bad JSON, a BOM, NaN, a lone surrogate, a number in a text column,
  1.5 in an integer column: the decode fails. So does a file that is not one object a line.
- DuckDB's typed read_json converts the accepted files in one query and writes PostgreSQL text
  format. Guards in the query raise on text longer than the column's UTF-8 size and on
  whitespace-only text under BLANKSASNULL; DuckDB itself rejects duplicate keys.

A file turned away is converted on the exact path, which loads what Redshift loads and reports
file, line, column and reason for what it rejects; if DuckDB rejects, the whole batch goes there.
Plans the shapes cannot express (ignorecase, nested or shared JSONPaths, NOT NULL columns,
TRUNCATECOLUMNS, ACCEPTINVCHARS, other types or time formats) always take the exact path.
Sources do not matter: DuckDB reads a temporary copy of bytes already read (local or S3).
tests/test_columnar_property.py proves both paths load the same rows under every option.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Collection, Sequence
from typing import Annotated, Any

import msgspec

from dwh.config import sql_literal
from dwh.local.columnar import Plan
from dwh.local.converters import EPOCH_MS_END, INT_RANGES, SAFE_DIGITS, Column, kind_of

# [LOCAL] COPY_CONVERTER = auto uses this path for loads of MIN_BYTES or more, where what it saves a
# row pays for importing DuckDB (docs/benchmarks.md).
MIN_BYTES = 32 << 20
# JSON escapes of \\, \t, \n, \r or NUL (also as \u00XX); and an integer -0 (a -0 followed by what
# ends a number). Each pattern starts with one literal byte, which the regular expression engine
# scans for quickly (an alternation of whole patterns was slower than msgspec's decode).
_ESCAPE_NEEDING_EXACT = re.compile(rb"\\(?:[\\tnr]|u00(?:0[09adAD0]|5[cC]))")
_MINUS_ZERO = re.compile(rb"-0(?:[\s,\]}]|$)")
# Python's str.isspace characters: under BLANKSASNULL such text loads NULL on the exact path.
_SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
_SPACES += "\u2028\u2029\u202f\u205f\u3000"


def _needs_exact(data: bytes) -> bool:
    """Whether the file's bytes hold an escape or a -0 that only the exact path converts alike."""
    return _ESCAPE_NEEDING_EXACT.search(data) is not None or _MINUS_ZERO.search(data) is not None


def fast_path(plan: Plan, total_bytes: int, choice: str = "auto") -> bool:
    """Whether a load converts with native code first: the one place a COPY's conversion path is chosen.

    choice is [LOCAL] COPY_CONVERTER: "exact" never, "native" always, "auto" for MIN_BYTES or more.
    Either way a plan the native shapes cannot express, and a file they do not fit, take the exact path.
    """
    wanted = choice == "native" or (choice == "auto" and total_bytes >= MIN_BYTES)
    return wanted and converter_for_plan(plan) is not None


def _identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _keys(plan: Plan) -> list[str] | None:
    """The JSON key of each column, or None when a column is not one distinct top-level key."""
    keys = plan.keys() if plan.mode != "ignorecase" else None
    if keys is None or len(set(keys)) != len(keys) or not all(keys):
        return None
    return keys


def _column_shape(column: Column, key: str, plan: Plan) -> tuple[Any, str, str] | None:
    """(msgspec type, DuckDB type, DuckDB expression) of one column, or None if it needs the exact path."""
    options, kind, value = plan.options, kind_of(column.data_type), _identifier(key)
    if column.not_null:
        return None
    if kind == "text":
        # CASE evaluates a branch only for the rows that reach it: the costly blank test runs only
        # for text that does not start with printable ASCII.
        converted = f"NULLIF({value}, '')" if options.empty_as_null else value
        branches = [f"WHEN {value} IS NULL THEN NULL"]
        if column.max_length:
            branches.append(f"WHEN strlen({value}) > {column.max_length} THEN error('exact path')")
        if options.blanks_as_null:
            branches.append(f"WHEN ascii({value}) BETWEEN 33 AND 126 THEN {converted}")
            blank = f"{value} <> '' AND trim({value}, {sql_literal(_SPACES)}) = ''"
            branches.append(f"WHEN {blank} THEN error('exact path')")
        return str | None, "VARCHAR", f"CASE {' '.join(branches)} ELSE {converted} END"
    if kind == "integer":
        low, high = INT_RANGES[column.data_type]
        shape = (
            Annotated[int, msgspec.Meta(ge=low, le=high)]
            | Annotated[str, msgspec.Meta(pattern=f"^[0-9]{{0,{SAFE_DIGITS[column.data_type]}}}$")]
            | None
        )
        return shape, "VARCHAR", f"CAST(NULLIF({value}, '') AS BIGINT)"
    if kind == "float":
        return float | None, "DOUBLE", value
    if kind == "timestamp" and (options.time_format or "").lower() == "epochmillisecs":
        return Annotated[int, msgspec.Meta(ge=0, lt=EPOCH_MS_END)] | None, "BIGINT", f"epoch_ms({value})"
    return None


class NativeConverter:
    """One plan's msgspec decoder and DuckDB query."""

    def __init__(self, keys: list[str], shapes: list[tuple[Any, str, str]]):
        fields = [(f"c{i}", shape, None) for i, (shape, _, _) in enumerate(shapes)]
        row = msgspec.defstruct("Row", fields, rename={f"c{i}": key for i, key in enumerate(keys)})
        self.decoder = msgspec.json.Decoder(row)
        types = ", ".join(f"{sql_literal(k)}: '{t}'" for k, (_, t, _) in zip(keys, shapes, strict=True))
        self.columns = "{" + types + "}"
        self.select = ", ".join(expression for _, _, expression in shapes)
        self.connection: Any = None

    def documents_in(self, data: bytes) -> int:
        """How many documents the file holds when every one takes this path (one a line, common
        shapes); 0 when the file needs the exact path."""
        if _needs_exact(data):
            return 0
        try:
            count = len(self.decoder.decode_lines(data))
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
            return 0
        if count != data.count(b"\n") + (not data.endswith(b"\n")):
            return 0  # not one document a line: DuckDB would reject it, later and slower
        return count

    def convert_files(self, files: Sequence[tuple], on_disk: Collection[str] = ()) -> list:
        """The files (name, content, ...) in order, as runs: (COPY text rows, their count) for each run
        of files this path converted, and a list of the files' own tuples for each run the exact path
        must convert.

        DuckDB reads the files named in on_disk (local paths whose content this is) where they are,
        rather than a temporary copy of their bytes."""
        accepted: list[bytes] = []
        names: list[str] = []
        runs: list = []
        for entry in files:
            name, data = entry[0], entry[1]
            documents = self.documents_in(data)
            if documents:
                accepted.append(data)
                names.append(name)
                if runs and isinstance(runs[-1], int):
                    runs[-1] += documents
                else:
                    runs.append(documents)
            elif runs and isinstance(runs[-1], list):
                runs[-1].append(entry)
            else:
                runs.append([entry])
        if not accepted:
            return [files]
        counts = [run for run in runs if isinstance(run, int)]
        if all(name in on_disk for name in names):
            text = self._convert_paths(names, max(map(len, accepted)), sum(counts))
        else:
            text = self._convert(accepted, sum(counts))
        if text is None:
            return [files]
        if len(runs) == 1:
            return [(text, counts[0])]
        return _in_runs(text, runs)

    def _convert(self, files: list[bytes], count: int) -> bytes | None:
        """DuckDB's conversion of the files' `count` documents, one a line, from one temporary file
        (written a file at a time: no joined copy); None when a guard or DuckDB rejects one."""
        folder = tempfile.mkdtemp(prefix="sparkify-copy-")
        source = os.path.join(folder, "in.json")
        try:
            with open(source, "wb") as handle:
                for data in files:
                    handle.write(data)
                    if not data.endswith(b"\n"):
                        handle.write(b"\n")
            return self._convert_paths([source], sum(len(data) + 1 for data in files), count)
        finally:
            os.remove(source)
            os.rmdir(folder)

    def _convert_paths(self, paths: list[str], largest: int, count: int) -> bytes | None:
        """DuckDB's conversion of the files at `paths` (`count` documents, one a line, no file over
        `largest` bytes); None when a guard or DuckDB rejects one."""
        import duckdb  # about 0.3 s to import: only once a file has passed msgspec's checks

        if self.connection is None:
            self.connection = duckdb.connect(":memory:", config={"threads": 1})
        folder = tempfile.mkdtemp(prefix="sparkify-copy-")
        target = os.path.join(folder, "out.txt")
        try:
            sources = "[" + ", ".join(sql_literal(path) for path in paths) + "]"
            read = (
                f"read_json({sources}, format='newline_delimited', records=true, "
                f"columns={self.columns}, maximum_object_size={largest + 1})"
            )
            written = self.connection.execute(
                f"COPY (SELECT {self.select} FROM {read}) TO {sql_literal(target)} "
                "(FORMAT csv, HEADER false, DELIMITER '\t', QUOTE '', ESCAPE '', NULLSTR '\\N')"
            ).fetchone()
            if written is None or written[0] != count:
                return None
            with open(target, "rb") as handle:
                return handle.read()
        except duckdb.Error:
            return None
        finally:
            if os.path.exists(target):
                os.remove(target)
            os.rmdir(folder)


def _in_runs(text: bytes, runs: list) -> list[tuple[bytes, int] | list[tuple[str, bytes]]]:
    """Split the converted rows (one line each) among the runs of files this path converted."""
    rows = text.split(b"\n")
    split: list = []
    start = 0
    for run in runs:
        if isinstance(run, int):
            split.append((b"\n".join(rows[start : start + run]) + b"\n", run))
            start += run
        else:
            split.append(run)
    return split


_converters: dict[tuple[int, str], NativeConverter | None] = {}
# Converters kept per process, the most recently used: each holds a DuckDB connection and its threads.
_KEPT = 4


def converter_for_plan(plan: Plan) -> NativeConverter | None:
    """This process's NativeConverter for the plan (None: the plan needs the exact path).

    Cached per process id: a worker forked from a process that holds one makes its own.
    """
    pid = os.getpid()
    cache_key = (pid, repr((plan.columns, plan.options, plan.mode, plan.paths)))
    if cache_key in _converters:
        _converters[cache_key] = _converters.pop(cache_key)  # now the most recently used
    else:
        _converters[cache_key] = _build(plan)
        own = [key for key in _converters if key[0] == pid]
        for key in own[: max(0, len(own) - _KEPT)]:
            evicted = _converters.pop(key)
            if evicted is not None and evicted.connection is not None:
                evicted.connection.close()
    return _converters[cache_key]


def _build(plan: Plan) -> NativeConverter | None:
    options = plan.options
    if options.truncate_columns or options.accept_inv_chars is not None:
        return None
    keys = _keys(plan)
    if keys is None:
        return None
    shapes = [_column_shape(column, key, plan) for column, key in zip(plan.columns, keys, strict=True)]
    if any(shape is None for shape in shapes):
        return None
    return NativeConverter(keys, [shape for shape in shapes if shape is not None])
