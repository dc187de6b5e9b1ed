"""Compact many one-object JSON files into a few newline-delimited files, for COPY.

    python -m dwh.s3.compact s3://udacity-dend/song_data compacted/song_data --files 4 --anonymous

COPY pays a request per file, so a prefix of hundreds of thousands of one-song files loads
slowly on any cluster. One object per line loads exactly as before (FORMAT AS JSON 'auto'),
from as many files as the cluster has slices. Upload the folder and point SONG_DATA at it.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from pathlib import Path

from dwh.s3.json_documents import documents_in
from dwh.s3.sources import ANONYMOUS_HELP, SourceError, open_store, read_in_order


def _objects(data: bytes, name: str):
    """Every JSON value in a file, whatever whitespace separates them, re-encoded on one line."""
    data.decode("utf-8")  # invalid UTF-8 stops the compaction rather than being carried along
    errors: list = []
    for _, value in documents_in(data, name, errors):
        yield json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if errors:
        raise SourceError(f"{name}: not JSON ({errors[0]})")


def compact(
    prefix: str, destination: Path, files: int, region: str | None = None, anonymous: bool = False
) -> tuple[int, int]:
    """Write every object under prefix into `files` NDJSON files; return (source files, objects)."""
    store = open_store(prefix, region, anonymous=anonymous)
    sources = store.list(prefix)
    if not sources:
        raise SourceError(f"{prefix} matches no file")
    destination.mkdir(parents=True, exist_ok=True)
    count = 0
    with ExitStack() as stack:
        outputs = [
            stack.enter_context(open(destination / f"part-{n:04d}.json", "w", encoding="utf-8")) for n in range(files)
        ]
        for obj, data in read_in_order(store, sources):
            for line in _objects(data, obj.name):
                outputs[count % files].write(line + "\n")
                count += 1
    return len(sources), count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dwh.s3.compact", description=__doc__.splitlines()[0])
    parser.add_argument("prefix", help="an s3:// prefix or a local folder prefix")
    parser.add_argument("destination", help="a local folder for the compacted files")
    parser.add_argument("--files", type=int, default=4, help="how many files to write (a multiple of the slices)")
    parser.add_argument("--region")
    parser.add_argument("--anonymous", action="store_true", help=ANONYMOUS_HELP)
    args = parser.parse_args(argv)
    if args.files < 1:
        parser.error("--files must be at least 1")
    try:
        read, written = compact(args.prefix, Path(args.destination), args.files, args.region, args.anonymous)
    except (SourceError, UnicodeDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{read:,} files, {written:,} objects -> {args.files} files in {args.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
