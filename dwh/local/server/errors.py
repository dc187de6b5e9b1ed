"""The one error the local server raises."""

from __future__ import annotations

from dwh.errors import WarehouseError

INSTALL_FIX = "pip install -r requirements.txt"


class ServerError(WarehouseError):
    """The local warehouse server cannot be used; str(error) is one line that names the fix."""
