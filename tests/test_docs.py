"""The README stays true: its schema, its commands, its file list and its figures."""

import re

import pytest
from helpers import EXPECTED_ROWS, ROOT

import sql_queries

README = (ROOT / "README.md").read_text(encoding="utf-8")


def mermaid_tables() -> dict[str, list[str]]:
    diagram = re.search(r"```mermaid\n(.*?)```", README, re.S).group(1)
    return {
        name: [line.split()[1] for line in body.strip().splitlines()]
        for name, body in re.findall(r"^\s*(\w+) \{\n(.*?)^\s*\}", diagram, re.S | re.M)
    }


def created_columns(statement: str) -> tuple[str, list[str]]:
    name = re.search(r"EXISTS (\w+)", statement).group(1)
    body = statement[statement.index("(") + 1 : statement.rindex(")")]
    columns = [line.split()[0] for line in body.strip().splitlines() if not line.strip().startswith("PRIMARY KEY")]
    return name, columns


def test_schema_diagram_matches_the_star_tables():
    created = dict(created_columns(q) for q in sql_queries.create_table_queries)
    assert mermaid_tables() == {table: created[table] for table in sql_queries.STAR_TABLES}


def test_ci_runs_exactly_the_readme_test_command():
    quick_start = re.search(r"## Quick start\n+```bash\n(.*?)```", README, re.S).group(1)
    test_command = next(line.split("#")[0].strip() for line in quick_start.splitlines() if "test" in line)
    ci_commands = [
        line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert ci_commands[-2:] == [test_command, "python3 tasks.py lint"]


@pytest.mark.parametrize("path", re.findall(r"^\| `([^`]+)` \|", README, re.M))
def test_every_file_the_readme_lists_exists(path):
    assert (ROOT / path).exists()


def test_every_top_level_script_is_listed():
    listed = set(re.findall(r"^\| `([^`]+)` \|", README, re.M))
    scripts = {p.name for p in ROOT.glob("*.py")}
    assert scripts <= listed


def test_readme_figures_are_the_tested_counts():
    for table, rows in EXPECTED_ROWS.items():
        assert f"{table} {rows:,}" in README.replace("\n", " ")


def test_every_core_module_is_listed_in_the_readme_and_the_architecture():
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([^`]+)` \|", README, re.M))
    for path in sorted((ROOT / "dwh").glob("*.py")):
        if path.name != "__init__.py":
            module = f"dwh/{path.name}"
            assert module in listed, f"README's Files table lacks {module}"
            assert path.stem in architecture, f"docs/architecture.md does not place {module}"
