"""Which runner starts and stops the server: ourselves, or as root on Linux the root machinery.

The root machinery (linux_root) uses Linux's mount namespaces and pwd, so it is imported only when
running as root on Linux; everywhere else this module imports nothing platform-specific.
"""

from __future__ import annotations

import sys
from types import ModuleType

from dwh.config import ServerSettings
from dwh.local.server.errors import ServerError
from dwh.local.server.layout import bin_dir
from dwh.local.server.runner import Runner, running_as_root


def runner_for_start(s: ServerSettings) -> Runner:
    """The runner for init/start; as root, one that runs them as an unprivileged user."""
    if not running_as_root():
        return Runner("self", bin_dir())
    return _linux_root().runner_for_start(s)


def prepare_ownership(s: ServerSettings, runner: Runner) -> None:
    """As root, give DATA_DIR to the user the server runs as; nothing to do otherwise."""
    if running_as_root():
        _linux_root().prepare_ownership(s, runner)


def _linux_root() -> ModuleType:
    """The root machinery, imported only when needed: it uses Linux's mount namespaces and pwd."""
    if sys.platform != "linux":
        raise ServerError("PostgreSQL refuses to run as root; run as a normal user")
    import dwh.local.server.linux_root as linux_root

    return linux_root
