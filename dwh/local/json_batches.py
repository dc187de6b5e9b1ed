"""Turn source files into COPY text rows a batch at a time: the unit of work of a conversion worker.

Many small files are converted together (one pass per column for all of them); a large file
is converted in slices, so a worker holds one slice as Python objects, not the whole file.
Lines are parsed with orjson, one document per line; what is not newline-delimited goes
through the general decoder (dwh.s3.json_documents), which also records parse errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from dwh.errors import LoadError
from dwh.local import native
from dwh.local.columnar import Plan, convert_documents
from dwh.s3.json_documents import documents_in
from dwh.s3.sources import LocalFiles, SourceObject


@dataclass(frozen=True)
class Piece:
    """Part of a local file, for the converting process to read: whole documents, at a line start."""

    offset: int
    length: int  # -1: to the end of the file
    first_line: int  # the file's line number of the piece's first line

    def read(self, path: str) -> bytes:
        return LocalFiles().read(SourceObject(path, 0), self.offset, self.length)


@dataclass
class FileResult:
    data: bytes
    rows: int
    errors: list[LoadError] = field(default_factory=list)


# Documents are converted this many at a time, so a worker holds one slice of a large
# file as Python objects (about ten times its bytes), not the whole file.
SLICE_DOCUMENTS = 20_000
# orjson reads an integer beyond 64 bits as a float (20000000000000000000 becomes 2e+19); the
# general decoder keeps it exact. A file with a run of this many digits anywhere (a cheap,
# conservative test: two C passes) is read by the general decoder.
_LONG_NUMBER = b"9" * 19
_DIGITS_AS_NINES = bytes(b"9"[0] if chr(byte).isdigit() and byte < 128 else b" "[0] for byte in range(256))


class _Batch:
    """Documents from one or more files waiting to be converted together."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.documents: list[Any] = []
        self.where: list[tuple[str, int]] = []
        self.parts: list[bytes] = []
        self.rows = 0
        self.errors: list[LoadError] = []

    def add(self, filename: str, numbered_documents) -> None:
        for line, document in numbered_documents:
            self.documents.append(document)
            self.where.append((filename, line))
        if len(self.documents) >= SLICE_DOCUMENTS:
            self.flush()

    def flush(self) -> None:
        if not self.documents:
            return
        lines = convert_documents(self.documents, self.where, self.plan, self.errors)
        if lines:
            lines.append("")
            self.parts.append("\n".join(lines).encode("utf-8", "surrogateescape"))
            self.rows += len(lines) - 1
        self.documents, self.where = [], []

    def result(self) -> FileResult:
        self.flush()
        self.errors.sort(key=lambda e: (e.filename, e.line_number))
        return FileResult(b"".join(self.parts), self.rows, self.errors)


def _add_file(batch: _Batch, filename: str, data: bytes, first_line: int = 1) -> None:
    """Parse a file into the batch a slice of lines at a time.

    The fast path reads one document per line with orjson. At the first slice that is not
    newline-delimited (pretty-printed, several per line) or has a bad line, the rest of
    the file goes through the general decoder, which records parse errors and resumes at
    the next line. Every earlier slice held only complete documents, so the rest starts
    at a document boundary.
    """
    compression = compressed_as(data) if first_line == 1 else None
    if compression is not None:
        batch.errors.append(
            LoadError(
                filename, 1, "", "", "", 1216,
                f"the file is {compression}-compressed; Redshift's COPY reads such a file only with "
                f"{compression.upper()}, which this project's COPY does not use: store it uncompressed",
            )
        )  # fmt: skip
        return
    if data.translate(_DIGITS_AS_NINES).find(_LONG_NUMBER) >= 0:
        batch.add(filename, list(documents_in(data, filename, batch.errors, first_line)))
        return
    skipped = first_line - 1  # lines of the file before this part of it
    lines = data.split(b"\n")
    loads = orjson.loads
    for start in range(0, len(lines), SLICE_DOCUMENTS):
        chunk = lines[start : start + SLICE_DOCUMENTS]
        try:
            numbered: Iterable[tuple[int, Any]]
            if all(chunk):
                documents = [loads(line) for line in chunk]
                first = skipped + start + 1
                numbered = zip(range(first, first + len(chunk)), documents, strict=True)
            else:
                numbered = [
                    (skipped + start + n, loads(line))
                    for n, line in enumerate(chunk, start=1)
                    if line and not line.isspace()
                ]
        except orjson.JSONDecodeError:
            rest = b"\n".join(lines[start:])
            batch.add(filename, list(documents_in(rest, filename, batch.errors, skipped + start + 1)))
            return
        batch.add(filename, numbered)


# The first bytes of the compressed formats Redshift's COPY takes (GZIP, BZIP2, ZSTD).
_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\x28\xb5\x2f\xfd": "zstd"}


def compressed_as(data: bytes) -> str | None:
    """The compression a file's first bytes show, if any (JSON text never starts so)."""
    return next((name for magic, name in _MAGIC.items() if data.startswith(magic)), None)


def convert_files(files, plan: Plan) -> FileResult:
    """Convert files (name, content) into COPY text rows and the errors of their rejected rows.

    A content of None names a local file read here, a Piece the part of one to read here. Native
    code converts the files whose values allow it (dwh.local.native); the others are converted
    here: many small files together (one pass per column for all of them), a large file in slices.
    """
    local, files = LocalFiles(), list(files)
    on_disk = {name for name, data in files if data is None}
    files = [_content(local, name, data) for name, data in files]
    converter = native.converter_for_plan(plan) if plan.native else None
    if converter is not None:
        parts, rows, errors = [], 0, []
        for run in converter.convert_files(files, on_disk):
            result = FileResult(*run) if isinstance(run, tuple) else _convert_exactly(run, plan)
            parts.append(result.data)
            rows += result.rows
            errors += result.errors
        return FileResult(b"".join(parts), rows, errors)
    return _convert_exactly(files, plan)


def _content(local: LocalFiles, name: str, data: bytes | Piece | None) -> tuple[str, bytes, int]:
    """(name, bytes, the file's line number of their first line)."""
    if data is None:
        return name, local.read(SourceObject(name, 0)), 1
    if isinstance(data, Piece):
        return name, data.read(name), data.first_line
    return name, data, 1


def _convert_exactly(files: list[tuple[str, bytes, int]], plan: Plan) -> FileResult:
    batch = _Batch(plan)
    for filename, data, first_line in files:
        _add_file(batch, filename, data, first_line)
    return batch.result()
