"""Documents to COPY text rows, column by column: the exact path of the COPY emulation.

Each column's values are taken from every document at once and the common values (short
plain text, in-range integers, floats, epoch milliseconds) are converted inline; every other
value goes through the column's per-value converter (dwh.local.converters), which decides
what loads and what is rejected. The inline checks only pick values whose result the
converter would give in the same form or an equal value; tests/test_columnar_property.py
proves this path and the native one load the rows, and report the errors, of a per-value reference.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from operator import itemgetter

from dwh.errors import LoadError
from dwh.local.converters import (
    EPOCH,
    EPOCH_MS_END,
    INT_RANGES,
    MAX_UTF8_BYTES,
    NEEDS_EXACT_TEXT,
    NULL,
    SAFE_DIGITS,
    Column,
    FieldError,
    Options,
    converter_for,
    json_text,
    kind_of,
)
from dwh.local.jsonpaths import follow


@dataclass
class Plan:
    """How to turn one JSON document into one row: a picklable recipe (converters are rebuilt)."""

    columns: list[Column]
    options: Options
    mode: str  # "auto", "ignorecase" or "paths"
    paths: list[tuple] = field(default_factory=list)
    native: bool = False  # native code converts first (set once per load by dwh.local.native.fast_path)

    def __post_init__(self):
        self.converters = [converter_for(c, self.options) for c in self.columns]

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "converters"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__post_init__()

    def needs_objects(self) -> bool:
        """Does every column take a member by name, so a document that is no object gives no value?"""
        return self.mode != "paths" or all(isinstance(steps[0], str) for steps in self.paths)

    def not_an_object(self) -> str:
        """Why a document that is no object is rejected (see needs_objects)."""
        if self.mode != "paths":
            return "Invalid JSON: expected an object for FORMAT AS JSON 'auto'"
        # Redshift's docs do not say what JSONPaths by name give for an array; it would be a row of
        # NULLs at best (an event without a time), so the local warehouse refuses it.
        return (
            "Invalid JSON: expected an object, as the JSONPaths name members (a file written as one "
            "JSON array must hold its objects one after another instead)"
        )

    def keys(self) -> list[str] | None:
        """The top-level JSON key of each column, or None when a JSONPath goes deeper or indexes."""
        if self.mode != "paths":
            return [column.name for column in self.columns]
        if all(len(steps) == 1 and isinstance(steps[0], str) for steps in self.paths):
            return [steps[0] for steps in self.paths]
        return None


_MS_PER_DAY = 86_400_000


def _epoch_millis_formatter():
    days: dict[int, str] = {}

    def format_ms(value: int) -> str:
        day, ms = divmod(value, _MS_PER_DAY)
        date = days.get(day)
        if date is None:
            date = days[day] = (EPOCH + timedelta(days=day)).date().isoformat()
        seconds, ms = divmod(ms, 1000)
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        return f"{date} {hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}"

    return format_ms


def _convert_column(values: list, column: Column, options: Options, slow) -> list:
    """Convert one column of a file; common values inline, the rest `slow` (the column's converter)."""
    nullable = not column.not_null
    kind = kind_of(column.data_type)
    if kind == "text":
        if NEEDS_EXACT_TEXT.search("".join([v for v in values if v.__class__ is str])):
            return [slow(i, v) for i, v in enumerate(values)]
        limit = column.max_length or 10**9
        quick = limit // MAX_UTF8_BYTES
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
    if kind == "integer":
        low, high = INT_RANGES[column.data_type]
        safe_digits = SAFE_DIGITS[column.data_type]
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
    if kind == "float":
        return [
            NULL if v is None and nullable else repr(v) if v.__class__ is float else slow(i, v)
            for i, v in enumerate(values)
        ]
    if kind == "timestamp" and (options.time_format or "").lower() == "epochmillisecs":
        format_ms = _epoch_millis_formatter()
        return [
            NULL
            if v is None and nullable
            else format_ms(v)
            if v.__class__ is int and 0 <= v < EPOCH_MS_END
            else slow(i, v)
            for i, v in enumerate(values)
        ]
    return [slow(i, v) for i, v in enumerate(values)]


def _extract_all(documents: list, plan: Plan) -> list:
    """The values of every column, column by column; one C-level pass when every key is present."""
    keys = plan.keys()
    if keys is not None and len(keys) > 1:
        try:
            return list(zip(*map(itemgetter(*keys), documents), strict=True))
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
        return [follow(d, steps) for d in documents]
    return [d.get(column.name) for d in documents]


def convert_documents(documents: list, where: list[tuple[str, int]], plan: Plan, errors: list[LoadError]) -> list[str]:
    """COPY text lines for documents; where[i] is (file, line) of documents[i] for error reports."""
    if not documents:
        return []
    bad: dict[int, LoadError] = {}
    if plan.needs_objects() and not all(d.__class__ is dict for d in documents):
        for i, d in enumerate(documents):
            if d.__class__ is not dict:
                filename, line = where[i]
                bad[i] = LoadError(filename, line, "", "", json_text(d)[:60], 1216, plan.not_an_object())
        documents = [d if d.__class__ is dict else {} for d in documents]
    if plan.mode == "ignorecase":
        documents = [{key.lower(): value for key, value in d.items()} for d in documents]

    columns_out = []
    for column, convert, values in zip(plan.columns, plan.converters, _extract_all(documents, plan), strict=True):

        def slow(i, value, column=column, convert=convert):
            try:
                text = None if value is None else convert(value)
                if text is None:
                    if column.not_null:
                        raise FieldError(1213, "Missing data for not-null field")
                    return NULL
                return text
            except FieldError as problem:
                if i not in bad:
                    shown = problem.value if isinstance(problem.value, str) else ""
                    filename, line = where[i]
                    bad[i] = LoadError(
                        filename, line, column.name, column.type_label, shown[:1024], problem.code, problem.reason
                    )
                return NULL

        columns_out.append(_convert_column(values, column, plan.options, slow))

    rows: Iterable[tuple[str, ...]] = zip(*columns_out, strict=True)
    if bad:
        rows = (row for i, row in enumerate(rows) if i not in bad)
        errors.extend(bad[i] for i in sorted(bad))
    return list(map("\t".join, rows))
