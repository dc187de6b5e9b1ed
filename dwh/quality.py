"""Data-quality checks: what a check is, running them, and reporting them as a table.

The checks themselves are SQL and live with the rest of the warehouse's SQL in sql_queries.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dwh.db import Warehouse
from dwh.errors import WarehouseError

log = logging.getLogger("dwh")


@dataclass(frozen=True)
class Check:
    """A number a query returns (the column-th of its one row), and what that number must be.

    Checks with the same sql share one run of it, so related checks cost one scan.
    """

    name: str
    sql: str
    op: str | None = None  # "==" or ">="; None only reports the value
    expected: float = 0
    column: int = 0

    def passes(self, value) -> bool | None:
        if self.op is None:
            return None
        if value is None:
            return False
        return value == self.expected if self.op == "==" else value >= self.expected


class ChecksFailed(WarehouseError):
    """One or more checks failed; the message names each and its offending value."""


@dataclass(frozen=True)
class CheckResult:
    check: Check
    value: Any
    passed: bool | None

    @property
    def status(self) -> str:
        return {True: "ok", False: "FAILED", None: "info"}[self.passed]

    @property
    def expectation(self) -> str:
        return "" if self.check.op is None else f"{self.check.op} {self.check.expected:g}"


def _number(value):
    """A driver's Decimal as int when whole (a SUM of counts), else float."""
    if not isinstance(value, Decimal):
        return value
    return int(value) if value == value.to_integral_value() and value.as_tuple().exponent == 0 else float(value)


def run_checks(warehouse: Warehouse, checks: Iterable[Check]) -> list[CheckResult]:
    """Run each distinct query once, in the checks' order; one result per check."""
    rows: dict[str, tuple] = {}
    results = []
    for check in checks:
        if check.sql not in rows:
            rows[check.sql] = warehouse.query(check.sql)[0]
        value = _number(rows[check.sql][check.column])
        results.append(CheckResult(check, value, check.passes(value)))
    return results


def check(warehouse: Warehouse, checks: list[Check]) -> None:
    """Run the checks and raise ChecksFailed if one fails; a dry run, which has no data, skips them and says so."""
    if warehouse.dry_run:
        warehouse.execute(f"-- the {len(checks)} data-quality checks run here; a dry run loads no data to check")
        return
    enforce(run_checks(warehouse, checks))


def report(results: list[CheckResult]) -> str:
    width = max(len(r.check.name) for r in results)
    lines = [f"  {'check':<{width}}  {'value':>10}  {'expected':<8}  status"]
    for r in results:
        value = "NULL" if r.value is None else f"{r.value:,}" if isinstance(r.value, int) else f"{r.value:g}"
        lines.append(f"  {r.check.name:<{width}}  {value:>10}  {r.expectation:<8}  {r.status}")
    return "\n".join(lines)


def enforce(results: list[CheckResult]) -> None:
    """Log the table; raise ChecksFailed naming every failed check and its value."""
    log.info("Data-quality checks:\n%s", report(results))
    failed = [r for r in results if r.passed is False]
    if failed:
        names = "; ".join(f"{r.check.name}: got {r.value}, expected {r.expectation}" for r in failed)
        raise ChecksFailed(f"{len(failed)} data-quality check(s) failed: {names}")
