"""What differs between Linux, macOS and Windows, tested on Linux (CI's only platform).

The parts chosen per platform are tested as units with the platform passed in: the venv's
interpreter, the binaries' names, how pg_ctl is run (an argument list, no shell), and whether a
pid is our server (psutil, no /proc). The scripts are run with the POSIX-only modules made
unimportable, as on Windows, and every test module is imported that way. Source checks keep
POSIX-only calls out of the portable code, and the README's commands run as an ordinary user.
"""

from __future__ import annotations

import ast
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from helpers import (
    IS_ROOT,
    POSIX,
    REDSHIFT,
    ROOT,
    SAMPLE,
    free_port,
    link_or_copy,
    packages_another_user_can_read,
    project_code_copy,
    user_nobody,
    wait_until,
    write_config,
)

import tasks
from dwh.config import ServerSettings
from dwh.local.server import layout, lifecycle, liveness, runner

SCRIPTS = ("iac_setup.py", "create_tables.py", "etl.py", "analytics.py")
POSIX_ONLY = ("fcntl", "pwd", "grp", "resource", "termios", "pty", "tty")
LINUX_ONLY_MODULE = ROOT / "dwh" / "local" / "server" / "linux_root.py"
# Run by path, as root on Linux only, by linux_root (never imported).
SANDBOX_SCRIPT = ROOT / "dwh" / "local" / "server" / "sandbox.py"

# Code for `python -c` that makes the POSIX-only modules unimportable, as they are on Windows.
BLOCK_POSIX_ONLY = textwrap.dedent(f"""
    import sys
    BLOCKED = {POSIX_ONLY!r}

    class Unimportable:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    for name in BLOCKED:
        sys.modules.pop(name, None)
    sys.meta_path.insert(0, Unimportable())
    for name in BLOCKED:
        try:
            __import__(name)
        except ImportError:
            pass
        else:
            sys.exit(f"{{name}} is still importable")
""")

# Runs a script as Windows would import it. Sleeps return at once: the connect retries' backoff
# (1 s, 2 s) is tested elsewhere, with an injected sleep.
BLOCKED_RUNNER = BLOCK_POSIX_ONLY + textwrap.dedent(f"""
    import runpy, time
    time.sleep = lambda seconds: None
    script, sys.argv = sys.argv[1], sys.argv[1:]
    sys.path.insert(0, {str(ROOT)!r})
    runpy.run_path(script, run_name="__main__")
""")


def run_blocked(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKED_RUNNER, str(ROOT / script), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "LC_ALL": "C"},
    )


# ---------------------------------------------------------------------------------------------
# tasks.py


@pytest.mark.parametrize(
    ("platform", "expected"),
    [("win32", ".venv/Scripts/python.exe"), ("linux", ".venv/bin/python"), ("darwin", ".venv/bin/python")],
)
def test_venv_interpreter_per_platform(platform, expected):
    assert tasks.venv_python(Path(".venv"), platform) == Path(expected)


def test_tasks_uses_this_platforms_venv():
    assert tasks.venv_python(ROOT / ".venv", sys.platform) == tasks.PYTHON
    assert tasks.PYTHON.exists()


def test_tasks_parses_on_python_3_8():
    source = (ROOT / "tasks.py").read_text()
    ast.parse(source, feature_version=(3, 8))  # SyntaxError for a match statement, for instance
    with pytest.raises(SyntaxError):
        ast.parse("match x:\n    case 1:\n        pass\n", feature_version=(3, 8))


@pytest.mark.parametrize("version", [(3, 8, 18), (3, 9, 6), (3, 10, 13)])
def test_tasks_names_what_to_install_on_an_old_python(version):
    message = tasks.python_too_old(version)
    assert message is not None and "\n" not in message
    assert "Python 3.11" in message and ".".join(map(str, version)) in message


def test_tasks_accepts_python_3_11_and_newer():
    assert tasks.python_too_old((3, 11, 0)) is None
    assert tasks.python_too_old((3, 13, 1)) is None
    assert tasks.python_too_old(sys.version_info[:3]) is None


def old_pythons() -> list[str]:
    """Interpreters older than 3.11 on this machine (PATH, or pyenv's), for the real check."""
    found = [shutil.which(f"python3.{minor}") for minor in (8, 9, 10)]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found += glob.glob(str(pyenv / "3.[89].*" / "bin" / "python")) + glob.glob(str(pyenv / "3.10.*" / "bin" / "python"))
    return sorted({p for p in found if p and "shims" not in Path(p).parts})


def test_tasks_on_an_old_python_prints_one_line_and_touches_nothing(tmp_path):
    shutil.copy(ROOT / "tasks.py", tmp_path / "tasks.py")
    pythons = old_pythons()
    # With none installed, the version check is still run with this interpreter's version faked.
    commands = [[python, "tasks.py", "run"] for python in pythons] or [
        [sys.executable, "-c", "import sys, tasks; sys.version_info = (3, 9, 6); sys.exit(tasks.main(['run']))"]
    ]
    for command in commands:
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        assert result.stdout == ""
        assert len(result.stderr.splitlines()) == 1 and "needs Python 3.11 or newer" in result.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["tasks.py"]  # no .venv, no dwh.cfg


def test_lint_task_runs_every_check_in_the_venv_even_after_a_failure(monkeypatch):
    ran: list[tuple[str, ...]] = []
    failing = {"mypy"}

    def run_program(*args: str) -> int:
        ran.append(args)
        return 1 if failing & set(args) else 0

    monkeypatch.setattr(tasks, "run_program", run_program)
    assert tasks.lint() == 1  # mypy failed; every command still ran
    workflows = sorted(str(p.relative_to(ROOT)) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows
    assert ran == [
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("mypy",),
        ("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows),
        ("zizmor", "--offline", *workflows),
    ]
    ran.clear()
    failing.clear()
    assert tasks.lint() == 0 and len(ran) == 5


@pytest.mark.parametrize("platform,path", [("win32", "Scripts/zizmor.exe"), ("linux", "bin/zizmor")])
def test_lint_programs_are_found_in_the_venv_on_each_platform(platform, path):
    assert tasks.venv_program("zizmor", Path("v"), platform) == Path("v") / path


# ---------------------------------------------------------------------------------------------
# binaries and pg_ctl


@pytest.mark.parametrize(
    ("platform", "pg_ctl", "process"),
    [("win32", "pg_ctl.exe", "postgres.exe"), ("linux", "pg_ctl", "postgres"), ("darwin", "pg_ctl", "postgres")],
)
def test_binary_names_per_platform(platform, pg_ctl, process):
    assert layout.executable(Path("bin"), "pg_ctl", platform) == Path("bin") / pg_ctl
    assert layout.process_name(platform) == process


def test_binaries_are_found_with_the_platforms_suffix(tmp_path, monkeypatch):
    folder = tmp_path / "pginstall" / "bin"
    folder.mkdir(parents=True)
    for name in layout.BINARIES:
        (folder / f"{name}.exe").touch(mode=0o755)
    monkeypatch.setenv("SPARKIFY_PG_BIN", str(folder))
    with pytest.raises(layout.ServerError, match=r"missing .*\(initdb, pg_ctl, postgres\)"):
        layout.bin_dir()  # this is Linux: initdb, not initdb.exe
    monkeypatch.setattr(layout.sys, "platform", "win32")
    assert layout.bin_dir() == folder


@pytest.mark.parametrize(
    ("platform", "options"),
    [
        ("win32", {"creationflags": 0x200}),  # CREATE_NEW_PROCESS_GROUP: no Ctrl-C from our console
        ("linux", {"start_new_session": True}),
        ("darwin", {"start_new_session": True}),
    ],
)
def test_server_is_detached_from_our_terminal_per_platform(platform, options):
    assert runner.detach_options(platform) == options


def test_pg_ctl_runs_as_an_argument_list_without_a_shell(tmp_path, monkeypatch):
    odd = tmp_path / 'it\'s a "dir" with $HOME; and `spaces`'
    s = ServerSettings(data_dir=odd, port=54329)
    calls = []

    def record(cmd, **kwargs):
        calls.append((cmd, kwargs))
        kwargs["stdout"].write(b"server started\n")
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", record)
    result = runner.Runner("self", Path("/pg/bin")).run("pg_ctl", *lifecycle.pg_ctl_start_args(s), cwd=tmp_path)

    (cmd, kwargs), *more = calls
    assert not more and result.stdout == "server started\n"
    assert isinstance(cmd, list) and all(isinstance(arg, str) for arg in cmd)
    assert cmd[:2] == [str(layout.executable(Path("/pg/bin"), "pg_ctl")), "start"]
    assert not kwargs.get("shell")
    assert "-o" not in cmd  # pg_ctl hands -o to a shell on POSIX; the options are in sparkify.conf
    assert cmd[cmd.index("-D") + 1] == str(odd.resolve() / "pgdata")  # one argument, unquoted
    assert kwargs["start_new_session"] is True and kwargs["stdin"] == subprocess.DEVNULL


def test_server_options_live_in_the_config_file():
    text = lifecycle.server_config(ServerSettings(data_dir=Path("wh"), host="localhost", port=5555))
    lines = text.splitlines()
    assert "listen_addresses = 'localhost'" in lines
    assert "port = '5555'" in lines
    assert "unix_socket_directories = ''" in lines  # TCP only: no socket-path limit anywhere
    assert "TimeZone = 'UTC'" in lines
    assert lifecycle.conf_value("it's C:\\dir") == "'it''s C:\\\\dir'"


def test_an_old_cluster_gets_the_include_once(tmp_path):
    servers_dir = tmp_path / "wh"
    s = ServerSettings(data_dir=servers_dir, port=free_port())
    (servers_dir / "pgdata").mkdir(parents=True)
    main_config = servers_dir / "pgdata" / "postgresql.conf"
    main_config.write_text("max_connections = 100\n")
    for _ in range(2):
        lifecycle.write_server_config(s, runner.Runner("self", Path("bin")))
    assert main_config.read_text().splitlines().count(lifecycle.INCLUDE_LINE) == 1
    assert main_config.read_text().splitlines()[-1] == lifecycle.INCLUDE_LINE  # last, so it wins
    assert f"port = '{s.port}'" in (servers_dir / "pgdata" / "sparkify.conf").read_text()


# ---------------------------------------------------------------------------------------------
# liveness without /proc


def test_a_dead_pid_is_not_the_server():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # exited and reaped
    assert not liveness.is_server_process(child.pid, None)
    assert not liveness.is_server_process(child.pid, time.time())


def test_a_reused_pid_is_not_the_server(tmp_path):
    """A live process that is not postgres, with the recorded pid (as after a reboot)."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        started_at = psutil.Process(child.pid).create_time()
        assert not liveness.is_server_process(child.pid, started_at)
        assert not liveness.is_server_process(child.pid, None)
        pgdata = tmp_path / "wh" / "pgdata"
        pgdata.mkdir(parents=True)
        pid_file = f"{child.pid}\n{pgdata}\n{int(started_at)}\n54329\n\n127.0.0.1\n  1 2\nready   \n"
        (pgdata / "postmaster.pid").write_text(pid_file)
        s = ServerSettings(data_dir=tmp_path / "wh")
        assert liveness.read_pid_file(pgdata / "postmaster.pid") == liveness.PidFile(
            child.pid, pgdata, int(started_at), 54329, "ready"
        )
        assert liveness.live_server(s) is None
        liveness.remove_if_stale(s)
        assert not (pgdata / "postmaster.pid").exists()
        assert child.poll() is None  # untouched
    finally:
        child.kill()
        child.wait()


def test_a_zombie_is_not_the_server():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_until(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, "the child to become a zombie")
    try:
        assert not liveness.is_server_process(child.pid, None)
    finally:
        child.wait()


def test_the_running_server_is_recognised_by_its_start_time(local_server):
    info = liveness.read_pid_file(local_server.data_dir / "pgdata" / "postmaster.pid")
    assert info is not None and info.started_at is not None
    assert liveness.is_server_process(info.pid, info.started_at)
    assert liveness.live_server(local_server) == info
    # The same pid recorded with another start time: another server's file, from before a reboot.
    assert not liveness.is_server_process(info.pid, info.started_at - 3600)


PORTABLE_FORBIDDEN_CALLS = {("os", "kill"), ("os", "O_CLOEXEC"), ("os", "fchown"), ("os", "getuid")}


def posix_only_uses(paths: list[Path]) -> list[str]:
    """Where these files read /proc, import fcntl & co, or use os.kill/O_CLOEXEC/fchown/getuid;
    os.geteuid is allowed only in runner.running_as_root, behind its platform check."""
    problems = []
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        geteuid_allowed: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "running_as_root" and path.name == "runner.py":
                geteuid_allowed |= {id(inner) for inner in ast.walk(node)}
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                names = []
            problems += [f"{where} imports {n}" for n in names if n.partition(".")[0] in POSIX_ONLY]
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("/proc"):
                problems.append(f"{where} reads {node.value}")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                pair = (node.value.id, node.attr)
                if pair in PORTABLE_FORBIDDEN_CALLS or (pair == ("os", "geteuid") and id(node) not in geteuid_allowed):
                    problems.append(f"{where} uses {'.'.join(pair)}")
    return problems


def test_no_posix_only_code_outside_the_linux_only_module():
    linux_only = (LINUX_ONLY_MODULE, SANDBOX_SCRIPT)
    portable = [p for p in [*ROOT.glob("*.py"), *(ROOT / "dwh").rglob("*.py")] if p not in linux_only]
    assert len(portable) > 20
    assert posix_only_uses(portable) == []


def test_the_source_check_finds_what_it_forbids(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import fcntl\nimport os\nos.kill(1, 0)\nopen('/proc/1/stat')\nos.geteuid()\n")
    assert posix_only_uses([bad]) == [
        "bad.py:1 imports fcntl",
        "bad.py:3 uses os.kill",
        "bad.py:4 reads /proc/1/stat",
        "bad.py:5 uses os.geteuid",
    ]
    assert posix_only_uses([LINUX_ONLY_MODULE])  # the Linux-only module does use them


# ---------------------------------------------------------------------------------------------
# the scripts with the POSIX-only modules unimportable


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_answers_help_without_posix_only_modules(script):
    result = run_blocked(script, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")


def test_etl_reports_a_refused_redshift_connection_without_posix_only_modules(tmp_path):
    port = free_port()  # closed: nothing listens there
    config = write_config(
        tmp_path / "dwh.cfg", {**REDSHIFT, ("CLUSTER", "HOST"): "127.0.0.1", ("CLUSTER", "DB_PORT"): str(port)}
    )
    result = run_blocked("etl.py", "--config", str(config))
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "refused" in last.lower() and str(port) in last
    assert "Traceback" not in result.stderr
    assert REDSHIFT[("CLUSTER", "DB_PASSWORD")] not in result.stdout + result.stderr


# Imports modules as on Windows: the packages the tests use are imported first (they choose their
# platform's code at import, as they would there); then the POSIX-only modules, functions and signals
# are gone and sys.platform says win32. argv: a folder, then module files in it; prints one line for
# each module that fails to import.
IMPORT_AS_ON_WINDOWS = (
    "import fasteners, hypothesis, moto, psutil, pytest, sqlfluff.core\n"
    + BLOCK_POSIX_ONLY
    + textwrap.dedent(f"""
    import importlib, os, signal, traceback
    for name in ("geteuid", "getuid", "getgid", "getsid", "setsid", "killpg", "fchown", "statvfs", "posix_fallocate"):
        delattr(os, name)
    for name in ("SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGALRM", "SIGCHLD"):
        delattr(signal, name)
    sys.platform = "win32"
    sys.path[:0] = [{str(ROOT)!r}, sys.argv[1]]
    for path in sys.argv[2:]:
        try:
            importlib.import_module(path.removesuffix(".py").replace("/", "."))
        except Exception as exc:
            print(path, traceback.format_exception_only(exc)[-1].strip())
""")
)


def import_failures_as_on_windows(folder: Path, modules: list[str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_AS_ON_WINDOWS, str(folder), *modules], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_test_module_imports_as_on_windows():
    """What only POSIX has is used inside the tests that need it, which skip there saying why."""
    tests = ROOT / "tests"
    modules = ["plugins/warehouse.py", "plugins/aws.py", *sorted(p.name for p in tests.glob("test_*.py"))]
    assert len(modules) > 40
    assert import_failures_as_on_windows(tests, modules) == ""


def test_the_windows_import_check_finds_posix_only_modules_and_functions(tmp_path):
    (tmp_path / "test_pty.py").write_text("import pty\n")
    (tmp_path / "test_euid.py").write_text("import os\nEUID = os.geteuid()\n")
    assert import_failures_as_on_windows(tmp_path, ["test_pty.py", "test_euid.py"]).splitlines() == [
        "test_pty.py ModuleNotFoundError: No module named 'pty'",
        "test_euid.py AttributeError: module 'os' has no attribute 'geteuid'",
    ]


# ---------------------------------------------------------------------------------------------
# the README's commands as an ordinary user


def ordinary_user() -> dict:
    """subprocess options to run as an ordinary user: ourselves, or as root the user nobody."""
    if not IS_ROOT:
        return {}
    nobody = user_nobody()
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def project_copy_with_venv(folder: Path, port: int) -> None:
    """The project's code in folder, with a .venv that reuses this one's packages (linked, no download:
    the user may not be able to enter the folder ours sit in) and a dwh.cfg on a free port that reads
    the bundled sample."""
    project_code_copy(folder)
    for name in ("requirements.txt", "dwh.cfg.example"):
        shutil.copy(ROOT / name, folder / name)
    base = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/local/bin:/usr/bin")
    subprocess.run([base or sys.executable, "-m", "venv", "--without-pip", str(folder / ".venv")], check=True)
    venv_python = str(tasks.venv_python(folder / ".venv"))
    site = subprocess.check_output([venv_python, "-c", "import site; print(site.getsitepackages()[0])"], text=True)
    packages = packages_another_user_can_read(folder / ".venv" / "reused")  # ours, and any a .pth adds
    (Path(site.strip()) / "project-packages.pth").write_text("\n".join(packages) + "\n")
    (folder / ".venv" / ".requirements.sha256").write_text(
        hashlib.sha256((folder / "requirements.txt").read_bytes()).hexdigest()
    )
    sample = folder / "data" / SAMPLE.name  # the checkout's own may be out of the user's reach
    shutil.copytree(SAMPLE, sample, copy_function=link_or_copy)
    write_config(
        folder / "dwh.cfg",
        {
            ("LOCAL", "PORT"): str(port),
            ("LOCAL", "LOG_DATA"): str(sample / "log_data"),
            ("LOCAL", "LOG_JSONPATH"): str(sample / "log_json_path.json"),
            ("LOCAL", "SONG_DATA"): str(sample / "song_data"),
        },
    )


def test_readme_commands_as_an_ordinary_user():
    user = ordinary_user()
    folder = Path(tempfile.mkdtemp(prefix="sparkify-user-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        project_copy_with_venv(folder, free_port())
        for path in [folder, *folder.rglob("*")]:
            if user:
                os.chown(path, user["user"], user["group"], follow_symlinks=False)
        python = tasks.venv_python(folder / ".venv")

        def task(name: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [str(python), "tasks.py", name],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=300,
                env={**{k: v for k, v in os.environ.items() if not k.startswith("SPARKIFY_")}, "HOME": str(folder)},
                **user,
            )

        result = task("run")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "insert songplays" in result.stdout and "6,820 rows" in result.stdout
        info = liveness.read_pid_file(folder / ".warehouse" / "pgdata" / "postmaster.pid")
        assert info is not None
        if POSIX:  # psutil has no uids() on Windows
            assert psutil.Process(info.pid).uids().real == user.get("user", os.getuid())

        result = task("stop")
        assert result.returncode == 0 and "local warehouse stopped" in result.stdout, result.stderr
        assert not liveness.is_server_process(info.pid, info.started_at)
    finally:
        settings = ServerSettings(data_dir=folder / ".warehouse")
        if liveness.live_server(settings) is not None:
            lifecycle.stop(settings)
        shutil.rmtree(folder, ignore_errors=True)
