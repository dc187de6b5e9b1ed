"""Run the analytic queries on the warehouse and print each result as a table.

    python analytics.py [--config dwh.cfg] [--out DIR [--doc FILE]]

With --out, also write DIR/report.md (a summary, the same tables in Markdown, each query's SQL)
and a PNG chart per charted query (top artists, plays per day, by hour, by weekday). With
--doc, also write the report into FILE below its marker line, keeping the hand-written part
above it: `python analytics.py --out docs/analytics --doc docs/analytics.md` regenerates the docs.
"""

import logging
import sys
import time
from pathlib import Path

from dwh import cli
from dwh.analytics import report
from dwh.analytics.queries import analytics_queries
from dwh.config import load_settings
from dwh.ops.run import connect

log = logging.getLogger("dwh")


def main(argv=None) -> int:
    parser = cli.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--out", metavar="DIR", type=Path, help="write report.md and the PNG charts into DIR")
    parser.add_argument(
        "--doc", metavar="FILE", type=Path, help="with --out: write the report into FILE, below its marker line"
    )
    args = parser.parse_args(argv)
    if args.doc and not args.out:
        parser.error("--doc needs --out (the charts' folder)")

    def body():
        settings = load_settings(args.config)
        intro = report.document_intro(args.doc) if args.doc else None
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
        if args.doc and intro is not None:
            log.info("wrote %s", report.write_document(results, args.doc, intro, args.out))
        log.info("Done in %.2f s.", time.perf_counter() - started)

    return cli.run(body, args)


if __name__ == "__main__":
    sys.exit(main())
