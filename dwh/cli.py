"""What every script shares: arguments, logging, and turning failures into exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import psycopg2
import psycopg2.errors

from dwh.config import EXIT_CONFIG_ERROR, ConfigError
from dwh.errors import WarehouseError

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "dwh.cfg"
EXIT_FAILURE = 1

log = logging.getLogger("dwh")


def argument_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="configuration file (default: %(default)s)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    return parser


def run(body, args: argparse.Namespace) -> int:
    """Run body(); report a failure as one clear message and return the exit code."""
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stdout, force=True
    )
    try:
        body()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except WarehouseError as exc:  # ServerError, from the local server, is one too
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except psycopg2.Error as exc:
        message = (exc.pgerror or str(exc)).strip()
        hint = " (run python create_tables.py first)" if isinstance(exc, psycopg2.errors.UndefinedTable) else ""
        print(f"error: the warehouse refused a statement: {message}{hint}", file=sys.stderr)
        return EXIT_FAILURE
    return 0
