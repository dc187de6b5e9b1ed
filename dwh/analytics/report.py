"""Run the analytic queries and present their results: text tables, a Markdown report, PNG charts.

Everything written here depends only on the query results, never on when or where they ran,
so the same data always gives the same report.md byte for byte.
"""

from __future__ import annotations

import datetime
import decimal
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from dwh.analytics.queries import AnalyticsQuery
from dwh.config import ConfigError
from dwh.db import Warehouse

# Charts: a fixed size in inches at a fixed dpi, so every PNG is CHART_PIXELS in size.
CHART_SIZE_INCHES = (8.0, 4.5)
CHART_DPI = 100
CHART_PIXELS = (round(CHART_SIZE_INCHES[0] * CHART_DPI), round(CHART_SIZE_INCHES[1] * CHART_DPI))
WEEKDAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
NULL = "NULL"
BLUE, ORANGE, GREY = "#1f77b4", "#ff7f0e", "#c7c7c7"
LABEL_CHARACTERS = 40  # a longer name is cut, with an ellipsis, in a chart's labels
# The line of a document (docs/analytics.md) below which --doc writes the report.
REPORT_MARKER = "<!-- Written by analytics.py --doc: everything below this line is generated. -->"


@dataclass(frozen=True)
class Result:
    """One query's answer: the query, column names, rows."""

    query: AnalyticsQuery
    columns: list[str]
    rows: list[tuple]


def run_query(warehouse: Warehouse, query: AnalyticsQuery) -> Result:
    """Run one SELECT on the warehouse and fetch every row, with the column names."""
    columns, rows = warehouse.result(query.sql)
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


def _by_name(results: list[Result]) -> dict[str, list[dict]]:
    return {r.query.name: [dict(zip(r.columns, row, strict=True)) for row in r.rows] for r in results}


def _number(value) -> str:
    return f"{int(value or 0):,}"


def _percent(value) -> str:
    return f"{float(value or 0):.2f} %"


def _song(row: dict) -> str:
    known = "in the catalogue" if row["in_catalogue"] == "yes" else "not in the catalogue"
    return f"“{markdown_escape(format_value(row['song']))}” by {markdown_escape(format_value(row['artist']))} ({known})"


def _artist(row: dict) -> str:
    known = "in the catalogue" if row["in_catalogue"] == "yes" else "not in the catalogue"
    return f"{markdown_escape(format_value(row['artist']))} ({known})"


def _leaders(rows: list[dict], describe, what: str) -> str:
    """The first row of a ranking and those tied with it, as one sentence."""
    top = [row for row in rows if row["plays"] == rows[0]["plays"]]
    plays = f"{_number(rows[0]['plays'])} plays"
    if len(top) == 1:
        return f"Most played {what}: {describe(top[0])}, {plays}."
    return f"Most played {what}s, tied at {plays}: " + "; ".join(describe(row) for row in top) + "."


def summary(results: list[Result]) -> list[str]:
    """The headline figures, as Markdown bullets computed from the results (none for a missing one)."""
    rows = _by_name(results)
    lines = []
    share = (rows.get("matched_share") or [{"plays": 0}])[0]
    if share["plays"]:
        lines.append(
            f"{_number(share['plays'])} plays; the song catalogue matched {_number(share['matched_plays'])} of them "
            f"({_percent(share['pct_matched'])}). The rankings count every play, by the song title and artist name "
            "the event gives, and say whether the catalogue knows each."
        )
    days = rows.get("plays_by_day")
    if days:
        first, last = format_value(days[0]["play_date"]), format_value(days[-1]["play_date"])
        lines.append(f"Plays from {first} to {last} (UTC), on {len(days)} days.")
    if rows.get("top_songs"):
        lines.append(_leaders(rows["top_songs"], _song, "song"))
    if rows.get("top_artists"):
        lines.append(_leaders(rows["top_artists"], _artist, "artist"))
    levels = {row["level"]: row for row in rows.get("plays_by_level", [])}
    if "paid" in levels:
        paid = levels["paid"]
        lines.append(f"{_number(paid['plays'])} paid plays ({_percent(paid['pct_plays'])} of all plays).")
    return [f"- {line}" for line in lines]


def markdown_report(results: list[Result], charts: dict[str, str] | None = None, heading: str = "#") -> str:
    """The Markdown report: a summary, then per query its title, note, table, chart (if any) and SQL.

    heading is the top heading's level; the sections are one level below it.
    """
    charts = charts or {}
    parts = [
        f"{heading} Sparkify analytics",
        "",
        "Results of the analytic queries in `dwh/analytics/queries.py` (`analytics_queries`), "
        "written by `python analytics.py --out DIR`.",
    ]
    if lines := summary(results):
        parts += ["", *lines]
    parts += ["", "Contents: " + ", ".join(f"[{r.query.title}](#{r.query.name})" for r in results) + "."]
    for result in results:
        query = result.query
        parts += ["", f'<a id="{query.name}"></a>', "", f"{heading}# {query.title}", ""]
        if query.note:
            parts += [query.note, ""]
        parts.append(markdown_table(result))
        if query.name in charts:
            parts += ["", f"![{query.title}]({charts[query.name]})"]
        parts += ["", "<details><summary>SQL</summary>", "", "```sql", query.sql.strip(), "```", "", "</details>"]
    return "\n".join(parts) + "\n"


def document_intro(path: Path) -> str:
    """The hand-written part of a document that --doc writes the report into: up to REPORT_MARKER."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--doc {path}: cannot read it ({exc.strerror or exc})") from exc
    lines = text.splitlines(keepends=True)
    for number, line in enumerate(lines):
        if line.strip() == REPORT_MARKER:
            return "".join(lines[: number + 1]).rstrip("\n") + "\n"
    raise ConfigError(f"--doc {path}: no line {REPORT_MARKER!r} to write the report below")


def write_document(results: list[Result], path: Path, intro: str, charts_dir: Path) -> Path:
    """Write the document: its hand-written intro, then the report a heading level down, charts from charts_dir."""
    prefix = Path(os.path.relpath(charts_dir.resolve(), path.resolve().parent)).as_posix()
    linked = {name: f"{prefix}/{file}" for name, file in chart_files(results).items()}
    path.write_text(intro + "\n" + markdown_report(results, linked, heading="##"), encoding="utf-8")
    return path


def counts_by_position(rows: list[tuple], key_index: int, value_index: int, size: int) -> list[int]:
    """Values indexed by an integer key 0..size-1 (such as the hour); missing keys count 0."""
    counts = [0] * size
    for row in rows:
        key = row[key_index]
        if key is not None and 0 <= int(key) < size:
            counts[int(key)] = int(row[value_index] or 0)
    return counts


def _figure():
    """A Figure of CHART_SIZE_INCHES at CHART_DPI (Agg backend, no pyplot state) and its axes."""
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # not its font-cache notices
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=CHART_SIZE_INCHES, dpi=CHART_DPI, layout="constrained")
    axes = figure.subplots()
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # No bbox_inches="tight": it would change the pixel size. No Software tag: the same
    # data gives the same file whatever the matplotlib version writes there.
    figure.savefig(path, format="png", dpi=CHART_DPI, metadata={"Software": None})
    return path


def bar_chart(path: Path, labels: list[str], values: list[int], title: str, xlabel: str, ylabel: str) -> Path:
    """Write a bar chart as a PNG of exactly CHART_PIXELS."""
    figure, axes = _figure()
    bars = axes.bar(range(len(values)), values, color=BLUE)
    axes.bar_label(bars, fontsize=7, padding=2)
    axes.set_xticks(range(len(labels)), labels)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.margins(y=0.1)
    return _save(figure, path)


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


def short_label(value) -> str:
    """A name fit for a chart's axis: printable characters only, LABEL_CHARACTERS at most (cut with an ellipsis)."""
    text = " ".join("".join(char for char in format_value(value) if char.isprintable()).split())
    return text if len(text) <= LABEL_CHARACTERS else text[: LABEL_CHARACTERS - 1] + "…"


def daily_series(rows: list[dict]) -> tuple[list[datetime.date], list[int], list[int]]:
    """Every date from the first to the last with plays, and its paid and free plays (0 on a date without)."""
    by_date = {row["play_date"]: row for row in rows if row["play_date"] is not None}
    if not by_date:
        return [], [], []
    first, last = min(by_date), max(by_date)
    dates = [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]
    paid = [int(by_date[d]["paid_plays"] or 0) if d in by_date else 0 for d in dates]
    free = [int(by_date[d]["free_plays"] or 0) if d in by_date else 0 for d in dates]
    return dates, paid, free


def plays_by_day_chart(result: Result, path: Path) -> Path:
    """Paid and free plays stacked, one bar per date, dates without plays included."""
    dates, paid, free = daily_series(_by_name([result])[result.query.name])
    figure, axes = _figure()
    positions = range(len(dates))
    axes.bar(positions, paid, color=BLUE, label="paid")
    axes.bar(positions, free, bottom=paid, color=ORANGE, label="free")
    step = max(1, -(-len(dates) // 16))  # at most 16 date labels
    axes.set_xticks(positions[::step], [d.strftime("%m-%d") for d in dates[::step]])
    span = f"{dates[0].isoformat()} to {dates[-1].isoformat()}" if dates else "no plays"
    axes.set_title(f"Song plays per day, paid and free ({span}, UTC)")
    axes.set_xlabel("date (UTC)")
    axes.set_ylabel("plays")
    axes.legend(frameon=False)
    return _save(figure, path)


def top_artists_chart(result: Result, path: Path) -> Path:
    """The ranking as horizontal bars, the first on top; artists the catalogue knows in blue, the rest grey."""
    rows = _by_name([result])[result.query.name]
    figure, axes = _figure()
    positions = range(len(rows))
    colors = [BLUE if row["in_catalogue"] == "yes" else GREY for row in rows]
    bars = axes.barh(positions, [int(row["plays"]) for row in rows], color=colors)
    axes.bar_label(bars, fontsize=7, padding=2)
    axes.set_yticks(positions, [short_label(row["artist"]) for row in rows])
    axes.invert_yaxis()
    axes.set_title("Most played artists (every play, by the artist the event names)")
    axes.set_xlabel("plays")
    axes.margins(x=0.1)
    from matplotlib.patches import Patch

    axes.legend(
        handles=[Patch(color=BLUE, label="in the catalogue"), Patch(color=GREY, label="not in the catalogue")],
        frameon=False,
        loc="lower right",
    )
    return _save(figure, path)


# query name -> function drawing its chart; the PNG is named after the query.
CHARTS = {
    "top_artists": top_artists_chart,
    "plays_by_day": plays_by_day_chart,
    "plays_by_hour": plays_by_hour_chart,
    "plays_by_weekday": plays_by_weekday_chart,
}


def chart_files(results: list[Result]) -> dict[str, str]:
    """Query name -> the file name of its chart, for the charted queries among the results."""
    return {r.query.name: f"{r.query.name}.png" for r in results if r.query.name in CHARTS}


def write_report(results: list[Result], out_dir: Path) -> list[Path]:
    """Write out_dir/report.md and a PNG per charted query; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = chart_files(results)
    for result in results:
        if result.query.name in charts:
            CHARTS[result.query.name](result, out_dir / charts[result.query.name])
    report = out_dir / "report.md"
    report.write_text(markdown_report(results, charts), encoding="utf-8")
    return [report, *(out_dir / file for file in charts.values())]
