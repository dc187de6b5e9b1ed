"""bench/benchmark.py end to end at a tiny scale, as a user runs it: every phase runs in order, the
load gives the generator's counts, the report computes its ratios from the measured times, and saved
results give the same report. No timing value is asserted: speed is the benchmark's own business.

Opt-in (``-m benchmark``), since it starts its own server and runs every phase in a process of its own:
`python3 tasks.py test -m benchmark`, as the public CI workflow does."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import pytest
from helpers import ROOT

from bench import report

EVENTS, SONGS = 3_000, 200
PIPELINE = ["create", "copy_events", "copy_songs", "transform", "checks"]
PHASES = [*PIPELINE, "floor_events", "floor_songs", "read_songs", "copy_events_exact", "copy_songs_exact", "etl"]
PHASES += ["duckdb_events", "duckdb_songs", "duckdb_transform"]
PHASE_LINE = re.compile(r"^ {4}(\w+) +(\{.*\})$", re.MULTILINE)

pytestmark = pytest.mark.benchmark


def benchmark(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "benchmark.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny run (its own server, one sample run of each kind): (stdout, saved results, their file, data)."""
    work = tmp_path_factory.mktemp("benchmark")
    saved, data = work / "results.json", work / "data"
    done = benchmark("--scales", f"{EVENTS}:{SONGS}", "--repeat", "1", "--data-dir", str(data), "--json", str(saved))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout, json.loads(saved.read_text()), saved, data


def block(text: str) -> str:
    """The report block of the output: what --write-docs puts in docs/benchmarks.md."""
    start, end = text.index(report.MARK_START), text.index(report.MARK_END)
    return text[start : end + len(report.MARK_END)]


def test_every_phase_runs_in_its_own_process_in_order(run):
    stdout, results, _, _ = run
    printed = {name: json.loads(figures) for name, figures in PHASE_LINE.findall(stdout)}
    assert list(printed) == PHASES
    assert list(results["scales"][0]["phases"]) == PHASES
    duckdb_installed = importlib.util.find_spec("duckdb") is not None
    for name, figures in printed.items():
        assert figures["client_processes"] >= 1 and figures["client_peak_mb"] > 0, name
        assert figures["server_peak_mb"] > 0, name  # the server's processes found and sampled too
        assert figures["client_cpu_seconds"] > 0 and figures["server_cpu_seconds"] >= 0, name
        if name.startswith("duckdb_") and not duckdb_installed:
            assert figures["skipped"].startswith("duckdb is not installed"), name
        else:
            assert "skipped" not in figures and figures["seconds"] > 0, name


def test_the_load_gives_the_generated_counts(run):
    stdout, results, _, data = run
    scale = results["scales"][0]
    phases = scale["phases"]
    assert "  counts: all match the generator's summary" in stdout
    assert scale["mismatches"] == []
    assert scale["summary"]["events"] == phases["copy_events"]["rows"] == phases["floor_events"]["rows"] == EVENTS
    assert scale["summary"]["songs"] == phases["copy_songs"]["rows"] == phases["floor_songs"]["rows"] == SONGS
    assert phases["copy_events_exact"]["rows"] == EVENTS and phases["copy_songs_exact"]["rows"] == SONGS
    assert phases["read_songs"]["files"] == SONGS
    assert phases["checks"]["checks"] > 0 and phases["checks"]["failed"] == []
    assert json.loads((data / f"e{EVENTS}-s{SONGS}-seed42" / "summary.json").read_text()) == scale["summary"]


def test_the_report_computes_ratios_from_the_measured_times(run):
    stdout, results, _, _ = run
    phases = results["scales"][0]["phases"]
    copy, floor = phases["copy_events"], phases["floor_events"]
    throughput = floor["seconds"] / copy["seconds"]
    with_analyze = (floor["seconds"] + floor["analyze_seconds"]) / copy["seconds"]
    assert (
        f"COPY events throughput = **{throughput:.2f}x** the native COPY floor; {with_analyze:.2f}x counting" in stdout
    )
    assert f"| COPY of events at >= 0.5x the native COPY floor | {EVENTS:,}: {throughput:.2f}x |" in stdout
    whole_run = floor["seconds"] / phases["etl"]["seconds"]
    assert (
        f"| whole etl.py run at >= 0.25x the native COPY floor of the events | {EVENTS:,}: {whole_run:.2f}x |" in stdout
    )
    client_us = copy["client_cpu_seconds"] / EVENTS * 1e6
    cores = (copy["client_cpu_seconds"] + copy["server_cpu_seconds"]) / (2 * floor["seconds"])
    assert f"CPU per event row: the emulation {client_us:.1f} µs on the Python side" in stdout
    assert f"needs {cores:.1f} cores at this CPU cost." in stdout
    row = next(line for line in stdout.splitlines() if line.startswith("| COPY staging_events (emulation) |"))
    assert row.split(" | ")[5] == f"{copy['seconds'] / floor['seconds']:.2f}x time"
    songs_row = next(line for line in stdout.splitlines() if line.startswith("| COPY staging_songs (emulation) |"))
    assert (
        songs_row.split(" | ")[5] == f"{phases['copy_songs']['seconds'] / phases['floor_songs']['seconds']:.2f}x time"
    )
    exact = phases["copy_events_exact"]["seconds"] / copy["seconds"]
    exact_songs = phases["copy_songs_exact"]["seconds"] / phases["copy_songs"]["seconds"]
    assert f"against the exact path alone: COPY events {exact:.2f}x as fast, COPY songs {exact_songs:.2f}x." in stdout
    sample = results["sample"]
    assert len(sample["running"]) == len(sample["cold"]) == 1
    assert f"{sample['running'][0]:.2f} s (median of 1: {sample['running'][0]:.2f})" in stdout
    assert "not measured (no 3M scale)" in stdout
    assert results["machine"]["postgres"].startswith("PostgreSQL 1")


def test_saved_results_give_the_same_report(run):
    stdout, _, saved, _ = run
    again = benchmark("--report", str(saved))
    assert again.returncode == 0, again.stderr
    assert block(again.stdout) == block(stdout)


def test_write_docs_replaces_only_the_block_between_the_markers(tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# Benchmarks\n\nmethod\n\n{report.MARK_START}\nold figures\n{report.MARK_END}\n\nnotes\n")
    report.write_docs(f"{report.MARK_START}\nnew figures\n{report.MARK_END}", docs)
    assert (
        docs.read_text() == f"# Benchmarks\n\nmethod\n\n{report.MARK_START}\nnew figures\n{report.MARK_END}\n\nnotes\n"
    )
    plain = tmp_path / "plain.md"
    plain.write_text("# Benchmarks\n\nno results yet\n")
    report.write_docs("figures", plain)
    assert plain.read_text() == "# Benchmarks\n\nno results yet\n\n## Results\n\nfigures\n"


def test_a_bad_scale_is_a_usage_error_naming_it():
    done = benchmark("--scales", "1000:10,1000:10:5:9")
    assert done.returncode == 2
    assert "a scale is EVENTS:SONGS[:DAYS], got '1000:10:5:9'" in done.stderr
