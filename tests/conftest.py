"""Shared fixtures: one real local warehouse server per test session, and config files for it."""

from __future__ import annotations

import configparser
import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from dwh.config import load_settings
from dwh.local import server
from dwh.local.warehouse import LocalWarehouse

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "udacity-dend"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(path: Path, values: dict[tuple[str, str], str]) -> Path:
    """Write dwh.cfg.example to path with the given (section, key) values replaced."""
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None)
    parser.optionxform = str
    parser.read(ROOT / "dwh.cfg.example", encoding="utf-8")
    for (section, key), value in values.items():
        if not parser.has_section(section):
            parser.add_section(section)
        parser.set(section, key, value)
    with open(path, "w", encoding="utf-8") as handle:
        parser.write(handle)
    return path


@pytest.fixture(scope="session")
def server_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture(scope="session")
def local_server(server_dir):
    """The embedded PostgreSQL server, started once for the session and stopped after it."""
    settings = server.ServerSettings(data_dir=server_dir, port=free_port())
    server.ensure_running(settings)
    yield settings
    server.stop(settings)


@pytest.fixture(scope="session")
def base_config(local_server) -> dict:
    return {
        ("WAREHOUSE", "TARGET"): "local",
        ("LOCAL", "DATA_DIR"): str(local_server.data_dir),
        ("LOCAL", "PORT"): str(local_server.port),
        ("LOCAL", "LOG_DATA"): str(SAMPLE / "log_data"),
        ("LOCAL", "LOG_JSONPATH"): str(SAMPLE / "log_json_path.json"),
        ("LOCAL", "SONG_DATA"): str(SAMPLE / "song_data"),
    }


@pytest.fixture
def make_config(tmp_path, base_config):
    """Write a dwh.cfg for the session's server, with overrides; returns its path."""

    def make(overrides: dict | None = None, name: str = "dwh.cfg") -> Path:
        return write_config(tmp_path / name, {**base_config, **(overrides or {})})

    return make


@pytest.fixture
def settings(make_config):
    return load_settings(make_config())


@pytest.fixture
def warehouse(settings):
    """A LocalWarehouse connection; whatever a test leaves uncommitted is rolled back."""
    wh = LocalWarehouse(settings)
    yield wh
    wh.conn.rollback()
    wh.close()


@pytest.fixture
def query(local_server):
    """Run a query on the session's server in a fresh connection and return all rows.

    Tests that load anything but the sample load it into a database of their own
    (("LOCAL", "DB_NAME") in make_config) and pass db= here.
    """
    params = server.connect_params(local_server)

    def run(sql: str, args=None, db: str | None = None):
        with psycopg2.connect(**{**params, "dbname": db or params["dbname"]}) as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    return run


def run_script(script: str, config: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run one of the project's scripts as a user would, in a subprocess."""
    return subprocess.run(
        [sys.executable, str(ROOT / script), "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def load_with_scripts(config: Path) -> None:
    """create_tables.py then etl.py, as a user runs them; both must succeed."""
    for script in ("create_tables.py", "etl.py"):
        result = run_script(script, config)
        assert result.returncode == 0, result.stderr


WAREHOUSE_TABLES = ("staging_events", "staging_songs", "songplays", "users", "songs", "artists", "time")


def row_counts(query, db: str | None = None) -> dict:
    return {table: query(f"SELECT COUNT(*) FROM {table}", db=db)[0][0] for table in WAREHOUSE_TABLES}


@pytest.fixture(scope="session")
def loaded_sample(tmp_path_factory, base_config):
    """The sample loaded once by the real scripts; returns the config path."""
    config = write_config(tmp_path_factory.mktemp("loaded") / "dwh.cfg", base_config)
    load_with_scripts(config)
    return config
