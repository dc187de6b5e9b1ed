"""The README stays true: its schema, its commands, its file list and its figures."""

import ast
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


def test_every_package_is_listed_in_the_readme_and_every_module_placed_in_the_architecture():
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([^`]+)` \|", README, re.M))
    for package in sorted(p for p in (ROOT / "dwh").iterdir() if (p / "__init__.py").exists()):
        assert f"dwh/{package.name}/" in listed, f"README's Files table lacks dwh/{package.name}/"
    for path in sorted((ROOT / "dwh").rglob("*.py")):
        if path.name not in ("__init__.py", "__main__.py"):
            module = path.relative_to(ROOT).with_suffix("").as_posix()
            assert f"`{module}" in architecture or f"{module}." in architecture, (
                f"docs/architecture.md does not place {module}"
            )


def environment_variables_read() -> set[str]:
    """Every environment variable the project's own code reads by name (os.environ.get/[], os.getenv),
    a name given as a constant, a module-level name for one, or a loop over a tuple of them."""
    trees = [
        ast.parse(path.read_text(encoding="utf-8")) for path in [*ROOT.glob("*.py"), *(ROOT / "dwh").rglob("*.py")]
    ]
    names: dict[str, set[str]] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    names.setdefault(node.targets[0].id, set()).add(node.value.value)
            elif isinstance(node, ast.For) and isinstance(node.target, ast.Name) and isinstance(node.iter, ast.Tuple):
                names.setdefault(node.target.id, set()).update(ast.unparse(e).strip("'\"") for e in node.iter.elts)

    def resolve(name: str) -> set[str]:
        values = names.get(name, {name})
        return set().union(*(resolve(v) if v in names and v != name else {v} for v in values))

    found: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv"):
                target = node.args[0]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                target = node.slice
            else:
                continue
            found |= {target.value} if isinstance(target, ast.Constant) else resolve(ast.unparse(target))
    return found


def test_every_environment_variable_the_code_reads_is_documented():
    configuration = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`((?:SPARKIFY|AWS)_[A-Z_]+)`", configuration.split("## Environment variables")[1]))
    read = environment_variables_read()
    assert read <= documented, f"read but not documented: {sorted(read - documented)}"
    assert {"SPARKIFY_DB_PASSWORD", "SPARKIFY_PG_BIN"} <= read  # the finder sees both ways they are read
    assert all(f"`{name}`" in README for name in documented if name.startswith("SPARKIFY_"))


def test_the_readme_stays_a_page():
    assert len(README.splitlines()) <= 250
