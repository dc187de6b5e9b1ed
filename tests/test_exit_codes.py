"""One front end for exit codes (dwh.cli.exit_code): 0, 1 failure, 2 configuration or usage, 130 interrupted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import psycopg2
import pytest
from helpers import REDSHIFT, ROOT, posix_only, write_config

from dwh import cli
from dwh.config import ConfigError
from dwh.errors import LoadFailed, WarehouseError


def raising(exc: BaseException):
    def body():
        raise exc

    return body


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (lambda: None, 0, None),
        (lambda: 3, 3, None),
        (raising(ConfigError("dwh.cfg: [CLUSTER] HOST is empty")), 2, "error: dwh.cfg: [CLUSTER] HOST is empty"),
        (raising(LoadFailed("COPY staging_events failed: bad row")), 1, "error: COPY staging_events failed: bad row"),
        (raising(WarehouseError("cannot connect")), 1, "error: cannot connect"),
        (
            raising(psycopg2.errors.UndefinedTable("relation x")),
            1,
            "or never created); run python create_tables.py",
        ),
        (
            raising(psycopg2.errors.DiskFull('could not extend file "base/1/2": No space left on device')),
            1,
            'error: the warehouse\'s disk is full (could not extend file "base/1/2": No space left on device); the '
            "run was rolled back and the previous data is intact: free space on the disk that holds the "
            "warehouse's data ([LOCAL] DATA_DIR locally) and run it again",
        ),
        (raising(KeyboardInterrupt()), 130, "error: interrupted"),
        (raising(RuntimeError("boom")), 1, "error: unexpected RuntimeError: boom"),
    ],
)
def test_each_outcome_has_its_exit_code_and_one_line(capsys, body, code, message):
    assert cli.exit_code(body) == code
    err = capsys.readouterr().err
    if message is None:
        assert err == ""
    else:
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_caller_adds_its_own_explainer_and_printer(capsys):
    lines = []
    code = cli.exit_code(
        raising(TimeoutError("AWS is slow")),
        explainers=(lambda exc: (1, f"gave up: {exc}") if isinstance(exc, TimeoutError) else None,),
        error=lines.append,
    )
    assert code == 1 and lines == ["gave up: AWS is slow"] and capsys.readouterr().err == ""


@posix_only("SIGINT for one process (Ctrl-C reaches a whole console)")
def test_a_script_interrupted_while_it_waits_exits_130_without_a_traceback(tmp_path):
    """create_tables.py waits for a warehouse that accepted the connection but never answers; Ctrl-C ends it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(30)
        config = write_config(
            tmp_path / "dwh.cfg",
            {
                **REDSHIFT,
                ("CLUSTER", "HOST"): "127.0.0.1",
                ("CLUSTER", "DB_PORT"): str(listener.getsockname()[1]),
                ("CLUSTER", "SSLMODE"): "disable",
                ("CLUSTER", "CONNECT_TIMEOUT"): "60",
            },
        )
        script = subprocess.Popen(
            [sys.executable, str(ROOT / "create_tables.py"), "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            # As at a terminal: Python raises KeyboardInterrupt only where SIGINT is not ignored, and
            # the children of a background job (pytest ... &) inherit it ignored.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            connection, _ = listener.accept()  # the script is now waiting for the server's answer
            with connection:
                os.kill(script.pid, signal.SIGINT)
                connection.recv(1024)  # its startup packet; then end the wait
            out, err = script.communicate(timeout=30)
        finally:
            if script.poll() is None:
                script.kill()
                script.wait()
    assert script.returncode == 130, err
    assert err.strip() == "error: interrupted"
    assert "Traceback" not in out + err


def test_iac_setup_exit_codes_come_from_the_same_front_end(tmp_path, capsys):
    import iac_setup

    missing = tmp_path / "absent.cfg"
    assert iac_setup.main(["status", "--config", str(missing)]) == cli.EXIT_USAGE
    assert "not found" in capsys.readouterr().err


def test_a_reader_that_stops_early_ends_the_script_quietly(tmp_path):
    # etl.py --dry-run | head: the reader goes away while the script still prints. Its end of the pipe
    # is closed before the script starts, so every write fails, however fast the script is.
    config = write_config(tmp_path / "dwh.cfg", {("LOCAL", "DATA_DIR"): str(tmp_path / "none")})
    reader, writer = os.pipe()
    os.close(reader)
    try:
        script = subprocess.run(
            [sys.executable, str(ROOT / "etl.py"), "--config", str(config), "--dry-run"],
            stdout=writer,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            timeout=60,
        )
    finally:
        os.close(writer)
    assert script.returncode == 1
    assert script.stderr.decode() == ""
