"""Warehouse fixtures: one real local warehouse server per test session, config files for it, queries on it."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import psycopg2
import pytest
from helpers import (
    SAMPLE,
    copy_cluster,
    create_tables_in,
    free_port,
    load_with_scripts,
    plain_postgresql,
    run_as_admin,
    write_config,
)
from psycopg2 import sql as pgsql

from dwh.cli import StdoutHandler
from dwh.config import load_settings
from dwh.local import server
from dwh.local.warehouse import LocalWarehouse


def pytest_configure(config):
    """The scripts the tests start keep their compiled bytecode in a folder of the session's, as a
    user's runs keep theirs, even where PYTHONDONTWRITEBYTECODE is set: each start would otherwise
    compile the project's modules again (about a fifth of a small load's CPU). The folder is outside
    the checkout and removed with the session; xdist's workers inherit it from the main process."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        config.bytecode_folder = tempfile.mkdtemp(prefix="sparkify-test-bytecode-")
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = config.bytecode_folder


def pytest_unconfigure(config):
    if hasattr(config, "bytecode_folder"):
        shutil.rmtree(config.bytecode_folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def fresh_logging():
    """A script's main() run in a test points the root logger at the sys.stdout of that moment, a capture
    that closes with the test. The next test starts without that handler, as a new process would."""
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StdoutHandler)]:
        root.removeHandler(handler)


@pytest.fixture(scope="session")
def initialised_cluster(tmp_path_factory) -> Path:
    """A DATA_DIR that ensure_running initialised and provisioned, then stopped. A test's own server
    starts from a copy of it (copy_cluster, 0.2-0.3 s) instead of running initdb again (about 1.5 s of
    CPU); test_local_server's tests of initialising run initdb themselves."""
    settings = server.ServerSettings(data_dir=tmp_path_factory.mktemp("template") / "wh", port=free_port())
    try:
        server.ensure_running(settings)
    finally:
        server.stop(settings)
    return settings.data_dir


@pytest.fixture(scope="session")
def local_server(tmp_path_factory, initialised_cluster):
    """The embedded PostgreSQL server, started once for the session and stopped after it."""
    data_dir = copy_cluster(initialised_cluster, tmp_path_factory.mktemp("warehouse") / "wh")
    settings = server.ServerSettings(data_dir=data_dir, port=free_port())
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


def _until_teardown(warehouse):
    """The warehouse for the test; what it leaves uncommitted is rolled back, and the connection closed."""
    yield warehouse
    warehouse.rollback()
    warehouse.close()


@pytest.fixture
def warehouse(settings):
    """A LocalWarehouse connection."""
    yield from _until_teardown(LocalWarehouse(settings))


@pytest.fixture
def plain_warehouse(local_server):
    """The project's psycopg2 warehouse on the session's server, without the local warehouse's Redshift rules."""
    yield from _until_teardown(plain_postgresql(local_server))


@pytest.fixture
def query(local_server):
    """Run a query on the session's server and return all rows. Each database gets one connection for
    the test, opened at its first query and in autocommit, so every query sees what is committed.

    Tests that load anything but the sample load it into a database of their own
    (("LOCAL", "DB_NAME") in make_config) and pass db= here.
    """
    params = server.connect_params(local_server)
    connections: dict[str, psycopg2.extensions.connection] = {}

    def run(sql: str, args=None, db: str | None = None):
        name = db or params["dbname"]
        if name not in connections:
            connections[name] = psycopg2.connect(**{**params, "dbname": name})
            connections[name].autocommit = True
        with connections[name].cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    yield run
    for conn in connections.values():
        conn.close()


@pytest.fixture(scope="session")
def loaded_sample(tmp_path_factory, base_config):
    """The sample loaded once by the real scripts; returns the config path."""
    config = write_config(tmp_path_factory.mktemp("loaded") / "dwh.cfg", base_config)
    load_with_scripts(config)
    return config


@pytest.fixture
def db_name(request, local_server):
    """A database of the test's own on the session's server: the load history outlives create_tables.py.
    It is dropped after the test, while its files are likely still only in memory, rather than deleted
    with the session's folder later."""
    name = f"own_{zlib.crc32(request.node.nodeid.encode()):08x}"
    yield name
    run_as_admin(local_server, pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))


@pytest.fixture
def config(make_config, db_name):
    """A dwh.cfg for the test's own database, its tables created by create_tables.py."""
    path = make_config({("LOCAL", "DB_NAME"): db_name}, name="test-db.cfg")
    create_tables_in(path)
    return path
