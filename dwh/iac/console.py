"""What the person at the terminal sees: progress on stdout, warnings and errors on stderr,
secrets never shown; and the confirmation that delete asks for."""

from __future__ import annotations

import os
import sys

from dwh.config import PASSWORD_ENV
from dwh.iac.errors import UsageError


class Console:
    """Progress on stdout, warnings and errors on stderr, secrets never shown."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        for var in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", PASSWORD_ENV):
            self.add_secret(os.environ.get(var))

    def add_secret(self, value: str | None) -> None:
        if value and len(value) >= 4:
            self._secrets.add(value)

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "********")
        return text

    def info(self, message: str = "") -> None:
        print(self.redact(message), flush=True)

    def warn(self, message: str) -> None:
        print(self.redact(f"WARNING: {message}"), file=sys.stderr, flush=True)

    def error(self, message: str) -> None:
        print(self.redact(f"error: {message}"), file=sys.stderr, flush=True)


def confirm(console: Console, plan: list[str], assume_yes: bool) -> bool:
    """Show what will be deleted; True once the person typed 'yes' (or passed --yes)."""
    console.info("This will delete:")
    for line in plan:
        console.info(f"  - {line}")
    if assume_yes:
        return True
    if not sys.stdin or not sys.stdin.isatty():
        raise UsageError("refusing to delete without --yes: standard input is not a terminal, so nobody can confirm")
    print("Type 'yes' to delete all of the above: ", end="", flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer != "yes":
        console.info("Not confirmed; nothing was deleted.")
        return False
    return True
