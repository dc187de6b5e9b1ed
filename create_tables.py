"""Drop and re-create the staging tables and the star schema.

python create_tables.py [--config dwh.cfg]
"""

import logging
import sys

from dwh import cli
from dwh.config import load_settings
from dwh.db import connect, run_statements, transaction
from sql_queries import create_table_queries, drop_table_queries

log = logging.getLogger("dwh")


def drop_tables(warehouse) -> None:
    run_statements(warehouse, drop_table_queries)


def create_tables(warehouse) -> None:
    run_statements(warehouse, create_table_queries)


def main(argv=None) -> int:
    args = cli.argument_parser(__doc__.splitlines()[0]).parse_args(argv)

    def body():
        settings = load_settings(args.config)
        with connect(settings) as warehouse:
            log.info("Re-creating the tables on %s", warehouse.description)
            with transaction(warehouse):
                drop_tables(warehouse)
                create_tables(warehouse)
            log.info("Done: %d tables created.", len(create_table_queries))

    return cli.run(body, args)


if __name__ == "__main__":
    sys.exit(main())
