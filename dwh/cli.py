"""What every script shares: arguments, logging, and the one front end that turns failures into exit codes.

Exit codes: 0 success, 1 failure, 2 configuration or usage, 130 interrupted (Ctrl-C). A failure is
reported as one line on stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg2
import psycopg2.errors

from dwh.config import ConfigError
from dwh.errors import WarehouseError

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "dwh.cfg"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

log = logging.getLogger("dwh")

#: exception -> (exit code, the one line to print), or None when the explainer does not know it.
Explainer = Callable[[BaseException], "tuple[int, str] | None"]


def argument_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="configuration file (default: %(default)s)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    return parser


def explain(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and message for what the warehouse scripts raise."""
    if isinstance(exc, ConfigError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, WarehouseError):
        return EXIT_FAILURE, str(exc)
    if isinstance(exc, psycopg2.Error):
        message = (exc.pgerror or str(exc)).strip()
        hint = " (run python create_tables.py first)" if isinstance(exc, psycopg2.errors.UndefinedTable) else ""
        return EXIT_FAILURE, f"the warehouse refused a statement: {message}{hint}"
    return None


def print_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


def exit_code(
    body: Callable[[], int | None],
    *,
    explainers: tuple[Explainer, ...] = (explain,),
    error: Callable[[str], None] = print_error,
    interrupted: str = "interrupted",
) -> int:
    """Run body() and return its exit code (0 when it returns None); every script's main() ends here.

    What an explainer knows becomes its one line and code; Ctrl-C becomes ``interrupted`` and 130;
    anything else is a bug, reported as one line naming the exception and exit 1.
    """
    try:
        code = body()
    except KeyboardInterrupt:
        error(interrupted)
        return EXIT_INTERRUPTED
    except Exception as exc:
        for explainer in explainers:
            known = explainer(exc)
            if known is not None:
                code_, message = known
                error(message)
                return code_
        log.debug("unexpected failure", exc_info=True)
        error(f"unexpected {type(exc).__name__}: {exc} (a bug: please report it with the command you ran)")
        return EXIT_FAILURE
    return EXIT_OK if code is None else code


def run(body: Callable[[], None], args: argparse.Namespace) -> int:
    """Set up logging (-q: errors only), then run body() through exit_code()."""
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stdout, force=True
    )
    return exit_code(body)
