"""The benchmark's parent process: its server, data sets and config files, each phase in a child
process with its memory sampled, the counts checked, the sample runs and the profiles.

run() does a whole benchmark and returns the results that report.report() turns into Markdown.
"""

from __future__ import annotations

import configparser
import importlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import generate, phases
from bench.memory import Sampler
from dwh.local import server

ROOT = phases.ROOT
DATA = Path(__file__).resolve().parent / ".data"
SAMPLE = ROOT / "data" / "udacity-dend"
DB = "bench"

Results = dict[str, Any]


@dataclass(frozen=True)
class Scale:
    events: int
    songs: int
    days: int | None = None  # None: the generator's default


@dataclass(frozen=True)
class Options:
    scales: Sequence[Scale]
    seed: int
    repeats: int  # runs of the sample scripts (the report shows their median)
    duckdb: bool  # run the DuckDB peer
    regenerate: bool  # regenerate cached data sets
    profile_scale: int | None  # profile the COPY phases at the largest scale up to this many events
    data: Path = DATA  # the cache of generated data sets
    keep: bool = False  # keep the temporary folder (server, configs, results)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _CaseKeepingParser(configparser.ConfigParser):
    def optionxform(self, optionstr: str) -> str:
        return optionstr


def write_config(path: Path, data_dir: Path, port: int, dbname: str, data: Path, **local: str) -> Path:
    """dwh.cfg.example for a local warehouse on the benchmark's server, reading data; `local` sets more [LOCAL] keys."""
    parser = _CaseKeepingParser(inline_comment_prefixes=(";", "#"))
    parser.read(ROOT / "dwh.cfg.example", encoding="utf-8")
    values = {
        ("WAREHOUSE", "TARGET"): "local",
        ("LOCAL", "DATA_DIR"): str(data_dir),
        ("LOCAL", "PORT"): str(port),
        ("LOCAL", "DB_NAME"): dbname,
        ("LOCAL", "LOG_DATA"): str(data / "log_data"),
        ("LOCAL", "LOG_JSONPATH"): str(data / "log_json_path.json"),
        ("LOCAL", "SONG_DATA"): str(data / "song_data"),
        **{("LOCAL", key.upper()): value for key, value in local.items()},
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


def checkpoint(config: Path) -> None:
    """Write out what earlier phases left in the server's buffers and WAL before the next phase starts,
    so that a phase is not slowed by the checkpoint of another's writes (etl.py's WAL once made the
    native COPY floor after it 1.7x slower, and the emulation's ratio to it look better than it was)."""
    conn = phases.native_connection(config, admin=True)  # CHECKPOINT is the admin role's
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CHECKPOINT")
    finally:
        conn.close()


def _children_cpu() -> float:
    """CPU seconds of this process's ended children and theirs (a phase's process and its workers)."""
    times = os.times()
    return times.children_user + times.children_system


def server_cpu(data_dir: Path) -> float:
    """CPU seconds the server has used: the postmaster, its running processes, and the ended backends
    it reaped (a phase's connections end with the phase, so its backend's time is counted here)."""
    import psutil

    pid = postmaster_pid(data_dir)
    if pid is None:
        return 0.0
    try:
        postmaster = psutil.Process(pid)
        own = postmaster.cpu_times()
        total = own.user + own.system + own.children_user + own.children_system
        for child in postmaster.children():
            try:
                times = child.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        return 0.0
    return total


class Runner:
    """Runs phases in child processes (python -m bench.phases) against one server."""

    def __init__(self, work: Path, server_dir: Path, verbose: bool) -> None:
        self.work = work
        self.server_dir = server_dir
        self.verbose = verbose
        self.counter = 0

    def phase(
        self,
        name: str,
        config: Path,
        file: Path | None = None,
        env: dict[str, str] | None = None,
        profile_out: Path | None = None,
        label: str | None = None,
    ) -> Results:
        """Run one phase in a child process; its result plus wall time and sampled peak memory.

        `label` names it in the output when the same phase runs twice (with another env)."""
        self.counter += 1
        result_path = self.work / f"result-{self.counter}.json"
        cmd = [sys.executable, "-m", "bench.phases", name, "--config", str(config), "--result", str(result_path)]
        if file:
            cmd += ["--file", str(file)]
        if profile_out:
            cmd += ["--profile-out", str(profile_out)]
        checkpoint(config)
        started = time.perf_counter()
        cpu_before, server_before = _children_cpu(), server_cpu(self.server_dir)
        child = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        with Sampler({"client": child.pid, "server": postmaster_pid(self.server_dir)}) as sampler:
            output = child.communicate()[0]
        peak = sampler.peak
        wall = time.perf_counter() - started
        client_cpu, server_cpu_seconds = _children_cpu() - cpu_before, server_cpu(self.server_dir) - server_before
        if child.returncode != 0:
            raise RuntimeError(f"phase {name} failed (exit {child.returncode}):\n{output[-3000:]}")
        result: Results = json.loads(result_path.read_text())
        result["wall_seconds"] = wall
        result["client_cpu_seconds"] = client_cpu
        result["server_cpu_seconds"] = server_cpu_seconds
        result["client_peak_mb"] = max(peak["client"]["pss_kb"], result["vmhwm_self_kb"]) / 1024
        result["client_peak_rss_mb"] = peak["client"]["rss_kb"] / 1024
        result["client_processes"] = peak["client"]["processes"]
        result["server_peak_mb"] = peak["server"]["pss_kb"] / 1024
        if self.verbose:
            shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()}
            print(f"    {label or name:<17} {json.dumps(shown)}", flush=True)
        return result


def generated(scale: Scale, seed: int, regenerate: bool, cache: Path) -> tuple[Path, Results, Results | None]:
    """The cached data set for a scale (generated if missing or stale): (path, summary, generation).

    The generator runs in a child process, so that its time and peak memory are its own."""
    name = f"e{scale.events}-s{scale.songs}" + (f"-d{scale.days}" if scale.days else "") + f"-seed{seed}"
    out = cache / name
    summary_file = out / "summary.json"
    if summary_file.exists() and not regenerate:
        summary: Results = json.loads(summary_file.read_text())
        if summary.get("format_version") == generate.FORMAT_VERSION:
            return out, summary, None
    cmd = [
        sys.executable,
        str(Path(generate.__file__)),
        str(out),
        "--events",
        str(scale.events),
        "--songs",
        str(scale.songs),
        "--seed",
        str(seed),
        "--force",
    ] + (["--days", str(scale.days)] if scale.days else [])
    started = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with Sampler({"client": child.pid}) as sampler:
        error = child.communicate()[1]
    if child.returncode != 0:
        raise RuntimeError(f"generate.py failed:\n{error[-2000:]}")
    summary = json.loads(summary_file.read_text())
    return out, summary, {"seconds": time.perf_counter() - started, "peak_mb": sampler.peak["client"]["pss_kb"] / 1024}


def verify(config: Path, summary: Results) -> list[str]:
    """Every count the generator reports, against the loaded warehouse; the mismatches."""
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
    conn = phases.native_connection(config)
    problems = []
    try:
        with conn.cursor() as cur:
            for sql, want in expected.items():
                cur.execute(sql)
                row = cur.fetchone()
                assert row is not None  # a COUNT always returns its row
                if row[0] != want:
                    problems.append(f"{sql}: {row[0]:,}, expected {want:,}")
    finally:
        conn.close()
    return problems


def read_every_file(folder: Path) -> int:
    """Read every file under folder once, untimed, so that its pages are in the OS cache; the bytes read.

    Without it the first phase to read a data set pays for the disk (another scale's data may have
    pushed it out of the cache): 100,000 song files once took 80 s there and 3 s in the next phase."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                while chunk := handle.read(1 << 20):
                    total += len(chunk)
    return total


def dump_table(config: Path, table: str, path: Path) -> None:
    """The rows the emulation loaded, as PostgreSQL text: the native COPY floor's input."""
    conn = phases.native_connection(config)
    try:
        with conn.cursor() as cur, open(path, "wb") as handle:
            cur.copy_expert(f"COPY {table} TO STDOUT", handle)
    finally:
        conn.close()


def server_version(params: dict[str, Any]) -> str:
    """The running server's version, named as `postgres -V` names it (PostgreSQL 18.6)."""
    import psycopg2

    conn = psycopg2.connect(**params)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            row = cur.fetchone()
    finally:
        conn.close()
    return f"PostgreSQL {row[0]}" if row else "PostgreSQL (unknown)"


def installed_version(module: str) -> str:
    """The module's __version__ for the report, or "not installed"."""
    try:
        version: str = importlib.import_module(module).__version__
    except ImportError:
        return "not installed"
    return version


def machine(postgres: str) -> Results:
    """What the report says of the machine, the versions that matter and the load at the start."""
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
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "ram_gb": total_kb / 1024 / 1024,
        "python": platform.python_version(),
        "postgres": postgres,
        "duckdb": installed_version("duckdb"),
        "orjson": installed_version("orjson"),
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
        "loadavg_start": os.getloadavg(),
    }


def sample_runs(work: Path, repeats: int, data_dir: Path, port: int) -> Results:
    """create_tables.py + etl.py on the bundled sample, as a user runs them (subprocesses):
    on the benchmark's running server, and from nothing (a fresh server each time)."""

    def scripts(config: Path) -> float:
        started = time.perf_counter()
        for script in ("create_tables.py", "etl.py"):
            done = subprocess.run(
                [sys.executable, str(ROOT / script), "--config", str(config)], cwd=ROOT, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise RuntimeError(f"{script} on the sample failed:\n{done.stderr[-2000:]}")
        return time.perf_counter() - started

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


def profile_copy(runner: Runner, phase: str, config: Path, work: Path, top: int = 12) -> Results:
    """cProfile of a COPY phase: in one process (workers 0) and as configured (workers)."""
    import pstats

    out: Results = {}
    parser = _CaseKeepingParser(inline_comment_prefixes=(";", "#"))
    parser.read(config, encoding="utf-8")
    parser.set("LOCAL", "COPY_WORKERS", "0")
    in_process = config.with_name(f"{config.stem}-in-process.cfg")
    with open(in_process, "w", encoding="utf-8") as handle:
        parser.write(handle)
    for label, profiled in (
        ("in-process conversion ([LOCAL] COPY_WORKERS = 0)", in_process),
        ("as configured (conversion in worker processes when the load is large; main process shown)", config),
    ):
        stats_file = work / f"profile-{phase}-{len(out)}.pstats"
        result = runner.phase(phase, profiled, profile_out=stats_file)
        stats = pstats.Stats(str(stats_file))
        # Stats' total_tt and stats (function -> call counts and times) are missing from typeshed.
        total: float = stats.total_tt  # type: ignore[attr-defined]
        functions: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
        rows = []
        for (filename, line, func), (_, calls, own, cumulative, _) in sorted(
            functions.items(), key=lambda item: item[1][2], reverse=True
        )[:top]:
            where = f"{Path(filename).name}:{line}({func})" if line else func
            rows.append(
                {
                    "function": where,
                    "calls": calls,
                    "tottime": own,
                    "cumtime": cumulative,
                    "share": own / total if total else 0,
                }
            )
        out[label] = {"seconds": result["seconds"], "rows": result["rows"], "profile_total": total, "top": rows}
    return out


def run(options: Options, command: str, verbose: bool) -> Results:
    """The whole benchmark on a private server in a temporary folder: its results, for the report.

    verbose: print each step and each phase's figures as they come."""
    say: Callable[..., None] = print if verbose else (lambda *args, **kwargs: None)
    started = time.perf_counter()
    results: Results = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
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
        params = server.ensure_running(settings)
        results["server_start"] = {"cold": cold, "running": time.perf_counter() - t}
        say(f"  {cold:.2f} s (already running: {results['server_start']['running'] * 1000:.0f} ms)")
        results["machine"] = machine(server_version(params))

        say("Bundled sample: create_tables.py + etl.py as subprocesses ...", flush=True)
        results["sample"] = sample_runs(work, options.repeats, server_dir, settings.port)
        say(f"  server running: {results['sample']['running']}; from nothing: {results['sample']['cold']}")

        for scale in options.scales:
            say(
                f"Scale {scale.events:,} events, {scale.songs:,} songs"
                + (f", {scale.days} days" if scale.days else "")
                + " ...",
                flush=True,
            )
            data, summary, generation = generated(scale, options.seed, options.regenerate, options.data)
            say(
                f"  data in {data}"
                + (
                    f" (generated in {generation['seconds']:.1f} s, peak {generation['peak_mb']:.0f} MB)"
                    if generation
                    else " (cached)"
                )
            )
            config = write_config(work / f"scale-{scale.events}-{scale.songs}.cfg", server_dir, settings.port, DB, data)
            exact_config = write_config(
                work / f"scale-{scale.events}-{scale.songs}-exact.cfg",
                server_dir,
                settings.port,
                DB,
                data,
                copy_converter="exact",
            )
            read_every_file(data)  # every phase reads from a warm page cache, the first one too
            measured = {name: runner.phase(name, config) for name in phases.PIPELINE}
            mismatches = verify(config, summary)
            say("  counts: " + ("all match the generator's summary" if not mismatches else "; ".join(mismatches)))
            for name, table in phases.FLOOR_TABLES.items():  # a floor reloads only its own table's dump
                dump = work / f"{table}.txt"
                dump_table(config, table, dump)
                measured[name] = runner.phase(name, config, file=dump)
                dump.unlink()
            for name in phases.READ:
                measured[name] = runner.phase(name, config)
            for name in phases.EXACT_PATH:  # the same loads without the native converter, side by side
                label = f"{name}_exact"
                measured[label] = runner.phase(name, exact_config, label=label)
            for name in phases.WHOLE_RUN:
                measured[name] = runner.phase(name, config)
            if options.duckdb:
                duck = work / "duck.db"
                for name in phases.DUCKDB:
                    measured[name] = runner.phase(name, config, file=duck)
                for leftover in work.glob("duck.db*"):
                    leftover.unlink()
            results["scales"].append(
                {"summary": summary, "generate": generation, "phases": measured, "mismatches": mismatches}
            )

        if options.profile_scale is not None:
            candidates = [s for s in options.scales if s.events <= options.profile_scale] or list(options.scales[:1])
            scale = max(candidates, key=lambda s: (s.events, s.songs, s.days or 0))
            say(f"Profiling COPY staging_events at {scale.events:,} events ...", flush=True)
            data, _, _ = generated(scale, options.seed, False, options.data)
            config = write_config(work / "profile.cfg", server_dir, settings.port, DB, data)
            results["profile_scale"] = [scale.events, scale.songs]
            results["profile"] = {
                phase: profile_copy(runner, phase, config, work) for phase in ("copy_events", "copy_songs")
            }
    finally:
        server.stop(settings)
        if options.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    results["seconds"] = time.perf_counter() - started
    results["loadavg_end"] = os.getloadavg()
    return results
