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

import orjson

NULL = "\\N"
_EPOCH = datetime(1970, 1, 1)
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_INTEGER = re.compile(r"[+-]?\d+")
_JSONPATH_STEP = re.compile(r"""\.([A-Za-z_$][\w$]*)|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\]|\[\s*(\d+)\s*\]""")
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
class LoadError:
    """One rejected row, with the fields Redshift records in stl_load_errors."""

    filename: str
    line_number: int
    colname: str
    type: str
    raw_field_value: str
    err_code: int
    err_reason: str

    def __str__(self) -> str:
        where = f"{self.filename}, line {self.line_number}"
        if self.colname:
            where += f", column {self.colname} ({self.type})"
        value = f", value {self.raw_field_value!r}" if self.raw_field_value else ""
        return f"{where}: {self.err_reason} [code {self.err_code}]{value}"


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
        raise JsonPathsError(f"{location}: not a JSONPaths file: expected {{\"jsonpaths\": [\"$['key']\", ...]}}") from None
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
                raise _FieldError(1220, "String contains invalid or unsupported UTF8 codepoints (use ACCEPTINVCHARS)", text)
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
        raise _FieldError(1210, "BOOLEAN data type format error", _json_text(value) if type(value) is not str else value)

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
        raise _FieldError(1206, f"Invalid timestamp format or value, expected {wanted}", raw if type(raw) is str else _json_text(raw))

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
        raise _FieldError(1205, "Invalid date format, expected 'YYYY-MM-DD'", value if type(value) is str else _json_text(value))

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
    """How to turn one JSON document into one row: a picklable recipe."""

    columns: list[Column]
    options: Options
    mode: str  # "auto", "ignorecase" or "paths"
    paths: list[tuple] | None = None

    def __post_init__(self):
        self.converters = [converter_for(c, self.options) for c in self.columns]


def _documents(data: bytes, filename: str, errors: list[LoadError]):
    """Yield (line_number, document) for each JSON value in a file.

    The fast path reads one document per line; a file that is not newline-delimited
    (pretty-printed, several per line) or has a bad line goes through the general
    decoder, which records a parse error and resumes at the next line.
    """
    lines = data.split(b"\n")
    parsed = []
    try:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                parsed.append((number, orjson.loads(line)))
    except orjson.JSONDecodeError:
        yield from _documents_slow(data, filename, errors)
        return
    yield from parsed


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _documents_slow(data: bytes, filename: str, errors: list[LoadError]):
    text = data.decode("utf-8", "surrogateescape")
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    pos, line, end = 0, 1, len(text)
    while True:
        start = pos
        while pos < end and text[pos] in " \t\r\n\f\v":
            pos += 1
        line += text.count("\n", start, pos)
        if pos >= end:
            return
        try:
            document, after = decoder.raw_decode(text, pos)
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            bad_line = line + text.count("\n", pos, getattr(exc, "pos", pos))
            snippet = text[pos:pos + 60].split("\n", 1)[0]
            errors.append(LoadError(filename, bad_line, "", "", snippet, 1216, f"Invalid JSON: {reason}"))
            resume = text.find("\n", getattr(exc, "pos", pos))
            if resume < 0:
                return
            line = bad_line + 1
            pos = resume + 1
            continue
        yield line, document
        line += text.count("\n", pos, after)
        pos = after


def convert_file(filename: str, data: bytes, plan: Plan) -> FileResult:
    """Convert one source file into COPY text rows and the errors of its rejected rows."""
    errors: list[LoadError] = []
    out: list[str] = []
    columns, converters = plan.columns, plan.converters
    pairs = list(zip(columns, converters))
    for line_number, document in _documents(data, filename, errors):
        if plan.mode == "paths":
            values = [_follow(document, steps) for steps in plan.paths]
        elif isinstance(document, dict):
            if plan.mode == "ignorecase":
                document = {key.lower(): value for key, value in document.items()}
            get = document.get
            values = [get(column.name) for column in columns]
        else:
            errors.append(LoadError(filename, line_number, "", "", _json_text(document)[:60], 1216,
                                    "Invalid JSON: expected an object for FORMAT AS JSON 'auto'"))
            continue
        fields = []
        try:
            for (column, convert), value in zip(pairs, values):
                text = None if value is None else convert(value)
                if text is None:
                    if column.not_null:
                        raise _FieldError(1213, "Missing data for not-null field")
                    text = NULL
                fields.append(text)
        except _FieldError as problem:
            shown = problem.value if isinstance(problem.value, str) else ""
            errors.append(LoadError(filename, line_number, column.name, column.type_label,
                                    shown[:1024], problem.code, problem.reason))
            continue
        out.append("\t".join(fields))
    body = "\n".join(out)
    return FileResult((body + "\n").encode("utf-8", "surrogateescape") if out else b"", len(out), errors)
