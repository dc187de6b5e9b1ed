"""Connecting to the server: its password, connection parameters, and whether it is ours."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from dwh.config import ServerSettings
from dwh.local.server.errors import ServerError
from dwh.local.server.layout import data_dir, log_file, password_file, pgdata

CONNECT_TIMEOUT = 10
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections


def port_error(s: ServerSettings) -> ServerError:
    return ServerError(
        f"port {s.port} on {s.host} is already in use by another program; set [LOCAL] PORT in dwh.cfg to a free port"
    )


def read_password(s: ServerSettings) -> str:
    try:
        return password_file(s).read_text().strip()
    except FileNotFoundError:
        if (pgdata(s) / "PG_VERSION").exists():
            raise ServerError(
                f"{password_file(s)} is missing; delete [LOCAL] DATA_DIR ({data_dir(s)}) to "
                "re-create the local warehouse"
            ) from None
        raise ServerError(
            f"the local warehouse in {data_dir(s)} is not initialised; run `python -m dwh.local start`"
        ) from None
    except OSError as exc:
        raise ServerError(
            f"cannot read {password_file(s)} ({exc.strerror}); run as the user who created "
            "[LOCAL] DATA_DIR or delete it"
        ) from None


def connect_params(s: ServerSettings) -> dict[str, Any]:
    """psycopg2.connect() keyword arguments for the server, without starting anything."""
    return {
        "host": s.host,
        "port": s.port,
        "user": s.user,
        "password": read_password(s),
        "dbname": s.dbname,
        "connect_timeout": CONNECT_TIMEOUT,
    }


def is_ours(conn, s: ServerSettings) -> bool:
    with conn.cursor() as cur:
        cur.execute("SHOW data_directory")
        return Path(cur.fetchone()[0]).resolve() == pgdata(s)


def quick_check(s: ServerSettings) -> dict[str, Any] | None:
    """connect_params(s) if our server answers on HOST:PORT with DB_NAME, else None."""
    try:
        params = connect_params(s)
    except ServerError:
        return None
    try:
        conn = psycopg2.connect(**{**params, "connect_timeout": 3})
    except psycopg2.OperationalError:
        return None
    try:
        return params if is_ours(conn, s) else None
    except psycopg2.Error:
        return None
    finally:
        conn.close()


def admin_connect(s: ServerSettings, password: str):
    """Connect to the maintenance database `postgres`, waiting briefly while the server starts."""
    params: dict[str, Any] = {
        "host": s.host,
        "port": s.port,
        "user": s.user,
        "password": password,
        "dbname": "postgres",
    }
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            return psycopg2.connect(**params, connect_timeout=CONNECT_TIMEOUT)
        except psycopg2.OperationalError as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"
            if "starting up" in message and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            if "password authentication failed" in message:
                raise ServerError(
                    f"cannot log in to the local warehouse as {s.user!r}: {message}; if you changed "
                    f"[LOCAL] DB_USER, set it back or delete {data_dir(s)} to re-create the warehouse"
                ) from None
            raise ServerError(
                f"cannot connect to the local warehouse at {s.host}:{s.port}: {message}; see {log_file(s)}"
            ) from None


def create_database(s: ServerSettings, password: str) -> None:
    """Create DB_NAME unless it exists; refuse a server on our port that is not ours."""
    conn = admin_connect(s, password)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            if not is_ours(conn, s):
                raise port_error(s)
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (s.dbname,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(s.dbname)))
    finally:
        conn.close()
