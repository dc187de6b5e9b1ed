"""`python -m dwh.local start|stop|status|psql [--config PATH]`: manage the local warehouse server.

Reads only the server's keys of [LOCAL] (HOST, PORT, DB_NAME, DB_USER, DATA_DIR), validated
by dwh.config; a relative DATA_DIR is resolved against the config file's folder. Prints one
line; on error prints one line naming the fix to stderr and exits 2 for configuration, 1 for
the server, 130 when interrupted (dwh.cli.exit_code). Never prints the password.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from dwh import cli
from dwh.config import ServerSettings, load_server_settings
from dwh.local.server import ensure_running, psql_command, status, stop


def _settings(config: str, explicit: bool) -> ServerSettings:
    path = Path(config)
    if not path.exists() and not explicit:
        example = path.with_name("dwh.cfg.example")
        if example.exists():
            print(f"{path} not found; using {example} (copy it to {path} to customise)", file=sys.stderr)
            path = example
    return load_server_settings(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dwh.local", description=__doc__.splitlines()[0])
    parser.add_argument(
        "command",
        choices=("start", "stop", "status", "psql"),
        help="psql opens the PostgreSQL shell from the wheel on the warehouse",
    )
    parser.add_argument("--config", help="config file (default: dwh.cfg, else dwh.cfg.example)")
    args = parser.parse_args(argv)

    def body() -> int | None:
        settings = _settings(args.config or "dwh.cfg", explicit=args.config is not None)
        if args.command == "start":
            ensure_running(settings)
            print(status(settings))
        elif args.command == "stop":
            was_running = stop(settings)
            print(
                ("local warehouse stopped" if was_running else "local warehouse was not running")
                + f" (data dir {settings.data_dir})"
            )
        elif args.command == "psql":
            command, environment = psql_command(settings)
            if sys.platform == "win32":  # no exec there: run psql and pass on its exit code
                return subprocess.run(command, env=environment).returncode
            os.execve(command[0], command, environment)
        else:
            print(status(settings))
        return None

    return cli.exit_code(body)


if __name__ == "__main__":
    sys.exit(main())
