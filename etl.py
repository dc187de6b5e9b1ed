"""Load the song and event files into staging, then build the star schema from staging.

    python etl.py [--config dwh.cfg]      load, check, publish
    python etl.py --check                 run the data-quality checks on what is loaded now
"""

import logging
import sys
import time

from dwh import cli, quality
from dwh.config import load_settings
from dwh.db import connect, run_statements, transaction
from sql_queries import (
    clear_table_queries,
    copy_table_queries,
    data_quality_checks,
    insert_table_queries,
    truncate_staging_queries,
)

log = logging.getLogger("dwh")


def load_staging_tables(warehouse, sources) -> None:
    """Empty each staging table and COPY its files into it; a failed COPY loads nothing."""
    for truncate, copy in zip(truncate_staging_queries, copy_table_queries(sources)):
        with transaction(warehouse):
            run_statements(warehouse, [truncate, copy])


def insert_tables(warehouse) -> None:
    """Rebuild the star schema from staging and check it, in one transaction.

    Readers see the old tables or the new ones; a failure or a failed check rolls back.
    """
    with transaction(warehouse):
        run_statements(warehouse, clear_table_queries + insert_table_queries)
        quality.enforce(quality.run_checks(warehouse, data_quality_checks))


def main(argv=None) -> int:
    parser = cli.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only run the data-quality checks")
    args = parser.parse_args(argv)

    def body():
        settings = load_settings(args.config)
        started = time.perf_counter()
        with connect(settings) as warehouse:
            if args.check:
                quality.enforce(quality.run_checks(warehouse, data_quality_checks))
                return
            log.info("Loading staging tables on %s", warehouse.description)
            load_staging_tables(warehouse, settings.sources)
            log.info("Building the star schema")
            insert_tables(warehouse)
        log.info("Done in %.2f s.", time.perf_counter() - started)

    return cli.run(body, args)


if __name__ == "__main__":
    sys.exit(main())
