"""A disk that fills up mid-load: one line says so and how to fix it, the previous star stays readable,
and the next run completes once there is space again."""

import importlib.util
import os
import subprocess

import psycopg2
import pytest
from helpers import IS_ROOT, ROOT, SAMPLE, copy_cluster, free_port, run_script, write_config

from dwh.config import load_settings
from dwh.local import server

_spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="mounting a small disk needs root")


HEADROOM = 8 * 2**20  # what the ballast leaves free on the small disk when the too-big load starts


@pytest.fixture
def small_disk(tmp_path):
    """A 160 MB file system (tmpfs) for the warehouse's DATA_DIR."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "sparkify-small-disk", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "--lazy", str(disk)], check=False)


def fill_all_but(disk, headroom: int):
    """A ballast file that takes all the disk's free space but headroom bytes; returns its path."""
    ballast = disk / "ballast"
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    with ballast.open("wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, free - headroom)
    return ballast


def test_a_full_disk_fails_the_load_in_one_line_and_keeps_the_previous_star(
    small_disk, tmp_path, base_config, initialised_cluster
):
    big = tmp_path / "big"
    generate.generate(big, events=30_000, songs=200, seed=9)
    data_dir = copy_cluster(initialised_cluster, small_disk / "wh")
    common = {**base_config, ("LOCAL", "DATA_DIR"): str(data_dir), ("LOCAL", "PORT"): str(free_port())}
    sample = write_config(tmp_path / "sample.cfg", common)
    too_big = write_config(
        tmp_path / "big.cfg",
        {**common, ("LOCAL", "LOG_DATA"): str(big / "log_data"), ("LOCAL", "SONG_DATA"): str(SAMPLE / "song_data")},
    )
    local = load_settings(sample).local
    try:
        assert run_script("create_tables.py", sample).returncode == 0
        assert run_script("etl.py", sample).returncode == 0
        params = server.connect_params(local)
        ballast = fill_all_but(small_disk, HEADROOM)

        result = run_script("etl.py", too_big)

        assert result.returncode == 1
        last = result.stderr.strip().splitlines()[-1]
        assert "disk" in last and "is full" in last and "No space left on device" in last, result.stderr
        assert "Traceback" not in result.stderr
        ballast.unlink()
        check = run_script("etl.py", sample, "--check")  # the checks pass on the previous star
        assert check.returncode == 0, check.stderr
        with psycopg2.connect(**params) as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM songplays")
            assert cur.fetchone() == (6820,)
        assert run_script("etl.py", too_big).returncode == 0
        with psycopg2.connect(**params) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_total_relation_size('staging_events')")
            staged = cur.fetchone()[0]
        assert staged > 2 * HEADROOM, f"the load needs {staged} bytes of table alone: too little to fill the disk"
    finally:
        server.stop(local)
