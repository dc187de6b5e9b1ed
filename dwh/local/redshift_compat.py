"""Redshift's SQL on PostgreSQL: refuse what Redshift would reject, render its DDL, commit where it commits.

The one place that reads the project's SQL for what differs between the dialects (COPY has its own
parser, dwh.local.copy_statement).

Refusing. PostgreSQL runs much that Redshift does not, so a statement could pass every local test and fail
in production. Every statement LocalWarehouse.execute() runs is checked here first against
Redshift's documented lists of unsupported PostgreSQL features, functions and data types, and
against PostgreSQL syntax that is not in Redshift's grammar (DISTINCT ON, ON CONFLICT, RETURNING,
FILTER, the jsonb operators). String literals, quoted identifiers and comments are blanked first, so
a song called 'DISTINCT ON' never trips it. The verdict is cached by statement text.

Sources (docs/redshift.md lists them with the tests):
https://docs.aws.amazon.com/redshift/latest/dg/c_unsupported-postgresql-features.html
https://docs.aws.amazon.com/redshift/latest/dg/c_unsupported-postgresql-functions.html
https://docs.aws.amazon.com/redshift/latest/dg/c_unsupported-postgresql-datatypes.html
"""

from __future__ import annotations

import re
from functools import lru_cache

from dwh.errors import WarehouseError

_FEATURES = "Redshift's unsupported PostgreSQL features"
_FUNCTIONS = "Redshift's unsupported PostgreSQL functions"
_TYPES = "Redshift's unsupported PostgreSQL data types"
_GRAMMAR = "not in Redshift's SQL grammar (a PostgreSQL 9+ addition)"


class RedshiftWouldReject(WarehouseError):
    """A statement the local warehouse refuses because Redshift would reject it."""


def _function(*names: str) -> str:
    return r"\b(?:" + "|".join(names) + r")\s*\("


def _type(*names: str) -> str:
    """A type name where a type goes: after ::, at the end of CAST(... AS t), or in a column definition."""
    alternatives = "|".join(names)
    return (
        rf"::\s*(?:{alternatives})\b"
        rf"|\bAS\s+(?:{alternatives})\s*[)\[(]"
        rf"|[(,]\s*[A-Z_][A-Z0-9_$]*\s+(?:{alternatives})\b(?!\s*\()"
    )


#: (construct, pattern on the blanked, upper-cased statement, where Redshift says no).
RULES: list[tuple[str, str, str]] = [
    ("DISTINCT ON", r"\bDISTINCT\s+ON\s*\(", "not in Redshift's SELECT syntax"),
    ("INSERT ... ON CONFLICT", r"\bON\s+CONFLICT\b", _GRAMMAR),
    ("RETURNING", r"\bRETURNING\b", "not in Redshift's INSERT, UPDATE or DELETE syntax"),
    ("an aggregate FILTER (WHERE ...) clause", r"\bFILTER\s*\(\s*WHERE\b", _GRAMMAR),
    ("IS [NOT] DISTINCT FROM", r"\bIS\s+(?:NOT\s+)?DISTINCT\s+FROM\b", _FUNCTIONS),
    (
        "generate_series() over a table",
        r"^(?=.*\bGENERATE_SERIES\s*\()(?=.*\b(?:FROM|JOIN)\s+(?!GENERATE_SERIES\b)[A-Z_\"])",
        "a leader-node-only function on " + _FUNCTIONS + "; it fails when the query reads a table",
    ),
    ("a JSON operator (->, ->>, #>, @>, <@, ?, ?|, ?&)", r"->|#>|@>|<@|\?", _TYPES + " (JSON) and " + _FUNCTIONS),
    ("the JSON or JSONB type", _type("JSONB?"), _TYPES + "; Redshift has SUPER instead"),
    ("an array (ARRAY[...], a subscript or a type[])", r"\[", _TYPES + " (Arrays) and " + _FEATURES),
    ("a row constructor ROW(...)", r"\bROW\s*\(", _FEATURES + " (Row constructors)"),
    ("a VALUES list used as a table", r"\b(?:FROM|JOIN)\s*\(\s*VALUES\b", _FEATURES),
    ("SAVEPOINT", r"\bSAVEPOINT\b", _FUNCTIONS + " (ROLLBACK TO SAVEPOINT)"),
    (
        "LOCK with a lock mode or NOWAIT",
        r"^\s*LOCK\b(?:[^;]*\bIN\s+[A-Z ]+\s+MODE\b|[^;]*\bNOWAIT\b)",
        "Redshift's LOCK takes only table names and always locks ACCESS EXCLUSIVE",
    ),
    ("an index", r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\b", _FEATURES + " (Indexes)"),
    ("a sequence", r"\bCREATE\s+(?:TEMP(?:ORARY)?\s+)?SEQUENCE\b", _FEATURES + " (Sequences)"),
    ("a trigger", r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\b", _FEATURES + " (Triggers)"),
    ("CREATE TYPE (enumerated or composite types)", r"\bCREATE\s+TYPE\b", _TYPES),
    ("CREATE EXTENSION", r"\bCREATE\s+EXTENSION\b", _FEATURES),
    ("a tablespace", r"\bTABLESPACE\b", _FEATURES + " (Tablespaces)"),
    ("table inheritance (INHERITS)", r"\bINHERITS\s*\(", _FEATURES + " (Inheritance)"),
    ("table partitioning", r"\bPARTITION\s+(?:BY\s+(?:RANGE|LIST|HASH)|OF)\b", _FEATURES + " (Table partitioning)"),
    ("a CHECK constraint", r"\bCHECK\s*\(", _FEATURES + " (Check constraints)"),
    ("an exclusion constraint", r"\bEXCLUDE\s+USING\b", _FEATURES + " (Exclusion constraints)"),
    ("a collation", r"\bCOLLATE\s+(?!CASE_SENSITIVE\b|CASE_INSENSITIVE\b)", _FEATURES + " (Collations)"),
    (
        "ALTER TABLE adding more than one column",
        r"\bALTER\s+TABLE\b.*\bADD\b.*,\s*ADD\b",
        "Redshift's ALTER TABLE adds one column per statement",
    ),
    (
        "an unsupported aggregate function",
        _function(
            "STRING_AGG",
            "ARRAY_AGG",
            "EVERY",
            "XMLAGG",
            "CORR",
            "COVAR_POP",
            "COVAR_SAMP",
            r"REGR_\w+",
            "JSON_AGG",
            "JSONB_AGG",
            "JSON_OBJECT_AGG",
            "JSONB_OBJECT_AGG",
        ),
        _FUNCTIONS,
    ),
    (
        "an unsupported array function",
        _function(
            "UNNEST",
            "ARRAY_LENGTH",
            "ARRAY_UPPER",
            "ARRAY_LOWER",
            "ARRAY_APPEND",
            "ARRAY_PREPEND",
            "ARRAY_CAT",
            "ARRAY_POSITION",
            "ARRAY_REMOVE",
            "ARRAY_TO_STRING",
            "STRING_TO_ARRAY",
            "CARDINALITY",
        ),
        _FUNCTIONS + " (Array functions and operators)",
    ),
    (
        "an unsupported date/time function",
        _function(
            "CLOCK_TIMESTAMP", "JUSTIFY_DAYS", "JUSTIFY_HOURS", "JUSTIFY_INTERVAL", "PG_SLEEP", "TRANSACTION_TIMESTAMP"
        ),
        _FUNCTIONS,
    ),
    ("an unsupported mathematical function", _function("DIV", "SETSEED", "WIDTH_BUCKET"), _FUNCTIONS),
    ("generate_subscripts()", _function("GENERATE_SUBSCRIPTS"), _FUNCTIONS + " (Set returning functions)"),
    (
        "an unsupported string function",
        _function(
            "BIT_LENGTH",
            "OVERLAY",
            "CONVERT_FROM",
            "CONVERT_TO",
            "ENCODE",
            "FORMAT",
            "QUOTE_NULLABLE",
            "REGEXP_MATCHES",
            "REGEXP_SPLIT_TO_ARRAY",
            "REGEXP_SPLIT_TO_TABLE",
        ),
        _FUNCTIONS,
    ),
    (
        "an unsupported JSON function",
        _function(
            r"JSONB_\w+",
            r"JSON_BUILD_\w+",
            "JSON_OBJECT",
            r"JSON_EACH\w*",
            r"JSON_ARRAY_ELEMENTS\w*",
            r"JSON_POPULATE_\w+",
            r"JSON_TO_RECORD\w*",
            "JSON_STRIP_NULLS",
            "JSON_OBJECT_KEYS",
            "TO_JSONB?",
            "ROW_TO_JSON",
            "ARRAY_TO_JSON",
        ),
        _TYPES + " (JSON); Redshift's JSON functions are JSON_EXTRACT_PATH_TEXT and friends on VARCHAR",
    ),
    (
        "an unsupported system information function",
        _function(
            "CURRENT_QUERY",
            "INET_CLIENT_ADDR",
            "INET_CLIENT_PORT",
            "INET_SERVER_ADDR",
            "INET_SERVER_PORT",
            "PG_CONF_LOAD_TIME",
            "PG_IS_OTHER_TEMP_SCHEMA",
            "PG_LISTENING_CHANNELS",
            "PG_MY_TEMP_SCHEMA",
            "PG_POSTMASTER_START_TIME",
            "PG_TRIGGER_DEPTH",
            r"PG_(?:TRY_)?ADVISORY_\w+",
            r"PG_\w*_SIZE",
            "PG_SIZE_PRETTY",
            "TXID_CURRENT",
            r"TXID_\w+",
        ),
        _FUNCTIONS,
    ),
    ("CURRENT_CATALOG", r"\bCURRENT_CATALOG\b", _FUNCTIONS),
    ("a sequence function", _function("NEXTVAL", "CURRVAL", "SETVAL", "LASTVAL"), _FUNCTIONS),
    (
        "full text search",
        _function("TO_TSVECTOR", "TO_TSQUERY", "PLAINTO_TSQUERY", "PHRASETO_TSQUERY", "TS_RANK", "TS_HEADLINE")
        + r"|@@",
        _FEATURES + " (Full text search)",
    ),
    ("an XML function", _function(r"XML\w+", "XPATH", "XPATH_EXISTS"), _FUNCTIONS + " (XML functions)"),
    (
        "an unsupported data type",
        _type(
            "UUID",
            "BYTEA",
            "MONEY",
            "SERIAL",
            "BIGSERIAL",
            "SMALLSERIAL",
            "XML",
            "INET",
            "CIDR",
            "MACADDR8?",
            "TSVECTOR",
            "TSQUERY",
            "POINT",
            "LSEG",
            "BOX",
            "POLYGON",
            "CIRCLE",
            "BIT",
            "VARBIT",
            r"(?:INT4|INT8|NUM|TS|TSTZ|DATE)RANGE",
            "TXID_SNAPSHOT",
            "OID",
            "REGCLASS",
            "REGTYPE",
            "REGPROC",
            "REGPROCEDURE",
            "REGNAMESPACE",
            "REGROLE",
            "REGCONFIG",
        ),
        _TYPES,
    ),
]
_COMPILED = [(construct, re.compile(pattern, re.DOTALL), source) for construct, pattern, source in RULES]

# A string literal (with '' and E'\'' escapes), a dollar-quoted string, a quoted identifier, a comment.
_BLANKED = re.compile(
    r"""
      \b[Ee]'(?:[^'\\]|\\.|'')*'
    | '(?:[^']|'')*'
    | (?P<tag>\$[A-Za-z_]*\$).*?(?P=tag)
    | "(?:[^"]|"")*"
    | --[^\n]*
    | /\*.*?\*/
    """,
    re.VERBOSE | re.DOTALL,
)


def _blank(match: re.Match) -> str:
    text = match.group(0)
    if text.startswith('"'):
        return '"_"'
    if text.startswith(("--", "/*")):
        return " "
    return "''"


def blanked(statement: str) -> str:
    """The statement without what its words cannot mean: literals become '', identifiers "_", comments a space."""
    return _BLANKED.sub(_blank, statement).upper()


@lru_cache(maxsize=4096)
def refusal(statement: str) -> str | None:
    """Why Redshift would reject the statement, or None: the first construct found and its source."""
    text = blanked(statement)
    for construct, pattern, source in _COMPILED:
        if pattern.search(text):
            return f"{construct} ({source})"
    return None


def refuse_what_redshift_rejects(statement: str) -> None:
    """Raise RedshiftWouldReject if Redshift would reject the statement."""
    reason = refusal(statement)
    if reason:
        shown = " ".join(statement.split())
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise RedshiftWouldReject(
            f"Redshift would reject this statement, so the local warehouse refuses it: it uses {reason}: {shown}"
        )


# TRUNCATE. Redshift: "TRUNCATE commits the transaction in which it is run" (and so what ran before it).
_TRUNCATE = re.compile(r"\s*TRUNCATE\b", re.IGNORECASE)


def commits_at_once(statement: str) -> bool:
    """Whether Redshift commits the open transaction when it runs this statement (TRUNCATE does)."""
    return _TRUNCATE.match(statement) is not None


# RENDERING. Render Redshift DDL for PostgreSQL: the one place where the dialects' tables differ.
#
# Only CREATE TABLE needs it. Physical-design attributes (DISTSTYLE, DISTKEY, SORTKEY,
# ENCODE) have no PostgreSQL meaning and are dropped; IDENTITY(seed, step) and
# VARCHAR(MAX) become their PostgreSQL equivalents. PRIMARY KEY and UNIQUE are dropped
# too: Redshift declares but never enforces them, so the local warehouse must not either,
# or a duplicate the SQL lets through would fail here and load silently on Redshift.
# NOT NULL stays: Redshift enforces it. Queries pass through unchanged.

REDSHIFT_VARCHAR_MAX = 65535

_CREATE_TABLE = re.compile(r"^\s*CREATE\s+(TEMP(ORARY)?\s+)?TABLE\b", re.IGNORECASE)
_TABLE_ATTRIBUTES = [
    re.compile(r"\bDISTSTYLE\s+(EVEN|KEY|ALL|AUTO)\b", re.IGNORECASE),
    re.compile(r"\bDISTKEY\s*\(\s*\w+\s*\)", re.IGNORECASE),
    re.compile(r"\b((COMPOUND|INTERLEAVED)\s+)?SORTKEY\s*(AUTO\b|\([\w\s,]*\))", re.IGNORECASE),
    re.compile(r"\bENCODE\s+\w+", re.IGNORECASE),
    re.compile(r"\b(DISTKEY|SORTKEY)\b", re.IGNORECASE),
]
_INFORMATIONAL_CONSTRAINTS = [
    re.compile(r",\s*(CONSTRAINT\s+\w+\s+)?(PRIMARY\s+KEY|UNIQUE)\s*\([\w\s,]*\)", re.IGNORECASE),
    re.compile(r"\s+(PRIMARY\s+KEY|UNIQUE)\b(?=\s*[,\n)])", re.IGNORECASE),
]
_IDENTITY = re.compile(r"\bIDENTITY\s*\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)", re.IGNORECASE)
_VARCHAR_MAX = re.compile(r"\b(VARCHAR|CHARACTER\s+VARYING|NVARCHAR)\s*\(\s*MAX\s*\)", re.IGNORECASE)
_BLANK_RUNS = re.compile(r"[ \t]+(?=[,\n)])|\s+(?=;)")


def _identity(match: re.Match) -> str:
    seed, step = int(match.group(1)), int(match.group(2))
    bound = "MINVALUE" if step > 0 else "MAXVALUE"
    return f"GENERATED BY DEFAULT AS IDENTITY (START WITH {seed} INCREMENT BY {step} {bound} {seed})"


def render_for_postgres(sql: str) -> str:
    """Return sql as PostgreSQL runs it (unchanged unless it is a CREATE TABLE)."""
    if not _CREATE_TABLE.match(sql):
        return sql
    for attribute in _TABLE_ATTRIBUTES + _INFORMATIONAL_CONSTRAINTS:
        sql = attribute.sub("", sql)
    sql = _IDENTITY.sub(_identity, sql)
    sql = _VARCHAR_MAX.sub(f"VARCHAR({REDSHIFT_VARCHAR_MAX})", sql)
    return _BLANK_RUNS.sub("", sql)
