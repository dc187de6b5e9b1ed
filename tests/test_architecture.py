"""The layering rule of docs/architecture.md, enforced: scripts -> dwh core -> nothing local.

dwh.local and dwh.iac import the core, never the reverse and never each other; nothing in dwh
imports a top-level script; no import cycle. Checked statically (every import statement, lazy
ones included) and, for the scripts that must not need the local warehouse, by importing them.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from helpers import ROOT

SCRIPTS = sorted(path.stem for path in ROOT.glob("*.py"))


def module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted((ROOT / "dwh").rglob("*.py"))}


def imports_in(source: str) -> set[str]:
    """Every project module a source text imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "the project uses absolute imports only"
            base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module in MODULES or module in SCRIPTS}


def imports_of(module: str) -> set[str]:
    path = MODULES[module] if module in MODULES else ROOT / f"{module}.py"
    return imports_in(path.read_text(encoding="utf-8"))


def layer(module: str) -> str:
    if module in SCRIPTS:
        return "script"
    if module == "dwh.local" or module.startswith("dwh.local."):
        return "local"
    if module == "dwh.iac" or module.startswith("dwh.iac."):
        return "iac"
    return "core"


ALLOWED = {"core": {"core"}, "local": {"core", "local"}, "iac": {"core", "iac"}}


def violations(module: str) -> list[str]:
    return [
        f"{module} ({layer(module)}) imports {imported} ({layer(imported)})"
        for imported in sorted(imports_of(module))
        if layer(imported) not in ALLOWED[layer(module)]
    ]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_only_what_its_layer_may(module):
    assert violations(module) == []


def test_the_rule_is_checked_on_every_package():
    layers = {layer(module) for module in MODULES}
    assert layers == {"core", "local", "iac"}
    assert {"create_tables", "etl", "analytics", "iac_setup", "sql_queries"} <= set(SCRIPTS)
    assert "dwh.db" in imports_of("dwh.redshift") and "dwh.db" in imports_of("dwh.local.warehouse")


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    visiting: list[str] = []
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module):
        if module in done:
            return
        if module in visiting:
            cycles.append([*visiting[visiting.index(module) :], module])
            return
        visiting.append(module)
        for imported in sorted(graph.get(module, ())):
            if imported != "dwh":  # the package's own __init__ imports nothing
                visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    return cycles


def test_no_import_cycle():
    graph = {module: imports_of(module) - {module} for module in [*MODULES, *SCRIPTS]}
    assert find_cycles(graph) == []


def test_the_cycle_finder_finds_a_lazy_cycle():
    """The shape the core had before: dwh.db imported LocalWarehouse lazily, which subclasses dwh.db's class."""
    graph = {"dwh.db": {"dwh.local.warehouse"}, "dwh.local.warehouse": {"dwh.db"}, "etl": {"dwh.db"}}
    assert find_cycles(graph) == [["dwh.db", "dwh.local.warehouse", "dwh.db"]]


def test_the_static_check_sees_lazy_imports_and_names_in_strings_are_not_imports():
    lazy = "def open_local():\n    from dwh.local import warehouse\n    import sql_queries\n"
    assert imports_in(lazy) == {"dwh.local", "dwh.local.warehouse", "sql_queries"}
    assert imports_in("import psycopg2\nWAREHOUSE = 'dwh.local.warehouse:LocalWarehouse'\n") == set()
    assert "dwh.local.warehouse" not in imports_of("dwh.db")  # named as a string, imported by importlib
    assert {layer(m) for m in imports_in(lazy)} - ALLOWED["core"] == {"local", "script"}


@pytest.mark.parametrize("script", ["iac_setup", "create_tables", "etl", "analytics"])
def test_importing_the_script_loads_no_local_warehouse_module(script):
    code = (
        f"import sys; import {script}; "
        "print(','.join(sorted(m for m in sys.modules if m == 'dwh.local' or m.startswith('dwh.local.'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr == ""


def test_the_configured_target_chooses_its_warehouse_class():
    from dwh import db
    from dwh.local.warehouse import LocalWarehouse
    from dwh.redshift import RedshiftWarehouse

    assert db.warehouse_class("local") is LocalWarehouse
    assert db.warehouse_class("redshift") is RedshiftWarehouse
    for cls in (LocalWarehouse, RedshiftWarehouse):
        assert not getattr(cls, "__abstractmethods__", None), f"{cls.__name__} leaves part of the interface out"
