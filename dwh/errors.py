"""Errors the scripts report as one clear message and a non-zero exit."""


class WarehouseError(Exception):
    """A failure of the warehouse or of a load, with a message fit for the user."""


class LoadFailed(WarehouseError):
    """A COPY that loaded nothing; `errors` holds the rejected rows (stl_load_errors fields)."""

    def __init__(self, message: str, errors=()):
        super().__init__(message)
        self.errors = list(errors)
