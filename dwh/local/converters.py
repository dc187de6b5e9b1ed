"""Redshift's COPY JSON rules for one value in one column: the rules of the exact path.

- Missing fields and JSON null load NULL; "" loads NULL into non-text columns, and into
  text columns only with EMPTYASNULL; whitespace-only text loads NULL with BLANKSASNULL.
- Numbers load into text columns as their JSON text; digit strings into integer columns.
- Lengths are checked in UTF-8 bytes, as Redshift's VARCHAR(n) counts bytes.
- A bad value raises FieldError with the code and reason of Redshift's stl_load_errors.

The exact path converts column by column (dwh.local.columnar): common values inline, every other
value here; the constants below are the rules both share, and the native path's shapes too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

import orjson

NULL = "\\N"
EPOCH = datetime(1970, 1, 1)
# Milliseconds from the epoch to 10000-01-01: later instants are past datetime's range (and Redshift's).
EPOCH_MS_END = (datetime.max - EPOCH) // timedelta(milliseconds=1) + 1
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# Text holding one of these needs the exact converter: COPY text escapes, NUL (rejected) and the
# lone surrogates that invalid UTF-8 bytes decode to (rejected, or replaced with ACCEPTINVCHARS).
NEEDS_EXACT_TEXT = re.compile("[\\\\\t\n\r\x00\udc80-\udcff]")
# A character is at most this many UTF-8 bytes: text of at most limit // 4 characters fits.
MAX_UTF8_BYTES = 4
_INTEGER = re.compile(r"[+-]?\d+")
_EPOCH_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
# More significant digits than this overflow every integer type (and would exceed int()'s limit).
_MAX_INT_DIGITS = 20
INT_RANGES = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
# A string of at most this many digits is in range for the type (one digit fewer than its maximum).
SAFE_DIGITS = {data_type: len(str(high)) - 1 for data_type, (_, high) in INT_RANGES.items()}
_KINDS = {
    "character varying": "text",
    "character": "text",
    "text": "text",
    "smallint": "integer",
    "integer": "integer",
    "bigint": "integer",
    "double precision": "float",
    "real": "float",
    "numeric": "numeric",
    "boolean": "boolean",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamp",
    "date": "date",
}
_TRUE = {"t", "true", "1", "y", "yes"}
_FALSE = {"f", "false", "0", "n", "no"}


def kind_of(data_type: str) -> str:
    """The family of rules a PostgreSQL data type loads with: text, integer, float, numeric, ..."""
    return _KINDS.get(data_type, "other")


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


class FieldError(Exception):
    """A value the column rejects: Redshift's error code, its reason and the value as shown."""

    def __init__(self, code: int, reason: str, value=None):
        super().__init__(reason)
        self.code, self.reason, self.value = code, reason, value


def json_text(value) -> str:
    """A JSON value as its JSON text, as it loads into a text column."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return repr(value)
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        # orjson refuses integers beyond 64 bits and lone surrogates (invalid UTF-8 in the file)
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _shown(value) -> str:
    """A rejected value as an error shows it: a string as it is, anything else as its JSON text."""
    return value if type(value) is str else json_text(value)


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogateescape"))


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode("utf-8", "surrogateescape")[:limit].decode("utf-8", "ignore")


def _has_surrogates(text: str) -> bool:
    return not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text)


def _text_converter(column: Column, options: Options):
    limit = column.max_length
    quick = limit // MAX_UTF8_BYTES if limit else 0

    def convert(value) -> str | None:
        text = value if type(value) is str else json_text(value)
        if not text:
            return None if options.empty_as_null else ""
        if options.blanks_as_null and text.isspace():
            return None
        if "\x00" in text:
            raise FieldError(1220, "String contains a NUL character", text)
        if _has_surrogates(text):
            if options.accept_inv_chars is None:
                raise FieldError(
                    1220, "String contains invalid or unsupported UTF8 codepoints (use ACCEPTINVCHARS)", text
                )
            text = "".join(options.accept_inv_chars if "\udc80" <= ch <= "\udcff" else ch for ch in text)
        if limit and len(text) > quick:
            size = _utf8_len(text)
            if size > limit:
                if not options.truncate_columns:
                    raise FieldError(1204, f"String length exceeds DDL length ({size} bytes > {limit})", text)
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
    low, high = INT_RANGES[column.data_type]

    def convert(value) -> str | None:
        if type(value) is str:
            text = _blank_to_null(value)
            if text is None:
                return None
            if not _INTEGER.fullmatch(text):
                raise FieldError(1207, "Invalid digit", value)
            if len(text.lstrip("+-0")) > _MAX_INT_DIGITS:
                raise FieldError(1222, f"Integer value overflow for {column.data_type}", text)
            number = int(text)
        elif type(value) is int:
            number = value
        else:
            raise FieldError(1207, "Invalid digit", json_text(value))
        if not low <= number <= high:
            raise FieldError(1222, f"Integer value overflow for {column.data_type}", str(number))
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
        raise FieldError(1208, "FLOAT data type format error", _shown(value))

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
            raise FieldError(1209, "DECIMAL data type format error", json_text(value))
        try:
            Decimal(text)
        except InvalidOperation:
            raise FieldError(1209, "DECIMAL data type format error", text) from None
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
        raise FieldError(1210, "BOOLEAN data type format error", _shown(value))

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
            if divisor and _EPOCH_NUMBER.fullmatch(value):
                value = float(value) if "." in value or len(value) > _MAX_INT_DIGITS else int(value)
        if divisor and type(value) in (int, float):
            try:
                micros = round(value * 1_000_000 / divisor) if type(value) is float else value * (1_000_000 // divisor)
                moment = EPOCH + timedelta(microseconds=micros)
            except (OverflowError, ValueError):
                raise FieldError(1206, "Timestamp value out of range", json_text(raw)) from None
            return moment.isoformat(sep=" ")
        if type(value) is str:
            try:
                return datetime.fromisoformat(value).isoformat(sep=" ")
            except ValueError:
                pass
        wanted = f"TIMEFORMAT '{options.time_format}'" if options.time_format else "'YYYY-MM-DD HH:MI:SS'"
        raise FieldError(1206, f"Invalid timestamp format or value, expected {wanted}", _shown(raw))

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
        raise FieldError(1205, "Invalid date format, expected 'YYYY-MM-DD'", _shown(value))

    return convert


def _other_converter(column: Column, options: Options):
    """Other types load the value's text (JSON text for non-strings), as an unbounded text column does."""
    return _text_converter(Column(column.name, "text"), options)


_CONVERTERS = {
    "text": _text_converter,
    "integer": _int_converter,
    "float": _float_converter,
    "numeric": _numeric_converter,
    "boolean": _bool_converter,
    "timestamp": _timestamp_converter,
    "date": _date_converter,
    "other": _other_converter,
}


def converter_for(column: Column, options: Options):
    """The function that turns one JSON value into the column's COPY text (None for NULL)."""
    return _CONVERTERS[kind_of(column.data_type)](column, options)
