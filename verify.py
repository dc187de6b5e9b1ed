"""Check, on the warehouse dwh.cfg points at, every assumption this project makes about Redshift.

python verify.py                                the checks, as a Markdown table; exit 0 only if all hold
python verify.py --compare OTHER.cfg            this warehouse's star against OTHER's, row for row
python verify.py --compare OTHER.cfg --load     load both first (create_tables.py, then etl.py)

The checks work in a scratch schema of their own, removed afterwards (also on failure or Ctrl-C);
they write to no bucket and read only the configured sources. Paste the table into an issue.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import psycopg2

import create_tables
import etl
from dwh import cli
from dwh.config import Settings, load_settings
from dwh.db import Warehouse
from dwh.errors import LoadFailed, WarehouseError, first_line
from dwh.ops import lock
from dwh.ops.run import connect, open_warehouse
from sql_queries import (
    SONGPLAY_ID,
    STAR_KEYS,
    START_TIME,
    copy_table_queries,
    create_table_queries,
    data_quality_checks,
    staging_events_clear,
    staging_events_table_create,
    time_table_insert,
)

log = logging.getLogger("dwh")

EPOCH = datetime(1970, 1, 1)
#: Events whose keys and start times are computed here and on the warehouse: (session, item, user, ts).
KNOWN_EVENTS = [(583, 0, 26, 1542241826796), (1, 2, None, 1541105830800), (9, 9, 9, 1541105830000)]
#: Play times whose DATE_PART values are computed here: a millisecond before midnight, a year's
#: last day, a Sunday in ISO week 53 of the year before.
KNOWN_TIMES = [datetime(2018, 11, 4, 23, 59, 59, 999000), datetime(2018, 12, 31), datetime(2021, 1, 3, 12)]
#: Titles longer than this many bytes are the bad rows of the MAXERROR check.
SHORT_TITLE = 20
SHOWN_DIFFERENCES = 5


@dataclass
class Verdict:
    assumption: str
    relied_on: str
    expected: str
    observed: str
    holds: bool | None  # None: does not apply to this warehouse


class Scratch:
    """A schema of the check's own on the warehouse; every connection opened here works in it."""

    def __init__(self, settings: Settings, connect: Callable[[Settings], Warehouse]):
        self.settings, self.connect = settings, connect
        self.schema = f"verify_{secrets.token_hex(4)}"
        self.opened: list[Warehouse] = []
        self.warehouse = self.open()

    def open(self) -> Warehouse:
        """Another connection, in the scratch schema (created by the first)."""
        warehouse = self.connect(self.settings)
        self.opened.append(warehouse)
        with warehouse.transaction():
            if len(self.opened) == 1:
                warehouse.execute(f"CREATE SCHEMA {self.schema};")
            warehouse.execute(f"SET search_path TO {self.schema};")
        return warehouse

    def remove(self) -> None:
        """Drop the schema and everything in it, on a fresh connection (the others may be broken)."""
        for warehouse in self.opened:
            try:
                warehouse.close()
            except psycopg2.Error:
                pass
        cleaner = self.connect(self.settings)
        try:
            with cleaner.transaction():
                cleaner.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE;")
        finally:
            cleaner.close()


# THE CHECKS: each runs SQL on the scratch schema and says what it saw.


def committed(w: Warehouse, *statements: str) -> None:
    """Run the statements in a transaction of their own (the tables and rows a check starts from)."""
    with w.transaction():
        for statement in statements:
            w.execute(statement)


def truncate_commits(s: Scratch) -> Verdict:
    w = s.warehouse
    committed(w, "CREATE TABLE kept (n INTEGER);", "CREATE TABLE emptied (n INTEGER);")
    w.execute("INSERT INTO kept VALUES (1);")
    w.execute("TRUNCATE emptied;")
    w.rollback()
    kept = w.scalar("SELECT COUNT(*) FROM kept;")
    w.rollback()
    return Verdict(
        "TRUNCATE commits the open transaction",
        "etl.py empties tables with DELETE in the load's transaction, never TRUNCATE",
        "a row inserted before TRUNCATE survives ROLLBACK: 1 row",
        f"{kept} row",
        kept == 1,
    )


def delete_and_failed_copy_roll_back(s: Scratch) -> Verdict:
    w = s.warehouse
    committed(w, staging_events_table_create, "INSERT INTO staging_events (artist) VALUES ('kept');")
    try:
        with w.transaction():
            w.execute(staging_events_clear)
            w.execute(copy_table_queries(s.settings.sources, date(1999, 1, 1))[0])  # a day no file holds
        copied = "the COPY succeeded"
    except (WarehouseError, psycopg2.Error):
        copied = "the COPY failed"
    rows = w.scalar("SELECT COUNT(*) FROM staging_events;")
    w.rollback()
    return Verdict(
        "DELETE and a failed COPY roll back together",
        "etl.py load_staging_tables: a failed COPY leaves staging as it was",
        "the COPY of a missing day fails; 1 row kept",
        f"{copied}; {rows} row kept",
        copied == "the COPY failed" and rows == 1,
    )


def keys_and_start_times(s: Scratch) -> Verdict:
    w = s.warehouse
    values = ", ".join(f"({a}, {b}, {'NULL' if c is None else c}, {d})" for a, b, c, d in KNOWN_EVENTS)
    committed(
        w,
        "CREATE TABLE known_events (session_id INTEGER, item_in_session INTEGER, user_id INTEGER, ts BIGINT);",
        f"INSERT INTO known_events VALUES {values};",
    )
    observed = w.query(
        f"SELECT e.ts, {SONGPLAY_ID} AS songplay_id, {START_TIME.format(ts='e.ts')} AS start_time "
        "FROM known_events AS e ORDER BY e.ts;"
    )
    w.rollback()
    expected = sorted(
        (
            ts,
            hashlib.md5(f"{a}|{b}|{'' if c is None else c}|{ts}".encode()).hexdigest(),
            EPOCH + timedelta(milliseconds=ts),
        )
        for a, b, c, ts in KNOWN_EVENTS
    )
    same = sum(tuple(row) == want for row, want in zip(observed, expected, strict=False))
    return Verdict(
        "A play's key and start time, with its milliseconds",
        "sql_queries.py SONGPLAY_ID and START_TIME: the same key on both warehouses",
        f"{len(expected)} of {len(expected)} as computed in Python (MD5 of the ids' text; ts / 1000.0 seconds)",
        f"{same} of {len(expected)}" + ("" if same == len(expected) else f": {observed}"),
        same == len(expected) == len(observed),
    )


def trailing_spaces(s: Scratch) -> Verdict:
    w = s.warehouse
    committed(
        w,
        "CREATE TABLE texts (t VARCHAR(8));",
        "CREATE TABLE catalogue (t VARCHAR(8));",
        "INSERT INTO texts VALUES ('x'), ('x '), ('y');",
        "INSERT INTO catalogue VALUES ('x');",
    )
    joined = w.scalar("SELECT COUNT(*) FROM texts AS a INNER JOIN catalogue AS b ON RTRIM(a.t) = RTRIM(b.t);")
    groups = w.scalar("SELECT COUNT(*) FROM (SELECT RTRIM(t) AS t FROM texts GROUP BY RTRIM(t)) AS g;")
    length = w.scalar("SELECT LENGTH(t) FROM texts WHERE t LIKE 'x_';")
    w.rollback()
    observed = f"join {joined}, groups {groups}, LENGTH('x ') {length}"
    return Verdict(
        "RTRIM'd text joins and groups alike; LENGTH counts trailing spaces",
        "the song match, text keys, deterministic picks (RTRIM, then LENGTH)",
        "join 2, groups 2, LENGTH('x ') 2",
        observed,
        observed == "join 2, groups 2, LENGTH('x ') 2",
    )


def maxerror_and_load_errors(s: Scratch) -> list[Verdict]:
    """COPY song files whose titles a narrow column rejects: MAXERROR k+1 loads the rest, k fails."""
    w = s.warehouse
    sources = dataclasses.replace(s.settings.sources, song_data=s.settings.sources.song_data.rstrip("/") + "/A/A/A")
    sources = dataclasses.replace(sources, song_manifest=None)
    relied = "[LOAD] MAXERROR, the COPY emulation's max_bad_rows"
    level = logging.getLogger("dwh").level

    def load(title_bytes: int, max_error: int) -> int:
        table = f"CREATE TABLE staging_songs (song_id VARCHAR(32), title VARCHAR({title_bytes}));"
        committed(w, "DROP TABLE IF EXISTS staging_songs;", table)
        with w.transaction():
            return w.execute(copy_table_queries(dataclasses.replace(sources, max_error=max_error))[1])

    logging.getLogger("dwh").setLevel(logging.ERROR)  # the skipped rows are what this check expects
    try:
        files = load(1024, 0)
        bad = w.scalar(f"SELECT COUNT(*) FROM staging_songs WHERE OCTET_LENGTH(title) > {SHORT_TITLE};")
        w.rollback()
        if not bad:
            return [
                Verdict("MAXERROR n admits n - 1 bad rows", relied, "titles over 20 bytes", "none under A/A/A", None)
            ]
        loaded = load(SHORT_TITLE, bad + 1)
        errors = list(w.last_load_errors)
        try:
            load(SHORT_TITLE, bad)
            at_bad = "loaded"
        except (LoadFailed, psycopg2.Error):
            at_bad = "failed"
        w.rollback()
    finally:
        logging.getLogger("dwh").setLevel(level)
    return [
        Verdict(
            "MAXERROR n admits n - 1 bad rows",
            relied,
            f"MAXERROR {bad + 1} loads {files - bad} of {files}; MAXERROR {bad} fails",
            f"MAXERROR {bad + 1} loaded {loaded}; MAXERROR {bad} {at_bad}",
            loaded == files - bad and at_bad == "failed",
        ),
        Verdict(
            "The load-error lookup finds exactly its own COPY's rows",
            "etl.py's report of a COPY's rejected rows (Redshift: sys_load_error_detail)",
            f"{bad} rows, all in column title",
            f"{len(errors)} rows, columns {sorted({e.colname.strip() for e in errors})}",
            len(errors) == bad and {e.colname.strip() for e in errors} == {"title"},
        ),
    ]


def lock_waits_end(s: Scratch) -> list[Verdict]:
    """The load lock's own mechanism (dwh.ops.lock.try_lock) on an etl_lock of the scratch schema."""
    holder, waiter = s.open(), s.open()
    committed(holder, lock.etl_lock_table_create)
    holder.execute(lock.run_lock)
    pid = holder.scalar("SELECT PG_BACKEND_PID();")
    started = time.monotonic()
    waited = "was granted" if lock.try_lock(waiter, 1.0) else "was cancelled"
    seconds = time.monotonic() - started
    waiter.rollback()
    waiter.query(f"SELECT PG_TERMINATE_BACKEND({int(pid)});")
    waiter.rollback()
    after = "was granted" if lock.try_lock(waiter, 10.0) else "was cancelled"
    waiter.rollback()
    return [
        Verdict(
            "statement_timeout ends a LOCK wait",
            "dwh/ops/lock.py waits for the load lock in short tries",
            "the LOCK was cancelled after about 1 s",
            f"the LOCK {waited} after {seconds:.1f} s",
            waited == "was cancelled" and seconds < 5,
        ),
        Verdict(
            "A session that ends releases its lock",
            "a killed run (kill -9, a lost host) frees the load lock",
            "LOCK was granted once the holder's session was terminated",
            f"LOCK {after}",
            after == "was granted",
        ),
    ]


def checks_run(s: Scratch) -> Verdict:
    w = s.warehouse
    committed(w, "DROP TABLE IF EXISTS staging_songs;", *create_table_queries)
    queries = list(dict.fromkeys(check.sql for check in data_quality_checks))
    answered = 0
    for sql in queries:
        try:
            answered += len(w.query(sql)) == 1
        except psycopg2.Error as exc:
            log.warning("a check's query failed: %s", first_line(exc))
        w.rollback()
    return Verdict(
        "The data-quality checks' SQL, the coverage checks' FROM joins included",
        "etl.py's checks before every publish",
        f"{len(queries)} of {len(queries)} queries answer one row",
        f"{answered} of {len(queries)}",
        answered == len(queries),
    )


def date_parts(s: Scratch) -> Verdict:
    w = s.warehouse
    plays = ", ".join(f"('{n}', '{moment.isoformat(sep=' ')}')" for n, moment in enumerate(KNOWN_TIMES))
    committed(
        w,
        *(q for q in create_table_queries if q.table in ("songplays", "time")),
        "DELETE FROM time;",
        "DELETE FROM songplays;",
        f"INSERT INTO songplays (songplay_id, start_time) VALUES {plays};",
        time_table_insert,
    )
    rows = w.query("SELECT start_time, hour, day, week, month, year, weekday FROM time ORDER BY start_time;")
    w.rollback()
    expected = [
        (t, t.hour, t.day, t.isocalendar()[1], t.month, t.year, (t.weekday() + 1) % 7) for t in sorted(KNOWN_TIMES)
    ]
    observed = [(row[0], *map(int, row[1:])) for row in rows]
    return Verdict(
        "DATE_PART: hour, day, ISO week, month, year, weekday from Sunday = 0",
        "sql_queries.py time_table_insert",
        "; ".join(" ".join(map(str, row[1:])) for row in expected),
        "; ".join(" ".join(map(str, row[1:])) for row in observed),
        observed == expected,
    )


def session_time_zone(s: Scratch) -> Verdict:
    zone = s.warehouse.scalar("SHOW timezone;")
    s.warehouse.rollback()
    return Verdict(
        "Sessions run in UTC",
        "the load-error lookup's time window; start times from epoch milliseconds",
        "UTC",
        str(zone),
        str(zone).upper() in ("UTC", "ETC/UTC"),
    )


def iam_login(s: Scratch) -> Verdict:
    c = s.settings.redshift
    relied = "[CLUSTER] AUTH = iam: the database user AWS's credentials log in as"
    if c is None or c.iam is None:
        return Verdict("The IAM login name", relied, "with AUTH = iam", "AUTH is not iam here", None)
    user = str(s.warehouse.scalar("SELECT CURRENT_USER;"))
    s.warehouse.rollback()
    if c.iam.db_user:
        return Verdict("The IAM login name", relied, f"DB_USER {c.iam.db_user}", user, user == c.iam.db_user)
    return Verdict("The IAM login name", relied, "IAM:<user> or IAMR:<role>", user, user.startswith(("IAM:", "IAMR:")))


CHECKS: list[Callable[[Scratch], Verdict | list[Verdict]]] = [
    truncate_commits,
    delete_and_failed_copy_roll_back,
    keys_and_start_times,
    trailing_spaces,
    maxerror_and_load_errors,
    lock_waits_end,
    checks_run,
    date_parts,
    session_time_zone,
    iam_login,
]


def verdicts(
    settings: Settings,
    connect: Callable[[Settings], Warehouse] = open_warehouse,
    checks: list[Callable[[Scratch], Verdict | list[Verdict]]] = CHECKS,
) -> Iterator[Verdict]:
    """Run each check in a scratch schema, removed at the end whatever happens; an error is a failed verdict."""
    scratch = Scratch(settings, connect)
    try:
        for check in checks:
            try:
                found = check(scratch)
            except (psycopg2.Error, WarehouseError) as exc:
                found = Verdict(check.__name__.replace("_", " "), "", "no error", f"error: {first_line(exc)}", False)
                scratch.warehouse.rollback()
            yield from found if isinstance(found, list) else [found]
    finally:
        scratch.remove()


def warehouse_version(settings: Settings, connect: Callable[[Settings], Warehouse] = open_warehouse) -> str:
    warehouse = connect(settings)
    try:
        return " ".join(str(warehouse.scalar("SELECT version();")).split())
    finally:
        warehouse.close()


def table(found: list[Verdict]) -> str:
    """The verdicts as a Markdown table, ready to paste."""
    verdict = {True: "holds", False: "**FAILS**", None: "n/a"}
    lines = ["| assumption | relied on by | expected | observed | verdict |", "|---|---|---|---|---|"]
    for v in found:
        cells = [v.assumption, v.relied_on, v.expected, v.observed, verdict[v.holds]]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


# COMPARE: the same star on two warehouses, row for row.


def differences(here: Settings, there: Settings, shown: int = SHOWN_DIFFERENCES) -> tuple[list[str], bool]:
    """Each star table's rows on both warehouses, matched by key: a report with the first differing rows
    of each table, and whether the stars are the same."""
    lines, same = [], True
    with connect(here) as a, connect(there) as b:
        for star_table, key in STAR_KEYS.items():
            sql = f"SELECT * FROM {star_table} ORDER BY {key};"
            (columns, mine), (theirs_columns, theirs) = a.result(sql), b.result(sql)
            a.rollback()
            b.rollback()
            if columns != theirs_columns:
                lines.append(f"{star_table}: columns differ: {columns} here, {theirs_columns} there")
                same = False
                continue
            at = columns.index(key)
            left, right = {row[at]: row for row in mine}, {row[at]: row for row in theirs}
            differing = [k for k in sorted(set(left) | set(right), key=str) if left.get(k) != right.get(k)]
            summary = f"{star_table}: {len(mine):,} rows here, {len(theirs):,} there"
            lines.append(f"{summary}: " + (f"{len(differing):,} keys differ" if differing else "identical"))
            for k in differing[:shown]:
                lines.append(f"  {key} {k}: here {left.get(k, '(none)')}; there {right.get(k, '(none)')}")
            same = same and not differing
    return lines, same


def load(config: str) -> None:
    """create_tables.py, then etl.py, on the warehouse a config names."""
    for script in (create_tables, etl):
        if script.main(["--config", config, "-q"]) != 0:
            raise WarehouseError(f"{script.__name__}.py --config {config} failed; see its error above")


def main(argv=None) -> int:
    parser = cli.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--compare", metavar="OTHER_CFG", help="compare this warehouse's star with OTHER_CFG's")
    parser.add_argument("--load", action="store_true", help="with --compare: load both warehouses first")
    args = parser.parse_args(argv)
    if args.load and not args.compare:
        parser.error("--load goes with --compare")

    def body() -> None:
        settings = load_settings(args.config)
        if args.compare:
            other = load_settings(args.compare)
            if args.load:
                load(args.config)
                load(args.compare)
            lines, same = differences(settings, other)
            print("\n".join(lines))
            if not same:
                raise WarehouseError(f"the stars of {settings.path.name} and {other.path.name} differ (above)")
            return
        print(f"Warehouse: {describe(settings)}; {warehouse_version(settings)}\n")
        found = []
        for verdict in verdicts(settings):
            found.append(verdict)
            log.info("  %s: %s", verdict.assumption, {True: "holds", False: "FAILS", None: "n/a"}[verdict.holds])
        print(table(found))
        failed = [v.assumption for v in found if v.holds is False]
        if failed:
            raise WarehouseError(f"{len(failed)} of {len(found)} assumptions do not hold here: {'; '.join(failed)}")

    return cli.run(body, args)


def describe(settings: Settings) -> str:
    """The warehouse as a user pasting the table names it: local, a Serverless workgroup, or a cluster and its nodes."""
    if settings.redshift is None:
        return settings.local.description if settings.local else "?"
    host = settings.redshift.host
    name, _, region = host.split(".")[:3]
    if ".redshift-serverless." in host:
        return f"Redshift Serverless workgroup {name} in {region} ({host})"
    return f"Redshift cluster {name} in {region} ({host}), {cluster_nodes(name, region)}"


def cluster_nodes(identifier: str, region: str) -> str:
    """'1 x ra3.large', asked of AWS with the caller's credentials; what stopped it, when it cannot."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        cluster = boto3.client("redshift", region_name=region).describe_clusters(ClusterIdentifier=identifier)
        nodes = cluster["Clusters"][0]
        return f"{nodes['NumberOfNodes']} x {nodes['NodeType']}"
    except (BotoCoreError, ClientError) as exc:
        return f"node type not known ({type(exc).__name__}; python iac_setup.py status shows it)"


if __name__ == "__main__":
    sys.exit(main())
