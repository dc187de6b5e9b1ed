"""Decode a file of JSON documents the way Redshift's COPY reads it: any whitespace between them.

The local warehouse's COPY emulation decodes with it, and so does dwh.s3.compact, a Redshift-side
tool, which is why it lives in the core.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from dwh.errors import LoadError


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def documents_in(data: bytes, filename: str, errors: list[LoadError], first_line: int = 1) -> Iterator[tuple[int, Any]]:
    """Every JSON value in data with its line, however separated; a parse error is recorded
    (code 1216) and the decoder resumes at the next line.

    Invalid UTF-8 bytes decode to lone surrogates (surrogateescape), for the caller to reject or
    replace (ACCEPTINVCHARS).
    """
    text = data.decode("utf-8", "surrogateescape")
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    pos, line, end = 0, first_line, len(text)
    while True:
        start = pos
        while pos < end and text[pos] in " \t\r\n\f\v":
            pos += 1
        line += text.count("\n", start, pos)
        if pos >= end:
            return
        try:
            document, after = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            if isinstance(exc, RecursionError):
                reason = "nested too deeply to read (a JSON value inside thousands of arrays or objects)"
            else:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            bad_line = line + text.count("\n", pos, getattr(exc, "pos", pos))
            snippet = text[pos : pos + 60].split("\n", 1)[0]
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
