"""Connecting to the server: its password, connection parameters, and whether it is ours."""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from dwh.config import ServerSettings
from dwh.local.server.errors import ServerError
from dwh.local.server.layout import admin_password_file, data_dir, log_file, password_file, pgdata
from dwh.local.server.locking import write_private

log = logging.getLogger("dwh.local")

CONNECT_TIMEOUT = 10
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections


def port_error(s: ServerSettings) -> ServerError:
    return ServerError(
        f"port {s.port} on {s.host} is already in use by another program; set [LOCAL] PORT in dwh.cfg to a free port"
    )


def read_password(s: ServerSettings) -> str:
    """The login role's password, as the scripts read it; a clear error when it cannot be used."""
    path = password_file(s)
    try:
        password = path.read_bytes().decode("ascii").strip()
    except FileNotFoundError:
        if (pgdata(s) / "PG_VERSION").exists():
            raise ServerError(f"{path} is missing; {_PASSWORD_FIX}") from None
        raise ServerError(
            f"the local warehouse in {data_dir(s)} is not initialised; run `python -m dwh.local start`"
        ) from None
    except UnicodeDecodeError:
        raise ServerError(f"{path} is damaged (not a password's text); {_PASSWORD_FIX}") from None
    except OSError as exc:
        raise ServerError(
            f"cannot read {path} ({exc.strerror}); run as the user who created [LOCAL] DATA_DIR"
        ) from None
    if not password or not password.isprintable():
        raise ServerError(f"{path} is damaged (not a password's text); {_PASSWORD_FIX}")
    return password


# The launcher sets a new password through its admin role: no data is touched.
_PASSWORD_FIX = "delete it and run `python -m dwh.local start` to set a new password (the data is kept)"


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
    """Does this connection's server serve our DATA_DIR, as a login that is not a superuser?

    A superuser login is a warehouse from before the admin role: the launcher upgrades it."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT current_setting('data_directory'), rolsuper AND rolname <> %s "
            "FROM pg_roles WHERE rolname = current_user",
            (ADMIN_USER,),
        )
        served, superuser_login = cur.fetchone()
        return Path(served).resolve() == pgdata(s) and not superuser_login


def connect_if_ours(s: ServerSettings):
    """A connection to our server on HOST:PORT and DB_NAME as the login role, idle and ready for use;
    None when nothing answers there or what answers is not ours."""
    try:
        params = connect_params(s)
    except ServerError:
        return None
    try:
        conn = psycopg2.connect(**{**params, "connect_timeout": 3})
    except psycopg2.OperationalError:
        return None
    try:
        if is_ours(conn, s):
            conn.rollback()
            return conn
    except psycopg2.Error:
        pass
    conn.close()
    return None


# The launcher's superuser: it creates the login role and the database, nothing else uses it.
ADMIN_USER = "warehouse_admin"
# What an older warehouse's bootstrap superuser (its login role, before it had an admin) is renamed to.
RETIRED_LOGIN = "warehouse_bootstrap"
# Of the predefined roles the login role gets only this: reading settings, so it can check that a
# server answering on its port serves its DATA_DIR (SHOW data_directory). No file access, no programs.
LOGIN_ROLE_GRANTS = ("pg_read_all_settings",)


def read_admin_password(s: ServerSettings) -> str | None:
    """The admin role's password; None for a warehouse made before it had one."""
    try:
        return admin_password_file(s).read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ServerError(
            f"cannot read {admin_password_file(s)} ({exc.strerror}); run as the user who created it"
        ) from None


def admin_params(s: ServerSettings, dbname: str = "postgres") -> dict[str, Any]:
    """psycopg2.connect() keyword arguments for the launcher's superuser (the maintenance database by
    default); for the launcher and the benchmark's CHECKPOINT, never for the scripts."""
    password = read_admin_password(s)
    if password is None:
        raise ServerError(f"{admin_password_file(s)} is missing; run `python -m dwh.local start` to upgrade")
    return {"host": s.host, "port": s.port, "user": ADMIN_USER, "password": password, "dbname": dbname}


def admin_connect(s: ServerSettings, user: str, password: str, dbname: str = "postgres"):
    """Connect as a superuser, waiting briefly while the server starts."""
    params: dict[str, Any] = {"host": s.host, "port": s.port, "user": user, "password": password, "dbname": dbname}
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
                    f"cannot log in to the local warehouse as {user!r}: {message}; the password in "
                    f"{data_dir(s)} does not match the server's"
                ) from None
            raise ServerError(
                f"cannot connect to the local warehouse at {s.host}:{s.port}: {message}; see {log_file(s)}"
            ) from None


def provision(s: ServerSettings) -> None:
    """Give the scripts their least-privilege login: a role that owns DB_NAME and nothing more.

    Run as the admin role each time the launcher starts or finds the server: creates the login
    role and the database when missing, and refuses a server on our port that is not ours. A
    warehouse made before the admin role existed is upgraded first (see retire_superuser_login).
    """
    admin_password = read_admin_password(s) or retire_superuser_login(s)
    conn = admin_connect(s, ADMIN_USER, admin_password)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            if not is_ours(conn, s):
                raise port_error(s)
            login = sql.Identifier(s.user)
            password = _usable_password(s)
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (s.user,))
            found = cur.fetchone()
            verb = "CREATE" if found is None else "ALTER"
            if found is None or found[0] or password is None:
                password = password or _new_password(s)
                cur.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD %s").format(login) + _NOTHING_MORE, (password,))
            for role in LOGIN_ROLE_GRANTS:
                cur.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), login))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (s.dbname,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(s.dbname), login))
    finally:
        conn.close()


_NOTHING_MORE = sql.SQL(" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS")


def _usable_password(s: ServerSettings) -> str | None:
    """The login password, or None when its file is missing or damaged (provision sets a new one)."""
    try:
        return read_password(s)
    except ServerError:
        if password_file(s).exists() and not password_file(s).is_file():
            raise
        return None


def new_password() -> str:
    """A fresh random password for a role of the local warehouse."""
    return secrets.token_urlsafe(24)


def _new_password(s: ServerSettings) -> str:
    password = new_password()
    path = password_file(s)
    path.unlink(missing_ok=True)
    write_private(path, password + "\n")
    log.warning("Set a new password for the local login %r in %s (its file was missing or damaged)", s.user, path)
    return password


def retire_superuser_login(s: ServerSettings) -> str:
    """Upgrade a warehouse whose login role is the cluster's bootstrap superuser, in place.

    PostgreSQL cannot take superuser from the bootstrap role, so: add the admin role, rename the
    bootstrap role out of the way (NOLOGIN), create the login role anew with the same password,
    and hand it every database and non-system object the bootstrap role owned. Each step can
    be repeated, so an upgrade interrupted half-way completes on the next start. Returns the admin
    role's new password.
    """
    password = read_password(s)
    admin_password = new_password()
    conn = admin_connect(s, s.user, password)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            verb = "ALTER" if _role_exists(cur, ADMIN_USER) else "CREATE"
            cur.execute(
                sql.SQL(verb + " ROLE {} SUPERUSER LOGIN PASSWORD %s").format(sql.Identifier(ADMIN_USER)),
                (admin_password,),
            )
    finally:
        conn.close()
    write_private(admin_password_file(s), admin_password + "\n")
    conn = admin_connect(s, ADMIN_USER, admin_password)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT rolname FROM pg_roles WHERE oid = 10")  # the bootstrap superuser
            (bootstrap,) = cur.fetchone()
            if bootstrap == s.user:
                cur.execute(
                    sql.SQL("ALTER ROLE {} RENAME TO {}").format(sql.Identifier(s.user), sql.Identifier(RETIRED_LOGIN))
                )
                bootstrap = RETIRED_LOGIN
            cur.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(bootstrap)))
            if not _role_exists(cur, s.user):
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(s.user)), (password,))
            cur.execute("SELECT datname FROM pg_database WHERE datdba = 10 AND datname NOT LIKE 'template_'")
            databases = [name for (name,) in cur.fetchall() if name != "postgres"]
            for name in databases:
                cur.execute(
                    sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(s.user))
                )
    finally:
        conn.close()
    for name in databases:
        _hand_over_objects(s, admin_password, name)
    return admin_password


def _role_exists(cur, name: str) -> bool:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
    return cur.fetchone() is not None


_OWNED_BY_BOOTSTRAP = """
SELECT 'SCHEMA', quote_ident(nspname) FROM pg_namespace
WHERE nspowner = 10 AND nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'public')
UNION ALL
SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relowner = 10 AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
  AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
UNION ALL
SELECT 'FUNCTION', p.oid::regprocedure::text
FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE p.proowner = 10 AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
"""


def _hand_over_objects(s: ServerSettings, admin_password: str, dbname: str) -> None:
    """Give the login role the schemas, tables, views, sequences and functions of a database that
    the bootstrap role owned (REASSIGN OWNED cannot move the bootstrap role's objects)."""
    conn = admin_connect(s, ADMIN_USER, admin_password, dbname)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(_OWNED_BY_BOOTSTRAP)
            for kind, name in cur.fetchall():
                cur.execute(sql.SQL(f"ALTER {kind} {name} OWNER TO {{}}").format(sql.Identifier(s.user)))
    finally:
        conn.close()
