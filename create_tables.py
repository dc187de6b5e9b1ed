"""Drop and re-create the staging tables and the star schema (the load lock and history tables are kept).

python create_tables.py [--config dwh.cfg] [--wait SECONDS] [--dry-run]
"""

import logging
import sys

from dwh import cli
from dwh.db import run_statements, transaction
from dwh.ops import lock
from dwh.ops.run import run_locked
from sql_queries import create_table_queries, drop_table_queries

log = logging.getLogger("dwh")


def drop_tables(warehouse) -> None:
    run_statements(warehouse, drop_table_queries)


def create_tables(warehouse) -> None:
    run_statements(warehouse, create_table_queries)


def recreate_tables(warehouse, settings) -> None:
    """Drop and create every table in one transaction: readers see the old tables or the new, empty ones."""
    log.info("Re-creating the tables on %s", warehouse.description)
    with transaction(warehouse):
        drop_tables(warehouse)
        create_tables(warehouse)
    log.info("%d tables created.", len(create_table_queries))


def main(argv=None) -> int:
    parser = cli.argument_parser(__doc__.splitlines()[0])
    cli.add_run_options(parser, lock.DEFAULT_WAIT)
    args = parser.parse_args(argv)
    return run_locked(__file__, argv, args, recreate_tables)


if __name__ == "__main__":
    sys.exit(main())
