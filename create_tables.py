"""Drop and re-create the staging tables and the star schema (the load lock and history tables are kept).

python create_tables.py [--config dwh.cfg] [--wait SECONDS] [--dry-run]
"""

import logging
import sys

from dwh import cli, runlock
from dwh.config import load_settings
from dwh.db import run_statements, transaction
from dwh.dryrun import Printer, describe_target
from dwh.run import connect, dry_run_opener, locked_run
from sql_queries import control_table_queries, create_table_queries, drop_table_queries

log = logging.getLogger("dwh")


def drop_tables(warehouse) -> None:
    run_statements(warehouse, drop_table_queries)


def create_tables(warehouse) -> None:
    run_statements(warehouse, create_table_queries)


def main(argv=None) -> int:
    parser = cli.argument_parser(__doc__.splitlines()[0])
    cli.add_run_options(parser, runlock.DEFAULT_WAIT)
    args = parser.parse_args(argv)
    command = cli.command_line(__file__, argv)

    def body():
        settings = load_settings(args.config)
        if args.dry_run:
            print(f"-- dry run of {command} on {describe_target(settings)}: nothing is run")
        opener = dry_run_opener(Printer()) if args.dry_run else connect
        with locked_run(
            settings, command, wait=args.wait, quiet=args.quiet, control_tables=control_table_queries, opener=opener
        ) as warehouse:
            log.info("Re-creating the tables on %s", warehouse.description)
            with transaction(warehouse):
                drop_tables(warehouse)
                create_tables(warehouse)
            log.info("Done: %d tables created.", len(create_table_queries))

    args.quiet = args.quiet or args.dry_run  # a dry run prints SQL only
    return cli.run(body, args)


if __name__ == "__main__":
    sys.exit(main())
