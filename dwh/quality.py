"""Run the data-quality checks declared in sql_queries.py and report them as a table."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from dwh.errors import WarehouseError

log = logging.getLogger("dwh")


class ChecksFailed(WarehouseError):
    """One or more checks failed; the message names each and its offending value."""


@dataclass(frozen=True)
class CheckResult:
    check: object
    value: object
    passed: bool | None

    @property
    def status(self) -> str:
        return {True: "ok", False: "FAILED", None: "info"}[self.passed]

    @property
    def expectation(self) -> str:
        return "" if self.check.op is None else f"{self.check.op} {self.check.expected:g}"


def _number(value):
    return float(value) if isinstance(value, Decimal) else value


def run_checks(warehouse, checks) -> list[CheckResult]:
    results = []
    for check in checks:
        value = _number(warehouse.scalar(check.sql))
        results.append(CheckResult(check, value, check.passes(value)))
    return results


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
