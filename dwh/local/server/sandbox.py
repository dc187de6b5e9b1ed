"""Run one PostgreSQL program as an unprivileged user that can reach only the folders it is given.

Started as root by linux_root inside a private mount namespace (`unshare --mount --propagation
private`), as a script run by path with nothing but the standard library:

    python sandbox.py --uid U --gid G --expose DIR [--expose DIR ...] -- PROGRAM [ARG ...]

A folder such as the project's under /root (mode 0700) is not reachable by an unprivileged user.
Within the namespace only, each closed ancestor of an exposed folder is covered by an empty
tmpfs, and the exposed folder is bind-mounted back at its own path, so every path means the same
inside and out and no permission on the host changes. Then the program runs as U:G with no
supplementary groups. A server it starts (pg_ctl start) lives on in the namespace.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys


def searchable(path: str, uid: int, gid: int) -> bool:
    """Can uid:gid (no other groups) search the folder, by its mode bits?"""
    info = os.stat(path)
    if info.st_uid == uid:
        return bool(info.st_mode & 0o100)
    if info.st_gid == gid:
        return bool(info.st_mode & 0o010)
    return bool(info.st_mode & 0o001)


def closed_ancestor(path: str, uid: int, gid: int) -> str | None:
    """The first folder above `path`, from the root down, that uid:gid cannot search."""
    parts = path.strip("/").split("/")[:-1]
    for depth in range(len(parts)):
        folder = "/" + "/".join(parts[: depth + 1])
        if not searchable(folder, uid, gid):
            return folder
    return None


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def expose(folders: list[str], uid: int, gid: int) -> None:
    """Make each folder reachable by uid:gid at its own path, in this mount namespace only."""
    held = {folder: os.open(folder, os.O_PATH | os.O_DIRECTORY) for folder in folders}
    closed = {ancestor for folder in folders if (ancestor := closed_ancestor(folder, uid, gid))}  # before any mount
    covered = sorted(a for a in closed if not any(a.startswith(other + "/") for other in closed))
    for ancestor in covered:
        mount("-t", "tmpfs", "-o", "mode=0755,size=1m", "sparkify-sandbox", ancestor)
    for folder, fd in held.items():
        if any(folder.startswith(c + "/") for c in covered):
            os.makedirs(folder, mode=0o755, exist_ok=True)
            mount("--no-canonicalize", "--bind", f"/proc/{os.getpid()}/fd/{fd}", folder)
        os.close(fd)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uid", type=int, required=True)
    parser.add_argument("--gid", type=int, required=True)
    parser.add_argument("--expose", action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    expose([os.path.realpath(folder) for folder in args.expose], args.uid, args.gid)
    os.setgroups([])
    os.setgid(args.gid)
    os.setuid(args.uid)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
