"""Run the analytic queries and present their results: text tables, a Markdown report, PNG charts.

Everything written here depends only on the query results, never on when or where they ran,
so the same data always gives the same report.md byte for byte.
"""

from __future__ import annotations

import datetime
import decimal
import logging
from dataclasses import dataclass
from pathlib import Path

from dwh.analytic_queries import AnalyticsQuery
from dwh.db import Warehouse

# Charts: a fixed size in inches at a fixed dpi, so every PNG is CHART_PIXELS in size.
CHART_SIZE_INCHES = (8.0, 4.5)
CHART_DPI = 100
CHART_PIXELS = (round(CHART_SIZE_INCHES[0] * CHART_DPI), round(CHART_SIZE_INCHES[1] * CHART_DPI))
WEEKDAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
NULL = "NULL"


@dataclass(frozen=True)
class Result:
    """One query's answer: the query, column names, rows."""

    query: AnalyticsQuery
    columns: list[str]
    rows: list[tuple]


def run_query(warehouse: Warehouse, query: AnalyticsQuery) -> Result:
    """Run one SELECT on the warehouse and fetch every row, with the column names."""
    with warehouse.cursor() as cur:
        cur.execute(query.sql)
        columns = [column.name for column in cur.description]
        rows = [tuple(row) for row in cur.fetchall()]
    return Result(query, columns, rows)


def format_value(value) -> str:
    """A cell as text: NULL, integers as they are, other numbers with two decimals."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, decimal.Decimal) and value == value.to_integral_value():
        return str(int(value))
    if isinstance(value, (float, decimal.Decimal)):
        return f"{value:.2f}"
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat()
    return str(value)


def _is_numeric_column(rows: list[tuple], index: int) -> bool:
    values = [row[index] for row in rows if row[index] is not None]
    return bool(values) and all(
        isinstance(v, (int, float, decimal.Decimal)) and not isinstance(v, bool) for v in values
    )


def _cells(result: Result) -> tuple[list[list[str]], list[bool]]:
    cells = [[format_value(v) for v in row] for row in result.rows]
    numeric = [_is_numeric_column(result.rows, i) for i in range(len(result.columns))]
    return cells, numeric


def text_table(result: Result) -> str:
    """An aligned plain-text table: numbers right-aligned, text left-aligned."""
    cells, numeric = _cells(result)
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(result.columns)]

    def line(values):
        padded = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(padded).rstrip()

    lines = [line(result.columns), "  ".join("-" * w for w in widths)]
    lines += [line(row) for row in cells]
    if not cells:
        lines.append("(no rows)")
    return "\n".join(lines)


def markdown_escape(text: str) -> str:
    """Make a cell's text literal inside a Markdown table (GitHub flavour)."""
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    for char in "*_`[]":
        text = text.replace(char, "\\" + char)
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())  # a newline would end the table row


def markdown_table(result: Result) -> str:
    """A GitHub-flavoured Markdown table; numeric columns right-aligned."""
    cells, numeric = _cells(result)
    if not cells:
        return "_(no rows)_"
    lines = [
        "| " + " | ".join(c.replace("|", "\\|") for c in result.columns) + " |",  # SQL aliases
        "|" + "|".join("---:" if num else "---" for num in numeric) + "|",
    ]
    lines += ["| " + " | ".join(markdown_escape(v) for v in row) + " |" for row in cells]
    return "\n".join(lines)


def console_report(results: list[Result]) -> str:
    """Every result as a titled text table, for the terminal."""
    blocks = []
    for result in results:
        title = result.query.title
        blocks.append(f"{title}\n{'=' * len(title)}\n{text_table(result)}")
    return "\n\n".join(blocks) + "\n"


def markdown_report(results: list[Result], charts: dict[str, str] | None = None) -> str:
    """The Markdown report: per query its title, note, table, chart (if any) and SQL."""
    charts = charts or {}
    parts = [
        "# Sparkify analytics",
        "",
        "Results of the analytic queries in `dwh/analytic_queries.py` (`analytics_queries`), "
        "written by `python analytics.py --out DIR`.",
        "",
        "Contents: " + ", ".join(f"[{r.query.title}](#{r.query.name})" for r in results) + ".",
    ]
    for result in results:
        query = result.query
        parts += ["", f'<a id="{query.name}"></a>', "", f"## {query.title}", ""]
        if query.note:
            parts += [query.note, ""]
        parts.append(markdown_table(result))
        if query.name in charts:
            parts += ["", f"![{query.title}]({charts[query.name]})"]
        parts += ["", "<details><summary>SQL</summary>", "", "```sql", query.sql.strip(), "```", "", "</details>"]
    return "\n".join(parts) + "\n"


def counts_by_position(rows: list[tuple], key_index: int, value_index: int, size: int) -> list[int]:
    """Values indexed by an integer key 0..size-1 (such as the hour); missing keys count 0."""
    counts = [0] * size
    for row in rows:
        key = row[key_index]
        if key is not None and 0 <= int(key) < size:
            counts[int(key)] = int(row[value_index] or 0)
    return counts


def bar_chart(path: Path, labels: list[str], values: list[int], title: str, xlabel: str, ylabel: str) -> Path:
    """Write a bar chart as a PNG of exactly CHART_PIXELS (Agg backend, no pyplot state)."""
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # not its font-cache notices
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=CHART_SIZE_INCHES, dpi=CHART_DPI, layout="constrained")
    axes = figure.subplots()
    bars = axes.bar(range(len(values)), values, color="#1f77b4")
    axes.bar_label(bars, fontsize=7, padding=2)
    axes.set_xticks(range(len(labels)), labels)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.margins(y=0.1)
    axes.spines[["top", "right"]].set_visible(False)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No bbox_inches="tight": it would change the pixel size. No Software tag: the same
    # data gives the same file whatever the matplotlib version writes there.
    figure.savefig(path, format="png", dpi=CHART_DPI, metadata={"Software": None})
    return path


def plays_by_hour_chart(result: Result, path: Path) -> Path:
    hours = counts_by_position(result.rows, result.columns.index("hour"), result.columns.index("plays"), 24)
    return bar_chart(
        path, [str(h) for h in range(24)], hours, "Song plays by hour of day (UTC)", "hour of day (UTC)", "plays"
    )


def plays_by_weekday_chart(result: Result, path: Path) -> Path:
    days = counts_by_position(result.rows, result.columns.index("weekday"), result.columns.index("plays"), 7)
    return bar_chart(
        path, [name[:3] for name in WEEKDAY_NAMES], days, "Song plays by weekday (UTC)", "weekday", "plays"
    )


# query name -> function drawing its chart; the PNG is named after the query.
CHARTS = {"plays_by_hour": plays_by_hour_chart, "plays_by_weekday": plays_by_weekday_chart}


def write_report(results: list[Result], out_dir: Path) -> list[Path]:
    """Write out_dir/report.md and a PNG per charted query; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written, charts = [], {}
    for result in results:
        draw = CHARTS.get(result.query.name)
        if draw:
            written.append(draw(result, out_dir / f"{result.query.name}.png"))
            charts[result.query.name] = f"{result.query.name}.png"
    report = out_dir / "report.md"
    report.write_text(markdown_report(results, charts), encoding="utf-8")
    return [report, *written]
