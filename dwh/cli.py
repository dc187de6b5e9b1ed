"""What every script shares: arguments, logging, and the one front end that turns failures into exit codes.

Exit codes: 0 success, 1 failure, 2 configuration or usage, 130 interrupted (Ctrl-C). A failure is
reported as one line on stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg2
import psycopg2.errors

from dwh.config import ConfigError
from dwh.errors import WarehouseError, first_line, one_line

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


def add_run_options(parser: argparse.ArgumentParser, default_wait: float) -> None:
    """--wait and --dry-run, for the scripts that hold the load lock."""
    parser.add_argument(
        "--wait",
        type=float,
        default=default_wait,
        metavar="SECONDS",
        help="wait this long for another load to finish, then give up with exit 1 (default: %(default)g)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the SQL that would run, in order; connect to nothing"
    )


def command_line(script: str, argv: list[str] | None) -> str:
    """The command as typed, for the load history (scripts take no secret on their command line)."""
    return " ".join([Path(script).name, *(sys.argv[1:] if argv is None else argv)])


class Timestamped(logging.Formatter):
    """Every line of a record begins with its UTC time in ISO 8601: log files from cron read in order."""

    def __init__(self) -> None:
        super().__init__("%(message)s")
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        stamp = f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}.{int(record.msecs):03d}Z"
        return "\n".join(f"{stamp} {line}" for line in super().format(record).splitlines() or [""])


class StdoutHandler(logging.StreamHandler):
    """Log lines on stdout; a reader that went away (``etl.py | head``) ends the script quietly
    (exit_code), instead of logging's "--- Logging error ---" report on stderr."""

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], BrokenPipeError):
            raise BrokenPipeError
        super().handleError(record)


def explain(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and message for what the warehouse scripts raise."""
    if isinstance(exc, ConfigError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, WarehouseError):
        return EXIT_FAILURE, str(exc)
    if isinstance(exc, psycopg2.errors.DiskFull):
        return EXIT_FAILURE, (
            f"the warehouse's disk is full ({first_line(exc)}); the run was rolled back and the previous data is "
            "intact: free space on the disk that holds the warehouse's data ([LOCAL] DATA_DIR locally) and run it "
            "again"
        )
    if _connection_lost(exc):
        return EXIT_FAILURE, (
            f"the connection to the warehouse was lost mid-run ({first_line(exc)}): its server stopped or the "
            "network failed; what the run had not committed was rolled back: run it again once the warehouse "
            "is up (locally the next run starts the server; its log is [LOCAL] DATA_DIR/server.log)"
        )
    if isinstance(exc, psycopg2.Error):
        if isinstance(exc, psycopg2.errors.UndefinedTable):
            return EXIT_FAILURE, (
                f"the warehouse lacks a table ({first_line(exc)}: made by an older version, or never created); "
                "run python create_tables.py, then a full load with python etl.py"
            )
        return EXIT_FAILURE, f"the warehouse refused a statement: {one_line(exc)}"
    return None


def _connection_lost(exc: BaseException) -> bool:
    """A connection the server or the network ended (not a refusal to connect: dwh.db explains those)."""
    if isinstance(exc, psycopg2.InterfaceError):
        return "closed" in str(exc)
    if isinstance(exc, psycopg2.OperationalError) and exc.pgcode is None:
        text = str(exc)
        lost = ("server closed the connection", "terminating connection", "SSL SYSCALL", "invalid socket")
        return any(sign in text for sign in lost)
    return isinstance(exc, psycopg2.errors.AdminShutdown)


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
    # C code (psycopg2 when a COPY's connection dies) may print a pending exception through
    # sys.excepthook: fragments of a traceback before the one line below. Everything body() raises
    # is handled here, so nothing needs printing that way while it runs.
    sys.excepthook, hook = _unprinted, sys.excepthook
    try:
        code = body()
    except KeyboardInterrupt:
        error(interrupted)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (``etl.py --dry-run | head``): stop quietly, and point
        # stdout at nothing so that the interpreter's last flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
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
    finally:
        sys.excepthook = hook
    return EXIT_OK if code is None else code


def _unprinted(kind, value, traceback) -> None:
    log.debug("an exception printed by C code", exc_info=(kind, value, traceback))


def setup_logging(quiet: bool) -> None:
    """Log to stdout (-q: errors only, as its help says); each line timestamped when stdout is not a terminal."""
    handler = StdoutHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s") if sys.stdout.isatty() else Timestamped())
    logging.basicConfig(level=logging.ERROR if quiet else logging.INFO, handlers=[handler], force=True)


def run(body: Callable[[], None], args: argparse.Namespace) -> int:
    """Set up logging (-q: errors only), then run body() through exit_code()."""
    setup_logging(args.quiet)
    return exit_code(body)
