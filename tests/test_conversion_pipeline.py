"""The conversion pipeline with real worker processes: order, content, and each platform's start method."""

from __future__ import annotations

import dataclasses
import json
import os
import re

import pytest
from helpers import python_output

from dwh.local import pipeline
from dwh.local.columnar import Plan
from dwh.local.converters import Column, Options
from dwh.local.json_batches import convert_files
from dwh.local.pipeline import convert_in_order, unread, worker_context
from dwh.s3.sources import SourceError, SourceObject

PLAN = Plan([Column("n", "integer"), Column("s", "character varying", 8)], Options(), "auto")


def source_files(count: int, big_first: bool = False) -> list[tuple[SourceObject, bytes]]:
    """`count` files of a few rows each (one bad row in the middle file); the first much larger if asked."""
    files = []
    for i in range(count):
        rows = 20_000 if big_first and i == 0 else 3
        lines = [json.dumps({"n": i * 100_000 + j, "s": f"f{i}r{j}"[:8]}) for j in range(rows)]
        if i == count // 2:
            lines.append('{"n": "bad", "s": "x"}')
        data = "\n".join(lines).encode()
        files.append((SourceObject(f"src/{i:02}.json", len(data)), data))
    return files


@pytest.fixture
def batch_files(monkeypatch):
    """Set how many files make a batch."""
    return lambda count: monkeypatch.setattr(pipeline, "BATCH_FILES", count)


def test_batches_in_flight_come_back_in_order_with_their_content(batch_files):
    batch_files(1)
    files = source_files(8, big_first=True)
    consumed = 0

    def reading():
        nonlocal consumed
        for item in files:
            consumed += 1
            yield item

    results, consumed_at_first = [], None
    for result in convert_in_order(reading(), PLAN, 2):
        if consumed_at_first is None:
            consumed_at_first = consumed
        results.append(result)
    # Two workers: three batches (one file each) were handed out before the first result was taken;
    # the first, twenty thousand rows, is the slowest, so order comes from the queue, not from completion.
    assert consumed_at_first is not None and consumed_at_first >= 3
    assert results == list(convert_in_order(files, PLAN, 0))
    assert [r.rows for r in results] == [20_000, 3, 3, 3, 3, 3, 3, 3]
    assert results[1].data.startswith(b"100000\tf1r0\n")
    assert [(e.filename, e.line_number, e.err_code) for r in results for e in r.errors] == [("src/04.json", 4, 1207)]


def test_spawned_workers_convert_like_this_process(batch_files):
    batch_files(2)
    files = source_files(6)
    spawned = list(convert_in_order(files, PLAN, 2, platform="darwin"))
    assert len(spawned) == 3
    assert spawned == list(convert_in_order(files, PLAN, 0))
    assert sum(r.rows for r in spawned) == 18


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_macos_and_windows_workers_are_spawned(platform):
    assert worker_context(platform).get_start_method() == "spawn"


def test_linux_workers_never_fork_from_the_loading_process():
    """A plain fork would hand the workers the run's database connections (and its load lock)."""
    method = python_output("import dwh.local.pipeline as p; print(p.worker_context('linux').get_start_method())")
    assert method.strip() == "forkserver"


def test_files_convert_the_same_alone_or_batched():
    files = source_files(5)
    alone = [convert_files([(obj.name, data)], PLAN) for obj, data in files]
    together = convert_files([(obj.name, data) for obj, data in files], PLAN)
    assert together.data == b"".join(r.data for r in alone)
    assert together.errors == [e for r in alone for e in r.errors]


def on_disk(tmp_path, files: list[tuple[SourceObject, bytes]]) -> list[SourceObject]:
    """The files written under tmp_path, as the local store lists them."""
    objects = []
    for obj, data in files:
        path = tmp_path / obj.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        objects.append(SourceObject(str(path), len(data)))
    return objects


def test_workers_that_read_their_own_local_files_convert_what_this_process_reads(tmp_path, batch_files):
    batch_files(2)
    files = source_files(6)
    objects = on_disk(tmp_path, files)
    read_here = list(convert_in_order(zip(objects, (data for _, data in files), strict=True), PLAN, 0))
    assert list(convert_in_order(unread(objects), PLAN, 2)) == read_here
    assert [(e.filename, e.line_number) for r in read_here for e in r.errors] == [(objects[3].name, 4)]


def test_a_local_file_gone_before_its_worker_reads_it_is_named(tmp_path):
    objects = on_disk(tmp_path, source_files(2))
    os.remove(objects[1].name)
    with pytest.raises(SourceError, match=f"cannot read {re.escape(objects[1].name)}: No such file"):
        list(convert_in_order(unread(objects), PLAN, 2))


def test_loads_the_native_converter_serves_go_in_larger_batches():
    native_plan = dataclasses.replace(PLAN, native=True)
    assert pipeline.batch_bytes(native_plan) == pipeline.NATIVE_BATCH_BYTES > pipeline.BATCH_BYTES
    assert pipeline.batch_bytes(PLAN) == pipeline.BATCH_BYTES


def test_a_large_file_is_cut_into_pieces_between_documents(tmp_path):
    ndjson = "".join(json.dumps({"n": n, "s": "}\n{" if n % 7 == 0 else "x"}) + "\n" for n in range(200))
    pretty = "".join(json.dumps({"n": n, "o": {"p": [n, {"q": n}]}}, indent=2) + "\n" for n in range(40))
    for text in (ndjson, pretty, ndjson.replace("\n", "\r\n")):
        path = tmp_path / "big.json"
        path.write_bytes(text.encode())
        cut = list(pipeline.pieces(SourceObject(str(path), len(text)), size=300))
        assert len(cut) > 5
        parts = [piece.read(str(path)) for piece in cut]
        assert b"".join(parts) == text.encode()
        for piece, part in zip(cut, parts, strict=True):
            assert part.startswith(b"{") and part.rstrip().endswith(b"}")  # whole documents only
            assert piece.first_line == text.encode().count(b"\n", 0, piece.offset) + 1


def test_a_file_with_no_place_to_cut_stays_one_piece_from_there(tmp_path):
    path = tmp_path / "one-line.json"
    path.write_text('{"n": 1}\n{"n": 2}\n' + json.dumps({"s": "x" * 5000}) + "\n")
    cut = list(pipeline.pieces(SourceObject(str(path), 0), size=10))
    assert [(piece.offset, piece.length, piece.first_line) for piece in cut] == [(0, 9, 1), (9, 9, 2), (18, -1, 3)]
    assert cut[-1].read(str(path)) == path.read_bytes()[18:]


@pytest.mark.parametrize("native", [False, True])
def test_pieces_of_a_large_file_convert_like_the_whole_file_with_its_line_numbers(
    tmp_path, monkeypatch, batch_files, native
):
    monkeypatch.setattr(pipeline, "SPLIT_BYTES", 2_000)
    monkeypatch.setattr(pipeline, "PIECE_BYTES", 2_000)
    batch_files(1)
    plan = dataclasses.replace(PLAN, native=native)
    lines = [json.dumps({"n": n, "s": f"r{n}"}) for n in range(2_000)]
    lines[1_500] = '{"n": "bad", "s": "x"}'
    data = "\n".join(lines).encode()
    objects = on_disk(tmp_path, [(SourceObject("big.json", len(data)), data)])
    whole = list(convert_in_order(zip(objects, [data], strict=True), plan, 0))
    assert len(whole) == 1
    in_pieces = list(convert_in_order(unread(objects), plan, 2))
    assert len(in_pieces) > 10
    assert b"".join(r.data for r in in_pieces) == whole[0].data
    assert sum(r.rows for r in in_pieces) == whole[0].rows == 1_999
    assert [(e.filename, e.line_number) for r in in_pieces for e in r.errors] == [(objects[0].name, 1_501)]
