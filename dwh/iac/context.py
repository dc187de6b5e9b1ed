"""What every step is handed (Context: the arguments, dwh.cfg, AWS, the console and the clock,
with a polling wait), and what the cluster and Serverless steps hand back to the commands:
the Warehouse that create made, the Teardown that delete found."""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable

from dwh.iac.console import Console
from dwh.iac.errors import IacError
from dwh.iac.session import Aws
from dwh.iac.settings import IacConfig

Check = Callable[[], tuple[bool, str]]


@dataclasses.dataclass
class Context:
    args: argparse.Namespace
    cfg: IacConfig
    aws: Aws
    console: Console
    sleep: Callable[[float], None]
    public_ip: Callable[[], str | None]

    @property
    def timeout_s(self) -> float:
        return self.args.timeout * 60

    def wait(self, check: Check, *, what: str, delay_s: float, on_timeout: str) -> str:
        """Call ``check`` every ``delay_s`` seconds until it says done; IacError after --timeout.

        ``check`` returns (done, state) and raises IacError for states that will never get done.
        Time is counted in attempts, not read from a clock, so a fake ``sleep`` makes tests
        instant.
        """
        attempts = max(1, math.ceil(self.timeout_s / delay_s)) + 1
        state = "unknown"
        for attempt in range(attempts):
            done, state = check()
            if done:
                return state
            elapsed = attempt * delay_s
            self.console.info(f"  ... {what}: {state} ({int(elapsed // 60)}m{int(elapsed % 60):02d}s)")
            if attempt + 1 < attempts:
                self.sleep(delay_s)
        minutes = f"{self.timeout_s / 60:g}"
        raise IacError(f"timed out after {minutes} min waiting for {what} (still {state}); {on_timeout}")


@dataclasses.dataclass(frozen=True)
class Warehouse:
    """A cluster or workgroup that create has made available."""

    what: str  # "cluster sparkify-dwh", "workgroup sparkify"
    host: str | None  # its endpoint address
    port: int
    group_ids: list[str]  # its VPC security groups
    marker: str  # the description of our ingress rule
    cost: str  # what it costs, in words


@dataclasses.dataclass
class Teardown:
    """What ``delete`` found for one deployment kind, and how to remove it."""

    items: list[str]  # what will be deleted, for the confirmation
    marker: str  # description of our ingress rules
    host: str | None  # its endpoint, to clear from dwh.cfg
    absent: str  # "no cluster X", for the nothing-to-delete message
    remove: Callable[[], None]  # deletes the warehouse itself


def snapshot_note(final_snapshot: bool) -> str:
    return "(final snapshot kept)" if final_snapshot else "(no final snapshot)"
