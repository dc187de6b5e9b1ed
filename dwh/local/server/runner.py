"""Run initdb and pg_ctl: as ourselves, or as root on Linux through linux_root.

Commands are argument lists, run without a shell. The server must outlive the process that
started it and not get its Ctrl-C: on POSIX it gets its own session, on Windows its own
process group.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dwh.local.server.errors import INSTALL_FIX, ServerError
from dwh.local.server.layout import clean_env, executable


def running_as_root() -> bool:
    """Root on a POSIX system (PostgreSQL refuses to run as root; Windows has no such user)."""
    return sys.platform != "win32" and os.geteuid() == 0


def detach_options(platform: str | None = None) -> dict[str, Any]:
    """subprocess options that keep a started server apart from our terminal and our exit."""
    if (platform or sys.platform) == "win32":
        return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200)}
    return {"start_new_session": True}


@dataclass(frozen=True)
class Runner:
    """How PostgreSQL programs are run: `method` names it (self, sandbox, nobody); `prefix` goes
    before the program (unshare --mount ... sandbox.py ...); `as_user` holds subprocess's user/group options."""

    method: str
    bin_dir: Path
    prefix: tuple[str, ...] = ()
    as_user: dict[str, Any] = field(default_factory=dict)
    owner: tuple[int, int] | None = None  # (uid, gid) the cluster's files need, when not ours

    def command(self, program: str, *args: str) -> list[str]:
        return [*self.prefix, str(executable(self.bin_dir, program)), *args]

    def run(self, program: str, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a program; its output (stdout and stderr together) is in .stdout.

        The output goes to a file rather than a pipe: a server started by pg_ctl may inherit the
        handle, and a pipe would then stay open for as long as the server runs.
        """
        cmd = self.command(program, *args)
        with tempfile.TemporaryFile() as output:
            try:
                completed = subprocess.run(
                    cmd,
                    cwd=cwd,
                    env=clean_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    **detach_options(),
                    **self.as_user,
                )
            except subprocess.TimeoutExpired:
                raise ServerError(f"{program} did not finish within {timeout:.0f} s; see {cwd}") from None
            except OSError as exc:
                raise ServerError(f"cannot run {cmd[0]} ({exc.strerror}); run `{INSTALL_FIX}`") from None
            output.seek(0)
            text = output.read().decode(errors="replace")
        return subprocess.CompletedProcess(cmd, completed.returncode, text, "")

    def own(self, path: Path) -> None:
        """Give a file we wrote to the user the server runs as (only when that is not us)."""
        if self.owner is not None:
            os.chown(path, *self.owner)
