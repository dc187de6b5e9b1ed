"""Turn JSON source files into PostgreSQL COPY text rows with Redshift's COPY JSON rules.

- A file holds JSON objects separated by any whitespace (one per line, pretty-printed,
  or several on a line).
- 'auto' matches top-level keys to column names case-sensitively, 'auto ignorecase'
  case-insensitively; a JSONPaths file maps paths to columns by position.
- Missing fields and JSON null load NULL; "" loads NULL into non-text columns, and into
  text columns only with EMPTYASNULL; whitespace-only text loads NULL with BLANKSASNULL.
- Lengths are checked in UTF-8 bytes, as Redshift's VARCHAR(n) counts bytes.
- A bad value is a LoadError with the fields of Redshift's stl_load_errors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from operator import itemgetter

import orjson

from dwh.errors import LoadError
from dwh.json_documents import documents_in

NULL = "\\N"
_EPOCH = datetime(1970, 1, 1)
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_INTEGER = re.compile(r"[+-]?\d+")
_JSONPATH_STEP = re.compile(
    r"""\.([A-Za-z_$][\w$]*)|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\]|\[\s*(\d+)\s*\]"""
)
_INT_RANGES = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
_TEXT_TYPES = {"character varying", "character", "text"}
_FLOAT_TYPES = {"double precision", "real"}
_TIMESTAMP_TYPES = {"timestamp without time zone", "timestamp with time zone"}
_TRUE = {"t", "true", "1", "y", "yes"}
_FALSE = {"f", "false", "0", "n", "no"}


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    max_length: int | None = None
    not_null: bool = False

    @property
    def type_label(self) -> str:
        return f"{self.data_type}({self.max_length})" if self.max_length else self.data_type


@dataclass(frozen=True)
class Options:
    """The COPY options that change how a value is read."""

    empty_as_null: bool = False
    blanks_as_null: bool = False
    truncate_columns: bool = False
    accept_inv_chars: str | None = None
    time_format: str | None = None


@dataclass
class FileResult:
    data: bytes
    rows: int
    errors: list[LoadError] = field(default_factory=list)


class _FieldError(Exception):
    def __init__(self, code: int, reason: str, value=None):
        super().__init__(reason)
        self.code, self.reason, self.value = code, reason, value


class JsonPathsError(ValueError):
    pass


def parse_jsonpaths(document: bytes, location: str) -> list[tuple]:
    """Parse a JSONPaths file into one tuple of steps (keys and indexes) per column."""
    try:
        paths = json.loads(document)["jsonpaths"]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise JsonPathsError(
            f'{location}: not a JSONPaths file: expected {{"jsonpaths": ["$[\'key\']", ...]}}'
        ) from None
    compiled = []
    for position, path in enumerate(paths, start=1):
        text = path.strip()
        if not text.startswith("$"):
            raise JsonPathsError(f"{location}: path {position} {path!r} must start with $")
        steps, pos = [], 1
        while pos < len(text):
            match = _JSONPATH_STEP.match(text, pos)
            if not match:
                raise JsonPathsError(f"{location}: path {position} {path!r} is not a valid JSONPath")
            dotted, single, double, index = match.groups()
            steps.append(int(index) if index is not None else (dotted or single or double))
            pos = match.end()
        if not steps:
            raise JsonPathsError(f"{location}: path {position} {path!r} selects no field")
        compiled.append(tuple(steps))
    return compiled


def _follow(document, steps: tuple):
    value = document
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return None
        elif not isinstance(value, dict):
            return None
        value = value[step] if isinstance(step, int) else value.get(step)
        if value is None:
            return None
    return value


def _json_text(value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return orjson.dumps(value).decode()


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogateescape"))


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode("utf-8", "surrogateescape")[:limit].decode("utf-8", "ignore")


def _has_surrogates(text: str) -> bool:
    return not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text)


def _text_converter(column: Column, options: Options):
    limit = column.max_length
    quick = limit // 4 if limit else None

    def convert(value) -> str | None:
        text = value if type(value) is str else _json_text(value)
        if not text:
            return None if options.empty_as_null else ""
        if options.blanks_as_null and text.isspace():
            return None
        if "\x00" in text:
            raise _FieldError(1220, "String contains a NUL character", text)
        if _has_surrogates(text):
            if options.accept_inv_chars is None:
                raise _FieldError(
                    1220, "String contains invalid or unsupported UTF8 codepoints (use ACCEPTINVCHARS)", text
                )
            text = "".join(options.accept_inv_chars if "\udc80" <= ch <= "\udcff" else ch for ch in text)
        if limit and len(text) > quick:
            size = _utf8_len(text)
            if size > limit:
                if not options.truncate_columns:
                    raise _FieldError(1204, f"String length exceeds DDL length ({size} bytes > {limit})", text)
                text = _truncate_utf8(text, limit)
        if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
            text = text.translate(_ESCAPES)
        return text

    return convert


def _blank_to_null(value):
    """Non-text columns: "" (and whitespace) is NULL; anything else is stripped text."""
    text = value.strip()
    return text or None


def _int_converter(column: Column, options: Options):
    low, high = _INT_RANGES[column.data_type]

    def convert(value) -> str | None:
        if type(value) is str:
            text = _blank_to_null(value)
            if text is None:
                return None
            if not _INTEGER.fullmatch(text):
                raise _FieldError(1207, "Invalid digit", value)
            number = int(text)
        elif type(value) is int:
            number = value
        else:
            raise _FieldError(1207, "Invalid digit", _json_text(value))
        if not low <= number <= high:
            raise _FieldError(1222, f"Integer value overflow for {column.data_type}", str(number))
        return str(number)

    return convert


def _float_converter(column: Column, options: Options):
    def convert(value) -> str | None:
        if type(value) is float or type(value) is int:
            return repr(value)
        if type(value) is str:
            text = _blank_to_null(value)
            if text is None:
                return None
            try:
                return repr(float(text))
            except ValueError:
                pass
        raise _FieldError(1208, "FLOAT data type format error", _json_text(value) if type(value) is not str else value)

    return convert


def _numeric_converter(column: Column, options: Options):
    def convert(value) -> str | None:
        if type(value) is str:
            text = _blank_to_null(value)
            if text is None:
                return None
        elif type(value) in (int, float):
            text = repr(value)
        else:
            raise _FieldError(1209, "DECIMAL data type format error", _json_text(value))
        try:
            Decimal(text)
        except InvalidOperation:
            raise _FieldError(1209, "DECIMAL data type format error", text) from None
        return text

    return convert


def _bool_converter(column: Column, options: Options):
    def convert(value) -> str | None:
        if value is True or value is False:
            return "t" if value else "f"
        text = str(value).strip().lower() if type(value) in (str, int) else None
        if text == "":
            return None
        if text in _TRUE:
            return "t"
        if text in _FALSE:
            return "f"
        raise _FieldError(
            1210, "BOOLEAN data type format error", _json_text(value) if type(value) is not str else value
        )

    return convert


def _timestamp_converter(column: Column, options: Options):
    fmt = (options.time_format or "").lower()
    divisor = {"epochmillisecs": 1000, "epochsecs": 1}.get(fmt)

    def convert(value) -> str | None:
        raw = value
        if type(value) is str:
            value = _blank_to_null(value)
            if value is None:
                return None
            if divisor and re.fullmatch(r"[+-]?\d+(\.\d+)?", value):
                value = float(value) if "." in value else int(value)
        if divisor and type(value) in (int, float):
            micros = round(value * 1_000_000 / divisor) if type(value) is float else value * (1_000_000 // divisor)
            try:
                moment = _EPOCH + timedelta(microseconds=micros)
            except OverflowError:
                raise _FieldError(1206, "Timestamp value out of range", _json_text(raw)) from None
            return moment.isoformat(sep=" ")
        if type(value) is str:
            try:
                return datetime.fromisoformat(value).isoformat(sep=" ")
            except ValueError:
                pass
        wanted = f"TIMEFORMAT '{options.time_format}'" if options.time_format else "'YYYY-MM-DD HH:MI:SS'"
        raise _FieldError(
            1206, f"Invalid timestamp format or value, expected {wanted}", raw if type(raw) is str else _json_text(raw)
        )

    return convert


def _date_converter(column: Column, options: Options):
    def convert(value) -> str | None:
        if type(value) is str:
            text = _blank_to_null(value)
            if text is None:
                return None
            try:
                return datetime.strptime(text, "%Y-%m-%d").date().isoformat()
            except ValueError:
                pass
        raise _FieldError(
            1205, "Invalid date format, expected 'YYYY-MM-DD'", value if type(value) is str else _json_text(value)
        )

    return convert


def _other_converter(column: Column, options: Options):
    text = _text_converter(Column(column.name, "text"), options)

    def convert(value) -> str | None:
        return text(value if type(value) is str else _json_text(value))

    return convert


def converter_for(column: Column, options: Options):
    if column.data_type in _TEXT_TYPES:
        return _text_converter(column, options)
    if column.data_type in _INT_RANGES:
        return _int_converter(column, options)
    if column.data_type in _FLOAT_TYPES:
        return _float_converter(column, options)
    if column.data_type == "numeric":
        return _numeric_converter(column, options)
    if column.data_type == "boolean":
        return _bool_converter(column, options)
    if column.data_type in _TIMESTAMP_TYPES:
        return _timestamp_converter(column, options)
    if column.data_type == "date":
        return _date_converter(column, options)
    return _other_converter(column, options)


@dataclass
class Plan:
    """How to turn one JSON document into one row: a picklable recipe (converters are rebuilt)."""

    columns: list[Column]
    options: Options
    mode: str  # "auto", "ignorecase" or "paths"
    paths: list[tuple] | None = None

    def __post_init__(self):
        self.converters = [converter_for(c, self.options) for c in self.columns]

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "converters"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__post_init__()


# COPY text format escapes these; a column whose strings hold none skips the check per value.
_SPECIAL = ("\\", "\t", "\n", "\r", "\x00")
_MS_PER_DAY = 86_400_000


def _epoch_millis_formatter():
    days: dict[int, str] = {}

    def format_ms(value: int) -> str:
        day, ms = divmod(value, _MS_PER_DAY)
        date = days.get(day)
        if date is None:
            date = days[day] = (_EPOCH + timedelta(days=day)).date().isoformat()
        seconds, ms = divmod(ms, 1000)
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        return f"{date} {hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}"

    return format_ms


def _convert_column(values: list, column: Column, options: Options, exact_only: bool, slow) -> list:
    """Convert one column of a file; common values take an inline fast path, the rest `slow`."""
    nullable = not column.not_null
    kind = column.data_type
    if exact_only:
        return [slow(i, v) for i, v in enumerate(values)]
    if kind in _TEXT_TYPES:
        joined = "".join([v for v in values if v.__class__ is str])
        if any(special in joined for special in _SPECIAL):
            return [slow(i, v) for i, v in enumerate(values)]
        limit = column.max_length or 10**9
        quick = limit // 4
        if options.blanks_as_null:
            return [
                NULL
                if v is None and nullable
                else v
                if v.__class__ is str and v and len(v) <= limit and (len(v) <= quick or v.isascii()) and not v.isspace()
                else slow(i, v)
                for i, v in enumerate(values)
            ]
        return [
            NULL
            if v is None and nullable
            else v
            if v.__class__ is str and v and len(v) <= limit and (len(v) <= quick or v.isascii())
            else slow(i, v)
            for i, v in enumerate(values)
        ]
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        safe_digits = len(str(high)) - 1
        return [
            NULL
            if v is None and nullable
            else str(v)
            if v.__class__ is int and low <= v <= high
            else v
            if v.__class__ is str and 0 < len(v) <= safe_digits and v.isascii() and v.isdigit()
            else slow(i, v)
            for i, v in enumerate(values)
        ]
    if kind in _FLOAT_TYPES:
        return [
            NULL if v is None and nullable else repr(v) if v.__class__ is float else slow(i, v)
            for i, v in enumerate(values)
        ]
    if kind in _TIMESTAMP_TYPES and (options.time_format or "").lower() == "epochmillisecs":
        format_ms = _epoch_millis_formatter()
        return [
            NULL
            if v is None and nullable
            else format_ms(v)
            if v.__class__ is int and 0 <= v < 253402300800000
            else slow(i, v)
            for i, v in enumerate(values)
        ]
    return [slow(i, v) for i, v in enumerate(values)]


def _extract_all(documents: list, plan: Plan) -> list:
    """The values of every column, column by column; one C-level pass when every key is present."""
    if plan.mode == "paths":
        keys = [steps[0] for steps in plan.paths if len(steps) == 1 and isinstance(steps[0], str)]
        if len(keys) != len(plan.paths):
            keys = None
    else:
        keys = [column.name for column in plan.columns]
    if keys and len(keys) > 1:
        try:
            return list(zip(*map(itemgetter(*keys), documents)))
        except (KeyError, TypeError):
            pass
    return [_extract(documents, plan, position) for position in range(len(plan.columns))]


def _extract(documents: list, plan: Plan, position: int):
    column = plan.columns[position]
    if plan.mode == "paths":
        steps = plan.paths[position]
        if len(steps) == 1 and isinstance(steps[0], str):
            key = steps[0]
            return [d.get(key) if d.__class__ is dict else None for d in documents]
        return [_follow(d, steps) for d in documents]
    return [d.get(column.name) for d in documents]


def _convert_documents(documents: list, where: list, plan: Plan, exact_only: bool, errors: list) -> list[str]:
    """COPY text lines for documents; where[i] is (file, line) of documents[i] for error reports."""
    bad: dict[int, LoadError] = {}
    if plan.mode != "paths" and not all(d.__class__ is dict for d in documents):
        for i, d in enumerate(documents):
            if d.__class__ is not dict:
                bad[i] = LoadError(
                    *where[i],
                    "",
                    "",
                    _json_text(d)[:60],
                    1216,
                    "Invalid JSON: expected an object for FORMAT AS JSON 'auto'",
                )
        documents = [d if d.__class__ is dict else {} for d in documents]
    if plan.mode == "ignorecase":
        documents = [{key.lower(): value for key, value in d.items()} for d in documents]

    columns_out = []
    for column, convert, values in zip(plan.columns, plan.converters, _extract_all(documents, plan)):

        def slow(i, value, column=column, convert=convert):
            try:
                text = None if value is None else convert(value)
                if text is None:
                    if column.not_null:
                        raise _FieldError(1213, "Missing data for not-null field")
                    return NULL
                return text
            except _FieldError as problem:
                if i not in bad:
                    shown = problem.value if isinstance(problem.value, str) else ""
                    bad[i] = LoadError(
                        *where[i], column.name, column.type_label, shown[:1024], problem.code, problem.reason
                    )
                return NULL

        columns_out.append(_convert_column(values, column, plan.options, exact_only, slow))

    rows = zip(*columns_out)
    if bad:
        rows = (row for i, row in enumerate(rows) if i not in bad)
        errors.extend(bad[i] for i in sorted(bad))
    return list(map("\t".join, rows))


# Documents are converted this many at a time, so a worker holds one slice of a large
# file as Python objects (about ten times its bytes), not the whole file.
SLICE_DOCUMENTS = 20_000


class _Batch:
    """Documents from one or more files waiting to be converted together."""

    def __init__(self, plan: Plan):
        self.plan, self.documents, self.where, self.decoded_slowly = plan, [], [], False
        self.parts: list[bytes] = []
        self.rows = 0
        self.errors: list[LoadError] = []

    def add(self, filename: str, numbered_documents, decoded_slowly: bool = False) -> None:
        for line, document in numbered_documents:
            self.documents.append(document)
            self.where.append((filename, line))
        self.decoded_slowly |= decoded_slowly
        if len(self.documents) >= SLICE_DOCUMENTS:
            self.flush()

    def flush(self) -> None:
        if not self.documents:
            return
        lines = _convert_documents(self.documents, self.where, self.plan, self.decoded_slowly, self.errors)
        if lines:
            lines.append("")
            self.parts.append("\n".join(lines).encode("utf-8", "surrogateescape"))
            self.rows += len(lines) - 1
        self.documents, self.where, self.decoded_slowly = [], [], False

    def result(self) -> FileResult:
        self.flush()
        self.errors.sort(key=lambda e: (e.filename, e.line_number))
        return FileResult(b"".join(self.parts), self.rows, self.errors)


def _add_file(batch: _Batch, filename: str, data: bytes) -> None:
    """Parse a file into the batch a slice of lines at a time.

    The fast path reads one document per line. At the first slice that is not
    newline-delimited (pretty-printed, several per line) or has a bad line, the rest of
    the file goes through the general decoder, which records parse errors and resumes at
    the next line. Every earlier slice held only complete documents, so the rest starts
    at a document boundary.
    """
    lines = data.split(b"\n")
    loads = orjson.loads
    for start in range(0, len(lines), SLICE_DOCUMENTS):
        chunk = lines[start : start + SLICE_DOCUMENTS]
        try:
            if all(chunk):
                documents = [loads(line) for line in chunk]
                numbered = zip(range(start + 1, start + len(chunk) + 1), documents)
            else:
                numbered = [
                    (start + n, loads(line)) for n, line in enumerate(chunk, start=1) if line and not line.isspace()
                ]
        except orjson.JSONDecodeError:
            rest = b"\n".join(lines[start:])
            batch.add(filename, list(documents_in(rest, filename, batch.errors, first_line=start + 1)), True)
            return
        batch.add(filename, numbered)


def convert_files(files, plan: Plan) -> FileResult:
    """Convert files (name, content) into COPY text rows and the errors of their rejected rows.

    Many small files are converted together (one pass per column for all of them); a
    large file is converted in slices.
    """
    batch = _Batch(plan)
    for filename, data in files:
        _add_file(batch, filename, data)
    return batch.result()
