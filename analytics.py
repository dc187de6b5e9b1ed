"""Run the analytic queries on the warehouse and print each result as a table.

    python analytics.py [--config dwh.cfg] [--out DIR]

With --out, also write DIR/report.md (the same tables in Markdown, with each query's SQL)
and the charts DIR/plays_by_hour.png and DIR/plays_by_weekday.png.
"""

import logging
import sys
import time
from pathlib import Path

from dwh import cli, report
from dwh.analytic_queries import analytics_queries
from dwh.config import load_settings
from dwh.db import connect

log = logging.getLogger("dwh")


def main(argv=None) -> int:
    parser = cli.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--out", metavar="DIR", type=Path, help="write report.md and the PNG charts into DIR")
    args = parser.parse_args(argv)

    def body():
        settings = load_settings(args.config)
        started = time.perf_counter()
        with connect(settings) as warehouse:
            log.info("Running %d analytic queries on %s", len(analytics_queries), warehouse.description)
            try:
                results = [report.run_query(warehouse, query) for query in analytics_queries]
            finally:
                warehouse.rollback()  # read only: end the transaction the SELECTs opened
        print(report.console_report(results), end="")
        if args.out:
            for path in report.write_report(results, args.out):
                log.info("wrote %s", path)
        log.info("Done in %.2f s.", time.perf_counter() - started)

    return cli.run(body, args)


if __name__ == "__main__":
    sys.exit(main())
