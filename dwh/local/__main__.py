"""`python -m dwh.local start|stop|status [--config PATH]`: manage the local warehouse server.

Reads only the [LOCAL] section (HOST, PORT, DB_NAME, DB_USER, DATA_DIR) of the config file;
a relative DATA_DIR is resolved against the config file's folder. Prints one line; on error
prints one line naming the fix to stderr and exits 1. Never prints the password.
"""

from __future__ import annotations

import argparse
import configparser
import sys
from pathlib import Path

from dwh.local.server import ServerError, ServerSettings, ensure_running, status, stop

KEYS = ("HOST", "PORT", "DB_NAME", "DB_USER", "DATA_DIR")


def _settings(config: str, explicit: bool) -> ServerSettings:
    path = Path(config)
    if not path.exists() and not explicit:
        example = path.with_name("dwh.cfg.example")
        if example.exists():
            print(f"{path} not found; using {example} (copy it to {path} to customise)", file=sys.stderr)
            path = example
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        raise ServerError(f"{path}: not found; copy dwh.cfg.example to dwh.cfg or pass --config") from None
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise ServerError(f"{path}: cannot be read ({first}); fix the file") from None
    if not parser.has_section("LOCAL"):
        raise ServerError(f"{path}: section [LOCAL] is missing; copy it from dwh.cfg.example")
    values = {}
    for key in KEYS:
        value = parser.get("LOCAL", key, fallback="").strip().strip('"').strip("'").strip()
        if not value:
            raise ServerError(f"{path}: [LOCAL] {key} is missing or empty; set it (see dwh.cfg.example)")
        values[key] = value
    if not values["PORT"].isdigit() or not 1 <= int(values["PORT"]) <= 65535:
        raise ServerError(
            f"{path}: [LOCAL] PORT must be a port number from 1 to 65535, got {values['PORT']!r}"
        )
    return ServerSettings(
        data_dir=(path.resolve().parent / values["DATA_DIR"]).resolve(),
        host=values["HOST"],
        port=int(values["PORT"]),
        user=values["DB_USER"],
        dbname=values["DB_NAME"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dwh.local", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument("--config", help="config file (default: dwh.cfg, else dwh.cfg.example)")
    args = parser.parse_args(argv)
    try:
        settings = _settings(args.config or "dwh.cfg", explicit=args.config is not None)
        if args.command == "start":
            ensure_running(settings)
            print(status(settings))
        elif args.command == "stop":
            was_running = stop(settings)
            print(("local warehouse stopped" if was_running else "local warehouse was not running")
                  + f" (data dir {settings.data_dir})")
        else:
            print(status(settings))
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
