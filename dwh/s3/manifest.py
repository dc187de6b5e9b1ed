"""Write a Redshift COPY manifest listing every file under a prefix.

    python -m dwh.s3.manifest s3://udacity-dend/song_data song_data.manifest --anonymous
    python -m dwh.s3.manifest data/udacity-dend/song_data song_data.manifest

A manifest makes a load exact and repeatable: COPY reads the listed files, fails if a
mandatory one is missing, and skips listing a prefix of hundreds of thousands of keys.
Point [S3] SONG_MANIFEST (or [LOCAL] SONG_MANIFEST) at it.
"""

import argparse
import json
import sys

from dwh.s3.sources import ANONYMOUS_HELP, SourceError, open_store


def manifest_for(prefix: str, region: str | None = None, anonymous: bool = False) -> dict:
    objects = open_store(prefix, region, anonymous=anonymous).list(prefix)
    if not objects:
        raise SourceError(f"{prefix} matches no file")
    return {"entries": [{"url": obj.name, "mandatory": True, "meta": {"content_length": obj.size}} for obj in objects]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dwh.s3.manifest", description=__doc__.splitlines()[0])
    parser.add_argument("prefix", help="an s3:// prefix or a local folder prefix")
    parser.add_argument("output", help="where to write the manifest (a local file; upload it for Redshift)")
    parser.add_argument("--region")
    parser.add_argument("--anonymous", action="store_true", help=ANONYMOUS_HELP)
    args = parser.parse_args(argv)
    try:
        manifest = manifest_for(args.prefix, args.region, anonymous=args.anonymous)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1)
    print(f"{args.output}: {len(manifest['entries']):,} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
