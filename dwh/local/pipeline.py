"""The COPY emulation's pipeline: files grouped into batches, converted in worker processes, in order.

Converting is CPU work, so large loads spread it over one worker process per core. Workers read
the local files they are handed (a large one in pieces); S3 objects are read in the calling
process's threads (dwh.s3.sources.read_in_order). ChunkReader hands the converted text to psycopg2's
copy_expert.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from multiprocessing.context import BaseContext

import psutil

from dwh.local.columnar import Plan
from dwh.local.json_batches import FileResult, Piece, convert_files
from dwh.s3.sources import LocalFiles, SourceObject

Content = bytes | Piece | None

# How often a worker checks that the loading process is still alive (see watch_parent).
PARENT_CHECK_SECONDS = 0.5
# Below this much input, converting in this process beats starting worker processes.
PARALLEL_MIN_BYTES = 8 << 20
# Small files are converted together: up to this many bytes or files per batch.
BATCH_BYTES = 1 << 20
BATCH_FILES = 2000
# A DuckDB call has a fixed cost whatever its rows (binding the conversion query), so where the native
# converter serves a load a batch holds several log files.
NATIVE_BATCH_BYTES = 16 << 20
# A local file over SPLIT_BYTES is converted in pieces of about PIECE_BYTES (see pieces), so that a
# worker holds one piece, not the file, and memory stays flat however large a file is (msgspec checks a
# piece at once, so pieces are small). Smaller files go whole: DuckDB reads them in place.
SPLIT_BYTES = 16 << 20
PIECE_BYTES = 4 << 20


def batch_bytes(plan: Plan) -> int:
    """How many bytes of files make a batch: more where DuckDB converts them."""
    return NATIVE_BATCH_BYTES if plan.native else BATCH_BYTES


def conversion_workers(total_bytes: int, configured: int | None = None) -> int:
    """How many processes convert JSON: [LOCAL] COPY_WORKERS, else one per core for large loads, none for small."""
    if configured is not None:
        return configured
    if total_bytes < PARALLEL_MIN_BYTES:
        return 0
    return min(os.cpu_count() or 1, 8)


def worker_context(platform: str = sys.platform) -> BaseContext:
    """How worker processes start: never by a plain fork of the loading process.

    A forked worker would inherit the run's open database connections, and with them keep the
    load lock's session alive after a killed run. Linux starts workers from a fork server (a
    fresh interpreter that holds none of our sockets); macOS and Windows spawn them (CPython
    calls fork unsafe on macOS; Windows has only spawn). Both import __main__ as __mp_main__,
    so a script that starts a load keeps its work under `if __name__ == "__main__":`.
    """
    if not platform.startswith("linux"):
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["dwh.local.json_batches"])
    return context


def watch_parent(pid: int, created: float, interval: float = PARENT_CHECK_SECONDS) -> None:
    """Worker initializer: end this worker soon after the loading process ends, however it ends.

    A worker blocked reading its task queue never sees the parent go (its siblings hold the
    queue's other end), so a daemon thread checks the parent (pid and start time, so a reused
    pid does not count) and exits the process when it is gone.
    """

    def watch() -> None:
        while _alive(pid, created):
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _alive(pid: int, created: float) -> bool:
    try:
        return psutil.Process(pid).create_time() == created
    except psutil.Error:
        return False


def content_size(obj: SourceObject, data: Content) -> int:
    """The bytes a (source object, content) pair stands for, whether read already or not."""
    return len(data) if isinstance(data, bytes) else obj.size


def batches(
    files: Iterable[tuple[SourceObject, Content]], max_bytes: int = BATCH_BYTES, max_files: int = BATCH_FILES
) -> Iterator[list[tuple[str, Content]]]:
    """Group consecutive (object, content) pairs into lists of (name, content).

    A content of None or a Piece stands for a local file, or part of one, that the converting
    process reads itself (see unread).
    """
    batch: list[tuple[str, Content]] = []
    size = 0
    for obj, data in files:
        length = content_size(obj, data)
        if batch and (size + length > max_bytes or len(batch) >= max_files):
            yield batch
            batch, size = [], 0
        batch.append((obj.name, data))
        size += length
    if batch:
        yield batch


def unread(objects: Iterable[SourceObject]) -> Iterator[tuple[SourceObject, Piece | None]]:
    """Local files for convert_in_order to hand its workers unread: each worker reads its own batch
    from disk, so the bytes are not copied through a pipe to it. A file over
    SPLIT_BYTES goes in pieces (see pieces), each an object of its own size."""
    for obj in objects:
        if obj.size <= SPLIT_BYTES:
            yield obj, None
            continue
        for piece in pieces(obj):
            yield SourceObject(obj.name, piece.length if piece.length >= 0 else obj.size - piece.offset), piece


def pieces(obj: SourceObject, size: int = 0) -> Iterator[Piece]:
    """A local file in Pieces of about `size` bytes (PIECE_BYTES), read here once to find the cuts.

    A cut falls where a line ends with `}` and the next starts with `{`: in JSON that can only be
    the end of one document and the start of the next (a string holds no raw newline, and after an
    inner object comes `,`, `}` or `]`), whether the file has one document a line or pretty-printed
    ones. Where none comes within twice `size`, the rest of the file is one piece.
    """
    size, local = size or PIECE_BYTES, LocalFiles()
    offset, first_line, data = 0, 1, b""
    while chunk := local.read(obj, offset + len(data), size):
        data += chunk
        cut = data.rfind(b"}\n{")
        cut = max(cut, data.rfind(b"}\r\n{", cut + 1))  # a CRLF cut after it, if any: no second full scan
        if cut < 0:
            if len(data) > 2 * size:
                break
            continue
        end = data.index(b"\n", cut) + 1
        yield Piece(offset, end, first_line)
        offset += end
        first_line += data.count(b"\n", 0, end)
        data = data[end:]
    if data:
        yield Piece(offset, -1, first_line)  # to the end of the file


def convert_in_order(
    files: Iterable[tuple[SourceObject, Content]],
    plan: Plan,
    workers: int,
    *,
    platform: str = sys.platform,
) -> Iterator[FileResult]:
    """Yield a FileResult per batch of files, in order, converting in `workers` processes when > 0.

    At most one batch per worker (and one more) is in flight, so memory stays flat however many files
    there are; the workers read the local files handed to them unread, the rest is read by the caller.
    """
    if workers <= 0:
        for batch in batches(files, batch_bytes(plan), BATCH_FILES):
            yield convert_files(batch, plan)
        return
    me = psutil.Process()
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=worker_context(platform),
        initializer=watch_parent,
        initargs=(me.pid, me.create_time()),
    ) as pool:
        pending: deque[Future[FileResult]] = deque()
        try:
            for batch in batches(files, batch_bytes(plan), BATCH_FILES):
                pending.append(pool.submit(convert_files, batch, plan))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            # A consumer that stops early (a failed COPY) leaves batches in flight: let them finish
            # rather than cancel them. Cancelling queued work can hang the pool's shutdown for good
            # on Python 3.11.0-3.11.4 with fork-server workers (Debian 12's python3 is 3.11.2);
            # at most one batch per worker and one more is in flight, so the wait is short.
            wait(pending)


class ChunkReader:
    """A file-like view of an iterator of byte chunks, for cursor.copy_expert.

    Each read() returns the next whole chunk (psycopg2 sends whatever length read()
    returns), so no bytes are copied here. psycopg2 replaces an exception raised inside
    read() by QueryCanceled, so the original is kept and re-raised by the caller.
    """

    def __init__(self, chunks: Iterable[bytes]):
        self.chunks = iter(chunks)
        self.failure: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            return next(self.chunks, b"")
        except BaseException as exc:
            self.failure = exc
            raise
