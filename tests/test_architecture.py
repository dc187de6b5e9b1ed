"""The layering rule of docs/architecture.md, enforced: scripts -> dwh.ops -> dwh core -> nothing local.

dwh.local and dwh.iac import the core, never the reverse and never each other; only dwh.ops, where
a warehouse is opened, imports dwh.local; nothing in dwh imports a top-level script; no import
cycle. Checked statically (every import statement, lazy ones included, and every importlib or
__import__ call) and, for the scripts that must not need the local warehouse, by importing them.
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


DYNAMIC = "<a module named at run time>"
_IMPORT_CALLS = {"import_module", "__import__", "find_spec", "spec_from_file_location", "run_module"}


def _called_name(call: ast.Call) -> str | None:
    function = call.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)


def imports_in(source: str) -> set[str]:
    """Every project module a source text imports: at the top, inside a function, or by importlib.

    An import call whose module is not a literal is DYNAMIC: no rule can tell what it loads.
    """
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _called_name(node) in _IMPORT_CALLS:
            argument = node.args[0] if node.args else None
            literal = isinstance(argument, ast.Constant) and isinstance(argument.value, str)
            found.add(argument.value if literal else DYNAMIC)  # type: ignore[union-attr]
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "the project uses absolute imports only"
            base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module in MODULES or module in SCRIPTS or module == DYNAMIC}


def imports_of(module: str) -> set[str]:
    path = MODULES[module] if module in MODULES else ROOT / f"{module}.py"
    return imports_in(path.read_text(encoding="utf-8"))


def layer(module: str) -> str:
    if module in SCRIPTS:
        return "script"
    if module == DYNAMIC:
        return "dynamic"
    if module == "dwh.ops" or module.startswith("dwh.ops."):
        return "ops"
    if module == "dwh.local" or module.startswith("dwh.local."):
        return "local"
    if module == "dwh.iac" or module.startswith("dwh.iac."):
        return "iac"
    return "core"


ALLOWED = {"core": {"core"}, "ops": {"core", "ops", "local"}, "local": {"core", "local"}, "iac": {"core", "iac"}}


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
    assert layers == {"core", "ops", "local", "iac"}
    assert {"create_tables", "etl", "analytics", "iac_setup", "sql_queries"} <= set(SCRIPTS)
    assert "dwh.db" in imports_of("dwh.redshift.warehouse") and "dwh.db" in imports_of("dwh.local.warehouse")
    assert "dwh.local.warehouse" in imports_of("dwh.ops.run")  # the warehouse choice is a plain, visible import


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


def test_the_static_check_sees_lazy_and_dynamic_imports():
    lazy = "def open_local():\n    from dwh.local import warehouse\n    import sql_queries\n"
    assert imports_in(lazy) == {"dwh.local", "dwh.local.warehouse", "sql_queries"}
    assert {layer(m) for m in imports_in(lazy)} - ALLOWED["core"] == {"local", "script"}
    by_importlib = "import importlib\nwarehouse = importlib.import_module('dwh.local.warehouse')\n"
    assert imports_in(by_importlib) == {"dwh.local.warehouse"}
    registry = "CLASSES = {'local': 'dwh.local.warehouse:LocalWarehouse'}\nm = __import__(CLASSES[t].split(':')[0])\n"
    assert imports_in(registry) == {DYNAMIC} and layer(DYNAMIC) not in ALLOWED["core"]
    assert imports_in("import psycopg2\nNAME = 'dwh.local.warehouse'\n") == set()  # a name in a string imports nothing


def test_a_core_module_importing_the_local_warehouse_is_a_violation(monkeypatch):
    """The rule catches the shape the core once had: dwh.db choosing LocalWarehouse through importlib."""
    registry = "import importlib\n\ndef open_warehouse(name):\n    return importlib.import_module(name)\n"
    monkeypatch.setitem(MODULES, "dwh.db", ROOT / "dwh" / "db.py")
    monkeypatch.setattr(sys.modules[__name__], "imports_of", lambda module: imports_in(registry))
    assert violations("dwh.db") == [f"dwh.db (core) imports {DYNAMIC} (dynamic)"]


@pytest.mark.parametrize("script", ["iac_setup", "create_tables", "etl", "analytics", "verify"])
def test_importing_the_script_loads_no_local_warehouse_module(script):
    code = (
        f"import sys; import {script}; "
        "print(','.join(sorted(m for m in sys.modules if m == 'dwh.local' or m.startswith('dwh.local.'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr == ""
