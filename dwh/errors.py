"""Errors the scripts report as one clear message and a non-zero exit."""

from collections.abc import Iterable
from dataclasses import dataclass


def first_line(exc: BaseException) -> str:
    """The first line of what the warehouse said, without its "ERROR:" label."""
    text = (getattr(exc, "pgerror", None) or str(exc)).strip()
    return text.splitlines()[0].removeprefix("ERROR:").strip() if text else type(exc).__name__


def one_line(exc: BaseException) -> str:
    """All the warehouse said (Redshift puts the reason on a DETAIL line), on one line, without "ERROR:"."""
    text = " ".join((getattr(exc, "pgerror", None) or str(exc)).split())
    return text.removeprefix("ERROR:").strip() or type(exc).__name__


class WarehouseError(Exception):
    """A failure of the warehouse or of a load, with a message fit for the user."""


class LoadFailed(WarehouseError):
    """A COPY that loaded nothing; `errors` holds the rejected rows (stl_load_errors fields)."""

    def __init__(self, message: str, errors: Iterable["LoadError"] = ()):
        super().__init__(message)
        self.errors = list(errors)


class NoSourceFiles(LoadFailed):
    """COPY's FROM matched no file: on Redshift, "The specified S3 prefix ... does not exist"."""


@dataclass(frozen=True)
class LoadError:
    """One rejected row, with the fields Redshift records in stl_load_errors."""

    filename: str
    line_number: int
    colname: str
    type: str
    raw_field_value: str
    err_code: int
    err_reason: str

    def __str__(self) -> str:
        where = f"{self.filename}, line {self.line_number}"
        if self.colname:
            where += f", column {self.colname} ({self.type})"
        value = f", value {self.raw_field_value!r}" if self.raw_field_value else ""
        return f"{where}: {self.err_reason} [code {self.err_code}]{value}"
