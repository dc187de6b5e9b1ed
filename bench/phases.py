"""The benchmark's phases, each run by the parent in a fresh child process:

    python -m bench.phases NAME --config CFG --result OUT.json [--file F] [--profile-out P]

A phase does one measured thing and returns its figures (seconds, rows ...); the child adds its
own peak memory and writes them to OUT.json. Each phase imports what it needs inside itself, so a
child's memory counts only its phase's modules (DuckDB's phases never load psycopg2).

PHASES is the registry, in the order the parent runs them, grouped as the report compares them:
the real pipeline, the native COPY floor, the reader alone, and the DuckDB peer.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.memory import own_peak_kb

if TYPE_CHECKING:
    from psycopg2.extensions import connection

    from dwh.config import Settings

Result = dict[str, Any]
ROOT = Path(__file__).resolve().parent.parent  # the repository


@dataclass(frozen=True)
class PhaseArgs:
    config: str  # the dwh.cfg of the benchmark's server and data set
    file: str | None = None  # the floor's COPY input, or DuckDB's database file
    profile_out: str | None = None  # COPY phases: write a cProfile of the load here


Phase = Callable[[PhaseArgs], Result]


def load_settings(config: str | Path) -> Settings:
    from dwh.config import load_settings

    return load_settings(config)


def native_connection(config: str | Path, admin: bool = False) -> connection:
    """A plain psycopg2 connection to the benchmark's server, outside the project's warehouse layer
    (as the launcher's admin role, for what the login role may not do)."""
    import psycopg2

    from dwh.local import server
    from dwh.local.server.connection import admin_params

    local = load_settings(config).local
    if local is None:
        raise ValueError(f"{config}: the benchmark's config names no local server")
    if admin:
        return psycopg2.connect(**admin_params(local, local.dbname))
    return psycopg2.connect(**server.connect_params(local))


# --------------------------------------------------------------------------------------------
# the real pipeline, as etl.py runs it


def create(args: PhaseArgs) -> Result:
    """create_tables.py's drop + create, in one transaction."""
    import create_tables
    from dwh.db import transaction
    from dwh.ops.run import connect

    with connect(load_settings(args.config)) as warehouse:
        started = time.perf_counter()
        with transaction(warehouse):
            create_tables.drop_tables(warehouse)
            create_tables.create_tables(warehouse)
        return {"seconds": time.perf_counter() - started}


def _copy(args: PhaseArgs, which: int) -> Result:
    from dwh.db import run_statements, transaction
    from dwh.ops.run import connect
    from sql_queries import clear_staging_queries, copy_table_queries

    settings = load_settings(args.config)
    statements = [clear_staging_queries[which], copy_table_queries(settings.sources)[which]]
    with connect(settings) as warehouse:
        started = time.perf_counter()
        profiler = None
        if args.profile_out:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        with transaction(warehouse):  # as etl.load_staging_tables: one transaction per table
            results = run_statements(warehouse, statements)
        seconds = time.perf_counter() - started
        if profiler and args.profile_out:
            profiler.disable()
            profiler.dump_stats(args.profile_out)
    return {"seconds": seconds, "rows": results[1][1], "statement_seconds": results[1][2]}


def copy_events(args: PhaseArgs) -> Result:
    """DELETE + COPY staging_events (the emulation: list, read, convert, COPY, ANALYZE)."""
    return _copy(args, 0)


def copy_songs(args: PhaseArgs) -> Result:
    """DELETE + COPY staging_songs."""
    return _copy(args, 1)


def transform(args: PhaseArgs) -> Result:
    """etl.py's star-schema rebuild (DELETE + INSERT ... SELECT) in one transaction."""
    from dwh.db import run_statements, transaction
    from dwh.ops.run import connect
    from sql_queries import clear_table_queries, insert_table_queries

    with connect(load_settings(args.config)) as warehouse:
        started = time.perf_counter()
        with transaction(warehouse):  # as etl.insert_tables (which also runs the checks inside)
            results = run_statements(warehouse, clear_table_queries + insert_table_queries)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": sum(r for label, r, _ in results if label.startswith("insert")),
        "statements": {label: round(s, 3) for label, _, s in results if label.startswith("insert")},
    }


def checks(args: PhaseArgs) -> Result:
    """The data-quality checks etl.py runs before it commits."""
    from dwh import quality
    from dwh.ops.run import connect
    from sql_queries import data_quality_checks

    with connect(load_settings(args.config)) as warehouse:
        started = time.perf_counter()
        results: list[Any] = quality.run_checks(warehouse, data_quality_checks)  # a result's .check is untyped
        seconds = time.perf_counter() - started
    failed = [r.check.name for r in results if r.passed is False]
    return {"seconds": seconds, "checks": len(results), "failed": failed}


def etl_run(args: PhaseArgs) -> Result:
    """etl.py end to end as a user runs it, the server running: both COPYs, the transform, the checks."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "etl.py"), "--config", args.config], cwd=ROOT, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"etl.py failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return {"seconds": seconds}


# Loads run again on the exact path alone ([LOCAL] COPY_CONVERTER = exact): the native converter's gain.
EXACT_PATH = ["copy_events", "copy_songs"]

PIPELINE: dict[str, Phase] = {
    "create": create,
    "copy_events": copy_events,
    "copy_songs": copy_songs,
    "transform": transform,
    "checks": checks,
}


# --------------------------------------------------------------------------------------------
# the floor: native COPY FROM STDIN of the rows the emulation loaded (the parent dumps them first)


def _floor(args: PhaseArgs, table: str) -> Result:
    if args.file is None:
        raise ValueError(f"the floor of {table} needs --file: the table's rows as PostgreSQL text")
    conn = native_connection(args.config)
    try:
        with conn.cursor() as cur, open(args.file, "rb") as handle:
            started = time.perf_counter()
            cur.execute(f"TRUNCATE {table}")  # same transaction as the COPY, as etl.py does
            cur.copy_expert(f"COPY {table} FROM STDIN", handle, size=1 << 20)
            rows = cur.rowcount
            conn.commit()
            seconds = time.perf_counter() - started
            started = time.perf_counter()
            cur.execute(f"ANALYZE {table}")
            conn.commit()
            analyze = time.perf_counter() - started
    finally:
        conn.close()
    return {"seconds": seconds, "rows": rows, "analyze_seconds": analyze}


FLOOR_TABLES = {"floor_events": "staging_events", "floor_songs": "staging_songs"}  # whose dump each one loads
FLOOR: dict[str, Phase] = {name: functools.partial(_floor, table=table) for name, table in FLOOR_TABLES.items()}


# --------------------------------------------------------------------------------------------
# the reader alone


def read_songs(args: PhaseArgs) -> Result:
    """List and read every song file with the emulation's reader (threads, in order), no parsing."""
    from dwh.s3.sources import LocalFiles, read_in_order

    settings = load_settings(args.config)
    store = LocalFiles()
    started = time.perf_counter()
    objects = store.list(settings.sources.song_data)
    listed = time.perf_counter() - started
    files = size = 0
    for _, data in read_in_order(store, objects):
        files += 1
        size += len(data)
    return {"seconds": time.perf_counter() - started, "list_seconds": listed, "files": files, "bytes": size}


READ: dict[str, Phase] = {"read_songs": read_songs}


# --------------------------------------------------------------------------------------------
# the peer: DuckDB's read_json of the same files and the same INSERT ... SELECTs (DuckDB: requirements.txt)

EVENT_COLUMNS = (
    "{artist:'VARCHAR', auth:'VARCHAR', firstName:'VARCHAR', gender:'VARCHAR', itemInSession:'INTEGER', "
    "lastName:'VARCHAR', length:'DOUBLE', level:'VARCHAR', location:'VARCHAR', method:'VARCHAR', "
    "page:'VARCHAR', registration:'DOUBLE', sessionId:'INTEGER', song:'VARCHAR', status:'INTEGER', "
    "ts:'BIGINT', userAgent:'VARCHAR', userId:'VARCHAR'}"
)
SONG_COLUMNS = (
    "{num_songs:'INTEGER', artist_id:'VARCHAR', artist_latitude:'DOUBLE', artist_longitude:'DOUBLE', "
    "artist_location:'VARCHAR', artist_name:'VARCHAR', song_id:'VARCHAR', title:'VARCHAR', "
    "duration:'DOUBLE', year:'INTEGER'}"
)
NO_DUCKDB: Result = {"skipped": "duckdb is not installed (pip install -r requirements.txt)"}


def _duckdb(args: PhaseArgs) -> Any:
    """A connection to the DuckDB database file, or None when DuckDB is not installed."""
    try:
        import duckdb
    except ImportError:
        return None
    if args.file is None:
        raise ValueError("DuckDB's phases need --file: the DuckDB database file")
    return duckdb.connect(args.file)


def duckdb_events(args: PhaseArgs) -> Result:
    con = _duckdb(args)
    if con is None:
        return dict(NO_DUCKDB)
    import sql_queries
    from dwh.local.redshift_compat import render_for_postgres

    settings = load_settings(args.config)
    # The project's CREATE TABLEs as rendered for PostgreSQL, which DuckDB also accepts.
    for statement in sql_queries.drop_table_queries + sql_queries.create_table_queries:
        con.execute(render_for_postgres(statement))
    started = time.perf_counter()
    con.execute(f"""
        INSERT INTO staging_events
        SELECT artist, auth, firstName, gender, itemInSession, lastName, length, level, location, method, page,
               registration, sessionId, song, status, ts, userAgent, CAST(NULLIF(userId, '') AS INTEGER)
        FROM read_json('{settings.sources.log_data}*/**/*.json', format = 'newline_delimited',
                       columns = {EVENT_COLUMNS})
    """)
    seconds = time.perf_counter() - started
    rows = con.execute("SELECT COUNT(*) FROM staging_events").fetchone()[0]
    con.close()
    return {"seconds": seconds, "rows": rows}


def duckdb_songs(args: PhaseArgs) -> Result:
    con = _duckdb(args)
    if con is None:
        return dict(NO_DUCKDB)
    settings = load_settings(args.config)
    started = time.perf_counter()
    # 'unstructured' reads compact and pretty-printed files alike (and is faster than 'auto' here).
    con.execute(f"""
        INSERT INTO staging_songs
        SELECT num_songs, artist_id, artist_latitude, artist_longitude, NULLIF(artist_location, ''), artist_name,
               song_id, title, duration, year
        FROM read_json('{settings.sources.song_data}*/**/*.json', format = 'unstructured',
                       columns = {SONG_COLUMNS})
    """)
    seconds = time.perf_counter() - started
    rows = con.execute("SELECT COUNT(*) FROM staging_songs").fetchone()[0]
    con.close()
    return {"seconds": seconds, "rows": rows, "files": rows}


def duckdb_transform(args: PhaseArgs) -> Result:
    con = _duckdb(args)
    if con is None:
        return dict(NO_DUCKDB)
    import sql_queries

    started = time.perf_counter()
    con.execute("BEGIN")
    statements = {}
    for statement in sql_queries.clear_table_queries + sql_queries.insert_table_queries:
        t = time.perf_counter()
        con.execute(statement)
        if statement.lstrip().upper().startswith("INSERT"):
            statements[statement.split()[2]] = round(time.perf_counter() - t, 3)
    con.execute("COMMIT")
    seconds = time.perf_counter() - started
    rows = sum(con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in sql_queries.STAR_TABLES)
    con.close()
    return {"seconds": seconds, "rows": rows, "statements": statements}


DUCKDB: dict[str, Phase] = {
    "duckdb_events": duckdb_events,
    "duckdb_songs": duckdb_songs,
    "duckdb_transform": duckdb_transform,
}

# etl.py end to end runs after the floor and the exact path: its WAL would otherwise still be
# checkpointing while they run.
WHOLE_RUN: dict[str, Phase] = {"etl": etl_run}

PHASES: dict[str, Phase] = {**PIPELINE, **FLOOR, **READ, **WHOLE_RUN, **DUCKDB}


# --------------------------------------------------------------------------------------------
# the child's entry point


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one benchmark phase in this process (bench/benchmark.py does).")
    parser.add_argument("phase", choices=list(PHASES))
    parser.add_argument("--config", required=True, help="the dwh.cfg of the benchmark's server")
    parser.add_argument("--result", type=Path, required=True, help="write the phase's figures here (JSON)")
    parser.add_argument("--file", help="the floor's COPY input, or DuckDB's database file")
    parser.add_argument("--profile-out", help="COPY phases: write a cProfile of the load here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    result = PHASES[args.phase](PhaseArgs(args.config, args.file, args.profile_out))
    result["vmhwm_self_kb"] = own_peak_kb()
    result["maxrss_children_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    args.result.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
