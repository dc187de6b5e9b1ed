"""Load the song and event files into staging, then build the star schema from staging.

python etl.py                                  full load: every event and song, then publish
python etl.py --date 2018-11-15 [--songs]      one day's events (and, with --songs, the songs)
python etl.py --start 2018-11-01 --end 2018-11-30   a range, day by day
python etl.py --check                          the data-quality checks on what is loaded now
python etl.py --history [N]                    the last N runs (default 20) and what each did
python etl.py ... --dry-run                    print the SQL it would run, in order; run nothing
python etl.py ... --wait SECONDS               wait this long for a running load (default 1800), then exit 1
"""

import argparse
import logging
import sys
from datetime import date, timedelta

from dwh import cli, quality
from dwh.config import load_settings
from dwh.db import run_statements, transaction
from dwh.errors import NoSourceFiles, WarehouseError
from dwh.ops import lock
from dwh.ops.history import DEFAULT_RUNS_SHOWN
from dwh.ops.run import run_locked, show_history
from sql_queries import (
    clear_staging_queries,
    clear_table_queries,
    copy_table_queries,
    daily_event_queries,
    data_quality_checks,
    insert_table_queries,
    song_upsert_queries,
)

log = logging.getLogger("dwh")


def load_staging_tables(warehouse, sources, day=None, events=True, songs=True) -> None:
    """Replace each staging table's rows by its files: DELETE and COPY in one transaction.

    A failed COPY rolls the DELETE back too, so the table keeps its previous rows (later daily
    loads match plays against staging_songs). Never TRUNCATE: Redshift commits it at once.
    """
    chosen = (events, songs)
    for wanted, clear, copy in zip(chosen, clear_staging_queries, copy_table_queries(sources, day), strict=True):
        if wanted:
            with transaction(warehouse):
                run_statements(warehouse, [clear, copy])


def publish(warehouse, statements) -> None:
    """Run the star-schema statements and the checks in one transaction.

    Readers see the old tables or the new ones; a failure or a failed check rolls back.
    """
    with transaction(warehouse):
        run_statements(warehouse, statements)
        quality.check(warehouse, data_quality_checks)


def insert_tables(warehouse) -> None:
    """Rebuild the whole star schema from staging."""
    publish(warehouse, clear_table_queries + insert_table_queries)


def load_day(warehouse, sources, day: date, songs: bool = False) -> None:
    """Load one day's events (and the songs, if asked) and publish that day."""
    log.info("Loading %s", day.isoformat())
    load_staging_tables(warehouse, sources, day, events=True, songs=songs)
    publish(warehouse, (song_upsert_queries if songs else []) + daily_event_queries(day))


def load_days(warehouse, sources, days: list[date], songs: bool) -> None:
    """Load days in order; in a range, a day without a file is reported and skipped."""
    skipped = []
    for number, day in enumerate(days):
        try:
            load_day(warehouse, sources, day, songs=songs and number == 0)
        except NoSourceFiles:
            if len(days) == 1:
                raise WarehouseError(f"no event file for {day.isoformat()}: nothing was loaded") from None
            log.warning("No event file for %s: skipped.", day.isoformat())
            skipped.append(day)
    if skipped and len(skipped) == len(days):
        raise WarehouseError(f"no event file for any day from {days[0]} to {days[-1]}")


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def parse_args(argv):
    parser = cli.argument_parser(__doc__.splitlines()[0])
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--date", type=iso_date, help="load this day's events (YYYY-MM-DD)")
    when.add_argument("--start", type=iso_date, help="first day of a range (with --end)")
    when.add_argument("--check", action="store_true", help="only run the data-quality checks")
    when.add_argument(
        "--history",
        type=int,
        nargs="?",
        const=DEFAULT_RUNS_SHOWN,
        metavar="N",
        help=f"print the last N runs (default {DEFAULT_RUNS_SHOWN}) and what each did; needs no lock",
    )
    parser.add_argument("--end", type=iso_date, help="last day of a range, inclusive")
    parser.add_argument("--songs", action="store_true", help="with --date or a range: load the song data too")
    cli.add_run_options(parser, lock.DEFAULT_WAIT)
    args = parser.parse_args(argv)
    if (args.start is None) != (args.end is None):
        parser.error("--start and --end go together")
    if args.start and args.start > args.end:
        parser.error(f"--start {args.start} is after --end {args.end}")
    if args.songs and not (args.date or args.start):
        parser.error("--songs goes with --date or --start/--end (a full load always loads the songs)")
    if args.history is not None and (args.history < 1 or args.dry_run):
        parser.error("--history N needs N >= 1 and runs no load, so no --dry-run")
    if args.wait < 0:
        parser.error("--wait SECONDS cannot be negative")
    return args


def days_of(args) -> list[date]:
    if args.date:
        return [args.date]
    return [args.start + timedelta(days=n) for n in range((args.end - args.start).days + 1)]


def load(warehouse, settings, args) -> None:
    """What the arguments ask for: the checks alone, days, or the full load."""
    if args.check:
        quality.check(warehouse, data_quality_checks)
    elif args.date or args.start:
        load_days(warehouse, settings.sources, days_of(args), args.songs)
    else:
        log.info("Loading staging tables on %s", warehouse.description)
        load_staging_tables(warehouse, settings.sources)
        log.info("Building the star schema")
        insert_tables(warehouse)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.history is not None:
        return cli.run(lambda: print(show_history(load_settings(args.config), args.history)), args)
    return run_locked(__file__, argv, args, lambda warehouse, settings: load(warehouse, settings, args))


if __name__ == "__main__":
    sys.exit(main())
