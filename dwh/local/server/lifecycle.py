"""The server's life cycle: initdb, start, stop and status, serialised per DATA_DIR."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg2

from dwh.config import ServerSettings
from dwh.local.server.connection import (
    ADMIN_USER,
    START_TIMEOUT,
    connect_if_ours,
    connect_params,
    new_password,
    port_error,
    provision,
    read_admin_password,
    read_password,
)
from dwh.local.server.errors import ServerError
from dwh.local.server.layout import (
    admin_password_file,
    bin_dir,
    data_dir,
    executable,
    log_file,
    password_file,
    pgdata,
    postgres_version,
)
from dwh.local.server.liveness import live_server, remove_if_stale
from dwh.local.server.locking import DataDirLock, make_data_dir, write_private
from dwh.local.server.privileges import prepare_ownership, runner_for_start
from dwh.local.server.runner import Runner, running_as_root

# Server settings, written to pgdata/sparkify.conf before every start (so a new version of this
# file applies to old clusters) and included from postgresql.conf. Durability defaults are kept
# (fsync, full_page_writes, synchronous_commit): a committed row survives a killed server.
# What each was measured to do: docs/benchmarks.md, "Settings and sizes".
SERVER_OPTIONS = {
    # TCP on loopback only, no Unix-domain socket: clients use HOST:PORT like a Redshift
    # endpoint, and no socket-path length limit (107 bytes on Linux, 103 on macOS) applies.
    "unix_socket_directories": "",
    # Redshift sessions run in UTC; without this the server would use the machine's zone and
    # TIMESTAMP WITH TIME ZONE / epoch conversions would differ between local and Redshift.
    "TimeZone": "UTC",
    # No WAL archiving/replication for a throwaway local server: with wal_level=minimal a COPY or
    # INSERT ... SELECT into a table created or truncated in the same transaction skips WAL.
    "wal_level": "minimal",
    "max_wal_senders": "0",
    # Keep server.log useful: log statements that take longer than 5 s.
    "log_min_duration_statement": "5000",
    # A bulk-load workload: few sessions, large sorts and hashes. The songplays window sort stays in
    # memory; one statement at a time per load, so a few such sorts at worst.
    "work_mem": "256MB",
    # Autovacuum after each rebuild of the star tables keeps its dead-row list in memory: one pass.
    "maintenance_work_mem": "256MB",
    # DELETE + COPY in one transaction writes WAL for every row even with wal_level=minimal: a large
    # load would checkpoint in the middle of its COPY. Crash safety is unchanged.
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
}
SERVER_CONFIG = "sparkify.conf"
log = logging.getLogger("dwh.local")
INCLUDE_LINE = f"include = '{SERVER_CONFIG}'"


def conf_value(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def server_config(s: ServerSettings) -> str:
    """The text of pgdata/sparkify.conf for these settings."""
    options = {"listen_addresses": s.host, "port": str(s.port), **SERVER_OPTIONS}
    lines = ["# Written by dwh/local/server before every start; edit [LOCAL] in dwh.cfg instead."]
    lines += [f"{key} = {conf_value(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def write_server_config(s: ServerSettings, runner: Runner) -> None:
    """Write sparkify.conf and make sure postgresql.conf includes it (last, so it wins)."""
    path = pgdata(s) / SERVER_CONFIG
    write_private(path, server_config(s))
    runner.own(path)
    main_config = pgdata(s) / "postgresql.conf"
    if INCLUDE_LINE not in main_config.read_text().splitlines():
        with open(main_config, "a") as handle:
            handle.write(f"\n{INCLUDE_LINE}\n")


def pg_ctl_start_args(s: ServerSettings) -> list[str]:
    """pg_ctl's arguments: no -o (pg_ctl would hand it to a shell); options are in sparkify.conf."""
    return ["start", "-D", str(pgdata(s)), "-l", str(log_file(s)), "-w", "-t", str(START_TIMEOUT)]


def pg_ctl_stop_args(s: ServerSettings) -> list[str]:
    return ["stop", "-D", str(pgdata(s)), "-m", "fast", "-w", "-t", str(START_TIMEOUT)]


def initdb(s: ServerSettings, runner: Runner) -> None:
    """Create the cluster in pgdata.init/ and rename it to pgdata/ once complete, so a killed
    initdb never leaves a half-made cluster that looks initialised.

    The cluster's superuser is the launcher's admin role; the scripts' login role is made by
    provision() once the server runs."""
    if s.user == ADMIN_USER:
        raise ServerError(
            f"[LOCAL] DB_USER cannot be {ADMIN_USER!r}, the local warehouse's own admin role; choose another"
        )
    folder = data_dir(s)
    staging = folder / "pgdata.init"
    shutil.rmtree(staging, ignore_errors=True)
    admin_password = new_password()
    pwfile = folder / f".initdb-pw.{os.getpid()}"
    write_private(pwfile, admin_password + "\n")
    try:
        runner.own(pwfile)
        result = runner.run(
            "initdb",
            "-D",
            str(staging),
            "-U",
            ADMIN_USER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-instructions",
            cwd=folder,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise ServerError(
            f"initdb failed in {folder}: {last_line(result.stdout)}; fix the cause or delete [LOCAL] DATA_DIR and retry"
        )
    write_private(admin_password_file(s), admin_password + "\n")
    write_private(password_file(s), new_password() + "\n")
    os.rename(staging, pgdata(s))


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "FATAL" in line or "ERROR" in line or "error" in line:
            return line
    return lines[-1] if lines else "no output"


def port_in_use(host: str, port: int) -> bool:
    """Would binding HOST:PORT fail? (postgres binds with SO_REUSEADDR too, except on Windows,
    where that option would let us bind a port in use)"""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise ServerError(f"[LOCAL] HOST {host!r} does not resolve; set it to 127.0.0.1") from None
    for family, type_, proto, _, addr in infos:
        with socket.socket(family, type_, proto) as sock:
            if sys.platform != "win32":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(addr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
                if exc.errno == errno.EADDRNOTAVAIL and family == socket.AF_INET6:
                    continue  # no IPv6 loopback here; postgres skips it too
                raise ServerError(
                    f"cannot listen on {host}:{port} ({exc.strerror}); set [LOCAL] HOST to 127.0.0.1"
                ) from None
    return False


def start(s: ServerSettings, runner: Runner) -> None:
    log = log_file(s)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if port_in_use(s.host, s.port):
            raise port_error(s)
        remove_if_stale(s)
        write_server_config(s, runner)
        log_size = log.stat().st_size if log.exists() else 0
        result = runner.run("pg_ctl", *pg_ctl_start_args(s), cwd=data_dir(s), timeout=START_TIMEOUT + 30)
        if result.returncode == 0:
            return
        new_log = read_from(log, log_size)
        if "Address already in use" in new_log or "could not bind" in new_log:
            raise port_error(s)
        # After a kill -9 the old server's children may still hold its shared memory for a
        # moment ("pre-existing shared memory block ... is still in use"): retry briefly.
        if "still in use" in new_log and time.monotonic() < deadline:
            time.sleep(0.2)
            continue
        raise ServerError(f"the local warehouse server did not start: {last_line(new_log or result.stdout)}; see {log}")


def read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def ensure_running(s: ServerSettings) -> dict[str, Any]:
    """Initialise the cluster if needed, start the server if it is not running and create DB_NAME.

    Returns psycopg2.connect() keyword arguments (host, port, user, password, dbname,
    connect_timeout). When the server already answers this takes one connection (a few ms).
    """
    connect(s).close()
    return connect_params(s)


def connect(s: ServerSettings):
    """An open connection to the server as the login role, started first if need be: when the server
    already answers, the one connection that found it ours (a connection costs the server a process
    and a password exchange, some 8 ms of CPU here)."""
    conn = connect_if_ours(s)
    if conn is None:
        _start_and_provision(s)
        conn = psycopg2.connect(**connect_params(s))
    return conn


def _start_and_provision(s: ServerSettings) -> None:
    make_data_dir(s)
    with DataDirLock(s):
        running = live_server(s)
        if running is not None and running_as_root() and _process_uid(running.pid) == 0:
            log.warning("Restarting the local warehouse server, which an older version ran as root, unprivileged")
            fast_shutdown(running.pid)
            running = None
        if running is None:
            runner = runner_for_start(s)
            if port_in_use(s.host, s.port):  # before a (slow) initdb
                raise port_error(s)
            if not (pgdata(s) / "PG_VERSION").exists():
                prepare_ownership(s, runner)
                initdb(s, runner)
            if read_admin_password(s) is None:
                read_password(s)  # an older warehouse: fail before starting a server nobody can log in to
            prepare_ownership(s, runner)
            start(s, runner)
        elif running.port is not None and running.port != s.port:
            raise ServerError(
                f"the local warehouse in {data_dir(s)} is running on port {running.port}, but "
                f"[LOCAL] PORT is {s.port}; run `python -m dwh.local stop` first, or set PORT back"
            )
        provision(s)


def is_running(s: ServerSettings) -> bool:
    """Is a server running on this DATA_DIR (a live postmaster owns its postmaster.pid)?"""
    return live_server(s) is not None


def stop(s: ServerSettings) -> bool:
    """Stop the server (fast shutdown: open sessions are rolled back). True if it was running.

    pg_ctl signals the pid in postmaster.pid, so it runs only when that pid is our server."""
    if not pgdata(s).is_dir() or live_server(s) is None:
        return False
    with DataDirLock(s):
        info = live_server(s)
        if info is None:
            return False
        if running_as_root():  # root may signal the server whatever user it runs as
            fast_shutdown(info.pid)
            return True
        result = Runner("self", bin_dir()).run(
            "pg_ctl", *pg_ctl_stop_args(s), cwd=data_dir(s), timeout=START_TIMEOUT + 30
        )
        if result.returncode != 0 and live_server(s) is not None:
            raise ServerError(
                f"could not stop the local warehouse server: {last_line(result.stdout)}; see {log_file(s)}"
            )
    return True


def fast_shutdown(pid: int) -> None:
    """What `pg_ctl stop -m fast` does: SIGINT to the postmaster (sessions are rolled back), then
    wait until it has exited (a zombie left for its reaper counts as exited)."""
    try:
        process = psutil.Process(pid)
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + START_TIMEOUT
        while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() > deadline:
                raise ServerError(f"the local warehouse server (pid {pid}) did not stop within {START_TIMEOUT} s")
            time.sleep(0.02)
    except psutil.NoSuchProcess:
        return


def _process_uid(pid: int) -> int | None:
    try:
        return psutil.Process(pid).uids().real
    except psutil.Error:
        return None


def psql_command(s: ServerSettings) -> tuple[list[str], dict[str, str]]:
    """The wheel's psql, connected to the running server: (argv, environment with the password)."""
    params = ensure_running(s)
    argv = [
        str(executable(bin_dir(), "psql")),
        "-h",
        params["host"],
        "-p",
        str(params["port"]),
        "-U",
        params["user"],
        params["dbname"],
    ]
    return argv, {**os.environ, "PGPASSWORD": params["password"]}


def status(s: ServerSettings) -> str:
    """One human-readable line: running/stopped, pid, port, data dir, PostgreSQL version."""
    try:
        version = postgres_version(bin_dir())
    except ServerError:
        version = "PostgreSQL binaries missing"
    folder = data_dir(s)
    if not (pgdata(s) / "PG_VERSION").exists():
        return f"local warehouse not initialised (data dir {folder}, {version})"
    info = live_server(s)
    if info is None:
        return f"local warehouse stopped (data dir {folder}, port {s.port}, {version})"
    port = info.port or s.port
    state = "running" if info.status in ("ready", "") else info.status
    return (
        f"local warehouse {state}: pid {info.pid}, {s.host}:{port}, database {s.dbname}, "
        f"user {s.user}, data dir {folder}, {version}"
    )
