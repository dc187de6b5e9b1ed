"""Load the song and event files into staging, then build the star schema from staging.

    python etl.py [--config dwh.cfg]
"""

import logging
import sys
import time

from dwh import cli
from dwh.config import load_settings
from dwh.db import connect, run_statements, transaction
from sql_queries import clear_table_queries, copy_table_queries, insert_table_queries, truncate_staging_queries

log = logging.getLogger("dwh")


def load_staging_tables(warehouse, sources) -> None:
    """Empty each staging table and COPY its files into it; a failed COPY loads nothing."""
    for truncate, copy in zip(truncate_staging_queries, copy_table_queries(sources)):
        with transaction(warehouse):
            run_statements(warehouse, [truncate, copy])


def insert_tables(warehouse) -> None:
    """Rebuild the star schema from staging in one transaction: readers see the old or the new."""
    with transaction(warehouse):
        run_statements(warehouse, clear_table_queries + insert_table_queries)


def main(argv=None) -> int:
    args = cli.argument_parser(__doc__.splitlines()[0]).parse_args(argv)

    def body():
        settings = load_settings(args.config)
        started = time.perf_counter()
        with connect(settings) as warehouse:
            log.info("Loading staging tables on %s", warehouse.description)
            load_staging_tables(warehouse, settings.sources)
            log.info("Building the star schema")
            insert_tables(warehouse)
        log.info("Done in %.2f s.", time.perf_counter() - started)

    return cli.run(body, args)


if __name__ == "__main__":
    sys.exit(main())
