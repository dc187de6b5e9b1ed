"""A run killed during a COPY that converts in worker processes leaves nothing behind: no process of it
survives, and the next run gets the load lock at once."""

import importlib.util
import subprocess
import sys

import psutil
import pytest
from helpers import ROOT, copy_cluster, free_port, run_script, wait_until, write_config

_spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

DB = "killed_runs"


@pytest.fixture(scope="module")
def large_sources(tmp_path_factory, base_config) -> dict:
    """Config values for events enough (about 20 MB) that the COPY converts them in worker processes."""
    out = tmp_path_factory.mktemp("killed") / "udacity-dend"
    generate.generate(out, events=60_000, songs=200, seed=5)
    return {
        **base_config,
        ("LOCAL", "DB_NAME"): DB,
        ("LOCAL", "LOG_DATA"): str(out / "log_data"),
        ("LOCAL", "SONG_DATA"): str(out / "song_data"),
        ("LOCAL", "LOG_JSONPATH"): str(out / "log_json_path.json"),
    }


@pytest.fixture(scope="module")
def large_config(tmp_path_factory, large_sources):
    config = write_config(tmp_path_factory.mktemp("killed-config") / "dwh.cfg", large_sources)
    assert run_script("create_tables.py", config).returncode == 0
    return config


def start_etl(config, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "etl.py"), "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
        cwd=ROOT,
    )


def conversion_workers(process: psutil.Process) -> list[psutil.Process]:
    """The run's descendants that are running Python (its fork server and conversion workers)."""
    try:
        return [child for child in process.children(recursive=True) if "python" in child.name().lower()]
    except psutil.NoSuchProcess:
        return []


# Popen.kill() sends SIGKILL and terminate() SIGTERM; on Windows both are TerminateProcess.
@pytest.mark.parametrize("how", ["kill", "terminate"], ids=["kill -9", "SIGTERM"])
def test_a_run_killed_mid_copy_leaves_no_process_and_frees_the_lock(large_config, how):
    run = start_etl(large_config)
    parent = psutil.Process(run.pid)
    workers: list[psutil.Process] = []

    def converting() -> bool:
        workers[:] = conversion_workers(parent)
        return len(workers) >= 2  # the fork server and at least one worker

    try:
        wait_until(converting, "no conversion workers started", 60)
    finally:
        getattr(run, how)()
        run.wait(timeout=30)

    wait_until(
        lambda: not any(worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE for worker in workers),
        f"processes of the killed run still alive: {[w.pid for w in workers if w.is_running()]}",
        timeout=5,
    )
    rerun = run_script("etl.py", large_config, "--wait", "30")
    assert rerun.returncode == 0, rerun.stderr
    assert "Waiting for the load lock" not in rerun.stderr


def test_a_server_killed_mid_load_ends_the_run_in_one_line_recorded_in_the_history(
    tmp_path, large_sources, initialised_cluster
):
    """The warehouse server itself dies mid-COPY: one line says so, and the history row says why."""
    from dwh.config import load_settings
    from dwh.local import server

    data_dir = copy_cluster(initialised_cluster, tmp_path / "wh")
    own_server = {("LOCAL", "DATA_DIR"): str(data_dir), ("LOCAL", "PORT"): str(free_port())}
    own = write_config(tmp_path / "own.cfg", {**large_sources, **own_server})
    local = load_settings(own).local
    assert run_script("create_tables.py", own).returncode == 0
    try:
        run = start_etl(own, stderr=subprocess.PIPE)
        wait_until(lambda: len(conversion_workers(psutil.Process(run.pid))) >= 2, "the COPY did not start", 60)
        postmaster = psutil.Process(server.lifecycle.live_server(local).pid)
        postmaster.kill()
        _, err = run.communicate(timeout=60)
        assert run.returncode == 1
        (line,) = err.strip().splitlines()  # what psycopg2 says of the dead socket varies with the moment
        assert line.startswith("error: the connection to the warehouse was lost mid-run (")
        assert line.endswith(
            "): its server stopped or the network failed; what the run had not committed was rolled back: run it "
            "again once the warehouse is up (locally the next run starts the server; its log is [LOCAL] "
            "DATA_DIR/server.log)"
        )
        assert "connection already closed" not in line  # the COPY's own failure, not the rollback's after it
        history = run_script("etl.py", own, "--history", "1")
        assert "failed" in history.stdout and "the connection to the warehouse was lost mid-run" in history.stdout
    finally:
        server.stop(local)
