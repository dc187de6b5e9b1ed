"""JSONPaths files: COPY's map from JSON paths to columns, by position."""

from __future__ import annotations

import json
import re

_JSONPATH_STEP = re.compile(
    r"""\.([A-Za-z_$][\w$]*)|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\]|\[\s*(\d+)\s*\]"""
)


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


def follow(document, steps: tuple):
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
