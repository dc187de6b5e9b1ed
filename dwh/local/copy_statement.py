"""Parse the Redshift COPY ... FORMAT AS JSON statements that the local warehouse emulates."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>\d+)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.$]*)
      | (?P<punct>[(),;])
    )""",
    re.VERBOSE,
)
_IGNORED_SWITCHES = {"COMPUPDATE", "STATUPDATE"}
_ON_OFF = {"ON", "OFF", "TRUE", "FALSE"}
TIME_FORMATS = {"auto", "epochsecs", "epochmillisecs"}


class CopySyntaxError(ValueError):
    """A COPY statement the local warehouse does not understand."""


@dataclass
class CopyStatement:
    table: str
    source: str
    columns: list[str] | None = None
    json: str = "auto"
    region: str | None = None
    time_format: str | None = None
    blanks_as_null: bool = False
    empty_as_null: bool = False
    truncate_columns: bool = False
    accept_inv_chars: str | None = None
    max_error: int = 0
    manifest: bool = False
    credentials: dict = field(default_factory=dict, repr=False)

    @property
    def json_auto(self) -> bool:
        return self.json.lower() in ("auto", "auto ignorecase")

    @property
    def ignore_case(self) -> bool:
        return self.json.lower() == "auto ignorecase"


def is_copy(sql: str) -> bool:
    return re.match(r"\s*COPY\b", sql, re.IGNORECASE) is not None


def _tokens(sql: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    sql = sql.rstrip()
    while pos < len(sql):
        match = _TOKEN.match(sql, pos)
        kind = match.lastgroup if match else None
        if match is None or kind is None or match.end() == pos:
            raise CopySyntaxError(f"COPY: cannot read the statement near {sql[pos : pos + 30]!r}")
        text = match.group(kind)
        if kind == "string":
            text = text[1:-1].replace("''", "'")
        tokens.append((kind, text))
        pos = match.end()
    while tokens and tokens[-1] == ("punct", ";"):
        tokens.pop()
    return tokens


class _Cursor:
    def __init__(self, tokens):
        self.tokens, self.i = tokens, 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, what: str) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise CopySyntaxError(f"COPY: expected {what} at the end of the statement")
        self.i += 1
        return token

    def word(self, *expected: str) -> str:
        kind, text = self.next(" or ".join(expected) or "a word")
        if kind != "word" or (expected and text.upper() not in expected):
            raise CopySyntaxError(f"COPY: expected {' or '.join(expected) or 'a name'}, found {text!r}")
        return text

    def string(self, option: str) -> str:
        self.optional("AS")
        kind, text = self.next(f"a quoted value after {option}")
        if kind != "string":
            raise CopySyntaxError(f"COPY: {option} takes a quoted value, found {text!r}")
        return text

    def optional(self, word: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() == word:
            self.i += 1
            return True
        return False


def parse_copy(sql: str) -> CopyStatement:
    """Parse COPY table [(cols)] FROM 'source' <credentials> FORMAT AS JSON ... options."""
    cur = _Cursor(_tokens(sql))
    cur.word("COPY")
    table = cur.word().lower()
    columns = None
    if cur.peek() == ("punct", "("):
        cur.next("(")
        columns = []
        while True:
            columns.append(cur.word().lower())
            kind, text = cur.next(") or ,")
            if text == ")":
                break
            if text != ",":
                raise CopySyntaxError(f"COPY: expected , or ) in the column list, found {text!r}")
    cur.word("FROM")
    stmt = CopyStatement(table=table, source=cur.string("FROM"), columns=columns)
    has_format = False
    while cur.peek() is not None:
        option = cur.word().upper()
        if option == "IAM_ROLE":
            stmt.credentials["iam_role"] = cur.next("a role ARN or default")[1]
        elif option in ("CREDENTIALS", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN"):
            stmt.credentials[option.lower()] = cur.string(option)
        elif option in ("FORMAT", "JSON"):
            if option == "FORMAT":
                cur.optional("AS")
                cur.word("JSON")
            has_format = True
            token = cur.peek()
            if token and token[0] == "string":
                stmt.json = cur.string("JSON")
        elif option == "REGION":
            stmt.region = cur.string(option)
        elif option == "TIMEFORMAT":
            stmt.time_format = cur.string(option)
            if stmt.time_format.lower() not in TIME_FORMATS:
                raise CopySyntaxError(
                    f"COPY: TIMEFORMAT {stmt.time_format!r} is not emulated locally "
                    f"(use one of {', '.join(sorted(TIME_FORMATS))})"
                )
        elif option == "BLANKSASNULL":
            stmt.blanks_as_null = True
        elif option == "EMPTYASNULL":
            stmt.empty_as_null = True
        elif option == "TRUNCATECOLUMNS":
            stmt.truncate_columns = True
        elif option == "ACCEPTINVCHARS":
            token = cur.peek()
            stmt.accept_inv_chars = "?"
            if token and (token[0] == "string" or token[1].upper() == "AS"):
                stmt.accept_inv_chars = cur.string(option)
            if len(stmt.accept_inv_chars.encode("utf-8")) != 1:
                raise CopySyntaxError("COPY: ACCEPTINVCHARS takes a single ASCII character")
        elif option == "MAXERROR":
            cur.optional("AS")
            kind, text = cur.next("a number after MAXERROR")
            if kind != "number":
                raise CopySyntaxError(f"COPY: MAXERROR takes a whole number, found {text!r}")
            stmt.max_error = int(text)
        elif option == "MANIFEST":
            stmt.manifest = True
        elif option in _IGNORED_SWITCHES:
            token = cur.peek()
            if token and token[0] == "word" and token[1].upper() in _ON_OFF:
                cur.next("ON or OFF")
        else:
            raise CopySyntaxError(f"COPY: option {option} is not emulated by the local warehouse")
    if not has_format:
        raise CopySyntaxError("COPY: the local warehouse emulates FORMAT AS JSON loads only")
    return stmt
